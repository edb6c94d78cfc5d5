"""Embeddings: projector files read and compared (PCA, t-SNE, CKA, k-NN overlap), and their figures."""
from twinboard.embeddings.charts import (
    alignment_note, axis_titles, color_spec, digit_art, hover_texts, MORE_STEPS, projection_figure,
    similarity_caption, similarity_figure, similarity_view, SimilarityView, step_text, value_sort_key)
from twinboard.embeddings.reader import (
    Embedding, EmbeddingError, flip_to_match, knn_overlap, linear_cka, OutsideRunError, pca, procrustes,
    read_embeddings, signature, similarity_by_step, subsample, tsne)
