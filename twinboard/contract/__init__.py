"""The run-folder contract: what the trainers write and the dashboard reads, imported by both.

A run folder is ``<logdir>/<run-id>/``: ``run.json`` (the launcher's facts), ``spec.json`` (the
RunSpec both trainers read), ``init.npz`` (the shared initial weights) and one event folder per
framework (``torch/``, ``tensorflow/``: FRAMEWORKS) holding the event files, ``status.json`` and
``settings.json``. The layout file by file, and who writes each, is ``twinboard.contract.files``'
docstring; uploads live apart, under ``<logdir>/uploads/``.

- ``spec``: RunSpec, the one training config, validated (SpecError) with help and bounds on every
  field; RunSpec enforces the hard CEILINGS.
- ``costs``: what a spec costs as a whole (parameters, activations, steps, records written), counted
  by ``spec_costs`` from several fields and bounded by BUDGETS.
- ``limits``: the admin's limits (``<logdir>/.twinboard/limits.json``) under those ceilings, checked
  by the dashboard's side before a launch: ``check_spec``, ``field_bounds`` for form widgets.
- ``files``: the file names, which files are event files, JSON written atomically (a reader sees
  the old file or the new one, never half) and read back: status.json, settings.json.
- ``records``: TFRecord framing and its masked CRC32C, the layout of every event file; MAX_RECORD,
  the longest record a reader accepts (a longer length is corruption, a shorter one past the end is
  a pending tail).
- ``shapes``: when two reported layer shapes are the same shape (NCHW against NHWC, unknown sizes).

Standard library and google_crc32c only: trainers import it before their framework, the dashboard
without one.
"""
from twinboard.contract.files import (
    DATA_DIR, EVENT_FILE_MARK, FRAMEWORK_LABELS, FRAMEWORKS, INIT_NPZ, MODELS_ENV, RUN_JSON, SETTINGS_JSON,
    SPEC_JSON, STATUS_JSON, TRAINER_STATES, UPLOADS, SettingsError, data_file, event_files, is_event_file,
    models_dir, read_json, read_settings, read_status, write_bytes_atomic, write_json)
from twinboard.contract.records import (
    FOOTER, HEADER, MASK_DELTA, MAX_RECORD, CorruptRecordError, check_length, frame, iter_frames, mask,
    masked_crc32c, split_records, verify_file)
from twinboard.contract.shapes import layout_only, shapes_agree, sizes_agree
from twinboard.contract.costs import BUDGETS, spec_costs
from twinboard.contract.spec import (
    CEILINGS, DEFAULT_LIMITS, DTYPES, INITS, MAX_SPEC_BYTES, MODELS, OPTIMIZERS, TASKS, RunSpec, SpecError, field_help)
from twinboard.contract.limits import (
    LIMITS_JSON, LimitsError, check_spec, check_values, field_bounds, limits_path, load_limits, save_limits)
