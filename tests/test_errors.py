"""Library errors speak Python: a bad setting names the argument (``argument 'k'``), never a CLI flag.

The CLI turns ``argument 'name'`` into ``--name``; the library must not know its flags.
"""

import re

import numpy as np
import pytest

from speechgap.compression import (
    AffinityPooling,
    MergePlan,
    OracleCompression,
    TokenMerging,
    affinity_groups,
    dual_affinity_plan,
)
from speechgap.data import load_pairs, parse_data_spec
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError
from speechgap.interventions import AngleProjection, split_for_calibration
from speechgap.interventions.calibration import resolve_layer
from speechgap.interventions.redundancy import parse_repeats
from speechgap.metrics import path_consistency
from speechgap.metrics.correlation import pearson
from speechgap.models.capture import capture_dataset
from speechgap.models.tiny import build_tiny_model
from speechgap.scoring import JudgeConfig, parse_choice, score_response
from speechgap.synthesis.quality import asr_wer_filter, load_transcriber
from speechgap.synthesis.voices import parse_fractions


def _dataset(n: int) -> PairedDataset:
    samples = [PairedSample(id=f"x{i}", text="a b", audio=np.zeros(160, np.float32)) for i in range(n)]
    return PairedDataset.from_samples(samples, {"loader": "memory"})


BAD_CALLS = [
    # compression
    ("retention", lambda: OracleCompression("merge", retention=0)),
    ("method", lambda: OracleCompression("shuffle", retention=0.5)),
    ("retention", lambda: TokenMerging(retention=2)),
    ("order_preserving", lambda: TokenMerging(retention=0.5, order_preserving=False)),
    ("omega", lambda: AffinityPooling(tau=0.8, omega=0)),
    ("rule", lambda: AffinityPooling(tau=0.8, rule="median")),
    ("tau", lambda: affinity_groups(np.ones((3, 2)), tau=float("nan"))),
    ("position", lambda: MergePlan(position="middle")),
    ("deep_layer", lambda: dual_affinity_plan(4, deep_layer=9)),
    # interventions
    ("k", lambda: AngleProjection(k=0)),
    ("path", lambda: AngleProjection(path="viterbi")),
    ("apply_layer", lambda: AngleProjection(apply_layer=-1)),
    ("layer", lambda: resolve_layer("middle", 4)),
    ("fraction", lambda: split_for_calibration(_dataset(4), 1.5)),
    ("repeats", lambda: parse_repeats("0,2")),
    # data
    ("loader", lambda: load_pairs("data.jsonl", loader="vb")),
    ("limit", lambda: load_pairs("data.jsonl", limit=-3)),
    ("spec", lambda: parse_data_spec("data.jsonl?colour=red")),
    ("source", lambda: load_pairs("data.jsonl?colour=red")),
    # synthesis
    ("max_wer", lambda: asr_wer_filter(lambda audio, rate: "", max_wer=-1)),
    ("spec", lambda: load_transcriber("no_colon")),
    ("text", lambda: parse_fractions("0.8")),
    # scoring
    ("protocol", lambda: parse_choice("B", protocol="lenient")),
    ("mode", lambda: score_response("text", "bleu")),
    ("url", lambda: JudgeConfig(url="ftp://judge", model="m")),
    ("retries", lambda: JudgeConfig(url="http://judge", model="m", retries=-1)),
    # metrics
    ("n_boot", lambda: pearson([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0], n_boot=0)),
    ("path_a", lambda: path_consistency([1, 2], [1, 2, 3])),
    # models
    ("storage_dtype", lambda: capture_dataset(None, None, "unused", storage_dtype="int4")),
    ("family", lambda: build_tiny_model("no_such_family", "unused")),
]


@pytest.mark.parametrize(
    ("name", "call"), BAD_CALLS, ids=[f"{i}-{name}" for i, (name, _) in enumerate(BAD_CALLS)]
)
def test_bad_setting_names_the_argument_not_a_flag(name, call):
    with pytest.raises(ConfigError, match=f"argument '{re.escape(name)}'") as raised:
        call()
    assert "--" not in str(raised.value)


def test_two_settings_in_one_message_are_both_named_as_arguments():
    with pytest.raises(ConfigError) as raised:
        parse_choice("B", n_choices=4, choices=["x", "y", "z"])
    assert "argument 'choices'" in str(raised.value) and "argument 'n_choices'" in str(raised.value)


def test_messages_keep_what_was_given_and_what_is_allowed():
    with pytest.raises(ConfigError, match=r"argument 'retention' must be in \(0, 1\], got 1.5"):
        TokenMerging(retention=1.5)
    with pytest.raises(ConfigError, match=r"argument 'k' must be >= 1, got 0"):
        AngleProjection(k=0)
    with pytest.raises(ConfigError, match=r"argument 'method' must be one of .*'merge'.*, got 'shuffle'"):
        OracleCompression("shuffle", retention=0.5)
