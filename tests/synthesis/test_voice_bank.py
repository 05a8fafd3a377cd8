import pytest
from synthesis_fakes import ToneEngine

from speechgap.errors import ConfigError
from speechgap.synthesis.engine import Voice
from speechgap.synthesis.voices import VoiceBank, choose_speakers, parse_fractions


@pytest.fixture
def bank() -> VoiceBank:
    names = tuple(f"v{i}" for i in range(10))
    return VoiceBank.from_engine(ToneEngine(names), rates=(0.9, 1.0, 1.1), pitches=(0.8, 1.2))


def test_bank_is_voices_times_rates_times_pitches_with_unique_ids(bank):
    assert len(bank) == 10 * 3 * 2 == len(set(bank.ids))
    assert Voice("v3", 1.1, 0.8) in bank
    assert bank.get("v3_r1.1_p0.8") == Voice("v3", 1.1, 0.8)


def test_bank_order_does_not_depend_on_input_order(bank):
    assert VoiceBank(reversed(bank.speakers)).ids == bank.ids


def test_sample_is_deterministic_and_seed_dependent(bank):
    picked = bank.sample(7, seed=3)
    assert len(picked) == 7 and set(picked.ids) <= set(bank.ids)
    assert picked.ids == bank.sample(7, seed=3).ids
    assert picked.ids != bank.sample(7, seed=4).ids
    with pytest.raises(ConfigError, match=r"argument 'n' must be between 1 and \d+ \(the bank's size\)"):
        bank.sample(len(bank) + 1)


def test_assign_depends_on_item_and_seed_not_on_order(bank):
    ids = [f"q{i}" for i in range(200)]
    forward = {item: bank.assign(item, seed=1) for item in ids}
    backward = {item: bank.assign(item, seed=1) for item in reversed(ids)}
    assert forward == backward
    assert len(set(forward.values())) > len(bank) // 2  # spread over the bank
    other_seed = {item: bank.assign(item, seed=2) for item in ids}
    assert sum(forward[i] != other_seed[i] for i in ids) > 150


@pytest.mark.parametrize("group_by", ["voice", "speaker"])
def test_split_parts_are_disjoint_cover_the_bank_and_follow_fractions(bank, group_by):
    parts = bank.split({"train": 0.8, "test": 0.2}, seed=5, group_by=group_by)
    train, test = parts["train"], parts["test"]
    assert not set(train.ids) & set(test.ids)
    assert set(train.ids) | set(test.ids) == set(bank.ids)
    assert len(test) == pytest.approx(0.2 * len(bank), abs=6)
    if group_by == "voice":
        assert not {v.name for v in train} & {v.name for v in test}
    assert bank.split({"train": 0.8, "test": 0.2}, seed=5, group_by=group_by)["test"].ids == test.ids


def test_split_gives_every_part_a_group_even_for_tiny_shares(bank):
    parts = bank.split({"a": 0.98, "b": 0.01, "c": 0.01}, seed=0)
    assert all(len(part) > 0 for part in parts.values())
    with pytest.raises(ConfigError, match="cannot split 1 voices into the 2 parts of argument 'fractions'"):
        VoiceBank([Voice("x")]).split({"a": 0.5, "b": 0.5})


def test_train_and_test_runs_never_share_speakers_whatever_their_seed_and_size(bank):
    fractions = {"train": 0.7, "test": 0.3}
    train = choose_speakers(bank, part="train", fractions=fractions, split_seed=9, n=20, seed=1)
    test = choose_speakers(bank, part="test", fractions=fractions, split_seed=9, n=5, seed=2)
    assert len(train) == 20 and len(test) == 5
    assert not {v.name for v in train} & {v.name for v in test}
    assert test.describe()["split"]["part"] == "test" and test.describe()["sample"] == {"n": 5, "seed": 2}
    with pytest.raises(ConfigError, match="argument 'part' must be one of the split's parts .*, got 'dev'"):
        choose_speakers(bank, part="dev", fractions=fractions)


def test_parse_fractions():
    assert parse_fractions("train=0.8, test=0.2") == {"train": 0.8, "test": 0.2}
    for bad in ("0.8,0.2", "train=x", "train=0.5,train=0.5", "a=-1"):
        with pytest.raises(ConfigError, match="argument 'text' must be NAME=SHARE,NAME=SHARE"):
            parse_fractions(bad)
