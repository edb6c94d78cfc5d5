"""Deployment, side by side: what each framework's exporter (trainers/deploy/, in the trainer's
process) wrote into <run>/<framework>/export/, read back for the Deploy page and `twinboard export`.
No framework or runtime is imported here.

- ``layout``: where the export lives in a run folder (export/, deploy.json, the trained weights, the
  pair's deploy_agreement.json); the trainers' exporter writes by the same names.
- ``reader``: deploy.json and the agreement, read under caps and checked field by field (``Deploy``).
- ``tables``: every artifact of both sides, quantization's cost against its gain, missing formats
  and their reasons, the agreement in words.
- ``figures``: bars per measure (size, latency p50/p99, throughput, accuracy), size against accuracy.
- ``files``: an artifact as a bounded download (a SavedModel folder zipped), the snippet loading it.
- ``launch``: `twinboard export RUN`'s processes, one `python -m trainers.deploy` per framework.
"""
from twinboard.deploy.figures import MEASURES, bar_figure, quantization_figure
from twinboard.deploy.files import INPUT_NOTE, MAX_DOWNLOAD_BYTES, Download, download, snippet
from twinboard.deploy.launch import Exported, export_command, export_run, outcome_lines
from twinboard.contract.deploy import (
    AGREEMENT_JSON,
    DEPLOY_JSON,
    EXPORT_DIR,
    EXPORT_MODULE,
    WEIGHTS,
    agreement_path,
    deploy_path,
    export_dir,
    weights_path,
)
from twinboard.deploy.reader import Deploy, is_stale, read_agreement, read_deploy
from twinboard.deploy.tables import (
    COLUMNS,
    FORMATS,
    QUANT_FORMATS,
    agreement_lines,
    artifact_table,
    missing,
    quantization_lines,
    quantization_table,
    shown,
)
