"""Every problem of a refused upload, not just the first: each file checked on its own.

`import_upload` stays all-or-nothing and stops at the first entry it cannot accept, which is right
for the import but leaves someone who dropped five files fixing them one refusal at a time. After a
refusal, `every_problem` runs each file through the same entry checks (`Extraction`, into a scratch
folder that is removed again) and lists each bad file with its own reason. Nothing is imported.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from twinboard import config
from twinboard.uploads.archives import Extraction, Limits, Source, UploadRefused
from twinboard.uploads.importer import TMP_PREFIX


def every_problem(files: list[tuple[str, Source]], refusal: UploadRefused,
                  logdir: str | os.PathLike | None = None, limits: Limits | None = None) -> list[UploadRefused]:
    """`refusal` (what import_upload raised for `files`) and the first problem of every other bad
    file, in upload order; the refusal stays first unless a file's own check repeats it.

    A problem of the whole upload (its name, the total size cap, no event file at all) is only in
    `refusal`; each file alone is checked against the same caps. Scratch folders are hidden
    `.tmp-upload-*` folders in the logdir, so a killed check is swept like a killed import."""
    if len(files) < 2:
        return [refusal]
    try:
        limits = limits or Limits.from_env()
    except UploadRefused:  # a bad environment variable: the refusal already says so
        return [refusal]
    root = Path(logdir) if logdir is not None else config.logdir()
    root.mkdir(parents=True, exist_ok=True)
    found: list[UploadRefused] = []
    for filename, data in files:
        if hasattr(data, "seek"):
            data.seek(0)  # a file object import_upload already read
        scratch = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
        try:
            Extraction(scratch, limits).add(filename, data)
        except UploadRefused as err:
            found.append(err)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    same = [(e.path, e.reason) for e in found]
    return found if (refusal.path, refusal.reason) in same else [refusal, *found]
