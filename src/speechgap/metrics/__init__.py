"""Measures of the modality gap: plain functions on arrays (numpy or torch in, numpy or floats out).

Grouped by what they measure, librosa style:

- :mod:`speechgap.metrics.similarity`: cosine/Euclidean matrices, mean-pooled similarity (paper 1), token
  norms, standardized L2 distance (paper 3).
- :mod:`speechgap.metrics.alignment`: argmax and DTW paths, the Alignment Path Score (paper 1), path
  monotonicity and consistency, word alignment accuracy against timings (ALAS style).
- :mod:`speechgap.metrics.cka`: linear CKA (biased and debiased), the cross-layer CKA matrix and its
  streaming accumulator, the CKA band (paper 3), mutual-kNN alignment.
- :mod:`speechgap.metrics.correlation`: regression R² against the gap, Pearson/Spearman with bootstrap
  intervals, relation of a per-sample measure to correctness.
- :mod:`speechgap.metrics.attention`: attention dispersion at the decision step (paper 3): normalized
  entropy, maximum weight, Cov_0.90.
- :mod:`speechgap.metrics.updates`: layer-update cosines h_l − h_{l−1} (paper 3) and path stability across
  base layers.
- :mod:`speechgap.metrics.lens`: ranks and log-probabilities of target tokens under logit-lens logits.
- :mod:`speechgap.metrics.probes`: linear and MLP probes with a seeded split and a bootstrap interval.

No model and no file I/O here; see ``docs/metrics.md``.
"""

from speechgap.metrics.alignment import (
    AlignmentPathScore,
    WordAlignmentAccuracy,
    alignment_path_score,
    argmax_path,
    dtw_path,
    path_consistency,
    path_monotonicity,
    token_frames,
    uniform_frame_times,
    uniform_path,
    word_alignment_accuracy,
)
from speechgap.metrics.attention import AttentionDispersion, attention_dispersion, attention_from_qk
from speechgap.metrics.cka import CKABand, CrossLayerCKA, cka_band, cross_layer_cka, linear_cka, mutual_knn
from speechgap.metrics.correlation import (
    CorrectnessRelation,
    Correlation,
    Regression,
    pearson,
    regression_r2,
    relation_to_correctness,
    spearman,
)
from speechgap.metrics.lens import token_log_probs, token_ranks
from speechgap.metrics.probes import ProbeResult, fit_probe
from speechgap.metrics.similarity import (
    PooledSimilarity,
    cosine_matrix,
    euclidean_matrix,
    pooled_similarity,
    standardized_l2,
    token_norms,
)
from speechgap.metrics.updates import PathStability, path_stability, update_cosines

__all__ = [
    "AttentionDispersion",
    "PathStability",
    "ProbeResult",
    "attention_dispersion",
    "attention_from_qk",
    "fit_probe",
    "path_stability",
    "token_log_probs",
    "token_ranks",
    "update_cosines",
    "AlignmentPathScore",
    "CKABand",
    "CorrectnessRelation",
    "Correlation",
    "CrossLayerCKA",
    "PooledSimilarity",
    "Regression",
    "WordAlignmentAccuracy",
    "alignment_path_score",
    "argmax_path",
    "cka_band",
    "cosine_matrix",
    "cross_layer_cka",
    "dtw_path",
    "euclidean_matrix",
    "linear_cka",
    "mutual_knn",
    "path_consistency",
    "path_monotonicity",
    "pearson",
    "pooled_similarity",
    "regression_r2",
    "relation_to_correctness",
    "spearman",
    "standardized_l2",
    "token_frames",
    "token_norms",
    "uniform_frame_times",
    "uniform_path",
    "word_alignment_accuracy",
]
