"""Alignment paths and scores: brute force on small matrices, hand-computed tiny examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from speechgap.errors import ConfigError
from speechgap.metrics import (
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

STEP_RANK = {(1, 1): 0, (1, 0): 1, (0, 1): 2}  # documented tie order, applied tracing back from the end


def all_paths(rows: int, cols: int):
    """Every monotonic path from (0, 0) to (rows-1, cols-1) with steps (1,0), (0,1), (1,1)."""

    def extend(path):
        i, j = path[-1]
        if (i, j) == (rows - 1, cols - 1):
            yield path
            return
        for di, dj in ((1, 1), (1, 0), (0, 1)):
            if i + di < rows and j + dj < cols:
                yield from extend([*path, (i + di, j + dj)])

    yield from extend([(0, 0)])


def brute_force_dtw(cost: np.ndarray) -> list[tuple[int, int]]:
    """Cheapest path; among exact ties, the documented back-tracing preference decides."""

    def key(path):
        backward = [
            STEP_RANK[(a[0] - b[0], a[1] - b[1])] for a, b in zip(path[::-1], path[-2::-1], strict=False)
        ]
        return (sum(cost[i, j] for i, j in path), backward)

    return min(all_paths(*cost.shape), key=key)


def path_cost(cost: np.ndarray, path) -> float:
    return float(sum(cost[i, j] for i, j in path))


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (4, 1), (3, 3), (4, 5), (6, 3)])
def test_dtw_is_optimal_against_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for maximize in (True, False):
        sim = rng.uniform(-1, 1, size=shape) if maximize else rng.uniform(0, 5, size=shape)
        cost = 1 - sim if maximize else sim
        path = dtw_path(sim, maximize=maximize)
        assert path.dtype == np.int64 and path.ndim == 2 and path.shape[1] == 2
        best = min(path_cost(cost, candidate) for candidate in all_paths(*shape))
        assert path_cost(cost, path) == pytest.approx(best, abs=1e-12)
        assert path[0].tolist() == [0, 0] and path[-1].tolist() == [shape[0] - 1, shape[1] - 1]
        steps = {tuple(step) for step in np.diff(path, axis=0).tolist()}
        assert steps <= {(1, 0), (0, 1), (1, 1)}


@pytest.mark.parametrize("shape", [(3, 4), (5, 3), (4, 4)])
def test_dtw_tie_breaking_follows_documented_order(shape):
    rng = np.random.default_rng(20 + shape[0])
    for _ in range(5):
        cost = rng.integers(0, 2, size=shape).astype(float)  # integer costs: many exact ties
        assert dtw_path(cost, maximize=False).tolist() == [list(pair) for pair in brute_force_dtw(cost)]


def test_dtw_matches_cell_by_cell_dynamic_program_on_a_larger_matrix():
    rng = np.random.default_rng(21)
    sim = rng.uniform(-1, 1, size=(70, 23))
    cost = 1 - sim
    total = np.full((71, 24), np.inf)
    total[0, 0] = 0.0
    for i in range(1, 71):
        for j in range(1, 24):
            if (i, j) == (1, 1):
                total[i, j] = cost[0, 0]
                continue
            total[i, j] = cost[i - 1, j - 1] + min(total[i - 1, j - 1], total[i - 1, j], total[i, j - 1])
    assert path_cost(cost, dtw_path(sim)) == pytest.approx(total[-1, -1], rel=1e-12)
    assert path_cost(cost, dtw_path(torch.from_numpy(sim).float())) == pytest.approx(total[-1, -1], rel=1e-6)


def test_dtw_rejects_bad_input():
    with pytest.raises(ConfigError, match="'sim'.*NaN"):
        dtw_path(np.array([[0.0, np.nan]]))
    with pytest.raises(ConfigError, match="'sim'"):
        dtw_path(np.zeros((0, 3)))


def test_argmax_path_per_column():
    rng = np.random.default_rng(22)
    sim = rng.normal(size=(9, 4))
    assert argmax_path(sim).tolist() == [max(range(9), key=lambda i, j=j: sim[i, j]) for j in range(4)]
    assert argmax_path(sim, maximize=False).tolist() == [
        min(range(9), key=lambda i, j=j: sim[i, j]) for j in range(4)
    ]


def test_aps_by_hand_on_a_tiny_example():
    # Layer 0: speech frames e1, e2, e1+e2; text tokens e1+e2, 3·e1.
    # Layer 1: speech frames e1, -e1, e2;   text tokens e2, -e1.
    speech = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]])
    text = np.array([[[1.0, 1.0], [3.0, 0.0]], [[0.0, 1.0], [-1.0, 0.0]]])
    cos = alignment_path_score(speech, text, metric="cos")
    # Layer 0: token 0 best frame 2 (cos 1), token 1 best frame 0 (cos 1). Layer 1: frame 2 (1), frame 1 (1).
    assert cos.paths.tolist() == [[2, 0], [2, 1]]
    np.testing.assert_allclose(cos.per_layer, [1.0, 1.0])
    # Euclidean, layer 0: token 0 = (1,1) is at distance 0 from frame 2; token 1 = (3,0): distances 2, sqrt(10),
    # sqrt(5) -> frame 0, distance 2. Layer 1: token 0 = (0,1) -> frame 2 (0); token 1 = (-1,0) -> frame 1 (0).
    euclid = alignment_path_score(speech, text, metric="euclid")
    assert euclid.paths.tolist() == [[2, 0], [2, 1]]
    np.testing.assert_allclose(euclid.per_layer, [1.0, 0.0])
    assert euclid.score == pytest.approx(0.5)
    only_first = alignment_path_score(speech, text, metric="euclid", layers=[0])
    assert only_first.score == pytest.approx(1.0) and only_first.layers == (0,)


def test_aps_equals_mean_of_column_maxima_on_random_states():
    rng = np.random.default_rng(23)
    speech = rng.normal(size=(4, 11, 6))
    text = rng.normal(size=(4, 5, 6))
    result = alignment_path_score(torch.from_numpy(speech), text, layers=range(1, 4))
    expected = []
    for layer in range(1, 4):
        s = speech[layer] / np.linalg.norm(speech[layer], axis=1, keepdims=True)
        t = text[layer] / np.linalg.norm(text[layer], axis=1, keepdims=True)
        expected.append((s @ t.T).max(axis=0).mean())
    np.testing.assert_allclose(result.per_layer, expected, rtol=1e-12)
    assert result.score == pytest.approx(np.mean(expected))
    assert result.layers == (1, 2, 3) and result.paths.shape == (3, 5)
    with pytest.raises(ConfigError, match="'layers'.*out of range"):
        alignment_path_score(speech, text, layers=[4])
    with pytest.raises(ConfigError, match="'metric'"):
        alignment_path_score(speech, text, metric="dot")
    with pytest.raises(ConfigError, match="feature dimensions differ"):
        alignment_path_score(speech, text[:, :, :5])


@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # constant paths: NaN expected
def test_monotonicity_ranks_ties_as_scipy_on_many_paths():
    # the counting-sort ranks against scipy's spearmanr: heavy ties, dense and sparse value ranges
    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(2, 60))
        high = [3, 20, 200, 10**7][trial % 4]
        frames = rng.integers(-5 if trial % 3 == 0 else 0, high, size=n)
        expected = spearmanr(np.arange(n), frames).statistic
        got = path_monotonicity(frames)
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)
        pairs = np.stack([np.sort(frames), np.sort(rng.integers(0, 9, size=n))], axis=1)
        expected = spearmanr(pairs[:, 1], pairs[:, 0]).statistic
        got = path_monotonicity(pairs)
        assert np.isnan(got) if np.isnan(expected) else got == pytest.approx(expected, abs=1e-12)


def test_monotonicity_matches_scipy_and_consistency_counts_agreement():
    rng = np.random.default_rng(24)
    path = rng.integers(0, 30, size=12)
    assert path_monotonicity(path) == pytest.approx(spearmanr(np.arange(12), path).statistic)
    assert path_monotonicity(np.arange(0, 24, 2)) == pytest.approx(1.0)
    pairs = dtw_path(rng.uniform(size=(8, 5)))
    i, j = np.array(pairs).T
    assert path_monotonicity(pairs) == pytest.approx(spearmanr(j, i).statistic)
    assert np.isnan(path_monotonicity([3, 3, 3]))
    assert path_consistency([1, 2, 3, 4], [1, 0, 3, 0]) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="argument 'path_a' and argument 'path_b'"):
        path_consistency([1, 2], [1, 2, 3])


def test_uniform_path_and_token_frames():
    path = uniform_path(10, 4)
    assert path.tolist() == [int((j + 0.5) * 10 / 4) for j in range(4)]
    assert uniform_path(3, 7).max() == 2
    pairs = [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 2)]
    assert token_frames(pairs, 3).tolist() == [1, 3, 4]
    with pytest.raises(ConfigError, match="token 3 is not on the path"):
        token_frames(pairs, 4)


def test_word_alignment_accuracy_counts_frames_inside_words():
    frame_times = uniform_frame_times(20, frames_per_second=10.0)  # 2 s, 0.1 s frames
    words = [("the", 0.0, 0.3), ("cat", 0.3, 1.2), ("sat", 1.2, 2.0)]
    token_word = np.array([0, 1, 1, 2, -1])  # last token: punctuation, not scored
    path = np.array([1, 5, 15, 18, 0])
    result = word_alignment_accuracy(path, token_word, frame_times, words)
    centres = frame_times.mean(axis=1)

    def share(frames):
        hits = [
            words[w][1] <= centres[f] <= words[w][2]
            for f, w in zip(frames, token_word, strict=True)
            if w >= 0
        ]
        return sum(hits) / len(hits)

    assert result.n_tokens == 4
    assert result.accuracy == pytest.approx(share(path)) and result.accuracy == pytest.approx(0.75)
    assert result.uniform_accuracy == pytest.approx(share(uniform_path(20, 5)))
    assert result.hits.tolist() == [True, True, False, True, False]
    pairs = [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1), (6, 2), (7, 3), (8, 4)] + [
        (i, 4) for i in range(9, 20)
    ]
    from_pairs = word_alignment_accuracy(pairs, token_word, frame_times, words)
    assert from_pairs.accuracy == pytest.approx(share(token_frames(pairs, 5)))
    with pytest.raises(ConfigError, match="'path'.*frame indices"):
        word_alignment_accuracy([1, 5, 15, 25, 0], token_word, frame_times, words)
    with pytest.raises(ConfigError, match="'token_word_index'"):
        word_alignment_accuracy(path, [0, 1, 1, 3, -1], frame_times, words)
    with pytest.raises(ConfigError, match="'frame_times'"):
        word_alignment_accuracy(path, token_word, frame_times[:, :1], words)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (9, 1), (40, 13), (13, 40)])
def test_compiled_and_numpy_dtw_agree(shape):
    rng = np.random.default_rng(sum(shape))
    sim = rng.uniform(-1, 1, size=shape)
    np.testing.assert_array_equal(dtw_path(sim, backend="numba"), dtw_path(sim, backend="numpy"))
    # integer costs make many ties: the tie order must agree too
    ties = rng.integers(0, 3, size=shape).astype(float)
    np.testing.assert_array_equal(
        dtw_path(ties, maximize=False, backend="numba"), dtw_path(ties, maximize=False, backend="numpy")
    )
    with pytest.raises(ConfigError, match="backend"):
        dtw_path(sim, backend="cuda")


def reference_dtw(sim: np.ndarray, maximize: bool) -> list[list[int]]:
    """The DTW as it was computed before the lean kernel, in plain Python: the full cost ``1 − sim`` (or
    ``sim``), the full accumulated-cost table, the trace-back comparing its three neighbours."""
    rows, cols = sim.shape
    cost = [[1.0 - float(v) if maximize else float(v) for v in line] for line in sim]
    total = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            if i == 0 and j == 0:
                total[i][j] = cost[i][j]
            elif i == 0:
                total[i][j] = total[i][j - 1] + cost[i][j]
            elif j == 0:
                total[i][j] = total[i - 1][j] + cost[i][j]
            else:
                best = total[i - 1][j - 1]
                if total[i - 1][j] < best:
                    best = total[i - 1][j]
                if total[i][j - 1] < best:
                    best = total[i][j - 1]
                total[i][j] = best + cost[i][j]
    i, j = rows - 1, cols - 1
    path = [[i, j]]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diagonal, up, left = total[i - 1][j - 1], total[i - 1][j], total[i][j - 1]
            if diagonal <= up and diagonal <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        path.append([i, j])
    return path[::-1]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_dtw_paths_equal_the_reference_on_many_random_matrices(backend):
    rng = np.random.default_rng(30)
    for trial in range(120):
        shape = tuple(int(n) for n in rng.integers(1, 41, size=2))
        kind = trial % 4
        if kind == 0:  # continuous similarities
            sim, maximize = rng.uniform(-1, 1, size=shape), True
        elif kind == 1:  # similarities on a grid of quarters: 1 - sim and every sum exact, many ties
            sim, maximize = rng.integers(-4, 5, size=shape) / 4.0, True
        elif kind == 2:  # integer distances: ties
            sim, maximize = rng.integers(0, 3, size=shape).astype(float), False
        else:  # continuous distances
            sim, maximize = rng.exponential(size=shape), False
        path = dtw_path(sim, maximize=maximize, backend=backend)
        assert path.dtype == np.int64 and path.shape[1] == 2
        assert path.tolist() == reference_dtw(sim, maximize), (trial, shape)


def test_dtw_reads_any_layout_and_dtype_like_a_float64_c_array():
    rng = np.random.default_rng(31)
    sim = rng.uniform(-1, 1, size=(37, 23))
    expected = reference_dtw(sim, True)
    assert dtw_path(np.asfortranarray(sim)).tolist() == expected
    assert dtw_path(sim.T.copy().T).tolist() == expected
    wide = np.zeros((37, 46))
    wide[:, ::2] = sim
    assert dtw_path(wide[:, ::2]).tolist() == expected
    as_float32 = torch.from_numpy(sim).float()
    assert dtw_path(as_float32).tolist() == reference_dtw(as_float32.double().numpy(), True)


def test_dtw_kept_buffers_do_not_leak_between_calls(monkeypatch):
    from speechgap.metrics import alignment

    rng = np.random.default_rng(32)
    big, small = rng.uniform(-1, 1, size=(60, 50)), rng.uniform(-1, 1, size=(7, 40))
    first = dtw_path(big)
    kept = first.copy()
    second = dtw_path(small)  # reuses (a part of) the buffers grown by the first call
    np.testing.assert_array_equal(first, kept)  # the returned path is not a view of the scratch space
    assert first.flags.owndata and second.flags.owndata
    assert second.tolist() == reference_dtw(small, True)
    assert dtw_path(big).tolist() == reference_dtw(big, True)
    monkeypatch.setattr(alignment, "_KEEP_CELLS", 100)  # past the limit: fresh buffers, same answer
    assert dtw_path(big).tolist() == reference_dtw(big, True)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("where", [(0, 0), (0, 4), (3, 0), (5, 2), (6, 4)])
def test_dtw_rejects_a_non_finite_value_anywhere(backend, where):
    for bad in (np.nan, np.inf, -np.inf):
        sim = np.zeros((7, 5))
        sim[where] = bad
        with pytest.raises(ConfigError, match="argument 'sim': contains NaN or infinite values"):
            dtw_path(sim, backend=backend)
