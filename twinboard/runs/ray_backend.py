"""The Ray backend: each trainer a Ray job on a cluster, its files on a logdir the cluster shares.

`launch(spec, backend="ray", address=...)` submits the pair's two trainers as two Ray jobs
(`JobSubmissionClient.submit_job`), each asking for `spec.threads` CPUs (`entrypoint_num_cpus`), so
Ray queues them (PENDING) until a node has the CPUs and runs them wherever they fit. Jobs, not tasks:
a task dies with the driver that submitted it (the app restarting, `twinboard sweep` exiting), a
job belongs to the cluster. The entrypoint is the local backend's trainer command, run in the
repository with its output sent to `<run>/<fw>.stdout/.stderr`: the logdir must be the same path on
every node (a shared filesystem), as the event files are the only channel back to the dashboard.

State: `<run>/<fw>.job.json` holds {framework, backend "ray", state, job_id, api (the dashboard URL
the address resolved to), address (as given), submitted, cmd}; Ray is asked for a job's status
only until the job file records an end (finished, failed with the stderr tail, stopped), so a
finished sweep reads without the cluster. Ray's PENDING is queued, RUNNING is running (progress from
the trainer's status.json, as for the local backend). A job Ray no longer knows (a restarted head)
is settled as the local backend settles a trainer found dead. Ray's answers come through
twinboard.runs.ray_cluster: one `list_jobs` call per cluster serves every run read within a second.

Stop: `stop_job`, which sends SIGTERM to the trainer and SIGKILL after RAY_JOB_STOP_WAIT_TIME_S
(Ray's setting, 3 s by default; the launcher's grace is not Ray's to take per job). Caps: a pair with
a PENDING job is waiting; TWINBOARD_MAX_QUEUED and _PER_USER count them as the local queue counts its
tickets. The two halves of a pair may start at different times or on different nodes: Ray schedules
each job on its own (the local backend always starts them together), so compare speed with care.

Ray is imported inside the functions that need it: the dashboard runs without it (an optional
extra, requirements-ray.txt), and `import twinboard.runs` never loads it.
"""
from __future__ import annotations

import os
import secrets
import shlex
import time
from pathlib import Path

from twinboard import config
from twinboard.contract import SPEC_JSON, RunSpec, SpecError, read_json, read_status, write_json
from twinboard.runs.local import launch_env
from twinboard.runs.queue import REPO, failure_text, job_path, stop_path
from twinboard.runs.ray_cluster import (RayUnavailable, client, default_address, forget_list, listed, resolve,
                                        waiting_pairs)
from twinboard.runs.state import Failed, JobStatus, LauncherError, LaunchRefused

NAME = "ray"
MISSING_GRACE_S = 30.0  # a job Ray does not list this long after its submission is gone, not slow to appear
_RAY_STATES = {"PENDING": "queued", "RUNNING": "running", "SUCCEEDED": "finished", "FAILED": "failed",
               "STOPPED": "stopped"}


# --- the backend ---------------------------------------------------------------------------------
def _threads(run_dir: Path) -> int:
    try:
        return RunSpec.load(run_dir / SPEC_JSON).threads
    except (SpecError, OSError):
        return 1


def entrypoint(cmd: list[str], run_dir: Path, framework: str) -> str:
    """The job's shell command: the trainer in the repository, its output in the run folder (shared)."""
    out, err = (shlex.quote(str(run_dir / f"{framework}.{s}")) for s in ("stdout", "stderr"))
    return f"cd {shlex.quote(str(REPO))} && exec {shlex.join(map(str, cmd))} >{out} 2>{err}"


