"""Reading event files: TFRecord records, the fast compiled scalar decoder and its loader, the scalar store."""
from twinboard.events.records import (
    FOOTER, HEADER, CorruptRecordError, frame, is_event_file, iter_events, iter_frames, RecordReader,
    split_records)
from twinboard.events.scalars import read_scalars, record_scalars, ScalarStore, Series
