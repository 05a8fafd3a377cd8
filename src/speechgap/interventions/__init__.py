"""Training-free interventions on the modality gap, built on the adapter's edit hooks.

- :class:`AngleProjection`, :class:`LengthNormalization` (paper 1, Xiang et al. 2025): replace the direction
  or the norm of critical speech tokens with the aligned transcript token's (oracle).
- :class:`StatisticalCalibration` (paper 3, Hsu et al. 2026): per-dimension mean/std matching of speech
  states to text statistics from a disjoint calibration split.
- :func:`repeat_words` / :func:`repeat_words_dataset` (paper 3): the text redundancy test.
- :func:`run_intervention`: baseline vs treated on the same samples, compared (``speechgap intervene``).

Every intervention is an object whose :meth:`~Intervention.apply` is a ``with`` block around the adapter's
``edit``: leaving it leaves the model untouched. See ``docs/interventions.md``.
"""

from speechgap.evaluation.methods import METHODS, MethodContext, register_method
from speechgap.interventions.base import EditPlan, Intervention, InterventionModel
from speechgap.interventions.calibration import (
    CalibrationStats,
    RunningMoments,
    StatisticalCalibration,
    calibrate,
    check_disjoint,
    estimate_calibration_stats,
    split_for_calibration,
)
from speechgap.interventions.redundancy import repeat_words, repeat_words_dataset
from speechgap.interventions.representation import (
    AngleProjection,
    CriticalTokens,
    LengthNormalization,
    angle_projection,
    critical_tokens,
    critical_tokens_from_similarity,
    length_normalization,
)
from speechgap.interventions.run import (
    InterventionReport,
    InterventionResult,
    InterventionSettings,
    available_methods,
    run_intervention,
)

__all__ = [
    "METHODS",
    "InterventionReport",
    "InterventionResult",
    "InterventionSettings",
    "MethodContext",
    "available_methods",
    "register_method",
    "run_intervention",
    "AngleProjection",
    "CalibrationStats",
    "CriticalTokens",
    "EditPlan",
    "Intervention",
    "InterventionModel",
    "LengthNormalization",
    "RunningMoments",
    "StatisticalCalibration",
    "angle_projection",
    "calibrate",
    "check_disjoint",
    "critical_tokens",
    "critical_tokens_from_similarity",
    "estimate_calibration_stats",
    "length_normalization",
    "repeat_words",
    "repeat_words_dataset",
    "split_for_calibration",
]
