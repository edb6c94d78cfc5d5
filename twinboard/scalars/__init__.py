"""Scalar curves: smoothing, downsampling, axes and the side-by-side figures."""
from twinboard.scalars.charts import (
    FRAMEWORK_COLORS, MAPPED_AXES, X_AXES, Curve, filter_tags, first_wall_time, group_tags, pair_dash,
    prepare, PreparedCache, relative_time, scalar_figure, side_colors, step_bounds, TagFilterError,
    typed_array, wall_datetime, x_bounds, x_values, y_range)
from twinboard.scalars.smoothing import MAX_POINTS, MAX_SMOOTHING, downsample, ema
