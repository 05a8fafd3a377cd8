"""Bad inputs are refused where they enter, with an error that says where: manifests with lone surrogates,
control characters or an answer outside the choices; audio holding NaN or louder than full scale;
merge and intervention settings that mean nothing; output folders that are files or busy; and similarity
measures that overflowed to zeros on huge (or underflowed on tiny) states.

Every bad file is written in ``tmp_path``; every CLI case checks the exit status 2, a message naming the
file, line and field (or the flag), and that no traceback was printed. CLI cases that must be refused before
the model loads name a model folder that does not exist: a later refusal would complain about the model.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
from decimal import Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from speechgap.cli import main
from speechgap.compression.affinity import affinity_groups
from speechgap.compression.experiment import CompressionSpec, check_timing, run_compression, sweep
from speechgap.compression.plan import AffinityPooling, MergePlan
from speechgap.compression.run import measure_speed
from speechgap.data.audio import MAX_PEAK, load_audio
from speechgap.data.load import load_pairs
from speechgap.data.manifest import ManifestRecord, read_manifest, write_manifest
from speechgap.data.speechmmlu import load_speechmmlu
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.data.voicebench import load_voicebench
from speechgap.errors import ConfigError, DataError
from speechgap.interventions.calibration import (
    CalibrationStats,
    StatisticalCalibration,
    split_for_calibration,
)
from speechgap.interventions.run import InterventionSettings, run_intervention
from speechgap.io import LOCK_FILE
from speechgap.metrics import (
    CrossLayerCKA,
    cosine_matrix,
    cross_layer_cka,
    euclidean_matrix,
    linear_cka,
    mutual_knn,
    pooled_similarity,
    standardized_l2,
    token_norms,
)

MISSING_MODEL = "/nonexistent/speechgap-model"


def tone(seconds: float = 0.25, sr: int = 16000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def write_manifest_lines(folder: Path, records: list[dict], *, audio: np.ndarray | None = None) -> Path:
    """``folder/manifest.jsonl`` with one line per record (JSON-escaped, so "\\ud800" stays an escape) and
    ``folder/a.wav`` for every record that names no audio."""
    sf.write(folder / "a.wav", tone() if audio is None else audio, 16000, subtype="FLOAT")
    lines = [json.dumps({"audio": "a.wav", **record}) for record in records]
    path = folder / "manifest.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    return path


def good(index: int = 0, **fields) -> dict:
    record = {
        "id": f"q{index}",
        "text": f"Which gas {index}?",
        "choices": ["oxygen", "helium"],
        "answer": "B",
    }
    record.update(fields)
    return record


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_refused(status: int, err: str, *needles: str) -> None:
    assert status == 2
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


# ------------------------------------------------------------------------------------ manifest text fields


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (good(text="Which \ud800 gas?"), "text"),
        (good(id="q\udfff"), "id"),
        (good(answer="\ud800"), "answer"),
        (good(choices=["oxygen", "he\ud83dlium"]), "choices[1]"),
        (good(subset="sci\ud800"), "subset"),
        (good(speaker="\udc00"), "speaker"),
        (good(word_times=[["ga\ud800s", 0.0, 0.1]]), "word_times[0]"),
        (good(meta={"note": "x\ud800"}), "meta.note"),
        (good(source="y\udfff"), "source"),  # an unknown top-level field, folded into meta
    ],
)
def test_a_lone_surrogate_is_refused_naming_file_line_and_field(tmp_path, record, field):
    path = write_manifest_lines(tmp_path, [good(0), record])
    with pytest.raises(DataError, match="lone surrogate") as raised:
        read_manifest(path)
    assert (raised.value.path, raised.value.line, raised.value.field) == (str(path), 2, field)


@pytest.mark.parametrize(
    ("text", "code"),
    [("Which\x00 gas?", "U+0000 (NUL)"), ("Which\x1b[31m gas?", "U+001B"), ("Which\x85gas", "U+0085")],
)
def test_control_characters_are_refused_in_text_fields(tmp_path, text, code):
    path = write_manifest_lines(tmp_path, [good(0, text=text)])
    with pytest.raises(DataError, match=re.escape("control character " + code)):
        read_manifest(path)
    with pytest.raises(DataError, match=r"field 'choices\[0\]'"):
        read_manifest(write_manifest_lines(tmp_path, [good(0, choices=[text, "x"])]))


def test_ordinary_text_passes_unchanged(tmp_path):
    text = "Line one\n\tindented: café, 中文, 😀 (a real surrogate pair)\r\nend"
    path = write_manifest_lines(tmp_path, [good(0, text=text, meta={"raw": "\x00 is fine in meta"})])
    sample = read_manifest(path)[0]
    assert sample.text == text and sample.meta["raw"].startswith("\x00")


def test_data_cli_names_the_surrogate_line_without_a_traceback(tmp_path, capsys):
    path = write_manifest_lines(tmp_path, [good(0), good(1), good(2, text="bad \ud800")])
    status, _, err = run_cli(["data", "--data", str(path)], capsys)
    assert_refused(status, err, f"{path}:3", "field 'text'", "lone surrogate")


def test_eval_refuses_the_manifest_before_loading_the_model(tmp_path, capsys):
    path = write_manifest_lines(tmp_path, [good(0, text="NUL\x00here")])
    argv = ["eval", "--model", MISSING_MODEL, "--data", str(path), "--out", str(tmp_path / "out")]
    status, _, err = run_cli(argv, capsys)
    assert_refused(status, err, f"{path}:1", "field 'text'", "U+0000 (NUL)")


# ---------------------------------------------------------------------------------- answers and choices


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"choices": ["a", "b", "c", "d"], "answer": "Z"}, "not one of the option letters A-D"),
        ({"choices": ["a", "b", "c", "d"], "answer": "E"}, "not one of the option letters A-D"),
        ({"choices": ["a", "b"], "answer": "2"}, r"answer index 2 is outside 0..1"),
        ({"choices": ["a", "b"], "answer": "helium"}, "not one of the option letters A-B"),
    ],
)
def test_an_answer_outside_the_choices_is_refused_at_load(tmp_path, fields, message):
    path = write_manifest_lines(tmp_path, [good(0), good(1, **fields)])
    with pytest.raises(DataError, match=message) as raised:
        read_manifest(path)
    assert (raised.value.path, raised.value.line, raised.value.field) == (str(path), 2, "answer")


@pytest.mark.parametrize("answer", ["D", "d", "(C)", " B ", "0", "3"])
def test_answers_that_scoring_reads_are_accepted(tmp_path, answer):
    path = write_manifest_lines(tmp_path, [good(0, choices=["a", "b", "c", "d"], answer=answer)])
    assert read_manifest(path)[0].answer == answer


@pytest.mark.parametrize("choices", [[], ["only"], ["a", ""], ["a", "  "], [f"o{i}" for i in range(27)]])
def test_choices_must_be_two_to_26_non_empty_options(tmp_path, choices):
    path = write_manifest_lines(tmp_path, [good(0, choices=choices, answer=None)])
    with pytest.raises(DataError, match="2 to 26 non-empty strings") as raised:
        read_manifest(path)
    assert raised.value.field == "choices"


def test_writing_a_manifest_applies_the_same_checks(tmp_path):
    record = ManifestRecord(id="q", text="t", audio="a.wav", answer="Z", choices=["a", "b", "c", "d"])
    with pytest.raises(DataError, match="field 'answer'"):
        write_manifest(tmp_path / "m.jsonl", [record])
    assert not (tmp_path / "m.jsonl").exists()


def test_data_cli_names_the_bad_answer_line(tmp_path, capsys):
    path = write_manifest_lines(tmp_path, [good(0), good(1, choices=["a", "b", "c", "d"], answer="Z")])
    status, _, err = run_cli(["data", "--data", str(path)], capsys)
    assert_refused(status, err, f"{path}:2", "field 'answer'", "'Z'")


def _voicebench_mmsu(root: Path, prompt: str, reference: str) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = __import__("io").BytesIO()
    sf.write(buffer, tone(), 16000, format="WAV")
    table = pa.table(
        {
            "audio": [{"bytes": buffer.getvalue(), "path": "0.wav"}],
            "prompt": [prompt],
            "reference": [reference],
            "id": ["m0"],
        }
    )
    (root / "mmsu").mkdir(parents=True)
    pq.write_table(table, root / "mmsu" / "biology-00000-of-00001.parquet")
    return root


def test_voicebench_refuses_a_reference_outside_the_options(tmp_path):
    root = _voicebench_mmsu(tmp_path, "Which? A. one B. two C. three D. four", "E")
    with pytest.raises(DataError, match="not an option letter of 4 options") as raised:
        load_voicebench(root, subset="mmsu")
    assert raised.value.field == "reference" and "row 0" in str(raised.value)


def test_voicebench_without_parsed_options_still_allows_only_a_to_d(tmp_path):
    root = _voicebench_mmsu(tmp_path, "Which one is it, first or second?", "F")
    with pytest.raises(DataError, match="A-D"):
        load_voicebench(root, subset="mmsu")


def test_voicebench_refuses_a_nul_in_the_prompt(tmp_path):
    root = _voicebench_mmsu(tmp_path, "Which?\x00 A. one B. two C. three D. four", "A")
    with pytest.raises(DataError, match="NUL") as raised:
        load_voicebench(root, subset="mmsu")
    assert raised.value.field == "prompt"


def test_speechmmlu_refuses_an_answer_beyond_the_parsed_options(tmp_path):
    row = {
        "id": "astro_0",
        "subject": "astronomy",
        "question_text": "Question: which? Option A: alpha. Option B: beta. Option C: gamma.",
        "question_audio": "audio/astro_0.mp3",
        "voice_id": "v1",
        "answer": 3,
    }
    (tmp_path / "astronomy.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match="option index 3 is outside the 3 options") as raised:
        load_speechmmlu(tmp_path, check_audio=False)
    assert raised.value.field == "answer" and "astronomy.jsonl row 0" in str(raised.value)


# ------------------------------------------------------------------------------------------------- audio


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_a_float_wav_is_refused_naming_the_file(tmp_path, bad):
    audio = tone()
    audio[100] = bad
    sf.write(tmp_path / "bad.wav", audio, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="1 NaN or infinite samples") as raised:
        load_audio(tmp_path / "bad.wav")
    assert raised.value.path == str(tmp_path / "bad.wav")


def test_nan_in_one_channel_of_a_stereo_wav_is_refused(tmp_path):
    stereo = np.stack([tone(), tone()], axis=1)
    stereo[5, 1] = np.nan
    sf.write(tmp_path / "stereo.wav", stereo, 22050, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN or infinite"):
        load_audio(tmp_path / "stereo.wav")


def test_a_float_wav_with_peak_770_is_refused_not_clipped(tmp_path):
    audio = tone()
    audio[200] = 770.0
    sf.write(tmp_path / "loud.wav", audio, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"louder than full scale: peak amplitude 770 exceeds 1\.5") as raised:
        load_audio(tmp_path / "loud.wav")
    message = str(raised.value)
    assert raised.value.path == str(tmp_path / "loud.wav")
    assert "refused rather than clipped" in message and "divide it by 32768" in message
    with pytest.raises(DataError, match="louder than full scale"):
        load_audio((audio, 16000))


def test_codec_overshoot_within_the_tolerance_is_kept_unchanged(tmp_path):
    audio = tone(amplitude=1.2)
    sf.write(tmp_path / "hot.wav", audio, 16000, subtype="FLOAT")
    loaded = load_audio(tmp_path / "hot.wav")
    assert np.array_equal(loaded, audio) and float(np.abs(loaded).max()) > 1.0
    assert float(np.abs(load_audio((tone(amplitude=MAX_PEAK), 16000))).max()) == pytest.approx(MAX_PEAK)
    full_scale = (np.sign(tone()) * 32767).astype(np.int16)  # integer PCM can never exceed full scale
    assert float(np.abs(load_audio((full_scale, 16000))).max()) < 1.0


def test_data_cli_names_the_sample_and_file_whose_audio_is_nan(tmp_path, capsys):
    audio = tone()
    audio[:10] = np.nan
    path = write_manifest_lines(tmp_path, [good(0)], audio=audio)
    status, out, err = run_cli(["data", "--data", str(path)], capsys)
    assert status == 2 and "Traceback" not in out + err
    assert "speechgap data: error: sample 0 (id 'q0') does not load" in err and str(tmp_path / "a.wav") in err
    assert f"{path}:1, field 'audio'" in err and "NaN" in err
    assert out == ""


def test_a_manifest_sample_with_loud_audio_names_wav_and_manifest_line(tmp_path):
    path = write_manifest_lines(tmp_path, [good(0)], audio=tone() * 770)
    dataset = read_manifest(path)
    with pytest.raises(DataError, match="louder than full scale") as raised:
        dataset[0]
    assert str(tmp_path / "a.wav") in str(raised.value) and f"{path}:1" in str(raised.value)


# ------------------------------------------------------------------------------------- compression settings


@pytest.mark.parametrize(
    ("changes", "argument", "message"),
    [
        ({"tau": -1.5}, "tau", "no cosine is below -1"),
        ({"tau": float("nan")}, "tau", "finite cosine threshold"),
        ({"tau": float("inf")}, "tau", "finite cosine threshold"),
        ({"deep_tau": -2.0}, "deep_tau", "cosine threshold in [-1, 1]"),
        ({"omega": 0}, "omega", "must be >= 1"),
        ({"omega": 1.5}, "omega", "must be an integer"),
        ({"deep_omega": -3}, "deep_omega", "must be >= 1"),
        ({"retention": 0.0}, "retention", "must be in (0, 1]"),
        ({"retention": 1.5}, "retention", "must be in (0, 1]"),
        ({"retention": float("nan")}, "retention", "must be in (0, 1]"),
        ({"layer": -1}, "layer", "must be >= 0"),
        ({"deep_layer": 0}, "deep_layer", "must be >= 1"),
        ({"rule": "median"}, "rule", "must be one of"),
        ({"position": "last"}, "position", "must be one of"),
        ({"seed": 0.5}, "seed", "must be an integer"),
    ],
)
def test_compression_spec_refuses_meaningless_settings(changes, argument, message):
    with pytest.raises(ConfigError) as raised:
        CompressionSpec(**changes)
    assert f"argument '{argument}'" in str(raised.value) and message in str(raised.value)


def test_compression_spec_keeps_the_meaningful_edges():
    assert CompressionSpec(tau=1.5).tau == 1.5  # above 1: merge nothing (tested equal to the model)
    assert CompressionSpec(tau=-1, deep_tau=-1.0).tau == -1.0  # merge everything not exactly opposite
    assert CompressionSpec(method="tome", retention=1).retention == 1.0
    with pytest.raises(ConfigError, match="argument 'tau'"):
        AffinityPooling(-1.01)
    with pytest.raises(ConfigError, match="argument 'tau'"):
        affinity_groups(np.ones((3, 2)), float("nan"))


def test_a_dap_sweep_names_the_tau_whose_deep_tau_leaves_the_range():
    with pytest.raises(ConfigError) as raised:
        sweep(CompressionSpec(method="dap"), taus=[0.5, -1.0])
    message = str(raised.value)
    assert message.startswith("argument 'sweep_tau' gives a refused variant (tau -1.0, deep_tau -1.1")
    assert "offset -0.1" in message and "argument 'deep_tau'" in message


def test_timing_settings_are_refused_not_rounded_up():
    check_timing(0, 1)
    for timing_samples, repeats, argument in (
        (-1, 3, "timing_samples"),
        (4, 0, "repeats"),
        (4, 1.5, "repeats"),
    ):
        with pytest.raises(ConfigError, match=f"argument '{argument}'"):
            check_timing(timing_samples, repeats)
    with pytest.raises(ConfigError, match="argument 'repeats' must be >= 1, got 0"):
        measure_speed(SimpleNamespace(), MergePlan(), [], repeats=0)


def _compress(tmp_path, *extra: str) -> list[str]:
    return [
        "compress", "--model", MISSING_MODEL, "--data", str(tmp_path / "none.jsonl"),
        "--out", str(tmp_path / "out"), "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (("--tau", "-1"), None),  # accepted: the refusal must then come from the missing data
        (("--tau", "-1.5"), ("--tau must be a cosine threshold in [-1, 1]", "got -1.5")),
        (("--tau", "nan"), ("--tau must be a finite cosine threshold",)),
        (("--deep-tau", "-3"), ("--deep-tau must be a cosine threshold",)),
        (("--omega", "0"), ("--omega (the look-back window) must be >= 1, got 0",)),
        (("--method", "tome", "--retention", "0"), ("--retention must be in (0, 1], got 0.0",)),
        (("--method", "oracle-merge", "--retention", "nan"), ("--retention must be in (0, 1]",)),
        (("--repeats", "0"), ("--repeats must be >= 1, got 0",)),
        (("--timing-samples", "-1"), ("--timing-samples must be >= 0, got -1",)),
        (("--sweep-tau", "0.9,-1.2"), ("--sweep-tau gives a refused variant", "--tau must be a cosine")),
        (("--method", "tome", "--sweep-layers", "1.5"), ("--sweep-layers takes comma-separated integers",)),
    ],
)
def test_compress_cli_refuses_bad_settings_before_loading_the_model(tmp_path, capsys, extra, needles):
    status, _, err = run_cli(_compress(tmp_path, *extra), capsys)
    if needles is None:
        assert_refused(status, err, "none.jsonl")
    else:
        assert_refused(status, err, *needles)
        assert MISSING_MODEL not in err


def _intervene(tmp_path, method: str, *extra: str) -> list[str]:
    return [
        "intervene", "--model", MISSING_MODEL, "--data", str(tmp_path / "none.jsonl"),
        "--out", str(tmp_path / "out"), "--method", method, "--no-progress", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "extra", "needle"),
    [
        ("angle", ("--k", "0"), "--k must be >= 1, got 0"),
        ("angle", ("--path-layer", "-1"), "--path-layer must be >= 0, got -1"),
        ("calibration", ("--calibration-fraction", "1.5"), "--calibration-fraction must be in (0, 1)"),
        ("calibration", ("--calibration-fraction", "nan"), "--calibration-fraction must be in (0, 1)"),
        ("calibration", ("--calibration-layer", "middle"), "--calibration-layer must be input, output"),
        (
            "calibration",
            ("--calibration-stats", "/nonexistent/stats.safetensors"),
            "--calibration-stats: no such",
        ),
        ("redundancy", ("--repeats", "0,2"), "--repeats must be integers >= 1"),
        ("oracle-merge", ("--retention", "0"), "--retention must be in (0, 1], got 0.0"),
        ("oracle-merge", ("--sweep-layers", "x"), "--sweep-layers takes comma-separated integers"),
    ],
)
def test_intervene_cli_refuses_bad_settings_before_loading_the_model(tmp_path, capsys, method, extra, needle):
    status, _, err = run_cli(_intervene(tmp_path, method, *extra), capsys)
    assert_refused(status, err, needle)
    assert MISSING_MODEL not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--method", "dap", "--retention", "0.5"), "--retention is not a setting of method 'dap'"),
        (("--method", "ap-input", "--deep-tau", "0.6"), "--deep-tau is not a setting of method 'ap-input'"),
        (("--method", "ap-deep", "--tau", "0.6"), "--tau is not a setting of method 'ap-deep'"),
        (("--method", "oracle-merge", "--tau", "0.6"), "--tau is not a setting of method 'oracle-merge'"),
        (("--method", "tome", "--omega", "2"), "--omega is not a setting of method 'tome'"),
        (
            ("--method", "oracle-uniform", "--rule", "mean"),
            "--rule is not a setting of method 'oracle-uniform'",
        ),
    ],
)
def test_compress_cli_refuses_a_flag_the_method_does_not_read(tmp_path, capsys, args, needle):
    status, _, err = run_cli(_compress(tmp_path, *args), capsys)
    assert_refused(status, err, needle, "its settings:")
    assert MISSING_MODEL not in err


@pytest.mark.parametrize(
    ("method", "extra", "needle"),
    [
        ("angle", ("--retention", "0.5"), "--retention is not a setting of method 'angle'"),
        (
            "length",
            ("--calibration-layer", "output"),
            "--calibration-layer is not a setting of method 'length'",
        ),
        ("calibration", ("--k", "2"), "--k is not a setting of method 'calibration'"),
        ("redundancy", ("--layer", "1"), "--layer is not a setting of method 'redundancy'"),
        ("angle", ("--repeats", "1,2"), "--repeats is not a setting of method 'angle'"),
        ("oracle-merge", ("--critical", "all"), "--critical is not a setting of method 'oracle-merge'"),
        ("dap", ("--retention", "0.5"), "--retention is not a setting of method 'dap'"),
    ],
)
def test_intervene_cli_refuses_a_flag_the_method_does_not_read(tmp_path, capsys, method, extra, needle):
    status, _, err = run_cli(_intervene(tmp_path, method, *extra), capsys)
    assert_refused(status, err, needle)
    assert MISSING_MODEL not in err


@pytest.mark.parametrize(
    ("verb", "kwargs", "needle"),
    [
        (
            "compress",
            {"method": "dap", "retention": 0.5},
            "argument 'retention' is not a setting of method 'dap'",
        ),
        ("compress", {"method": "tome", "tau": 0.5}, "argument 'tau' is not a setting of method 'tome'"),
        (
            "intervene",
            {"method": "dap", "retention": 0.5},
            "argument 'retention' is not a setting of method 'dap'",
        ),
        ("intervene", {"method": "oracle-merge", "deep_tau": 0.5}, "argument 'deep_tau' is not a setting"),
    ],
)
def test_python_verbs_refuse_a_setting_the_method_does_not_read(tmp_path, verb, kwargs, needle):
    import speechgap

    call = getattr(speechgap, verb)
    args = (MISSING_MODEL, str(tmp_path / "none.jsonl"))
    if verb == "intervene":
        args = (*args, kwargs.pop("method"))
    with pytest.raises(ConfigError, match=re.escape(needle)):
        call(*args, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_the_settings_each_merging_method_reads_build_its_plan():
    """Every setting a method is said to read changes its merge plan (none is listed for nothing), and
    every setting it is said not to read leaves the plan unchanged."""
    from speechgap.compression.experiment import METHOD_SETTINGS

    changed = {
        "tau": 0.5, "omega": 2, "deep_layer": 2, "deep_tau": 0.4, "deep_omega": 2, "rule": "mean",
        "position": "mean", "layer": 1, "retention": 0.5, "kv_tau": 0.5, "kv_ratio": 0.1, "seed": 7,
    }  # fmt: skip
    for method, reads in METHOD_SETTINGS.items():
        base = CompressionSpec(method=method).plan(4).describe()
        for name, value in changed.items():
            plan = CompressionSpec(method=method, **{name: value}).plan(4).describe()
            if name == "seed" and method != "oracle-random":
                assert name in reads  # the bootstrap's seed: read by every run, not by the plan
                continue
            assert (plan != base) == (name in reads), (method, name)


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"k": 0}, "k"),
        ({"k": 2.5}, "k"),
        ({"k": True}, "k"),
        ({"apply_layer": -1}, "apply_layer"),
        ({"critical": "top"}, "critical"),
        ({"calibration_fraction": 0.0}, "calibration_fraction"),
        ({"calibration_fraction": 1.0}, "calibration_fraction"),
        ({"calibration_fraction": float("nan")}, "calibration_fraction"),
        ({"calibration_layer": -2}, "calibration_layer"),
        ({"split_seed": 0.5}, "split_seed"),
        ({"eps": -1e-6}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"eps": float("inf")}, "eps"),
        ({"repeats": (0,)}, "repeats"),
        ({"repeats": (2.5,)}, "repeats"),
        ({"calibration_positions": "some"}, "calibration_positions"),
    ],
)
def test_intervention_settings_refuse_meaningless_values(changes, argument):
    with pytest.raises(ConfigError, match=f"argument '{argument}'"):
        InterventionSettings(**changes)


def test_intervention_settings_keep_valid_values():
    settings = InterventionSettings(calibration_layer="3", calibration_fraction=0.25, eps=0.0, repeats="4,2")
    assert settings.repeats == (1, 2, 4) and settings.eps == 0.0 and settings.calibration_fraction == 0.25


def _stats(speech_std: np.ndarray) -> CalibrationStats:
    zeros = np.zeros_like(speech_std)
    return CalibrationStats(0, zeros, speech_std, zeros, np.ones_like(speech_std), 4, 4)


def test_calibration_refuses_eps_zero_where_a_speech_std_is_zero():
    StatisticalCalibration(_stats(np.ones(3)), eps=0.0)
    with pytest.raises(ConfigError, match=r"argument 'eps' must be > 0 .* 1 dimension\(s\) \(first: \[1\]\)"):
        StatisticalCalibration(_stats(np.array([1.0, 0.0, 2.0])), eps=0.0)
    with pytest.raises(ConfigError, match="argument 'eps'"):
        StatisticalCalibration(_stats(np.ones(3)), eps=float("inf"))


def test_calibration_split_refuses_nan_fraction_and_float_seed():
    samples = [PairedSample(id=f"s{i}", text="t", audio=tone()) for i in range(4)]
    data = PairedDataset.from_samples(samples)
    with pytest.raises(ConfigError, match="argument 'fraction' must be in"):
        split_for_calibration(data, float("nan"))
    with pytest.raises(ConfigError, match="argument 'seed'"):
        split_for_calibration(data, 0.5, seed=0.5)


# ---------------------------------------------------------------------------------------- output folders


def _foreign_lock(folder: Path) -> None:
    """A lock as another live run on this host leaves it (the parent process stands in for that run)."""
    folder.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getppid(), "host": socket.gethostname(), "started": "earlier", "command": "compress"}
    (folder / LOCK_FILE).write_text(json.dumps(owner))


STUB_ADAPTER = SimpleNamespace(num_layers=4)  # enough for the checks that come before any model work


def _one_sample() -> PairedDataset:
    return PairedDataset.from_samples([PairedSample(id="s0", text="t", audio=tone())])


def test_run_compression_refuses_an_out_dir_that_is_a_file_or_busy(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="argument 'out_dir': .* is an existing file"):
        run_compression(STUB_ADAPTER, _one_sample(), tmp_path / "file", [CompressionSpec()])
    _foreign_lock(tmp_path / "busy")
    with pytest.raises(ConfigError, match="is in use by another speechgap run"):
        run_compression(STUB_ADAPTER, _one_sample(), tmp_path / "busy", [CompressionSpec()])
    with pytest.raises(ConfigError, match="argument 'deep_layer' must be in 1..3"):
        run_compression(STUB_ADAPTER, _one_sample(), tmp_path / "deep", [CompressionSpec(deep_layer=7)])
    assert not (tmp_path / "deep").exists()  # refused before anything was written


def test_run_compression_holds_the_lock_for_the_whole_run(tmp_path, monkeypatch):
    import speechgap.compression.experiment as experiment

    seen = []

    def body(adapter, data, out_dir, *rest):
        seen.append(json.loads((out_dir / LOCK_FILE).read_text())["command"])
        return "done"

    monkeypatch.setattr(experiment, "_run_compression", body)
    assert run_compression(STUB_ADAPTER, _one_sample(), tmp_path / "run", [CompressionSpec()]) == "done"
    assert seen == ["compress"] and not (tmp_path / "run" / LOCK_FILE).exists()


def test_run_intervention_refuses_a_busy_out_dir_and_holds_the_lock(tmp_path, monkeypatch):
    import speechgap.interventions.run as run

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="argument 'out_dir': .* is an existing file"):
        run_intervention(STUB_ADAPTER, _one_sample(), "angle", tmp_path / "file")
    _foreign_lock(tmp_path / "busy")
    with pytest.raises(ConfigError, match="is in use by another speechgap run"):
        run_intervention(STUB_ADAPTER, _one_sample(), "redundancy", tmp_path / "busy")
    seen = []
    monkeypatch.setattr(run, "_run_method", lambda *args: seen.append((args[3] / LOCK_FILE).exists()))
    monkeypatch.setattr(run, "_run_redundancy", lambda *args: seen.append((args[2] / LOCK_FILE).exists()))
    run_intervention(STUB_ADAPTER, _one_sample(), "angle", tmp_path / "a")
    run_intervention(STUB_ADAPTER, _one_sample(), "redundancy", tmp_path / "r")
    assert seen == [True, True] and not (tmp_path / "a" / LOCK_FILE).exists()


@pytest.mark.parametrize("command", ["compress", "intervene"])
def test_cli_refuses_an_out_that_is_a_file_or_busy_before_loading_the_model(tmp_path, capsys, command):
    argv = _compress(tmp_path) if command == "compress" else _intervene(tmp_path, "angle")
    (tmp_path / "out").write_text("a file, not a folder")
    status, _, err = run_cli(argv, capsys)
    assert_refused(status, err, "--out:", "is an existing file")
    (tmp_path / "out").unlink()
    _foreign_lock(tmp_path / "out")
    status, _, err = run_cli(argv, capsys)
    assert_refused(status, err, "is in use by another speechgap run", "--out")


def test_cli_refuses_a_read_only_out(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: let the permission check see what a user would
        import speechgap.io

        real_access = os.access
        monkeypatch.setattr(
            speechgap.io.os,
            "access",
            lambda path, mode: False if Path(path) == folder and mode & os.W_OK else real_access(path, mode),
        )
    try:
        status, _, err = run_cli(_compress(tmp_path), capsys)
    finally:
        folder.chmod(0o755)
    assert_refused(status, err, "--out:", "is not writable")


# ----------------------------------------------------------------------------------- similarity overflow


def _exact_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b) from exact rational arithmetic: cos² = (a·b)² / (|a|²|b|²) has no range limit."""
    fa, fb = [Fraction(float(v)) for v in a], [Fraction(float(v)) for v in b]
    dot = sum(x * y for x, y in zip(fa, fb, strict=True))
    norms = sum(x * x for x in fa) * sum(y * y for y in fb)
    if norms == 0:
        return 0.0
    return math.copysign(math.sqrt(float(dot * dot / norms)), 1 if dot >= 0 else -1)


