"""The Ray backend on a real local Ray head (`ray start --head` on 127.0.0.1, 2 CPUs, stopped at the
end of this file): a sweep of 2 learning rates x 2 seeds with the real trainers, every trainer a Ray
job, against the same sweep on the local backend (same seeds, same numbers); the Sweeps page over
it; a pair stopped from the page and a trainer killed on the Ray side (the stub trainer).

One head for the file (~7 s to start, begun while the local sweep already trains). The two sweeps
train at the same time, so the 2 cores are kept busy by 4 trainers. The stop and the kill use the stub
trainer (tests/stub_trainer.py), one pair: what they test is the backend, not the training.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from twinboard import runs, sweeps
from twinboard.contract import FRAMEWORKS, RUN_JSON, RunSpec, read_json
from twinboard.runs import ray_cluster
from twinboard.sweeps import results

ROOT = Path(__file__).resolve().parents[1]
SPEC = RunSpec(task="digits", model="mlp", hidden=(16,), steps=30, epochs=1, log_every=5, histogram_every=30,
               embedding_samples=8)
GRID, SEEDS = {"lr": (0.05, 0.2)}, "0-1"
TIMEOUT = 60  # s per AppTest run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[3])  # field 6: the session id


@dataclass
class Head:
    proc: subprocess.Popen  # `ray start`: its session holds every process of this head
    address: str  # the GCS, as `--address` takes it
    url: str = ""  # the job server

    def ready(self) -> Head:
        if not self.url:
            out, _ = self.proc.communicate(timeout=120)
            assert self.proc.returncode == 0, out[-3000:]
            self.url = ray_cluster.resolve(self.address)
        return self

    def client(self):
        return ray_cluster.client(self.ready().url)

    def stop(self) -> None:
        """Stop every job, then end the processes of this head's session (ours only: never `ray stop`,
        which would end every Ray on the machine)."""
        if self.url:
            try:
                for job in self.client().list_jobs():
                    if not job.status.is_terminal():
                        self.client().stop_job(job.submission_id)
            except Exception:  # noqa: BLE001, S110 - tearing down: what is left is killed below
                pass
        sid = self.proc.pid
        for sig, pause in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 0.5)):
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                if pid != os.getpid() and _session_of(pid) == sid:
                    try:
                        os.kill(pid, sig)
                    except OSError:
                        pass
            time.sleep(pause)


@pytest.fixture(scope="module")
def head():
    """A Ray head of 2 CPUs on 127.0.0.1, starting in the background; `.ready()` waits for it."""
    gcs = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINBOARD_", "RAY_"))}
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--num-cpus", "2",
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(_free_port()), "--ray-client-server-port",
         str(_free_port()), "--disable-usage-stats"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    h = Head(proc, f"127.0.0.1:{gcs}")
    yield h
    h.stop()


@dataclass(frozen=True)
class Swept:
    roots: dict  # backend -> logdir
    sweeps: dict  # backend -> Sweep
    outcomes: dict  # backend -> run id -> framework -> outcome
    first_read: dict  # run id -> the Ray sweep's pair states read right after it was launched


@pytest.fixture(scope="module")
def swept(head, tmp_path_factory):
    """The same sweep on both backends, at the same time, with the real trainers."""
    from tests.conftest import real_trainers
    from tests.stub_trainer import kill_spawned

    roots = {b: tmp_path_factory.mktemp(f"sweep_{b}") / "logs" for b in ("local", "ray")}
    with real_trainers():
        made = {"local": sweeps.launch_sweep(SPEC, GRID, SEEDS, roots["local"])}
        made["ray"] = sweeps.launch_sweep(SPEC, GRID, SEEDS, roots["ray"], backend="ray",
                                          address=head.ready().address)
        first_read = {p.run_id: runs.get_run(p.run_id, roots["ray"]).state for p in made["ray"].sweep.pairs}
        outcomes = {b: {p.run_id: runs.wait(p.run_id, timeout=400, logdir=roots[b]) for p in m.sweep.pairs}
                    for b, m in made.items()}
    yield Swept(roots, {b: m.sweep for b, m in made.items()}, outcomes, first_read)
    for root in roots.values():
        kill_spawned(root)


def test_every_trainer_of_the_ray_sweep_finishes_as_a_ray_job(swept, head):
    sweep, root = swept.sweeps["ray"], swept.roots["ray"]
    assert len(sweep.pairs) == 4 and not sweep.failed
    # 8 one-CPU jobs on a 2-CPU head: Ray holds most of them PENDING, which reads as queued.
    assert "queued" in swept.first_read.values(), swept.first_read
    for run_id, outcome in swept.outcomes["ray"].items():
        for fw, result in outcome.items():
            err = (root / run_id / f"{fw}.stderr").read_text()[-2000:] if isinstance(result, runs.Failed) else ""
            assert isinstance(result, runs.Finished), f"{run_id} {fw}: {result} {err}"
            job = read_json(root / run_id / f"{fw}.job.json")
            assert job["backend"] == "ray" and job["state"] == "finished" and job["api"] == head.url
            assert head.client().get_job_status(job["job_id"]).value == "SUCCEEDED"
        assert read_json(root / run_id / RUN_JSON)["backend"] == "ray"
    assert runs.wait(sweep.pairs[0].run_id, 0, root)["torch"] == runs.Finished(0)


def test_the_same_sweep_on_the_local_backend_gives_the_same_table(swept):
    tables = {}
    for backend, sweep in swept.sweeps.items():
        root = swept.roots[backend]
        assert all(isinstance(r, runs.Finished) for o in swept.outcomes[backend].values() for r in o.values())
        data = {p.run_id: results.read_pair(root / p.run_id) for p in sweep.pairs}
        tables[backend] = results.pair_table(sweep, data, {p.run_id: "finished" for p in sweep.pairs}).drop(
            columns=["pair"])
    assert tables["ray"].notna().all().all()
    assert tables["ray"].equals(tables["local"]), (tables["ray"].T, tables["local"].T)


def test_every_trainer_wrote_its_hparams(swept):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    for backend, sweep in swept.sweeps.items():
        for p in sweep.pairs:
            for fw in FRAMEWORKS:
                acc = EventAccumulator(str(swept.roots[backend] / p.run_id / fw))
                acc.Reload()
                content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
                start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
                assert start.hparams["sweep"].string_value == sweep.sweep_id
                assert start.hparams["lr"].number_value == p.config["lr"]
                assert start.hparams["seed"].number_value == p.seed
                assert start.hparams["framework"].string_value == fw


def sweeps_page(root, monkeypatch, sweep_id: str) -> AppTest:
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(root))
    at = AppTest.from_file(str(ROOT / "pages" / "sweeps.py"), default_timeout=TIMEOUT)
    at.query_params["sweep"] = sweep_id
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_sweeps_page_shows_the_ray_sweep_its_aggregates_and_gaps(swept, monkeypatch):
    sweep = swept.sweeps["ray"]
    at = sweeps_page(swept.roots["ray"], monkeypatch, sweep.sweep_id)
    table = at.dataframe[0].value
    assert table["pair"].tolist() == [p.run_id for p in sweep.pairs] and set(table["state"]) == {"finished"}
    assert table["lr"].tolist() == [0.05, 0.05, 0.2, 0.2] and table["seed"].tolist() == [0, 1, 0, 1]
    verdicts = [m.value.replace("\\", "") for m in at.markdown if "TensorFlow" in m.value]
    assert [v.split("**")[1] for v in verdicts] == ["lr=0.05", "lr=0.2"]
    assert all("2 seeds" in v for v in verdicts), verdicts
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    means = [t["name"] for c in charts for t in c["data"] if "mean of" in str(t.get("name"))]
    assert means == ["PyTorch (mean of 2 seeds)", "TensorFlow (mean of 2 seeds)"] * 2


def test_a_trainer_killed_on_ray_shows_failed_and_a_stop_on_the_page_stops_its_ray_job(head, tmp_path,
                                                                                        monkeypatch):
    from tests.stub_trainer import STUB, kill_spawned

    root = tmp_path / "logs"
    monkeypatch.setenv("TWINBOARD_PASS_ENV", "STUB_")
    monkeypatch.setenv("STUB_MODE", "sleep")
    done = sweeps.launch_sweep(RunSpec(steps=5), {"lr": (0.01,)}, "0", root, backend="ray", address=head.ready().address,
                               trainer_cmd=f"{sys.executable} {STUB} {{spec}} {{framework}}")
    run_id = done.sweep.pairs[0].run_id
    try:
        _until(lambda: all(j.state == "running" and j.step for j in runs.get_run(run_id, root).frameworks.values()),
               "both trainers run")
        torch_pid = next(pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                         if f"{run_id}/spec.json" in _cmdline(pid) and _cmdline(pid).endswith("torch"))
        os.kill(torch_pid, signal.SIGKILL)  # on the Ray side: the job's own process, not through Ray
        _until(lambda: runs.get_run(run_id, root).frameworks["torch"].state == "failed", "the kill shows")
        killed = runs.get_run(run_id, root)
        assert killed.frameworks["torch"].exit_code == -9 and "SIGKILL" in killed.frameworks["torch"].error
        assert killed.frameworks["tensorflow"].state == "running" and killed.active
        at = sweeps_page(root, monkeypatch, done.sweep.sweep_id)
        assert at.dataframe[0].value["state"].tolist() == ["failed"]
        at.selectbox(key="sweeps_stop_pick").set_value(run_id)
        at.button(key="sweeps_stop_one").click().run()
        assert not at.exception, at.exception
        tf_job = read_json(root / run_id / "tensorflow.job.json")
        assert tf_job["state"] == "stopped" and head.client().get_job_status(tf_job["job_id"]).value == "STOPPED"
        torch_job = read_json(root / run_id / "torch.job.json")
        assert head.client().get_job_status(torch_job["job_id"]).value == "FAILED"
        assert not [w for w in at.selectbox if w.key == "sweeps_stop_pick"]  # nothing active is left to stop
    finally:
        runs.stop(run_id, root)
        kill_spawned(root)


def test_a_cluster_that_cannot_be_reached_is_refused_in_words(tmp_path):
    root = tmp_path / "logs"
    out = runs.launch(SPEC, root, "nope", backend="ray", address="http://127.0.0.1:9")
    assert isinstance(out, runs.Failed) and "cannot reach the Ray job server at http://127.0.0.1:9" in out.stderr
    assert not (root / "nope").exists()
    assert "address is for the ray backend" in runs.launch(SPEC, root, address="auto").stderr
    with pytest.raises(sweeps.GridError, match="cannot reach the Ray job server"):
        sweeps.launch_sweep(SPEC, GRID, SEEDS, root, backend="ray", address="http://127.0.0.1:9")
    assert runs.list_runs(root) == [] and sweeps.list_sweeps(root) == []


def test_without_ray_installed_the_ray_backend_says_how_to_get_it(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"  # what `import ray` does when it is not installed
            "from twinboard import runs, sweeps; from twinboard.contract import RunSpec\n"
            f"out = runs.launch(RunSpec(steps=2), {str(tmp_path)!r}, backend='ray')\n"
            "print(out.stderr)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "the Ray backend needs Ray: pip install -r requirements-ray.txt" in out.stdout
    assert list(tmp_path.iterdir()) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _until(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.1)
