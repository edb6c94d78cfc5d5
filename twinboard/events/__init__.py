"""Reading event files: TFRecord records, the fast compiled scalar decoder and its loader, the scalar store.

The framing names (`frame`, `split_records`, `CorruptRecordError`, ...) are the run-folder
contract's, named here too because reading records is what this package does.

Repeated steps (a restarted run logs steps it had logged before): every store of event data
(`ScalarStore`, `histograms.HistogramStore`) keeps every record, in write order: a run's files in
name order (TensorBoard's names start with the creation time), records in file order. A step logged
twice appears twice, the older first, and a series is not sorted by step. That is TensorBoard's rule
for the files today's writers make: its EventAccumulator purges earlier steps only in files without
file_version "brain.Event:2" (tensorboardX and tf.summary both write it), or at a SessionLog START,
which neither of them writes (docs/NOTES.md).

Trouble: a reader carries on past what it cannot read and lists it in `problems()`, as `Problem`s
(path, byte offset, message); a one-shot reader (`read_scalars`, ...) raises the first instead.
"""
from twinboard.contract.files import is_event_file
from twinboard.contract.records import FOOTER, HEADER, CorruptRecordError, frame, iter_frames, split_records
from twinboard.events.records import iter_events, Record, RecordReader
from twinboard.events.problems import Problem, read_intact
from twinboard.events.scalars import read_scalars, record_scalars, ScalarStore, Series
