"""Histograms: read from event files (both encodings, incremental), their maths, and their figures."""
from twinboard.histograms.charts import compare_figure, distribution_figure, offset_figure, overlay_figure
from twinboard.histograms.maths import (
    BASIS_POINTS, common_edges, compress, distribution, layer_of, nearest_index, nearest_step, rebin,
    sample_indices)
from twinboard.histograms.reader import (
    from_buckets, from_histo, HistogramSeries, HistogramStore, read_histograms)
