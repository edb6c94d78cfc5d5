"""TensorBoard's hparams plugin records in a trainer's own event file, so `tensorboard --logdir logs`
shows a sweep in its HParams dashboard: one session per framework folder, started with the spec's
settings, the framework and the sweep id, ended with its status.

Written as the plugin's own summary_v2 writes them (tag `_hparams_/session_start_info`, plugin
`hparams`, HParamsPluginData content), into the run's event file, not into a sub-folder as
tensorboardX's add_hparams would (that makes a second run per trainer, which pairs nothing). In a
sweep, each session's group is `<sweep>/<configuration>/<framework>`: the seeds of one
configuration and framework are one group, which the HParams dashboard aggregates.

torch side: `torch_session_start(writer, spec, run_dir)` with the tensorboardX SummaryWriter (its
file writer's add_summary: the buffered writer of trainers.torch_events keeps it in order);
TensorFlow side: `tf_session_start(spec, run_dir)` under the default tf.summary writer
(tf.summary.experimental.write_raw_pb). Frameworks are imported inside the functions.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twinboard.contract import RUN_JSON, RunSpec, read_json

PLUGIN_NAME = "hparams"
PLUGIN_DATA_VERSION = 0
SESSION_START_TAG = "_hparams_/session_start_info"
SESSION_END_TAG = "_hparams_/session_end_info"
STATUSES = ("success", "failure", "running", "unknown")  # api_pb2.Status: STATUS_<upper>


def hparams_of(spec: RunSpec, run_dir: str | Path, framework: str) -> tuple[dict[str, Any], str]:
    """(hyperparameters, group name): every spec field (lists as '64,32'), the framework, and the
    sweep id when run.json names one (then the group is the configuration's, seeds together)."""
    values: dict[str, Any] = {}
    for name, value in spec.to_dict().items():
        values[name] = ",".join(map(str, value)) if isinstance(value, list) else value
    values["framework"] = framework
    run = read_json(Path(run_dir) / RUN_JSON) or {}
    sweep, config = run.get("sweep"), run.get("config")
    group = ""
    if isinstance(sweep, str) and sweep:
        values["sweep"] = sweep
        point = " ".join(f"{k}={v}" for k, v in config.items()) if isinstance(config, dict) else ""
        group = f"{sweep}/{point or 'base'}/{framework}"
    return values, group


def _fill(info, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, bool):
            info.hparams[name].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[name].number_value = float(value)
        else:
            info.hparams[name].string_value = str(value)


def _start_content(pb2, values: dict[str, Any], group: str) -> bytes:
    """HParamsPluginData{session_start_info} with `pb2` the plugin's proto module (tensorboardX's or
    tensorboard's: the same messages under two packages)."""
    info = pb2.SessionStartInfo(group_name=group, start_time_secs=time.time())
    _fill(info, values)
    return pb2.HParamsPluginData(session_start_info=info, version=PLUGIN_DATA_VERSION).SerializeToString()


def _end_content(pb2, api_pb2, status: str) -> bytes:
    if status not in STATUSES:
        raise ValueError(f"status {status!r}: one of {', '.join(STATUSES)}")
    info = pb2.SessionEndInfo(status=getattr(api_pb2, f"STATUS_{status.upper()}"), end_time_secs=time.time())
    return pb2.HParamsPluginData(session_end_info=info, version=PLUGIN_DATA_VERSION).SerializeToString()


# --- torch: tensorboardX ---------------------------------------------------------------------------
def _torch_write(writer, tag: str, content: bytes, step: int) -> None:
    from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content))
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, metadata=meta)]), step)


def torch_session_start(writer, spec: RunSpec, run_dir: str | Path, framework: str = "torch", step: int = 0) -> None:
    """The session's start, with the spec's hyperparameters, into `writer` (a tensorboardX SummaryWriter)."""
    from tensorboardX.proto import plugin_hparams_pb2

    values, group = hparams_of(spec, run_dir, framework)
    _torch_write(writer, SESSION_START_TAG, _start_content(plugin_hparams_pb2, values, group), step)


def torch_session_end(writer, status: str = "success", step: int = 0) -> None:
    from tensorboardX.proto import api_pb2, plugin_hparams_pb2

    _torch_write(writer, SESSION_END_TAG, _end_content(plugin_hparams_pb2, api_pb2, status), step)


# --- TensorFlow: the default tf.summary writer --------------------------------------------------------
def _tf_write(tag: str, content: bytes, step: int) -> bool:
    import tensorflow as tf
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata

    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=PLUGIN_NAME, content=content))
    raw = Summary(value=[Summary.Value(tag=tag, metadata=meta)]).SerializeToString()
    return bool(tf.summary.experimental.write_raw_pb(raw, step=step))


def tf_session_start(spec: RunSpec, run_dir: str | Path, framework: str = "tensorflow", step: int = 0) -> bool:
    """The session's start under the default writer (`with writer.as_default():`); False without one."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    values, group = hparams_of(spec, run_dir, framework)
    return _tf_write(SESSION_START_TAG, _start_content(plugin_data_pb2, values, group), step)


def tf_session_end(status: str = "success", step: int = 0) -> bool:
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    return _tf_write(SESSION_END_TAG, _end_content(plugin_data_pb2, api_pb2, status), step)
