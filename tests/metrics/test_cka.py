"""CKA: known properties and independent reference computations (explicit centering matrix, Song et al.)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.stats import ortho_group

from speechgap.errors import ConfigError
from speechgap.metrics import CrossLayerCKA, cka, cka_band, cross_layer_cka, linear_cka, mutual_knn


def reference_hsic(x: np.ndarray, y: np.ndarray, debiased: bool) -> float:
    """Textbook estimators on explicit n × n Gram matrices.

    The unbiased estimator does not depend on the origin; centering first only avoids cancellation.
    """
    n = x.shape[0]
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    k = x @ x.T
    l_ = y @ y.T
    if not debiased:
        h = np.eye(n) - np.ones((n, n)) / n
        return np.trace(k @ h @ l_ @ h) / (n - 1) ** 2
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l_, 0.0)
    one = np.ones(n)
    value = (
        np.trace(k @ l_)
        + (one @ k @ one) * (one @ l_ @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * one @ k @ l_ @ one
    )
    return value / (n * (n - 3))


def reference_cka(x: np.ndarray, y: np.ndarray, debiased: bool = False) -> float:
    return reference_hsic(x, y, debiased) / np.sqrt(
        reference_hsic(x, x, debiased) * reference_hsic(y, y, debiased)
    )


@pytest.mark.parametrize("shape", [(40, 5, 7), (12, 30, 25)])  # feature form (n > d) and Gram form (d > n)
@pytest.mark.parametrize("debiased", [False, True])
def test_linear_cka_matches_reference_estimators(shape, debiased):
    rng = np.random.default_rng(1)
    n, d1, d2 = shape
    x = rng.normal(size=(n, d1)) + 3.0
    y = x[:, :1] * rng.normal(size=(1, d2)) + rng.normal(size=(n, d2))
    assert linear_cka(x, y, debiased=debiased) == pytest.approx(reference_cka(x, y, debiased), rel=1e-10)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_of_a_representation_with_itself_is_one(debiased):
    rng = np.random.default_rng(2)
    for n, d in ((50, 6), (8, 40)):
        x = rng.normal(size=(n, d))
        assert linear_cka(x, x, debiased=debiased) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_invariant_to_orthogonal_transform_isotropic_scale_and_shift(debiased):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 6))
    y = np.tanh(x @ rng.normal(size=(6, 9))) + 0.3 * rng.normal(size=(30, 9))
    base = linear_cka(x, y, debiased=debiased)
    rotation = ortho_group.rvs(9, random_state=4)
    transformed = 7.5 * (y @ rotation) + rng.normal(size=(1, 9)) * 100
    assert linear_cka(x, transformed, debiased=debiased) == pytest.approx(base, rel=1e-9)
    # A per-dimension (anisotropic) scaling is not an invariance: the value moves.
    stretched = y * np.array([50.0] + [1.0] * 8)
    assert abs(linear_cka(x, stretched, debiased=debiased) - base) > 1e-3


def test_debiased_cka_near_zero_for_independent_inputs_where_biased_is_not():
    rng = np.random.default_rng(5)
    biased, debiased = [], []
    for _ in range(30):
        x = rng.normal(size=(32, 8))
        y = rng.normal(size=(32, 8))
        biased.append(linear_cka(x, y))
        debiased.append(linear_cka(x, y, debiased=True))
    assert np.mean(biased) > 0.15  # anchors.md: ~0.2 at n = 32
    assert abs(np.mean(debiased)) < 0.04


def test_linear_cka_errors_name_the_problem():
    rng = np.random.default_rng(6)
    with pytest.raises(ConfigError, match="different numbers of rows"):
        linear_cka(rng.normal(size=(10, 3)), rng.normal(size=(9, 3)))
    with pytest.raises(ConfigError, match="at least 4 rows"):
        linear_cka(rng.normal(size=(3, 3)), rng.normal(size=(3, 3)), debiased=True)
    with pytest.raises(ConfigError, match="at least 2 rows"):
        linear_cka(rng.normal(size=(1, 3)), rng.normal(size=(1, 3)))
    with pytest.raises(ConfigError, match="constant"):
        linear_cka(np.ones((10, 3)), rng.normal(size=(10, 3)))
    with pytest.raises(ConfigError, match="'x'.*dimensions"):
        linear_cka(rng.normal(size=(10,)), rng.normal(size=(10, 3)))
    with pytest.raises(ConfigError, match="NaN"):
        linear_cka(np.full((5, 2), np.nan), rng.normal(size=(5, 2)))


def layered_pair(seed: int, n: int, layers_x: int, d1: int, layers_y: int, d2: int, offset: float = 0.0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 4))
    xs = np.stack([base @ rng.normal(size=(4, d1)) + rng.normal(size=(n, d1)) for _ in range(layers_x)])
    ys = np.stack([base @ rng.normal(size=(4, d2)) + 2 * rng.normal(size=(n, d2)) for _ in range(layers_y)])
    return xs + offset, ys - offset


@pytest.mark.parametrize("form", ["auto", "feature", "gram"])
@pytest.mark.parametrize("debiased", [False, True])
def test_cross_layer_cka_equals_pairwise_linear_cka(form, debiased):
    for n, d1, d2 in ((60, 5, 4), (10, 20, 24)):
        xs, ys = layered_pair(7, n, 3, d1, 4, d2, offset=40.0)
        pairwise = np.array([[reference_cka(x, y, debiased) for y in ys] for x in xs])
        matrix = cross_layer_cka(xs, ys, debiased=debiased, form=form)
        assert matrix.shape == (3, 4)
        np.testing.assert_allclose(matrix, pairwise, rtol=1e-9, atol=1e-12)


def test_cross_layer_cka_gram_blocks_cover_the_whole_gram(monkeypatch):
    xs, ys = layered_pair(8, 37, 2, 50, 3, 40)
    one_block = cross_layer_cka(xs, ys, form="gram")
    monkeypatch.setattr(cka, "_GRAM_BLOCK_BYTES", 8 * 37 * 3 * 5)  # 5 rows per block, last block partial
    np.testing.assert_allclose(cross_layer_cka(xs, ys, form="gram"), one_block, rtol=1e-12)
    pairwise = np.array([[linear_cka(x, y) for y in ys] for x in xs])
    np.testing.assert_allclose(one_block, pairwise, rtol=1e-10)


def test_cross_layer_cka_accepts_torch_and_layer_lists():
    xs, ys = layered_pair(9, 25, 2, 6, 2, 5)
    expected = cross_layer_cka(xs, ys)
    from_torch = cross_layer_cka(torch.from_numpy(xs), [torch.from_numpy(y) for y in ys])
    np.testing.assert_allclose(from_torch, expected, rtol=1e-12)
    with pytest.raises(ConfigError, match="argument 'xs' and argument 'ys': different numbers of rows"):
        cross_layer_cka(xs, ys[:, :20])
    with pytest.raises(ConfigError, match="'ys': layers have different shapes"):
        cross_layer_cka(xs, [ys[0], ys[1][:, :3]])


@pytest.mark.parametrize("accumulate", ["feature", "rows"])
@pytest.mark.parametrize("debiased", [False, True])
def test_minibatch_accumulation_equals_full_computation(accumulate, debiased):
    # A large common offset checks that centering at the end keeps float64 precision.
    xs, ys = layered_pair(10, 53, 3, 6, 2, 5, offset=500.0)
    full = cross_layer_cka(xs, ys, debiased=debiased)
    accumulator = CrossLayerCKA(debiased=debiased, accumulate=accumulate)
    for start, stop in ((0, 3), (3, 20), (20, 21), (21, 53)):
        accumulator.update(xs[:, start:stop], ys[:, start:stop])
    assert accumulator.n_rows == 53
    assert accumulator.accumulate == accumulate
    np.testing.assert_allclose(accumulator.compute(), full, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("accumulate", ["feature", "rows"])
@pytest.mark.parametrize("debiased", [False, True])
def test_accumulator_state_survives_a_save_and_reload(accumulate, debiased, tmp_path):
    """Stopped half way, written with np.savez, reloaded without pickle and continued: the same matrix."""
    xs, ys = layered_pair(13, 40, 3, 6, 2, 5, offset=50.0)
    first = CrossLayerCKA(debiased=debiased, accumulate=accumulate)
    first.update(xs[:, :17], ys[:, :17])
    np.savez(tmp_path / "state.npz", **first.state_dict())
    with np.load(tmp_path / "state.npz", allow_pickle=False) as saved:
        resumed = CrossLayerCKA.from_state({key: saved[key] for key in saved.files})
    assert (resumed.n_rows, resumed.accumulate, resumed.debiased) == (17, accumulate, debiased)
    resumed.update(xs[:, 17:], ys[:, 17:])
    np.testing.assert_allclose(
        resumed.compute(), cross_layer_cka(xs, ys, debiased=debiased), rtol=1e-9, atol=1e-11
    )
    empty = CrossLayerCKA.from_state(CrossLayerCKA(debiased=debiased).state_dict())
    with pytest.raises(ConfigError, match="no batch"):
        empty.compute()
    with pytest.raises(ConfigError, match="no 'meta' entry"):
        CrossLayerCKA.from_state({})


def test_accumulator_auto_falls_back_to_rows_and_checks_batches():
    xs, ys = layered_pair(11, 20, 2, 6, 2, 5)
    accumulator = CrossLayerCKA(max_bytes=100)
    with pytest.raises(ConfigError, match="no batch"):
        accumulator.compute()
    accumulator.update(xs[:, :10], ys[:, :10])
    assert accumulator.accumulate == "rows"
    with pytest.raises(ConfigError, match="earlier batches"):
        accumulator.update(xs[:, 10:, :4], ys[:, 10:])
    accumulator.update(xs[:, 10:], ys[:, 10:])
    np.testing.assert_allclose(accumulator.compute(), cross_layer_cka(xs, ys), rtol=1e-12)
    small = CrossLayerCKA(debiased=True)
    small.update(xs[:, :3], ys[:, :3])
    with pytest.raises(ConfigError, match="at least 4 rows"):
        small.compute()


def test_cka_band_matches_connected_run_around_best():
    rng = np.random.default_rng(12)
    centres = np.linspace(3, 20, 10)
    columns = np.arange(24)
    matrix = np.exp(-0.5 * ((columns[None, :] - centres[:, None]) / 3.0) ** 2) * 0.8 + 0.05 * rng.random(
        (10, 24)
    )
    matrix[0, 22] = matrix[0].max() - 0.01  # a separate second peak must not widen row 0's band
    band = cka_band(matrix, tolerance=0.1)
    for row in range(10):
        best = int(np.argmax(matrix[row]))
        labels, _ = ndimage.label(matrix[row] >= matrix[row, best] - 0.1)
        members = np.flatnonzero(labels == labels[best])
        assert band.best[row] == best
        assert band.best_value[row] == matrix[row, best]
        assert (band.lower[row], band.upper[row]) == (members.min(), members.max())
        assert band.width[row] == members.size
    assert band.upper[0] < 22
    with pytest.raises(ConfigError, match="tolerance"):
        cka_band(matrix, tolerance=-1)


def test_mutual_knn_against_brute_force_sets():
    rng = np.random.default_rng(13)
    x = rng.normal(size=(40, 6))
    y = x @ rng.normal(size=(6, 8)) + 1.5 * rng.normal(size=(40, 8))
    k = 5

    def neighbour_sets(features):
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        sims = unit @ unit.T
        return [set(np.argsort(-np.delete(sims[i], i))[:k]) for i in range(len(features))]

    def reindex(sets):  # np.delete shifted indices >= i down by one; undo that
        return [{j + (j >= i) for j in s} for i, s in enumerate(sets)]

    sx, sy = reindex(neighbour_sets(x)), reindex(neighbour_sets(y))
    expected = np.mean([len(a & b) / k for a, b in zip(sx, sy, strict=True)])
    assert mutual_knn(x, y, k=k) == pytest.approx(expected)
    assert 0 < expected < 1
    assert mutual_knn(x, 3.0 * x @ ortho_group.rvs(6, random_state=1), k=k) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="'k'"):
        mutual_knn(x, y, k=40)


def test_float32_gram_products_agree_with_float64():
    rng = np.random.default_rng(11)
    shared = rng.standard_normal((40, 6))
    xs = np.stack([shared @ rng.standard_normal((6, 24)) + rng.standard_normal((40, 24)) for _ in range(3)])
    ys = np.stack([shared @ rng.standard_normal((6, 30)) + rng.standard_normal((40, 30)) for _ in range(2)])
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)
    for debiased in (False, True):
        exact = cross_layer_cka(xs, ys, debiased=debiased, form="gram", gram_precision="float64")
        mixed = cross_layer_cka(xs, ys, debiased=debiased, form="gram")  # auto: float32 products here
        np.testing.assert_allclose(mixed, exact, atol=1e-6)
        assert not np.array_equal(mixed, exact) or debiased  # the float32 path really ran
    with pytest.raises(ConfigError, match="gram_precision"):
        cross_layer_cka(xs, ys, gram_precision="half")


def _sharded(xs, ys, blocks, debiased, accumulate="auto", max_bytes=2 * 2**30, origin=True):
    """One accumulator per row block, each given the first block's rows as its origin (as the shards of a
    sharded analysis are given the run's first sample)."""
    shards = []
    for start, stop in blocks:
        accumulator = CrossLayerCKA(debiased=debiased, accumulate=accumulate, max_bytes=max_bytes)
        if origin:
            first_start, first_stop = blocks[0]
            accumulator.set_origin(xs[:, first_start:first_stop], ys[:, first_start:first_stop])
        accumulator.update(xs[:, start:stop], ys[:, start:stop])
        shards.append(accumulator)
    return shards