def _exact_sqrt(value: Fraction) -> float:
    with localcontext() as context:
        context.prec = 40
        return float((Decimal(value.numerator) / Decimal(value.denominator)).sqrt())


def _exact_distance(a: np.ndarray, b: np.ndarray) -> float:
    return _exact_sqrt(sum((Fraction(float(x)) - Fraction(float(y))) ** 2 for x, y in zip(a, b, strict=True)))


@pytest.fixture
def states():
    rng = np.random.default_rng(7)
    return rng.standard_normal((5, 6)), rng.standard_normal((4, 6))


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 3.7e-300, 1e160])
def test_cosine_matrix_of_huge_or_tiny_states_matches_exact_arithmetic(states, scale):
    a, b = states[0] * scale, states[1] * scale
    got = cosine_matrix(a, b)
    expected = np.array([[_exact_cosine(x, y) for y in b] for x in a])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
    assert np.abs(got).min() > 0  # no row collapsed to zero


@pytest.mark.parametrize("exponent", [660, -660, 1000, -1000])
def test_rescaling_by_a_power_of_two_leaves_every_measure_bit_identical(states, exponent):
    a, b = states
    big_a, big_b = np.ldexp(a, exponent), np.ldexp(b, exponent)
    assert np.array_equal(cosine_matrix(big_a, big_b), cosine_matrix(a, b))
    assert np.array_equal(euclidean_matrix(big_a, big_b), np.ldexp(euclidean_matrix(a, b), exponent))
    assert np.array_equal(token_norms(big_a[None]), np.ldexp(token_norms(a[None]), exponent))
    pooled, reference = pooled_similarity(big_a[None], big_b[None]), pooled_similarity(a[None], b[None])
    assert np.array_equal(pooled.cosine, reference.cosine)
    assert np.array_equal(pooled.euclidean, np.ldexp(reference.euclidean, exponent))
    assert np.array_equal(
        standardized_l2(big_a[None, :4], big_b[None]), standardized_l2(a[None, :4], b[None])
    )
    assert np.array_equal(
        standardized_l2(big_a[None], big_b[None], paired=False),
        standardized_l2(a[None], b[None], paired=False),
    )
    for debiased in (False, True):
        assert linear_cka(big_a[:4], big_b, debiased) == linear_cka(a[:4], b, debiased)
    assert mutual_knn(big_a, big_a[:, ::-1], k=2) == mutual_knn(a, a[:, ::-1], k=2)