class RayBackend:
    name = NAME

    def submit(self, run_dir: Path, logdir: Path, commands: dict[str, list[str]], owner: str | None = None,
               address: str | None = None) -> Failed | None:
        """Submit both trainers as Ray jobs. Raises LaunchRefused (a cap; Ray missing or unreachable:
        nothing started) and takes back a first job when the second cannot be submitted."""
        run_dir, logdir = Path(run_dir), Path(logdir)
        try:
            url = resolve(address)
            cluster = client(url)
            most, per_user = config.max_queued(), config.max_queued_per_user()
            self._check_caps(url, logdir, owner, most, per_user)
        except (RayUnavailable, ValueError) as err:
            raise LaunchRefused(str(err)) from None
        env = {**launch_env(), "PYTHONUNBUFFERED": "1", "TWINBOARD_LOGDIR": str(logdir),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        threads, token, made = _threads(run_dir), secrets.token_hex(3), []
        try:
            for fw, cmd in commands.items():
                job_id = f"twinboard-{run_dir.name}-{fw}-{token}"
                cluster.submit_job(
                    entrypoint=entrypoint(cmd, run_dir, fw), submission_id=job_id, entrypoint_num_cpus=threads,
                    runtime_env={"env_vars": {**env, "TWINBOARD_FRAMEWORK": fw, "TWINBOARD_RUN_DIR": str(run_dir)}},
                    metadata={"twinboard_logdir": str(logdir), "twinboard_run": run_dir.name, "framework": fw,
                              "owner": owner or ""})
                made.append(job_id)
                write_json(job_path(run_dir, fw), {
                    "framework": fw, "backend": NAME, "state": "submitted", "job_id": job_id, "api": url,
                    "address": address or default_address(), "submitted": time.time(), "cmd": cmd,
                    "threads": threads})
        except Exception as err:  # half a pair never runs alone
            for job_id in made:
                try:
                    cluster.stop_job(job_id)
                except Exception:  # noqa: BLE001, S110 - best effort; the run folder goes anyway
                    pass
            if isinstance(err, OSError):
                raise
            raise LaunchRefused(f"the Ray cluster at {url} refused the job: {str(err)[:500]}") from None
        finally:
            forget_list(url)
        return None

    def _check_caps(self, url: str, logdir: Path, owner: str | None, most: int, per_user: int) -> None:
        waiting = waiting_pairs(url, logdir)
        if len(waiting) >= most:
            raise LaunchRefused(f"the queue is full: {len(waiting)} pairs wait for the Ray cluster and "
                                f"TWINBOARD_MAX_QUEUED={most}; launch again once one has started")
        mine = sum(o == (owner or "") for o in waiting.values())
        if mine >= per_user:
            who = f"user {owner!r} has" if owner else "launches without a user have"
            raise LaunchRefused(f"{who} {mine} pairs waiting for the Ray cluster and "
                                f"TWINBOARD_MAX_QUEUED_PER_USER={per_user}; launch again once one has started")

    def jobs(self, run_dir: Path, frameworks: list[str], created: float) -> dict[str, JobStatus]:
        run_dir = Path(run_dir)
        return {fw: self._job(run_dir, fw, created) for fw in frameworks}

    def _job(self, run_dir: Path, fw: str, created: float) -> JobStatus:
        status = read_status(run_dir / fw) or {}
        progress = {k: v if isinstance(v, int) and not isinstance(v, bool) else None
                    for k, v in (("step", status.get("step")), ("total_steps", status.get("total_steps")))}
        path = job_path(run_dir, fw)
        job = read_json(path)
        if job is None:
            young = time.time() - created < MISSING_GRACE_S  # launch() writes run.json before submitting
            return JobStatus("queued" if young else "failed", error=None if young else f"no {path.name}", **progress)
        if job.get("state") in _RAY_STATES.values():  # an end recorded: Ray is not asked again
            return _status(job, progress)
        url, job_id = job.get("api"), job.get("job_id")
        if not isinstance(url, str) or not isinstance(job_id, str):
            return JobStatus("failed", error=f"unreadable {path.name}", **progress)
        try:
            info = listed(url).get(job_id)
        except RayUnavailable as err:  # not recorded: the cluster may come back
            return JobStatus("running" if status.get("state") == "running" else "queued", error=str(err), **progress)
        if info is None:
            submitted = job.get("submitted")
            if isinstance(submitted, (int, float)) and time.time() - submitted < MISSING_GRACE_S:
                return JobStatus("queued", **progress)
            job = {**job, **_settled(run_dir, fw, f"the Ray cluster at {url} has no job {job_id} (was it restarted?)")}
            _persist(path, job)
            return _status(job, progress)
        state = _RAY_STATES.get(getattr(info.status, "value", str(info.status)), "failed")
        started = info.start_time / 1000 if info.start_time else None
        if state in ("queued", "running"):
            return JobStatus(state, started=started, **progress)
        code = getattr(info, "driver_exit_code", None)
        job = {**job, "state": state, "exit_code": code, "started": started,
               "ended": info.end_time / 1000 if info.end_time else time.time(),
               "error": _failure(run_dir, fw, code, info.message) if state == "failed" else None}
        _persist(path, job)
        return _status(job, progress)

    def request_stop(self, run_dir: Path, framework: str, grace: float) -> None:
        """Ray ends the job: PENDING ones never start, RUNNING ones get SIGTERM, then SIGKILL."""
        run_dir = Path(run_dir)
        write_json(stop_path(run_dir, framework), {"requested": time.time(), "grace": grace})
        job = read_json(job_path(run_dir, framework)) or {}
        if job.get("state") != "submitted" or not isinstance(job.get("api"), str):
            return
        try:
            client(job["api"]).stop_job(job["job_id"])
        except Exception as err:  # noqa: BLE001 - the cluster gone: so is the job, and the next read says so
            raise LauncherError(f"cannot stop Ray job {job.get('job_id')}: {str(err)[:300]}") from None
        finally:
            forget_list(job["api"])

    def kill(self, run_dir: Path, framework: str) -> None:
        """Ray escalates a stop to SIGKILL itself; asking again is all there is."""
        try:
            self.request_stop(run_dir, framework, 0.0)
        except LauncherError:
            pass

    def pid(self, run_dir: Path, framework: str) -> int | None:
        return None  # a Ray job's process lives on some node of the cluster, not here


def _status(job: dict, progress: dict) -> JobStatus:
    code = job.get("exit_code")
    return JobStatus(job["state"], exit_code=code if isinstance(code, int) else None, error=job.get("error"),
                     started=job.get("started"), ended=job.get("ended"), **progress)


def _failure(run_dir: Path, fw: str, code: int | None, message: str | None) -> str:
    """The trainer's stderr tail (as the local backend shows it), else Ray's own message."""
    text = failure_text(run_dir, fw, code) if (run_dir / f"{fw}.stderr").exists() else ""
    if not text or text.startswith(("exited with code", "killed by signal")):
        # Ray's first line ("Job entrypoint command failed with exit code -9"); its log tail is ours.
        ray_says = (message or "").strip().split("\n", 1)[0].split(", last available logs", 1)[0]
        text = "\n".join(filter(None, [text, f"Ray: {ray_says}" if ray_says else ""])) or "the Ray job failed"
    return text


def _settled(run_dir: Path, fw: str, why: str) -> dict:
    if stop_path(run_dir, fw).exists():
        return {"state": "stopped", "error": None, "ended": time.time()}
    if (read_status(run_dir / fw) or {}).get("state") == "finished":
        return {"state": "finished", "error": None, "ended": time.time()}
    return {"state": "failed", "error": why, "ended": time.time()}


def _persist(path: Path, job: dict) -> None:
    try:
        write_json(path, job)
    except OSError:
        pass  # a read-only logdir still shows the true state, asked of Ray again next time
