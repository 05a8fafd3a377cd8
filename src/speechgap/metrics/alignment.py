"""Token-level alignment between speech frames and transcript tokens.

The fine-grained measures of paper 1 (Xiang et al., EMNLP 2025, arXiv 2510.12116): per layer, the matrix
``A_l[i, j]`` of similarities between speech frame ``i`` and text token ``j``; the argmax path
``i*_j = argmax_i A_l[i, j]``; the Alignment Path Score (APS); the path's monotonicity and the consistency of
two paths. Paper 3 (Hsu et al., arXiv 2603.01502) pairs tokens by a monotonic DTW path instead
(:func:`dtw_path`). :func:`word_alignment_accuracy` checks a path against word timings, ALAS style
(arXiv 2505.19937), next to a uniform (length-proportional) baseline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from speechgap.errors import ConfigError
from speechgap.metrics._validation import NOT_FINITE, as_array, as_layered, check_same_dim
from speechgap.metrics.similarity import cosine_matrix, euclidean_matrix

__all__ = [
    "AlignmentPathScore",
    "WordAlignmentAccuracy",
    "alignment_path_score",
    "argmax_path",
    "dtw_path",
    "path_consistency",
    "path_monotonicity",
    "token_frames",
    "uniform_frame_times",
    "uniform_path",
    "word_alignment_accuracy",
]


def _as_matrix(sim: Any, name: str = "sim", check_finite: bool = True) -> np.ndarray:
    matrix = as_array(sim, name, ndim=2, check_finite=check_finite)
    if 0 in matrix.shape:
        raise ConfigError(
            f"argument '{name}': expected a non-empty (T_s, T_t) matrix, got shape {matrix.shape}"
        )
    return matrix


def argmax_path(sim: Any, maximize: bool = True) -> np.ndarray:
    """The path of paper 1: for each text token ``j`` (column), the best speech frame ``i`` (row).

    No monotonic constraint. Ties go to the lowest frame index.

    Args:
        sim: ``(T_s, T_t)`` similarities (``maximize=True``) or distances (``maximize=False``).
        maximize: take the argmax (similarity) or the argmin (distance) of each column.

    Returns:
        ``(T_t,)`` int64 frame indices ``i*_j``.
    """
    matrix = _as_matrix(sim)
    return (matrix.argmax(axis=0) if maximize else matrix.argmin(axis=0)).astype(np.int64)


def _accumulated_cost(cost: np.ndarray) -> np.ndarray:
    """``D[i, j] = cost[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])`` for a ``(rows, cols)`` cost.

    One vectorised step per row: within a row the recurrence ``D[j] = c[j] + min(m[j], D[j-1])`` with
    ``m[j] = min(D_prev[j-1], D_prev[j])`` unrolls to ``D[j] = S[j] + min_{k<=j}(m[k] + c[k] - S[k])``, where
    ``S`` is the row's prefix sum: a cumulative minimum. Equal to the cell-by-cell dynamic program up to float
    rounding of the prefix sums (exact for integer-valued costs).
    """
    rows, cols = cost.shape
    accumulated = np.empty_like(cost)
    np.cumsum(cost[0], out=accumulated[0])
    entry = np.empty(cols)
    prefix = np.empty(cols)
    for i in range(1, rows):
        previous = accumulated[i - 1]
        row_cost = cost[i]
        np.cumsum(row_cost, out=prefix)
        entry[0] = previous[0]
        np.minimum(previous[:-1], previous[1:], out=entry[1:])
        entry += row_cost
        entry -= prefix
        np.minimum.accumulate(entry, out=entry)
        np.add(entry, prefix, out=accumulated[i])
    return accumulated


def dtw_path(sim: Any, maximize: bool = True, backend: str = "auto") -> np.ndarray:
    """Monotonic dynamic-time-warping path through a speech × text matrix (paper 3's token alignment).

    The path runs from ``(0, 0)`` to ``(T_s − 1, T_t − 1)`` with steps ``(1, 0)``, ``(0, 1)``, ``(1, 1)`` and
    minimises the summed cost of the cells it visits; ``cost = 1 − sim`` when ``maximize=True`` (similarities,
    e.g. cosine) and ``cost = sim`` when ``maximize=False`` (distances). Steps are not weighted.

    Ties between equally cheap paths are broken while tracing back from the end: the diagonal step first,
    then ``(1, 0)`` (advance speech), then ``(0, 1)`` (advance text). Costs that differ only by float rounding
    are not ties.

    The compiled kernel reads ``sim`` directly (no cost matrix is allocated) and keeps its scratch buffers
    (one byte per cell, one row of accumulated cost) between calls, per thread, for matrices of up to
    2²⁴ cells; larger ones get fresh buffers. The returned path is always a new array.

    Args:
        sim: ``(T_s, T_t)`` similarity or distance matrix (numpy or torch; read as float64, and copied to
            C order first when it is not C-contiguous).
        maximize: whether ``sim`` holds similarities (True) or distances (False).
        backend: ``"auto"`` (the numba-compiled kernel when numba is importable, else numpy),
            ``"numba"`` or ``"numpy"``. Both give the same path (same recurrence, same tie order).

    Returns:
        ``(L, 2)`` int64 array of ``(i, j)`` pairs (speech frame, text token) in forward order, from
        ``(0, 0)`` to ``(T_s − 1, T_t − 1)``; ``max(T_s, T_t) <= L <= T_s + T_t − 1``. librosa's
        ``sequence.dtw(..., backtrack=True)`` returns the same kind of array in the reverse order.
    """
    if backend not in ("auto", "numba", "numpy"):
        raise ConfigError(f"argument 'backend': expected 'auto', 'numba' or 'numpy', got {backend!r}")
    compiled = _compiled_dtw() if backend != "numpy" else None
    if backend == "numba" and compiled is None:
        raise ConfigError("argument 'backend': 'numba' asked for, but numba is not installed")
    if compiled is None:
        return _dtw_path_numpy(_as_matrix(sim), maximize)
    matrix = _as_matrix(sim, check_finite=False)  # the kernel checks each value as it reads it
    if not matrix.flags.c_contiguous:
        matrix = np.ascontiguousarray(matrix)
    rows, cols = matrix.shape
    steps, row, trace = _dtw_buffers(rows, cols)
    start = compiled(matrix, bool(maximize), steps, row, trace)
    if start < 0:
        raise ConfigError(NOT_FINITE.format(name="sim"))
    return trace[start:].copy()


_COMPILED: list = []

_KEEP_CELLS = 1 << 24
"""Largest ``T_s · T_t`` whose DTW scratch buffers are kept between calls (16 MiB of step bytes)."""


class _DTWBuffers(threading.local):
    """Scratch space of the compiled DTW, one set per thread (the kernel releases the GIL)."""

    steps = np.empty(0, dtype=np.uint8)
    row = np.empty(0, dtype=np.float64)
    trace = np.empty((0, 2), dtype=np.int64)


_BUFFERS = _DTWBuffers()


def _dtw_buffers(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows·cols,)`` uint8 steps, ``(cols,)`` float64 row and ``(rows + cols − 1, 2)`` int64 trace.

    Views into this thread's kept buffers, grown when too small; fresh arrays beyond ``_KEEP_CELLS`` cells so
    that one huge matrix does not pin its memory for the life of the process.
    """
    cells, length = rows * cols, rows + cols - 1
    if cells > _KEEP_CELLS:
        return np.empty(cells, dtype=np.uint8), np.empty(cols), np.empty((length, 2), dtype=np.int64)
    kept = _BUFFERS
    if kept.steps.shape[0] < cells:
        kept.steps = np.empty(cells, dtype=np.uint8)
    if kept.row.shape[0] < cols:
        kept.row = np.empty(cols)
    if kept.trace.shape[0] < length:
        kept.trace = np.empty((length, 2), dtype=np.int64)
    return kept.steps[:cells], kept.row[:cols], kept.trace[:length]


def _compiled_dtw():
    """The numba kernel, imported on first use (numba's import is slow); None without numba."""
    if not _COMPILED:
        try:
            from speechgap.metrics._dtw_numba import dtw_path_compiled
        except ImportError:
            dtw_path_compiled = None
        _COMPILED.append(dtw_path_compiled)
    return _COMPILED[0]


def _dtw_path_numpy(matrix: np.ndarray, maximize: bool) -> np.ndarray:
    """:func:`dtw_path` in numpy: vectorised rows along the shorter axis, trace-back in Python."""
    # Iterate over the shorter axis (the recurrence is symmetric in the two axes), on a C-ordered cost.
    transpose = matrix.shape[0] > matrix.shape[1]
    oriented = matrix.T if transpose else matrix
    cost = np.subtract(1.0, oriented, order="C") if maximize else np.ascontiguousarray(oriented)
    accumulated = _accumulated_cost(cost)
    if transpose:
        accumulated = accumulated.T
    item = accumulated.item
    i, j = matrix.shape[0] - 1, matrix.shape[1] - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diagonal = item(i - 1, j - 1)
            up = item(i - 1, j)
            left = item(i, j - 1)
            if diagonal <= up and diagonal <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        path.append((i, j))
    return np.array(path[::-1], dtype=np.int64)


@dataclass(frozen=True)
class AlignmentPathScore:
    """Paper 1's Alignment Path Score of one speech/text pair.

    Attributes:
        score: APS, the mean of ``per_layer``. For ``metric="cos"`` higher = better aligned; for
            ``metric="euclid"`` it is the mean smallest distance, lower = better aligned.
        per_layer: ``(n_layers,)`` ``(1/T_t) Σ_j A_l[i*_j, j]`` for each selected layer.
        paths: ``(n_layers, T_t)`` int64 argmax (argmin) paths ``i*_j``, one row per selected layer.
        layers: the indices (into the input's layer axis) of the selected layers, in order.
        metric: ``"cos"`` or ``"euclid"``.
    """

    score: float
    per_layer: np.ndarray
    paths: np.ndarray
    layers: tuple[int, ...]
    metric: str


def alignment_path_score(
    speech: Any,
    text: Any,
    metric: Literal["cos", "euclid"] = "cos",
    layers: Iterable[int] | None = None,
) -> AlignmentPathScore:
    """Alignment Path Score (APS) of paper 1 for one sample.

    ``APS = (1/L) Σ_l (1/T_t) Σ_j A_l[i*_j, j]`` with ``A_l`` the cosine (or Euclidean distance) matrix
    between the speech frames and the text tokens at layer ``l`` and ``i*_j`` the argmax (argmin) of column
    ``j``. The per-dataset figure of the paper is the mean of the per-sample scores.

    Whether the input layer (layer 0, the embeddings) counts is left open by the paper. Here ``layers=None``
    uses every layer of the arrays passed in; when index 0 of your capture holds the layer-0 states and you
    want decoder-block outputs only, pass ``layers=range(1, L)``.

    Args:
        speech: ``(L, T_s, d)`` hidden states of the speech span.
        text: ``(L, T_t, d)`` hidden states of the transcript span.
        metric: ``"cos"`` (cosine similarity, argmax) or ``"euclid"`` (Euclidean distance, argmin).
        layers: indices into the first axis to average over; ``None`` = all.

    Returns:
        :class:`AlignmentPathScore`.
    """
    if metric not in ("cos", "euclid"):
        raise ConfigError(f"argument 'metric': expected 'cos' or 'euclid', got {metric!r}")
    speech = as_layered(speech, "speech")
    text = as_layered(text, "text")
    check_same_dim(speech, text, "speech", "text")
    n_layers = speech.shape[0]
    if text.shape[0] != n_layers:
        raise ConfigError(
            f"argument 'speech' and argument 'text': different numbers of layers ({n_layers} vs {text.shape[0]})"
        )
    selected = tuple(range(n_layers)) if layers is None else tuple(int(layer) for layer in layers)
    if not selected:
        raise ConfigError("argument 'layers': no layer selected")
    bad = [layer for layer in selected if not 0 <= layer < n_layers]
    if bad:
        raise ConfigError(f"argument 'layers': indices {bad} out of range for {n_layers} layers")
    maximize = metric == "cos"
    matrix_of = cosine_matrix if maximize else euclidean_matrix
    columns = np.arange(text.shape[1])
    per_layer = np.empty(len(selected))
    paths = np.empty((len(selected), text.shape[1]), dtype=np.int64)
    for row, layer in enumerate(selected):
        matrix = matrix_of(speech[layer], text[layer])
        paths[row] = argmax_path(matrix, maximize=maximize)
        per_layer[row] = matrix[paths[row], columns].mean()
    return AlignmentPathScore(
        score=float(per_layer.mean()), per_layer=per_layer, paths=paths, layers=selected, metric=metric
    )


def _path_pairs(path: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(text index j, speech index i) for a ``(T_t,)`` argmax path or a ``(K, 2)`` list of (i, j) pairs."""
    array = as_array(path, name, ndim=(1, 2), dtype=np.int64)
    if array.ndim == 1:
        return np.arange(array.shape[0]), array
    if array.shape[1] != 2:
        raise ConfigError(
            f"argument '{name}': expected (T_t,) frame indices or (K, 2) pairs, got {array.shape}"
        )
    return array[:, 1], array[:, 0]


def path_monotonicity(path: Any) -> float:
    """Spearman rank correlation between text position ``j`` and the path's frame ``i*_j`` (paper 1).

    1 = the path never goes back in time. Paper 1 reports 0.85 (cosine) and 0.70 (Euclidean).

    Args:
        path: ``(T_t,)`` frame index per text token, or a ``(K, 2)`` sequence of ``(i, j)`` pairs.

    Returns:
        The correlation in [-1, 1]; NaN when either coordinate is constant (e.g. a single token).
    """
    j, i = _path_pairs(path, "path")
    rank_j = _centred_ranks(j)
    rank_i = _centred_ranks(i)
    denominator = np.sqrt((rank_j**2).sum() * (rank_i**2).sum())
    if denominator == 0:
        return float("nan")
    return float((rank_j * rank_i).sum() / denominator)


def _centred_ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks of integer ``values`` (ties share their mean rank, as ``scipy.stats.rankdata``), minus
    their mean. Counting sort over the value range: the analysis calls this thousands of times on short paths,
    where scipy's general ``rankdata`` costs ~20x more."""
    if values.shape[0] == 0:
        return np.zeros(0)
    low = values.min()
    if values.max() - low > 4 * values.shape[0] + 4096:  # sparse values: rank the distinct ones instead
        _, codes, counts = np.unique(values, return_inverse=True, return_counts=True)
    else:
        codes = values - low
        counts = np.bincount(codes)
    ends = np.cumsum(counts)  # 1-based rank of the last member of each value
    mean_rank = ends - (counts - 1) / 2.0
    return mean_rank[codes] - (values.shape[0] + 1) / 2


def path_consistency(path_a: Any, path_b: Any) -> float:
    """Share of text tokens for which two argmax paths pick the same speech frame (paper 1: 0.59).

    Args:
        path_a: ``(T_t,)`` frame indices, e.g. from the cosine matrix.
        path_b: ``(T_t,)`` frame indices, e.g. from the Euclidean matrix.

    Returns:
        A share in [0, 1].
    """
    a = as_array(path_a, "path_a", ndim=1, dtype=np.int64)
    b = as_array(path_b, "path_b", ndim=1, dtype=np.int64)
    if a.shape != b.shape or a.shape[0] == 0:
        raise ConfigError(
            f"argument 'path_a' and argument 'path_b': need equal non-empty lengths, got {a.shape} and {b.shape}"
        )
    return float((a == b).mean())


def uniform_path(n_frames: int, n_tokens: int) -> np.ndarray:
    """Length-proportional path, the baseline of :func:`word_alignment_accuracy`.

    Token ``j`` maps to frame ``floor((j + 0.5) · T_s / T_t)``: the frame under the centre of the token's
    equal share of the utterance.

    Returns:
        ``(n_tokens,)`` int64 frame indices.
    """
    if n_frames < 1 or n_tokens < 1:
        raise ConfigError(
            f"argument 'n_frames' and argument 'n_tokens' must be >= 1, got {n_frames} and {n_tokens}"
        )
    return np.floor((np.arange(n_tokens) + 0.5) * n_frames / n_tokens).astype(np.int64)


def token_frames(path: Sequence[tuple[int, int]] | np.ndarray, n_tokens: int) -> np.ndarray:
    """One frame per text token from a DTW path: the (lower) median of the frames paired with token ``j``.

    Args:
        path: ``(K, 2)`` ``(i, j)`` pairs as returned by :func:`dtw_path`.
        n_tokens: ``T_t``; every token ``0..T_t−1`` must appear in the path.

    Returns:
        ``(n_tokens,)`` int64 frame indices.
    """
    pairs = as_array(path, "path", ndim=2, dtype=np.int64)
    if pairs.shape[1] != 2:
        raise ConfigError(f"argument 'path': expected (i, j) pairs, got shape {pairs.shape}")
    frames = np.empty(n_tokens, dtype=np.int64)
    for token in range(n_tokens):
        matched = np.sort(pairs[pairs[:, 1] == token, 0])
        if matched.size == 0:
            raise ConfigError(f"argument 'path': text token {token} is not on the path")
        frames[token] = matched[(matched.size - 1) // 2]
    return frames


def uniform_frame_times(n_frames: int, frames_per_second: float, offset: float = 0.0) -> np.ndarray:
    """``(n_frames, 2)`` start/end seconds of frames at a fixed rate (Qwen2-Audio: 25 frames/s)."""
    if frames_per_second <= 0:
        raise ConfigError(f"argument 'frames_per_second': must be > 0, got {frames_per_second}")
    starts = offset + np.arange(n_frames) / frames_per_second
    return np.stack([starts, starts + 1.0 / frames_per_second], axis=1)


@dataclass(frozen=True)
class WordAlignmentAccuracy:
    """How often a path puts a text token inside its word's time span, next to the uniform baseline.

    Attributes:
        accuracy: share of scored tokens whose path frame centre lies inside their word's span.
        uniform_accuracy: the same share for :func:`uniform_path` (the baseline a path must beat).
        n_tokens: number of scored tokens (tokens with a word index >= 0).
        hits: ``(T_t,)`` bool, True where the path frame is inside the token's word (False for unscored).
    """

    accuracy: float
    uniform_accuracy: float
    n_tokens: int
    hits: np.ndarray


def word_alignment_accuracy(
    path: Any,
    token_word_index: Any,
    frame_times: Any,
    word_times: Sequence[tuple[str, float, float]],
) -> WordAlignmentAccuracy:
    """ALAS-style check of an alignment path against word timings (TTS or forced alignment).

    Text token ``j`` is a hit when the centre of its path frame, ``(start + end) / 2`` of
    ``frame_times[path[j]]``, lies in ``[start, end]`` of word ``token_word_index[j]``. Tokens with word index
    ``-1`` (special tokens, punctuation) are not scored.

    Args:
        path: ``(T_t,)`` frame per token (:func:`argmax_path`), or ``(i, j)`` pairs from :func:`dtw_path`
            (reduced with :func:`token_frames`).
        token_word_index: ``(T_t,)`` ints, the word each text token belongs to, or -1.
        frame_times: ``(T_s, 2)`` start and end of each speech frame, seconds (see
            :func:`uniform_frame_times`).
        word_times: ``(word, start_seconds, end_seconds)`` for each word, in order.

    Returns:
        :class:`WordAlignmentAccuracy`.
    """
    word_index = as_array(token_word_index, "token_word_index", ndim=1, dtype=np.int64)
    n_tokens = word_index.shape[0]
    times = as_array(frame_times, "frame_times", ndim=2)
    if times.shape[1] != 2 or times.shape[0] == 0:
        raise ConfigError(f"argument 'frame_times': expected (T_s, 2) start/end seconds, got {times.shape}")
    n_frames = times.shape[0]
    raw_path = as_array(path, "path", ndim=(1, 2), dtype=np.int64)
    frames = token_frames(raw_path, n_tokens) if raw_path.ndim == 2 else raw_path
    if frames.shape[0] != n_tokens:
        raise ConfigError(
            f"argument 'path' and argument 'token_word_index': {frames.shape[0]} path entries for {n_tokens} tokens"
        )
    if frames.size and (frames.min() < 0 or frames.max() >= n_frames):
        raise ConfigError(f"argument 'path': frame indices must lie in [0, {n_frames}) (frame_times rows)")
    try:
        spans = np.array([(float(start), float(end)) for _, start, end in word_times], dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"argument 'word_times': expected (word, start, end) triples ({error})") from error
    spans = spans.reshape(-1, 2)
    if word_index.size and (word_index.min() < -1 or word_index.max() >= spans.shape[0]):
        raise ConfigError(
            f"argument 'token_word_index': word indices must be -1 or in [0, {spans.shape[0]}) (word_times entries)"
        )
    scored = word_index >= 0
    if not scored.any():
        raise ConfigError("argument 'token_word_index': no token belongs to a word (all -1)")
    centres = times.mean(axis=1)

    def hits_of(token_frame: np.ndarray) -> np.ndarray:
        word_span = spans[np.where(scored, word_index, 0)]
        centre = centres[token_frame]
        return scored & (centre >= word_span[:, 0]) & (centre <= word_span[:, 1])

    hits = hits_of(frames)
    baseline = hits_of(uniform_path(n_frames, n_tokens))
    n_scored = int(scored.sum())
    return WordAlignmentAccuracy(
        accuracy=float(hits.sum() / n_scored),
        uniform_accuracy=float(baseline.sum() / n_scored),
        n_tokens=n_scored,
        hits=hits,
    )
