"""Uploads: safe import of archives and event files, the uploads folder, CSV/Parquet export.

`UPLOADS` (the folder name under the logdir) is the run-folder contract's, named here too."""
from twinboard.contract.files import UPLOADS
from twinboard.uploads.checks import every_problem
from twinboard.uploads.limits import HEADER_ROOM, Limits, UploadRefused
from twinboard.uploads.export import (
    COLUMNS, collect, read_csv_bytes, read_parquet_bytes, retarget, to_csv_bytes, to_parquet_bytes)
from twinboard.uploads.importer import (
    quotas,
    QUOTA_BYTES, QUOTA_PER_USER_BYTES, STALE_TMP_S, TMP_PREFIX, TRASH_PREFIX, default_name, delete_upload,
    import_upload, ImportResult, list_uploads, rename_upload, usage)