@pytest.mark.parametrize("accumulate", ["feature", "rows"])
@pytest.mark.parametrize("debiased", [False, True])
def test_merged_shard_accumulators_equal_one_accumulator_and_the_full_computation(accumulate, debiased):
    # large common offsets: summing in another frame than the first block's would cost precision
    xs, ys = layered_pair(14, 61, 3, 6, 2, 5, offset=1e4)
    blocks = [(0, 9), (9, 30), (30, 61)]
    single = CrossLayerCKA(debiased=debiased, accumulate=accumulate)
    for start, stop in blocks:
        single.update(xs[:, start:stop], ys[:, start:stop])
    merged = CrossLayerCKA(debiased=debiased)
    for shard in _sharded(xs, ys, blocks, debiased, accumulate):
        merged.merge(shard)
    assert merged.n_rows == 61 and merged.accumulate == accumulate
    full = np.array([[reference_cka(x, y, debiased) for y in ys] for x in xs])
    np.testing.assert_allclose(merged.compute(), single.compute(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        merged.compute(), cross_layer_cka(xs, ys, debiased=debiased), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(merged.compute(), full, rtol=0, atol=1e-9)
    assert np.ptp(full) > 0.01  # layers differ: a merge that mixed up layers would show


@pytest.mark.parametrize("debiased", [False, True])
def test_merge_after_a_save_and_reload_keeps_the_origin(debiased, tmp_path):
    xs, ys = layered_pair(15, 48, 2, 5, 3, 4, offset=-300.0)
    blocks = [(0, 7), (7, 20), (20, 48)]
    reloaded = []
    for k, shard in enumerate(_sharded(xs, ys, blocks, debiased, "feature")):
        np.savez(tmp_path / f"shard{k}.npz", **shard.state_dict())
        with np.load(tmp_path / f"shard{k}.npz", allow_pickle=False) as saved:
            reloaded.append(CrossLayerCKA.from_state({key: saved[key] for key in saved.files}))
    for name in CrossLayerCKA._ORIGIN:
        np.testing.assert_array_equal(getattr(reloaded[2], name), getattr(reloaded[0], name))
    merged = CrossLayerCKA(debiased=debiased)
    for shard in reloaded:
        merged.merge(shard)
    np.testing.assert_allclose(merged.compute(), cross_layer_cka(xs, ys, debiased=debiased), atol=1e-9)
    # taking over the first shard copied its sums: the shard itself is unchanged by the later merges
    assert reloaded[0].n_rows == 7 and merged.n_rows == 48


def test_set_origin_without_rows_adds_nothing_and_an_origin_only_shard_merges():
    xs, ys = layered_pair(16, 30, 2, 4, 2, 4, offset=80.0)
    for accumulate in ("feature", "rows"):
        plain = CrossLayerCKA(accumulate=accumulate)
        plain.update(xs[:, :5], ys[:, :5])  # its origin: the first batch, the rows given to `empty`
        plain.update(xs[:, 5:], ys[:, 5:])
        empty = CrossLayerCKA(accumulate=accumulate)
        empty.set_origin(xs[:, :5], ys[:, :5])
        assert empty.n_rows == 0 and empty.shape == (2, 4, 2, 4)
        with pytest.raises(ConfigError, match="at least 2 rows"):
            empty.compute()
        state = CrossLayerCKA.from_state(empty.state_dict())  # a shard whose samples all had no rows
        plain.merge(state)
        assert plain.n_rows == 30
        np.testing.assert_allclose(plain.compute(), cross_layer_cka(xs, ys), atol=1e-12)


def test_merge_refuses_accumulators_that_do_not_add_up():
    xs, ys = layered_pair(17, 40, 2, 5, 2, 4, offset=10.0)
    first = CrossLayerCKA(accumulate="feature")
    first.update(xs[:, :20], ys[:, :20])
    # its own first batch as origin, not the agreed one
    other_origin = CrossLayerCKA(accumulate="feature")
    other_origin.update(xs[:, 20:], ys[:, 20:])
    with pytest.raises(ConfigError, match="another origin.*set_origin"):
        first.merge(other_origin)
    debiased = CrossLayerCKA(debiased=True)
    debiased.update(xs[:, 20:], ys[:, 20:])
    with pytest.raises(ConfigError, match="debiased=True"):
        first.merge(debiased)
    narrower = CrossLayerCKA(accumulate="feature")
    narrower.update(xs[:, 20:, :4], ys[:, 20:])
    with pytest.raises(ConfigError, match=r"\(layers, dim\)"):
        first.merge(narrower)
    rows = CrossLayerCKA(accumulate="rows")
    rows.update(xs[:, 20:], ys[:, 20:])
    with pytest.raises(ConfigError, match="accumulates 'rows'"):
        first.merge(rows)
    with pytest.raises(ConfigError, match="argument 'other' must be a CrossLayerCKA"):
        first.merge(np.zeros(3))
    assert first.n_rows == 20  # nothing was added by the refused merges
    with pytest.raises(ConfigError, match="origin is already set"):
        first.set_origin(xs[:, :3], ys[:, :3])
    with pytest.raises(ConfigError, match="different numbers of rows"):
        CrossLayerCKA().set_origin(xs[:, :3], ys[:, :4])
