"""The user's own data for task=file, from the dashboard's side: the data folder (``<logdir>/data/``)
listed with each file's summary, an upload saved atomically under a size cap and a quota, deleting,
and the launcher's check of a task=file spec. The checking itself is the run-folder contract's
(``twinboard.contract.datafile``), shared with the trainers; in team mode pages save through
``twinboard.auth.actions.save_data_file`` (a user allowed to launch)."""
from twinboard.contract.datafile import DataFileError, DataSummary
from twinboard.datafiles.launch import check_launch
from twinboard.datafiles.store import (
    QUOTA_BYTES, DataEntry, data_dir, delete_data_file, limits, list_data_files, save_data_file, summary_of, usage)
