"""Images, PR curves and saved predictions: read from event files (both encodings, incremental,
sizes checked from the image headers before anything is decoded) and from the predictions files
the trainers save at each evaluation, compared between two runs, and drawn."""
from twinboard.images.charts import (
    agreement_figure, class_order, confusion_figure, defined_pr, marked_chars, positions_by_sample, pr_figure)
from twinboard.images.formats import (
    IMAGES_PLUGIN, MAX_PIXELS, MAX_SIDE, PR_PLUGIN, PR_ROWS, Picture, checked, image_size)
from twinboard.images.predictions import (
    PREDICTIONS_DIR, Comparison, Predictions, PredictionsError, agreement, comparable, compare, confusion,
    in_words, read_predictions, signature)
from twinboard.images.store import (
    CurveRecord, ImageRecord, MediaStore, nearest_record, read_images, read_pr_curves)
