"""``PairedDataset.shard``: contiguous near-equal blocks in order, as numpy.array_split cuts positions."""

from __future__ import annotations

import numpy as np
import pytest

from speechgap.data.types import PairedDataset, PairedSample, check_shard, shard_range
from speechgap.errors import ConfigError


def _dataset(n: int) -> PairedDataset:
    samples = [PairedSample(id=f"s{i}", text=f"q{i}", audio=np.full(8, i, np.float32)) for i in range(n)]
    return PairedDataset.from_samples(samples, {"loader": "memory", "name": "unit"})


@pytest.mark.parametrize("n", [0, 1, 5, 7, 12])
@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_are_the_blocks_of_array_split_and_cover_the_data_once(n, count):
    data = _dataset(n)
    expected = np.array_split(np.arange(n), count)
    shards = [data.shard(k, count) for k in range(count)]
    for k, (shard, positions) in enumerate(zip(shards, expected, strict=True)):
        assert shard.ids == [f"s{i}" for i in positions]
        assert list(shard_range(n, k, count)) == positions.tolist()
        # the view loads the samples of its own positions
        assert [float(sample.audio[0]) for sample in shard] == positions.astype(float).tolist()
        assert shard.source["shard"] == f"{k + 1}/{count}"
        assert shard.describe()["num_samples"] == len(positions)
    assert [sid for shard in shards for sid in shard.ids] == data.ids
    assert data.source == {"loader": "memory", "name": "unit"}  # the whole dataset is unchanged


def test_a_shard_of_a_limited_dataset_records_the_limit_and_the_shard():
    data = _dataset(10).limit(7)
    last = data.shard(2, 3)
    assert last.ids == ["s5", "s6"]
    assert last.describe() == {
        "loader": "memory",
        "name": "unit",
        "selected": 2,
        "limit": 7,
        "shard": "3/3",
        "num_samples": 2,
    }
    assert data.shard(0, 1).ids == data.ids and data.shard(0, 1).source["shard"] == "1/1"
    assert data.shard(6, 8).ids == ["s6"] and data.shard(7, 8).ids == []  # more shards than samples: empty


def test_bad_index_or_count_is_refused_by_name():
    data = _dataset(4)
    for count in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="argument 'count'"):
            data.shard(0, count)
    for index in (-1, 3, 1.0, None):
        with pytest.raises(ConfigError, match=r"argument 'index' must be a whole number in \[0, 3\)"):
            data.shard(index, 3)
    assert data.shard(np.int64(1), np.int64(2)).ids == ["s2", "s3"]


def test_check_shard_accepts_pairs_and_names_its_argument():
    assert check_shard(None) is None
    assert check_shard((0, 3)) == (0, 3)
    assert check_shard([2, 3]) == (2, 3)
    for bad in [(3, 3), (0, 0), (-1, 2), (1, 2, 3), "1/3", (1.0, 3), (False, 1), 3]:
        with pytest.raises(ConfigError, match="argument 'part'"):
            check_shard(bad, "part")
