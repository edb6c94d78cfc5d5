"""Scalar curves: the shown runs' stores, their mapped curves, smoothing, downsampling, axes, figures,
and the two sides compared point against point (hover, difference strip, a dragged range)."""
from twinboard.scalars.charts import (
    DIFF_COLOR, FRAMEWORK_COLORS, MAPPED_AXES, OTHER_COLORS, X_AXES, Curve, filter_tags, first_wall_time,
    group_tags, pair_dash, relative_time, side_colors, step_bounds, TagFilterError, wall_datetime, x_bounds,
    x_values, y_range)
from twinboard.scalars.compare import (
    box_range, common, curve_name, hover_columns, is_matched, nearest, panel_titles, side_title)
from twinboard.scalars.curves import (
    first_axis, folders, load_mappings, map_runs, mapped_tags, run_starts, shown_runs, tag_curves, tag_series,
    zoom_bounds)
from twinboard.scalars.figure import line_template, scalar_figure
from twinboard.scalars.prepared import Prepared, PreparedCache, prepare, sampling_note, typed_array
from twinboard.scalars.smoothing import MAX_POINTS, MAX_SMOOTHING, downsample, ema
from twinboard.scalars.store import LockedStore, RunStores, join_run
