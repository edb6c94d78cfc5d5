"""Scalar curves: the shown runs' stores, their mapped curves, smoothing, downsampling, axes and figures."""
from twinboard.scalars.charts import (
    FRAMEWORK_COLORS, MAPPED_AXES, X_AXES, Curve, filter_tags, first_wall_time, group_tags, pair_dash,
    prepare, PreparedCache, relative_time, scalar_figure, side_colors, step_bounds, TagFilterError,
    typed_array, wall_datetime, x_bounds, x_values, y_range)
from twinboard.scalars.curves import (
    first_axis, folders, load_mappings, map_runs, mapped_tags, run_starts, shown_runs, tag_curves, tag_series,
    zoom_bounds)
from twinboard.scalars.smoothing import MAX_POINTS, MAX_SMOOTHING, downsample, ema
from twinboard.scalars.store import LockedStore, RunStores, join_run
