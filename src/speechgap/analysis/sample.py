"""Every gap measure of one paired sample, from its speech and text hidden states.

Per analysed layer (paper 1, Xiang et al., EMNLP 2025, arXiv 2510.12116, and paper 3, Hsu et al., arXiv
2603.01502):

- ``pooled_cosine``, ``pooled_euclidean``: cosine and Euclidean distance of the mean-pooled speech span and
  the mean-pooled transcript span (paper 1's sequence-level similarity).
- ``aps_cos``, ``aps_euclid``: the per-layer term of the Alignment Path Score, ``(1/T_t) Σ_j A_l[i*_j, j]``
  with the cosine matrix (higher = closer) or the Euclidean distance matrix (lower = closer).
- ``monotonicity_cos``, ``monotonicity_euclid``: Spearman(j, i*_j) of that layer's argmax/argmin path.
- ``consistency``: share of tokens where the cosine and Euclidean paths pick the same frame.
- ``speech_norm``, ``text_norm``: mean token L2 norm of the span (paper 3).
- ``standardized_l2``: paper 3's standardized L2 distance over this sample's paired rows (the chosen pairing).
- ``word_acc``: share of word-timed tokens whose cosine argmax frame lies inside their word (ALAS style),
  when the sample has word timings.

Per sample, the mean over the analysed layers of each of these (APS is paper 1's per-sample score), plus the
word alignment accuracy of the DTW path at the base layer and of the uniform baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechgap.analysis.pairing import PairedRows, paired_rows
from speechgap.analysis.words import token_word_indices
from speechgap.errors import ConfigError
from speechgap.metrics import (
    alignment_path_score,
    argmax_path,
    cosine_matrix,
    dtw_path,
    path_consistency,
    path_monotonicity,
    pooled_similarity,
    standardized_l2,
    token_norms,
    word_alignment_accuracy,
)

__all__ = ["LAYER_MEASURES", "PathView", "SampleMeasures", "measure_sample"]

LAYER_MEASURES = (
    "pooled_cosine",
    "pooled_euclidean",
    "aps_cos",
    "aps_euclid",
    "monotonicity_cos",
    "monotonicity_euclid",
    "consistency",
    "speech_norm",
    "text_norm",
    "standardized_l2",
    "word_acc",
)
"""Columns of ``per_layer.parquet`` besides ``sample_id`` and ``layer``."""


@dataclass(frozen=True)
class PathView:
    """What the alignment path figure of one sample needs (all at the base layer).

    Attributes:
        sim: ``(T_s, T_t)`` cosine matrix speech × text.
        argmax: ``(T_t,)`` paper 1's argmax path.
        dtw: ``(K, 2)`` DTW path ``(i, j)`` pairs.
        frame_times: ``(T_s, 2)`` seconds.
        tokens: ``T_t`` token strings.
        word_times: ``(word, start_s, end_s)`` or None.
    """

    sim: np.ndarray
    argmax: np.ndarray
    dtw: np.ndarray
    frame_times: np.ndarray
    tokens: list[str]
    word_times: list[tuple[str, float, float]] | None


@dataclass
class SampleMeasures:
    """The measures of one sample.

    Attributes:
        sample_id: the sample.
        layers: the analysed layer indices (model convention: 0 = input to block 1).
        per_layer: ``{measure: (n_layers,) float64}`` for every name in :data:`LAYER_MEASURES`
            (NaN where undefined, e.g. ``word_acc`` without timings).
        scalars: per-sample values (layer means, counts, word alignment accuracies).
        rows: the paired rows for cross-layer CKA.
        notes: why something was not computed (e.g. no word of the timings found in the transcript).
    """

    sample_id: str
    layers: list[int]
    per_layer: dict[str, np.ndarray]
    scalars: dict[str, Any]
    rows: PairedRows
    notes: list[str] = field(default_factory=list)


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def measure_sample(
    sample_id: str,
    speech: np.ndarray,
    text: np.ndarray,
    layers: Sequence[int],
    *,
    base_speech: np.ndarray,
    base_text: np.ndarray,
    frame_times: np.ndarray,
    tokens: Sequence[str] | None,
    transcript: str | None,
    word_times: Sequence[tuple[str, float, float]] | None,
    pairing: str,
) -> SampleMeasures:
    """Compute every measure of one sample.

    Args:
        sample_id: the sample's id (for messages).
        speech: ``(n_layers, T_s, d)`` speech-span states at the analysed ``layers``.
        text: ``(n_layers, T_t, d)`` transcript-span states at the same layers.
        layers: the layer index of each row.
        base_speech: ``(T_s, d)`` speech states at the base layer (DTW/argmax pairing, DTW word accuracy).
        base_text: ``(T_t, d)`` text states at the base layer.
        frame_times: ``(T_s, 2)`` start/end seconds of each speech position.
        tokens: the transcript tokens (``Capture.tokens``), needed for word measures.
        transcript: the transcript text, needed for word measures.
        word_times: the sample's word timings, or None.
        pairing: the CKA pairing (:data:`speechgap.analysis.pairing.PAIRINGS`).

    Returns:
        :class:`SampleMeasures`.
    """
    n_layers, n_frames, _ = speech.shape
    n_tokens = text.shape[1]
    if n_frames == 0 or n_tokens == 0:
        raise ConfigError(
            f"sample {sample_id!r}: empty span ({n_frames} speech frames, {n_tokens} text tokens)"
        )
    notes: list[str] = []
    word_index = None
    if word_times and tokens is not None and transcript is not None:
        try:
            word_index = token_word_indices(tokens, transcript, [w for w, _, _ in word_times])
        except ConfigError as err:
            notes.append(f"word measures skipped: {err}")
        if word_index is not None and not (word_index >= 0).any():
            notes.append("word measures skipped: no transcript token falls inside a timed word")
            word_index = None
    if pairing == "words" and word_index is None and not notes:
        notes.append("no CKA rows: pairing 'words' needs word timings")

    pooled = pooled_similarity(speech, text)
    aps_cos = alignment_path_score(speech, text, metric="cos")
    aps_euclid = alignment_path_score(speech, text, metric="euclid")
    per_layer = {name: np.full(n_layers, np.nan) for name in LAYER_MEASURES}
    per_layer["pooled_cosine"] = pooled.cosine
    per_layer["pooled_euclidean"] = pooled.euclidean
    per_layer["aps_cos"] = aps_cos.per_layer
    per_layer["aps_euclid"] = aps_euclid.per_layer
    per_layer["speech_norm"] = token_norms(speech).mean(axis=1)
    per_layer["text_norm"] = token_norms(text).mean(axis=1)
    for row in range(n_layers):
        per_layer["monotonicity_cos"][row] = path_monotonicity(aps_cos.paths[row])
        per_layer["monotonicity_euclid"][row] = path_monotonicity(aps_euclid.paths[row])
        per_layer["consistency"][row] = path_consistency(aps_cos.paths[row], aps_euclid.paths[row])

    scalars: dict[str, Any] = {
        "n_frames": int(n_frames),
        "n_tokens": int(n_tokens),
        "duration_s": float(frame_times[-1, 1]),
    }
    word_scalars = {"word_acc_argmax": None, "word_acc_dtw": None, "word_acc_uniform": None, "word_tokens": 0}
    if word_index is not None:
        for row in range(n_layers):
            per_layer["word_acc"][row] = word_alignment_accuracy(
                aps_cos.paths[row], word_index, frame_times, word_times
            ).accuracy
        base_dtw = dtw_path(cosine_matrix(base_speech, base_text))
        on_dtw = word_alignment_accuracy(base_dtw, word_index, frame_times, word_times)
        word_scalars = {
            "word_acc_argmax": _nanmean(per_layer["word_acc"]),
            "word_acc_dtw": on_dtw.accuracy,
            "word_acc_uniform": on_dtw.uniform_accuracy,
            "word_tokens": on_dtw.n_tokens,
        }

    rows = paired_rows(
        speech,
        text,
        pairing,
        base_speech=base_speech,
        base_text=base_text,
        token_word_index=word_index if word_index is not None else np.full(n_tokens, -1),
        frame_times=frame_times,
        word_times=word_times or [],
    )
    if rows.n_rows:
        per_layer["standardized_l2"] = standardized_l2(rows.speech, rows.text, paired=True)
    for name in LAYER_MEASURES:
        if name != "word_acc":
            scalars[name] = _nanmean(per_layer[name])
    scalars.update(word_scalars)
    scalars["cka_rows"] = rows.n_rows
    return SampleMeasures(sample_id, list(layers), per_layer, scalars, rows, notes)


@dataclass(frozen=True)
class SampleView:
    """What the report's sample explorer shows of one sample, at every analysed layer.

    Attributes:
        layers: the layer of each row.
        sim: ``(L, T_s, T_t)`` cosine matrix speech frame × transcript token per layer (float32).
        argmax: ``(L, T_t)`` paper 1's argmax path per layer (the path of APS).
        dtw: per layer the ``(K, 2)`` DTW path ``(frame, token)`` over the same matrix.
        frame_times: ``(T_s, 2)`` seconds.
        tokens: ``T_t`` token strings.
        word_times: ``(word, start_s, end_s)`` or None.
    """

    layers: list[int]
    sim: np.ndarray
    argmax: np.ndarray
    dtw: list[np.ndarray]
    frame_times: np.ndarray
    tokens: list[str]
    word_times: list[tuple[str, float, float]] | None


def sample_view(
    speech: np.ndarray,
    text: np.ndarray,
    layers: Sequence[int],
    frame_times: np.ndarray,
    tokens: Sequence[str] | None,
    word_times: Sequence[tuple[str, float, float]] | None,
) -> SampleView:
    """Every layer's cosine matrix with its argmax and DTW paths (``speech`` ``(L, T_s, d)``, ``text``
    ``(L, T_t, d)``), for the explorer of the report."""
    sims = np.stack([cosine_matrix(speech[row], text[row]) for row in range(len(layers))]).astype(np.float32)
    return SampleView(
        layers=[int(layer) for layer in layers],
        sim=sims,
        argmax=np.stack([argmax_path(sim) for sim in sims]).astype(np.int32),
        dtw=[np.asarray(dtw_path(sim), dtype=np.int32) for sim in sims],
        frame_times=np.asarray(frame_times, dtype=np.float64),
        tokens=list(tokens) if tokens is not None else [str(j) for j in range(sims.shape[2])],
        word_times=None if not word_times else [(str(w), float(s), float(e)) for w, s, e in word_times],
    )


def path_view(
    base_speech: np.ndarray,
    base_text: np.ndarray,
    frame_times: np.ndarray,
    tokens: Sequence[str] | None,
    word_times: Sequence[tuple[str, float, float]] | None,
) -> PathView:
    """The base-layer cosine matrix with its argmax and DTW paths, for :func:`alignment_path_figure`."""
    sim = cosine_matrix(base_speech, base_text)
    return PathView(
        sim=sim,
        argmax=argmax_path(sim),
        dtw=np.asarray(dtw_path(sim), dtype=np.int64),
        frame_times=np.asarray(frame_times, dtype=np.float64),
        tokens=list(tokens) if tokens is not None else [str(j) for j in range(sim.shape[1])],
        word_times=None if not word_times else [(str(w), float(s), float(e)) for w, s, e in word_times],
    )
