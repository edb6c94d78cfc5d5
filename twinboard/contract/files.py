"""The files of a run folder, their names, and how they are written and read.

    <logdir>/<run-id>/              one matched run (a launcher run)
      run.json                      launcher: id, name, created, spec, backend, frameworks
      spec.json                     the RunSpec both trainers read
      init.npz                      init=shared: the initial weights from the seed (torch layout names)
      <fw>.job.json, <fw>.stop ...  the backend's own files (twinboard.runs.local)
      torch/ | tensorflow/          one framework's event folder (a "run" in TensorBoard's sense)
        events.out.tfevents.*       tensorboardX (torch) / tf.summary (tensorflow)
        status.json                 {"state": running|finished|failed, "step", "total_steps", "updated", "error"}
        settings.json               every setting the trainer really used (SETTINGS_KEYS)
    <logdir>/uploads/<name>/...     imported event files, the archive's folders kept

Every JSON state file is written atomically (`write_json`): a reader sees the old file or the new one,
and two writers in one process (Streamlit sessions are threads) never share a temp file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FRAMEWORKS = ("torch", "tensorflow")  # framework names, and the names of their event folders
FRAMEWORK_LABELS = {"torch": "PyTorch", "tensorflow": "TensorFlow", None: "unknown"}
UPLOADS = "uploads"  # <logdir>/uploads/ holds imported event files, not launcher runs
RUN_JSON = "run.json"
SPEC_JSON = "spec.json"
INIT_NPZ = "init.npz"
STATUS_JSON = "status.json"
SETTINGS_JSON = "settings.json"
EVENT_FILE_MARK = "tfevents"  # TensorBoard's test: a file whose name holds it is an event file

TRAINER_STATES = ("running", "finished", "failed")  # status.json "state"


def is_event_file(name: str | os.PathLike) -> bool:
    """TensorBoard's rule: an event file is any file whose name contains 'tfevents'."""
    return EVENT_FILE_MARK in Path(name).name


def event_files(folder: str | os.PathLike) -> list[Path]:
    """The event files directly in `folder` (not its sub-folders, which are runs of their own),
    sorted by name, which for TensorBoard's names is creation order. [] for a missing folder."""
    try:
        return sorted(p for p in Path(folder).iterdir() if is_event_file(p) and p.is_file())
    except OSError:
        return []


def write_bytes_atomic(path: str | os.PathLike, payload: bytes, mode: int = 0o644) -> None:
    """Write `payload` to a unique temp file beside `path`, fsync it, rename it over `path`.

    OSError (a full disk, a read-only folder) propagates, and the temp file is removed: the old
    file, if any, is untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # mkstemp makes 0600; state files stay readable (tensorboard) unless secret
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_json(path: str | os.PathLike, data: Any, sort_keys: bool = True, mode: int = 0o644) -> None:
    """`data` as indented JSON, atomically (see write_bytes_atomic)."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=sort_keys) + "\n").encode(), mode)


def read_json(path: str | os.PathLike) -> dict | None:
    """The object in a JSON file; None if missing, unreadable or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_status(folder: str | os.PathLike) -> dict | None:
    """A framework folder's status.json, or None when it has none (uploads, a trainer not started yet)."""
    return read_json(Path(folder) / STATUS_JSON)


class SettingsError(ValueError):
    """A settings.json that exists but cannot be used; the message names the file and why."""


def read_settings(folder: str | os.PathLike) -> dict | None:
    """A framework folder's settings.json; None when it has none (uploads, other tools).

    Raises SettingsError for a file that cannot be read or is not a JSON object: whether that is
    an error to show (Parity) or a gap to fill from elsewhere (the layers table) is the caller's call."""
    path = Path(folder) / SETTINGS_JSON
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: holds a JSON {type(data).__name__}, not an object")
    return data


# --- the user's data and models ------------------------------------------------------------------
DATA_DIR = "data"  # <logdir>/data/: task=file's .npz and .csv files (RunSpec.data names one)
MODELS_ENV = "TWINBOARD_MODELS"  # the model-plugin folder; default: models/ beside the twinboard package
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


def models_dir() -> Path:
    """The folder of model plugins (<name>.py each): $TWINBOARD_MODELS, else the repository's models/.
    Set by whoever runs the server: a plugin is code the trainers run, never a visitor's upload."""
    return Path(os.environ.get(MODELS_ENV) or DEFAULT_MODELS_DIR)


def data_file(logdir: Path, name: str) -> Path:
    """Where RunSpec.data `name` lives (the name is checked by RunSpec: no folders, no dots first)."""
    return Path(logdir) / DATA_DIR / name
