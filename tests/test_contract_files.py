"""The run folder's JSON state files: written atomically and safely from many threads at once (Streamlit
sessions are threads of one process), and a failed write leaves the old file and no temp file."""
from __future__ import annotations

import json
import os
import threading

import pytest

from twinboard.contract import read_json, read_status, write_json


def test_four_threads_writing_one_file_lose_nothing_and_never_tear_it(tmp_path):
    """Before: a temp name made from the pid alone, so threads of one process shared it (368 errors in
    1,200 writes from 4 threads). Now every write has its own temp file."""
    path, errors, torn = tmp_path / "status.json", [], []

    def writer(i: int) -> None:
        for n in range(300):
            try:
                write_json(path, {"writer": i, "n": n, "pad": "x" * 2000})
            except OSError as err:
                errors.append(err)

    def reader(stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                data = json.loads(path.read_text())
                if set(data) != {"writer", "n", "pad"}:
                    torn.append(data)
            except FileNotFoundError:
                pass
            except ValueError as err:  # half a file
                torn.append(str(err))

    stop = threading.Event()
    watch = threading.Thread(target=reader, args=(stop,))
    watch.start()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watch.join()
    assert errors == [] and torn == []
    assert read_json(path)["n"] == 299
    assert sorted(os.listdir(tmp_path)) == ["status.json"]  # no temp file left behind


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "status.json"
    write_json(path, {"state": "running"})
    with pytest.raises(TypeError):
        write_json(path, {"state": object()})  # not JSON: fails before anything is renamed over
    with pytest.raises(OSError):
        write_json(tmp_path / "missing" / "status.json", {"state": "x"})  # no such folder
    assert read_status(tmp_path) == {"state": "running"}
    assert sorted(os.listdir(tmp_path)) == ["status.json"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"  # readable by tensorboard as before
