"""The run-folder contract: what the trainers write and the dashboard reads, imported by both.

A run folder is ``<logdir>/<run-id>/``: ``run.json`` (the launcher's facts), ``spec.json`` (the
RunSpec both trainers read), ``init.npz`` (the shared initial weights) and one event folder per
framework (``torch/``, ``tensorflow/``: FRAMEWORKS) holding the event files, ``status.json`` and
``settings.json``. The layout file by file, and who writes each, is ``twinboard.contract.files``'
docstring; uploads live apart, under ``<logdir>/uploads/``.

- ``spec``: RunSpec, the one training config, validated (SpecError) with help on every field.
- ``files``: the file names, which files are event files, JSON written atomically (a reader sees
  the old file or the new one, never half) and read back: status.json, settings.json.
- ``records``: TFRecord framing and its masked CRC32C, the layout of every event file.

Standard library and google_crc32c only: trainers import it before their framework, the dashboard
without one.
"""
from twinboard.contract.files import (
    EVENT_FILE_MARK, FRAMEWORK_LABELS, FRAMEWORKS, INIT_NPZ, RUN_JSON, SETTINGS_JSON, SPEC_JSON, STATUS_JSON,
    TRAINER_STATES, UPLOADS, SettingsError, event_files, is_event_file, read_json, read_settings, read_status,
    write_bytes_atomic, write_json)
from twinboard.contract.records import (
    FOOTER, HEADER, MASK_DELTA, CorruptRecordError, frame, iter_frames, masked_crc32c, split_records)
from twinboard.contract.spec import DTYPES, INITS, MODELS, OPTIMIZERS, TASKS, RunSpec, SpecError, field_help
