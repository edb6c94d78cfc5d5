"""Tag mapping: rules that map foreign writers' tags (Keras, TF1, torch) onto Twinboard's, and the x axes;
the RE2 patterns (linear-time) that rules and tag filters are compiled with."""
from twinboard.tagmap.mapping import (
    MappedRun,
    apply,
    companions,
    folder_scalars,
    map_run,
    mapped_series,
    preview,
    read_mapped,
    resolve,
    source_runs,
    to_x,
    upload_scalars,
)
from twinboard.tagmap.patterns import MAX_PATTERN_CHARS, MAX_TO_CHARS, PatternError, compile_pattern, template_fields
from twinboard.tagmap.rules import (
    MAPPING_FILE,
    STEP_UNITS,
    X_AXES,
    Mapping,
    MappingError,
    Matcher,
    Rule,
    default_mapping,
    for_local_run,
    infer_steps_per_epoch,
    load,
    mapping_for_run,
    rules_from_rows,
    save,
)
