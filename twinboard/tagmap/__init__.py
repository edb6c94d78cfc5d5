"""Tag mapping: rules that map foreign writers' tags (Keras, TF1, torch) onto Twinboard's, and the x axes."""
from twinboard.tagmap.mapping import (
    apply, companions, folder_scalars, map_run, mapped_series, MappedRun, read_mapped, resolve,
    source_runs, to_x)
from twinboard.tagmap.rules import (
    MAPPING_FILE, STEP_UNITS, X_AXES, default_mapping, for_local_run, infer_steps_per_epoch, load,
    Mapping, mapping_for_run, MappingError, Rule, save)
