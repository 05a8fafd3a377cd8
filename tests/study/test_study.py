"""`speechgap study`: one point per checkpoint, the regression of the gap on each measure."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from scipy.stats import linregress

from speechgap.cli import main
from speechgap.errors import ConfigError
from speechgap.study import MEASURES, CheckpointPoint, read_zoo, regress_points


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    from speechgap.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("zoo")
    entries = []
    for k in range(4):
        name = f"{'full' if k < 2 else 'lora'}-{k}"
        build_tiny_model("qwen2_audio", root / "zoo" / name, seed=k)
        entries.append({"name": name, "variant": name.split("-")[0], "step": k})
    (root / "zoo" / "zoo.json").write_text(json.dumps({"checkpoints": entries}))
    rng = np.random.default_rng(0)
    (root / "data" / "audio").mkdir(parents=True)
    with open(root / "data" / "manifest.jsonl", "w") as handle:
        for i in range(4):
            sf.write(root / "data" / "audio" / f"q{i}.wav", 0.2 * rng.standard_normal(9000 + 2000 * i), 16000)
            handle.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "text": f"Pick {i} now\nA. red\nB. blue\nC. green\nD. black",
                        "audio": f"audio/q{i}.wav",
                        "choices": ["red", "blue", "green", "black"],
                        "answer": "ABCD"[i],
                    }
                )
                + "\n"
            )
    return root


def test_study_writes_a_point_per_checkpoint_and_their_regressions(zoo, tmp_path):
    out = tmp_path / "study"
    code = main(
        ["study", "--zoo", str(zoo / "zoo"), "--data", str(zoo / "data" / "manifest.jsonl"), "--out", str(out),
         "--no-progress"]
    )  # fmt: skip
    assert code == 0
    study = json.loads((out / "study.json").read_text())
    points = study["points"]
    assert [p["name"] for p in points] == ["full-0", "full-1", "lora-2", "lora-3"]
    for point in points:
        evaluation = json.loads((out / "checkpoints" / point["name"] / "eval" / "summary.json").read_text())
        assert point["gap"] == pytest.approx(evaluation["overall"]["gap"])
        analysis = json.loads((out / "checkpoints" / point["name"] / "analysis" / "summary.json").read_text())
        assert point["measures"]["aps_cos"] == pytest.approx(analysis["per_sample"]["aps_cos"]["mean"])
    # the regressions are those of the written points (their numbers: test_regress_points_equals_scipy)
    expected = regress_points([CheckpointPoint(**p) for p in points])
    assert study["regressions"] == json.loads(json.dumps(expected))
    assert set(study["regressions"]) == {"all", "full", "lora"}
    # two points per variant are too few for a regression: said, not faked
    assert study["regressions"]["full"]["aps_cos"]["r2"] is None
    assert study["provenance"]["model"]["zoo"].endswith("zoo")


def _points(rng: np.random.Generator, variant: str, count: int) -> list[CheckpointPoint]:
    points = []
    for k in range(count):
        text = float(rng.uniform(0.5, 0.9))
        speech = float(rng.uniform(0.2, text))
        points.append(
            CheckpointPoint(
                name=f"{variant}-{k}",
                variant=variant,
                path=f"/zoo/{variant}-{k}",
                step=k,
                text_accuracy=text,
                speech_accuracy=speech,
                gap=text - speech,
                measures={name: float(rng.normal()) for name in MEASURES},
            )
        )
    return points


def test_regress_points_equals_scipy_linregress_per_variant_and_for_all():
    rng = np.random.default_rng(3)
    points = _points(rng, "full", 5) + _points(rng, "lora", 4) + _points(rng, "probe", 2)
    regressions = regress_points(points)
    assert set(regressions) == {"all", "full", "lora", "probe"}
    for group in ("all", "full", "lora"):
        members = points if group == "all" else [p for p in points if p.variant == group]
        for name in MEASURES:
            reference = linregress([p.measures[name] for p in members], [p.gap for p in members])
            fit = regressions[group][name]
            assert fit["n"] == len(members)
            assert fit["r2"] == pytest.approx(reference.rvalue**2, rel=1e-9)
            assert fit["slope"] == pytest.approx(reference.slope, rel=1e-9)
            assert fit["intercept"] == pytest.approx(reference.intercept, rel=1e-9)
            assert fit["p_value"] == pytest.approx(reference.pvalue, rel=1e-9)
    assert all(fit == {"n": 2, "r2": None, "note": "too few points or no spread"}
               for fit in regressions["probe"].values())  # fmt: skip


def test_regress_points_without_spread_is_not_faked():
    rng = np.random.default_rng(4)
    points = _points(rng, "full", 4)
    for point in points:
        point.measures["aps_cos"] = 0.5
    flat_gap = _points(rng, "lora", 3)
    for point in flat_gap:
        point.gap = 0.1
    regressions = regress_points(points + flat_gap)
    assert regressions["full"]["aps_cos"]["r2"] is None
    assert regressions["full"]["mean_cosine"]["r2"] is not None
    assert all(fit["r2"] is None for fit in regressions["lora"].values())
    assert all(fit["r2"] is not None for fit in regressions["all"].values())


def _write_zoo(folder, entries, models):
    for name in models:
        (folder / name).mkdir(parents=True)
        (folder / name / "config.json").write_text("{}")
    (folder / "zoo.json").write_text(json.dumps({"checkpoints": entries}))


def test_zoo_without_enough_checkpoints_is_refused(tmp_path):
    entries = [
        {"name": "a", "variant": "full"},
        {"name": "b", "variant": "lora", "path": "models/b"},
        {"name": "base", "variant": "full", "kind": "text"},  # a base LM is not a speech checkpoint
    ]
    _write_zoo(tmp_path, entries, ["a", "models/b", "base"])
    with pytest.raises(ConfigError, match="at least 3 speech checkpoints, found 2"):
        read_zoo(tmp_path)


def test_zoo_with_three_checkpoints_is_read_with_resolved_paths(tmp_path):
    entries = [{"name": n, "variant": "full", "step": k} for k, n in enumerate("abc")]
    _write_zoo(tmp_path, entries, ["a", "b", "c"])
    read = read_zoo(tmp_path)
    assert [e["name"] for e in read] == ["a", "b", "c"]
    assert [e["path"] for e in read] == [str(tmp_path / n) for n in "abc"]
    assert [e["step"] for e in read] == [0, 1, 2]


def test_zoo_with_a_missing_model_or_no_zoo_json_is_refused(tmp_path):
    (tmp_path / "zoo.json").write_text(json.dumps({"checkpoints": [{"name": "a", "variant": "full"}]}))
    with pytest.raises(ConfigError, match="no model"):
        read_zoo(tmp_path)
    with pytest.raises(ConfigError, match="no zoo.json"):
        read_zoo(tmp_path / "missing")
