"""`python -m twinboard`: flags generated from RunSpec, exit statuses, the subcommand registry."""
from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from twinboard.contract import RunSpec
from twinboard import cli
from twinboard import runs

ROOT = Path(__file__).resolve().parents[1]


def launch_parser() -> argparse.ArgumentParser:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["launch"]


def test_every_runspec_field_has_a_flag_of_the_same_name():
    flags = {opt for action in launch_parser()._actions for opt in action.option_strings}
    missing = [f.name for f in dataclasses.fields(RunSpec) if "--" + f.name.replace("_", "-") not in flags]
    assert not missing


def test_flags_parse_to_the_field_types_and_unset_ones_keep_defaults():
    args = cli.build_parser().parse_args([
        "launch", "--task", "spirals", "--hidden", "16", "8", "--embedding-steps", "5", "10",
        "--batch-size", "8", "--lr", "0.01", "--log-every", "1", "--epochs", "3"])
    spec = cli.spec_from_args(args)
    assert spec == RunSpec(task="spirals", hidden=(16, 8), embedding_steps=(5, 10), batch_size=8, lr=0.01,
                           log_every=1, epochs=3)
    assert cli.spec_from_args(cli.build_parser().parse_args(["launch", "--embedding-steps"])).embedding_steps == ()


@pytest.mark.parametrize("argv, message", [
    (["--lr", "20"], "--lr 20.0: must be in (0, 10)"),  # the flag the user typed, not RunSpec.lr
    (["--task", "mnist"], "--task mnist: must be one of digits"),
    (["--hidden"], "--hidden: must be one or more positive whole numbers"),
    (["--batch-size", "2.5"], "invalid int value: '2.5'"),
])
def test_a_bad_value_exits_2_with_the_message_and_launches_nothing(logdir, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["launch", *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not logdir.exists() or not runs.list_runs()


def test_launch_wait_exit_status_follows_the_outcomes(logdir, capsys, monkeypatch):
    assert cli.main(["launch", "--steps", "3", "--name", "ok", "--wait"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == str(logdir / "ok") and lines[-2:] == ["torch: finished", "tensorflow: finished"]
    progress = lines[1:-2]  # each framework's state as it moved, printed while waiting
    assert {line.split(":")[0] for line in progress} == {"torch", "tensorflow"}, lines
    assert all(line.split(": ")[1].split()[0] in ("queued", "running") for line in progress), lines
    monkeypatch.setenv("STUB_MODE_TENSORFLOW", "crash")
    assert cli.main(["launch", "--steps", "3", "--name", "bad", "--wait"]) == 1
    out = capsys.readouterr().out
    assert "torch: finished" in out and "tensorflow: failed (exit 3)" in out and "stub: boom" in out


def test_launch_without_wait_returns_at_once_then_runs_and_stop(logdir, capsys, monkeypatch):
    monkeypatch.setenv("STUB_MODE", "sleep")
    assert cli.main(["launch", "--steps", "4", "--name", "long"]) == 0
    assert capsys.readouterr().out.strip() == str(logdir / "long")
    deadline = time.monotonic() + 20
    while {j.describe() for j in runs.get_run("long").frameworks.values()} != {"running 1/4"}:
        assert time.monotonic() < deadline, "the pair never started"
        time.sleep(0.05)
    assert cli.main(["runs"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["RUN", "TORCH", "TENSORFLOW"]
    assert table[1].split() == ["long", "running", "1/4", "running", "1/4"]
    assert cli.main(["stop", "long", "--grace", "0.5"]) == 0
    assert capsys.readouterr().out.splitlines() == ["torch: stopped 1/4", "tensorflow: stopped 1/4"]
    assert cli.main(["stop", "nope"]) == 1
    assert "no run 'nope'" in capsys.readouterr().err


def test_a_new_subcommand_is_one_registration(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "hello", cli.Command(
        "say hello", lambda p: p.add_argument("who"), lambda args: print(f"hello {args.who}") or 7))
    assert cli.main(["hello", "world"]) == 7
    assert capsys.readouterr().out == "hello world\n"


def test_the_installed_command_works_from_any_folder(tmp_path):
    """`pip install -e .` (the Makefile's set-up) gives a `twinboard` command and `import twinboard`
    outside the repo."""
    command = Path(sys.executable).parent / "twinboard"
    env = {**os.environ, "TWINBOARD_LOGDIR": str(tmp_path / "logs")}
    env.pop("PYTHONPATH", None)
    for argv in ([str(command), "--help"], [str(command), "runs"],
                 [sys.executable, "-c", "import twinboard; print(twinboard.read_scalars)"]):
        out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env)
        assert out.returncode == 0, (argv, out.stderr)
    assert "serve" in subprocess.run([str(command), "--help"], capture_output=True, text=True, env=env).stdout
    assert out.stdout.startswith("<function read_scalars")


def test_launch_with_a_name_that_exists_is_refused(logdir, capsys):
    assert cli.main(["launch", "--steps", "1", "--name", "taken"]) == 0
    capsys.readouterr()
    assert cli.main(["launch", "--steps", "1", "--name", "taken"]) == 1
    assert "taken" in capsys.readouterr().err and [r.run_id for r in runs.list_runs()] == ["taken"]


def test_export_writes_a_runs_scalars(real_pair, tmp_path, capsys):
    from twinboard import uploads

    out = tmp_path / "pair.csv"
    argv = ["--logdir", str(real_pair.logdir), "export", real_pair.run_id, "-o", str(out), "--tag", "loss/train"]
    assert cli.main(argv) == 0
    df = uploads.read_csv_bytes(out.read_bytes())
    assert set(df["run"]) == {f"{real_pair.run_id}/torch", f"{real_pair.run_id}/tensorflow"}
    assert set(df["tag"]) == {"loss/train"} and len(df) == 2 * real_pair.spec.steps
    assert cli.main(["--logdir", str(real_pair.logdir), "export", "nope", "-o", str(out)]) == 1
    assert "no event run 'nope'" in capsys.readouterr().err


def test_serve_listens_on_loopback_only(tmp_path):
    """The safe default: `twinboard serve` (what `make run` runs) binds 127.0.0.1, not every interface."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "twinboard", "--logdir", str(tmp_path / "logs"), "serve",
                             "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            listening = [line.split()[3] for line in subprocess.run(
                ["ss", "-ltnH"], capture_output=True, text=True).stdout.splitlines() if f":{port}" in line]
            if listening or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert listening == [f"127.0.0.1:{port}"], listening
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def test_python_dash_m_twinboard_runs(logdir):
    out = subprocess.run([sys.executable, "-m", "twinboard", "runs"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("no runs in")


def test_serve_hides_error_details_and_the_developer_toolbar(tmp_path, monkeypatch):
    """What `twinboard serve` hands Streamlit (its server is not what is tested here): no tracebacks,
    paths or code for visitors, no Deploy button, loopback unless told otherwise, and --team on."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli as streamlit_cli

    seen = {}
    monkeypatch.setattr(streamlit_cli, "main", lambda prog_name=None: seen.update(argv=list(sys.argv)) or 0)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setenv("TWINBOARD_TEAM", "0")  # serve sets these two: both restored after the test
    monkeypatch.setenv("TWINBOARD_LOGDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--logdir", str(tmp_path / "logs"), "serve", "--team", "--port", "8999"]) == 0
    argv = seen["argv"]
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert argv[:3] == ["streamlit", "run", str(ROOT / "app.py")]
    assert flags["--client.showErrorDetails"] == "none" and flags["--client.toolbarMode"] == "viewer"
    assert flags["--server.address"] == "127.0.0.1" and flags["--server.port"] == "8999"
    assert os.environ["TWINBOARD_TEAM"] == "1" and os.environ["TWINBOARD_LOGDIR"] == str(tmp_path / "logs")
    assert PagesManager.uses_pages_directory is False  # a bookmarked page URL gets the app's navigation
    monkeypatch.setattr(PagesManager, "uses_pages_directory", None)


def test_users_takes_the_global_logdir(tmp_path, capsys):
    """`twinboard --logdir X users list` reads X's users file (it exited 2: "unrecognized arguments")."""
    assert cli.main(["--logdir", str(tmp_path), "users", "list"]) == 0
    assert f"no users in {tmp_path / '.twinboard' / 'users.json'}" in capsys.readouterr().out