def test_distances_and_norms_of_huge_states_match_exact_arithmetic(states):
    a, b = states[0] * 1e200, states[1] * 1e200
    expected = np.array([[_exact_distance(x, y) for y in b] for x in a])
    np.testing.assert_allclose(euclidean_matrix(a, b), expected, rtol=1e-12)
    norms = [_exact_sqrt(sum(Fraction(float(v)) ** 2 for v in row)) for row in a]
    np.testing.assert_allclose(token_norms(a[None])[0], norms, rtol=1e-14)
    pooled = pooled_similarity(a[None], b[None])
    speech_mean, text_mean = states[0].mean(0), states[1].mean(0)
    assert pooled.cosine[0] == pytest.approx(_exact_cosine(speech_mean, text_mean), abs=1e-14)
    assert pooled.euclidean[0] == pytest.approx(1e200 * np.linalg.norm(speech_mean - text_mean), rel=1e-12)


def _exact_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Biased linear CKA in rational arithmetic: ||Xcᵀ Yc||² / (||Xcᵀ Xc|| ||Ycᵀ Yc||)."""

    def centered(m: np.ndarray) -> list[list[Fraction]]:
        rows = [[Fraction(float(v)) for v in row] for row in m]
        means = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
        return [[v - mu for v, mu in zip(row, means, strict=True)] for row in rows]

    def gram(p, q):  # pᵀq, Frobenius norm squared
        return sum(
            sum(p[i][r] * q[i][c] for i in range(len(p))) ** 2
            for r in range(len(p[0]))
            for c in range(len(q[0]))
        )

    xc, yc = centered(x), centered(y)
    ratio = gram(xc, yc) ** 2 / (gram(xc, xc) * gram(yc, yc))
    return math.sqrt(float(ratio))


@pytest.mark.parametrize("scale", [1e100, 1e-100, 1e250])
def test_cka_of_huge_or_tiny_states_matches_exact_arithmetic(scale):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    x[:, 0] += 5 * y[:, 0]
    expected = _exact_cka(x, y)
    assert linear_cka(x * scale, y * scale) == pytest.approx(expected, abs=1e-13)
    layered = cross_layer_cka((x * scale)[None], (y * scale)[None], form="gram")
    assert layered[0, 0] == pytest.approx(expected, abs=1e-13)
    assert cross_layer_cka((x * scale)[None], (y * scale)[None], form="feature")[0, 0] == pytest.approx(
        expected, abs=1e-13
    )
    accumulator = CrossLayerCKA()
    accumulator.update((x[:3] * scale)[None], (y[:3] * scale)[None])
    accumulator.update((x[3:] * scale)[None], (y[3:] * scale)[None])
    assert accumulator.compute()[0, 0] == pytest.approx(expected, abs=1e-12)


def test_cka_of_large_float32_states_does_not_overflow_the_float32_grams():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 40, 8)).astype(np.float32)
    y = rng.standard_normal((3, 40, 5)).astype(np.float32)
    reference = cross_layer_cka(x, y, form="gram", gram_precision="float64")
    huge = cross_layer_cka(np.ldexp(x, 70), np.ldexp(y, 70), form="gram", gram_precision="float32")
    assert np.all(np.isfinite(huge))
    np.testing.assert_allclose(huge, reference, atol=1e-6)


def test_a_cka_state_saved_before_the_scaling_resumes_unchanged():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(-0.75, 0.75, (1, 12, 3)), rng.uniform(-0.75, 0.75, (1, 12, 2))
    first = CrossLayerCKA(accumulate="feature")
    first.update(x[:, :6], y[:, :6])
    state = {k: v for k, v in first.state_dict().items() if not k.startswith("_exponent")}
    resumed = CrossLayerCKA.from_state(state)
    resumed.update(x[:, 6:], y[:, 6:])
    np.testing.assert_allclose(resumed.compute(), cross_layer_cka(x, y), atol=1e-12)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda bad, ok: cosine_matrix(bad, ok), "a"),
        (lambda bad, ok: cosine_matrix(ok, bad), "b"),
        (lambda bad, ok: euclidean_matrix(bad, ok), "a"),
        (lambda bad, ok: token_norms(bad[None]), "states"),
        (lambda bad, ok: pooled_similarity(ok[None], bad[None]), "text"),
        (lambda bad, ok: standardized_l2(bad[None], ok[None]), "speech"),
        (lambda bad, ok: linear_cka(bad, ok), "x"),
        (lambda bad, ok: cross_layer_cka(ok[None], bad[None]), "ys"),
        (lambda bad, ok: mutual_knn(ok, bad, k=1), "y"),
    ],
)
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_states_are_refused_naming_the_argument(call, argument, value):
    ok = np.random.default_rng(0).standard_normal((4, 3))
    bad = ok.copy()
    bad[1, 2] = value
    with pytest.raises(ConfigError, match=f"argument '{argument}': contains NaN or infinite values"):
        call(bad, ok)


def test_the_data_loader_and_library_agree_on_a_clean_manifest(tmp_path):
    path = write_manifest_lines(tmp_path, [good(0), good(1, answer="(a)")])
    assert [s.answer for s in load_pairs(str(path))] == ["B", "(a)"]


def test_a_variant_that_merges_the_span_nearly_away_is_reported_with_a_warning():
    from speechgap.compression.experiment import _warn_if_collapsed
    from speechgap.errors import SpeechgapWarning

    spec = CompressionSpec(method="ap-input", tau=-1.0)
    with pytest.warns(SpeechgapWarning, match=r"keeps 2\.6% of the speech tokens.*tau of -1"):
        _warn_if_collapsed(spec, SimpleNamespace(retention=0.026))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_collapsed(spec, SimpleNamespace(retention=0.05))  # at the limit: no warning
