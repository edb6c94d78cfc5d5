"""The launcher's look at a task=file spec before a run folder exists: the data file is there, passes
the trainers' check with the spec's target, and what the run costs on it is within this server's
limits (``spec_costs`` with the file's shape). The trainers check again when they load it, against
the hard ceilings, as RunSpec does every field."""
from __future__ import annotations

import os

from twinboard.contract.datafile import DataFileError, DataSummary, check_data_costs
from twinboard.contract.files import DATA_DIR
from twinboard.contract.limits import SERVER_NOTE, load_limits
from twinboard.contract.spec import RunSpec, bad_value
from twinboard.datafiles.store import summary_of


def check_launch(spec: RunSpec, logdir: str | os.PathLike) -> DataSummary | None:
    """None for any other task; for task=file the data file's summary, or SpecError naming `data`,
    `target` or the field a limit blames (the launcher's refusal, like check_spec's)."""
    if spec.task != "file":
        return None
    try:
        summary = summary_of(logdir, spec.data)
    except DataFileError as err:
        why = f"{err.where}: {err.reason}" if err.where else err.reason
        raise bad_value("data", spec.data, f"{why} (the logdir's {DATA_DIR}/ folder: upload the file on the "
                                           "Launch page, or copy it there)") from None
    try:
        summary = summary.for_target(spec.target)
    except DataFileError as err:
        raise bad_value("target", spec.target, f"{err.where}: {err.reason}" if err.where else err.reason) from None
    check_data_costs(spec, summary, load_limits(logdir), SERVER_NOTE)
    return summary
