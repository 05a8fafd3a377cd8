"""`speechgap eval` / `speechgap score`: records, resume after a crash, re-scoring, the summary's figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechgap.data.load import load_pairs
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.report import score_run
from speechgap.evaluation.run import EvalSettings, evaluate
from speechgap.io import read_jsonl


class ScriptedModel:
    """A stand-in for the adapter: answers from a script, so every figure of the summary is known."""

    def __init__(self, script: dict[tuple[str, str], str], fail_after: int | None = None):
        self.script = script
        self.fail_after = fail_after
        self.calls = 0

    def generate_batch(self, samples, modality, max_new_tokens):
        out = []
        for sample in samples:
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise RuntimeError("simulated crash")
            self.calls += 1
            out.append(self.script[(sample.id, modality)])
        return out

    def score_options(self, sample, modality, options):
        raise AssertionError("not used")

    def render_prompt(self, modality, text=""):
        return f"<{modality}>{text}"

    def generation_settings(self, max_new_tokens=256):
        return {"do_sample": False, "max_new_tokens": max_new_tokens}

    def describe(self):
        return {"name_or_path": "scripted"}


def _dataset(n: int, subset: str = "toy") -> PairedDataset:
    samples = [
        PairedSample(
            id=f"q{i}",
            text=f"Question {i}?\nA. w\nB. x\nC. y\nD. z",
            audio=np.full(1600, 0.1, np.float32),
            answer="ABCD"[i % 4],
            choices=["w", "x", "y", "z"],
            subset=subset,
        )
        for i in range(n)
    ]
    return PairedDataset.from_samples(samples, {"loader": "test"})


def _script(n: int, rng: np.random.Generator) -> tuple[dict, np.ndarray, np.ndarray]:
    """Random right/wrong/unparseable answers for both modalities, with the truth to check against."""
    script, text_ok, speech_ok = {}, np.zeros(n, bool), np.zeros(n, bool)
    for i in range(n):
        answer = "ABCD"[i % 4]
        wrong = "ABCD"[(i + 1) % 4]
        for modality, truth in (("text", text_ok), ("speech", speech_ok)):
            kind = rng.choice(["right", "wrong", "garbled"], p=[0.6, 0.25, 0.15])
            truth[i] = kind == "right"
            script[(f"q{i}", modality)] = {
                "right": f"The answer is {answer}.",
                "wrong": f"**{wrong}**",
                "garbled": "A planet, I believe.",
            }[kind]
    return script, text_ok, speech_ok


def _records(out: Path) -> list[dict]:
    return [r for _, r in read_jsonl(out / "results.jsonl")]


def test_summary_figures_equal_an_independent_count(tmp_path):
    rng = np.random.default_rng(1)
    script, text_ok, speech_ok = _script(40, rng)
    run = evaluate(ScriptedModel(script), _dataset(40), tmp_path, progress=False)
    row = run.summary["subsets"]["toy"]
    assert row["text_score"] == pytest.approx(text_ok.mean())
    assert row["speech_score"] == pytest.approx(speech_ok.mean())
    paired = row["paired"]
    assert paired["gap"]["gap"] == pytest.approx(text_ok.mean() - speech_ok.mean())
    cells = paired["cells"]
    assert cells["only_text_right"] == int((text_ok & ~speech_ok).sum())
    assert cells["only_speech_right"] == int((~text_ok & speech_ok).sum())
    assert cells["both_right"] == int((text_ok & speech_ok).sum())
    garbled = [k for k, v in script.items() if v.startswith("A planet")]
    failed_text = sum(1 for k in garbled if k[1] == "text") / 40
    assert row["text_parse_failure_rate"] == pytest.approx(failed_text)
    records = _records(tmp_path)
    assert len(records) == 80
    assert all(r["prompt"] and "generation" in r and "extracted" in r for r in records)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["provenance"]["model"] == {"name_or_path": "scripted"}
    assert summary["provenance"]["data"]["num_samples"] == 40


@pytest.mark.parametrize("crash_at", [0, 1, 17, 39, 79])
def test_crash_then_rerun_completes_with_every_record_once(tmp_path, crash_at):
    script, _, _ = _script(40, np.random.default_rng(2))
    # one answer per call, so the crash falls between two records; the rerun resumes at the default batch size
    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(ScriptedModel(script, fail_after=crash_at), _dataset(40), tmp_path, EvalSettings(batch_size=1),
                 progress=False)  # fmt: skip
    assert len(_records(tmp_path)) == crash_at
    run = evaluate(ScriptedModel(script), _dataset(40), tmp_path, progress=False)
    assert run.written == 80 - crash_at and run.skipped == crash_at
    keys = [(r["id"], r["modality"]) for r in _records(tmp_path)]
    assert len(keys) == len(set(keys)) == 80
    assert all(r["response"] == script[(r["id"], r["modality"])] for r in _records(tmp_path))


def test_resume_refuses_different_settings(tmp_path):
    script, _, _ = _script(4, np.random.default_rng(3))
    evaluate(ScriptedModel(script), _dataset(4), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="different settings"):
        evaluate(ScriptedModel(script), _dataset(4), tmp_path, EvalSettings(max_new_tokens=7), progress=False)


def test_rescoring_needs_no_model_and_follows_the_responses(tmp_path):
    script = {(f"q{i}", m): "no idea" for i in range(4) for m in ("speech", "text")}
    evaluate(ScriptedModel(script), _dataset(4), tmp_path, progress=False)
    assert json.loads((tmp_path / "summary.json").read_text())["subsets"]["toy"]["text_score"] == 0.0
    # a changed response (as after fixing a scorer or a response post-processor) is re-scored in place
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    edited = []
    for line in lines:
        record = json.loads(line)
        if record["modality"] == "text":
            record["response"] = f"Option ({record['reference']['answer']})"
        edited.append(json.dumps(record))
    (tmp_path / "results.jsonl").write_text("\n".join(edited) + "\n")
    result = score_run(tmp_path)
    assert result.per_subset["toy"].text_accuracy == 1.0
    assert result.per_subset["toy"].speech_parse_failure_rate == 1.0
    assert result.summary == json.loads((tmp_path / "summary.json").read_text())
    compat = score_run(tmp_path, mcq_protocol="voicebench")
    assert "VoiceBench-compatible" in compat.protocol["label"]
    assert all(
        r["rule"].startswith("voicebench_compat") for r in _records(tmp_path) if r["modality"] == "speech"
    )


def test_mcq_scoring_without_answers_is_a_clear_error(tmp_path):
    samples = [PairedSample(id="q0", text="Q?", audio=np.full(160, 0.1, np.float32), choices=["a", "b"])]
    data = PairedDataset.from_samples(samples)
    with pytest.raises(DataError, match="answer"):
        evaluate(ScriptedModel({("q0", "speech"): "A", ("q0", "text"): "A"}), data, tmp_path, progress=False)


def test_empty_response_is_a_parse_failure_not_a_guess(tmp_path):
    script = {(f"q{i}", m): "" for i in range(8) for m in ("speech", "text")}
    summary = evaluate(ScriptedModel(script), _dataset(8), tmp_path, progress=False).summary
    row = summary["subsets"]["toy"]
    assert row["text_score"] == 0.0 and row["text_parse_failure_rate"] == 1.0


# ---------------------------------------------------------------- a real (tiny) model through the adapter
@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    from transformers import Qwen2AudioForConditionalGeneration, Qwen2ForCausalLM

    from speechgap.models.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("eval_tiny")
    model_dir = build_tiny_model("qwen2_audio", root / "model", seed=0)
    # the base text LM: the speech LLM's own language model, saved as a plain Qwen2 causal LM
    full = Qwen2AudioForConditionalGeneration.from_pretrained(model_dir)
    base = Qwen2ForCausalLM(full.config.text_config)
    base.model.load_state_dict(full.model.language_model.state_dict())
    base.lm_head.load_state_dict(full.lm_head.state_dict())
    base.save_pretrained(root / "base")
    from transformers import AutoProcessor

    AutoProcessor.from_pretrained(model_dir).tokenizer.save_pretrained(root / "base")
    rng = np.random.default_rng(0)
    (root / "data" / "audio").mkdir(parents=True)
    with open(root / "data" / "manifest.jsonl", "w") as handle:
        for i in range(5):
            sf.write(
                root / "data" / "audio" / f"q{i}.wav", 0.2 * rng.standard_normal(12000 + 1000 * i), 16000
            )
            item = {
                "id": f"q{i}",
                "text": f"Which colour {i}?\nA. red\nB. blue\nC. green\nD. black",
                "audio": f"audio/q{i}.wav",
                "choices": ["red", "blue", "green", "black"],
                "answer": "ABCD"[i % 4],
            }
            handle.write(json.dumps(item) + "\n")
    return root


def test_tiny_model_generate_and_loglik(tiny_setup, tmp_path):
    from speechgap.models import load_model
    from speechgap.models.text_lm import load_text_model, text_prompts_of

    # loglik needs an instruction in the prompt, so this run uses the instructed protocol
    model = load_model(tiny_setup / "model", protocol="instructed")
    base = load_text_model(tiny_setup / "base", **text_prompts_of(model))
    data = load_pairs(tiny_setup / "data" / "manifest.jsonl")
    run = evaluate(
        model, data, tmp_path / "gen", EvalSettings(max_new_tokens=4), base_model=base, progress=False
    )
    records = _records(tmp_path / "gen")
    assert sorted((r["model_role"], r["modality"]) for r in records) == sorted(
        [("lslm", "speech")] * 5 + [("lslm", "text")] * 5 + [("base", "text")] * 5
    )
    # the base LM is the speech LLM's own language model: same greedy text answers
    by_key = {(r["model_role"], r["modality"], r["id"]): r["response"] for r in records}
    assert all(by_key[("base", "text", f"q{i}")] == by_key[("lslm", "text", f"q{i}")] for i in range(5))
    decomposition = run.summary["subsets"]["all"]["paired"]["decomposition"]
    assert decomposition["fine_tuning_erosion"] == pytest.approx(0.0)

    loglik = evaluate(model, data, tmp_path / "ll", EvalSettings(answer_mode="loglik"), progress=False)
    for record in _records(tmp_path / "ll"):
        log_probs = record["option_log_probs"]
        assert record["extracted"] == max(log_probs, key=log_probs.get)
        answer = record["reference"]["answer"]
        best_other = max(v for k, v in log_probs.items() if k != answer)
        assert record["logit_margin"] == pytest.approx(log_probs[answer] - best_other, abs=1e-5)
        assert record["parsed"] is True
    assert loglik.summary["subsets"]["all"]["speech_mean_logit_margin"] is not None
    run_record = json.loads((tmp_path / "ll" / "run.json").read_text())
    assert run_record["settings"]["protocol"] == run_record["model"]["protocol"] == "instructed"
    assert all(
        r["prompt"].endswith("\nAnswer the question.<|im_end|>\n<|im_start|>assistant\n") for r in records
    )


def test_protocol_is_recorded_and_a_resume_with_another_is_refused(tiny_setup, tmp_path):
    from speechgap.models import load_model

    data = load_pairs(tiny_setup / "data" / "manifest.jsonl")
    model = load_model(tiny_setup / "model")  # the default protocol: voicebench
    settings = EvalSettings(max_new_tokens=2, limit=2, modalities=("text",))
    evaluate(model, data, tmp_path / "run", settings, progress=False)
    run_record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_record["settings"]["protocol"] == run_record["model"]["protocol"] == "voicebench"
    assert run_record["model"]["instruction"] is None and run_record["model"]["prompt_overrides"] == []
    # every record keeps its exact prompt: the question alone, no instruction
    for record in _records(tmp_path / "run"):
        assert record["prompt"].endswith(
            f"user\n{record['reference']['text']}<|im_end|>\n<|im_start|>assistant\n"
        )
    model.protocol = "instructed"
    try:
        with pytest.raises(ConfigError, match="different model"):
            evaluate(model, data, tmp_path / "run", settings, progress=False)
        with pytest.raises(ConfigError, match="argument 'protocol' is 'official'.*'instructed'"):
            evaluate(model, data, tmp_path / "other", replace(settings, protocol="official"), progress=False)
    finally:
        model.protocol = "voicebench"


def test_loglik_without_an_instruction_is_refused(tiny_setup, tmp_path):
    from speechgap.models import load_model

    data = load_pairs(tiny_setup / "data" / "manifest.jsonl")
    model = load_model(tiny_setup / "model")
    with pytest.raises(ConfigError, match="loglik.*protocol 'voicebench'.*argument 'protocol' instructed"):
        evaluate(model, data, tmp_path / "ll", EvalSettings(answer_mode="loglik"), progress=False)
    assert not (tmp_path / "ll").exists()  # refused before anything is written
    with_instruction = load_model(tiny_setup / "model", instruction="Answer with the letter.")
    evaluate(
        with_instruction, data, tmp_path / "ok", EvalSettings(answer_mode="loglik", limit=1), progress=False
    )
    recorded = json.loads((tmp_path / "ok" / "run.json").read_text())["model"]
    assert recorded["protocol"] == "voicebench" and recorded["prompt_overrides"] == ["instruction"]
    assert recorded["instruction"] == "Answer with the letter."


def test_settings_refuse_an_unknown_protocol():
    with pytest.raises(
        ConfigError, match="argument 'protocol' must be one of voicebench, official, instructed"
    ):
        EvalSettings(protocol="chatty")


def test_killed_process_resumes_to_exactly_one_record_each(tiny_setup, tmp_path):
    # long enough (60 answers) that lines are committed (at most 1 s apart) well before the run ends
    manifest = tmp_path / "long.jsonl"
    lines = (tiny_setup / "data" / "manifest.jsonl").read_text().splitlines()
    with open(manifest, "w") as handle:
        for k in range(30):
            item = json.loads(lines[k % len(lines)])
            handle.write(
                json.dumps({**item, "id": f"q{k}", "audio": str(tiny_setup / "data" / item["audio"])}) + "\n"
            )
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "speechgap", "eval", "--model", str(tiny_setup / "model"),
        "--data", str(manifest), "--out", str(out), "--max-new-tokens", "24", "--batch-size", "1", "--no-progress",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = results.read_bytes().count(b"\n")
    assert 2 <= before < 60, "the run finished before it could be killed; nothing was tested"
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    keys = [(r["id"], r["modality"]) for r in _records(out)]
    assert len(keys) == len(set(keys)) == 60


def test_macro_and_pooled_are_two_named_numbers(tmp_path):
    """Two subsets of different sizes: macro = mean of the subset scores, pooled = over all samples, each
    with its own paired interval; the typed result, summary.json and the printed table say which is which."""
    rng = np.random.default_rng(5)
    samples = list(_dataset(36))
    for i, sample in enumerate(samples):
        sample.subset = "big" if i < 30 else "small"
    data = PairedDataset.from_samples(samples, {"loader": "test"})
    script, text_ok, speech_ok = _script(36, rng)
    result = evaluate(ScriptedModel(script), data, tmp_path, progress=False)

    sizes = (30, 6)
    bounds = ((0, 30), (30, 36))
    subset_speech = [speech_ok[a:b].mean() for a, b in bounds]
    subset_text = [text_ok[a:b].mean() for a, b in bounds]
    assert result.macro.speech_accuracy == pytest.approx(np.mean(subset_speech))
    assert result.macro.gap == pytest.approx(np.mean(subset_text) - np.mean(subset_speech))
    assert result.speech_accuracy == result.macro.speech_accuracy and result.macro.n == 2
    assert result.pooled.speech_accuracy == pytest.approx(speech_ok.mean())
    assert result.pooled.text_accuracy == pytest.approx(text_ok.mean())
    assert result.pooled.n == sum(sizes)
    assert result.pooled.speech_accuracy != pytest.approx(result.macro.speech_accuracy)
    # each interval covers its own estimate; the stratified macro one by an independent resampling
    for overall in (result.macro, result.pooled):
        assert overall.gap_low <= overall.gap <= overall.gap_high
    draws = np.random.default_rng(0)
    boots = np.zeros(10_000)
    for a, b in bounds:
        diff = text_ok[a:b].astype(float) - speech_ok[a:b].astype(float)
        boots += diff[draws.integers(0, b - a, size=(10_000, b - a))].mean(axis=1)
    boots /= 2
    assert result.macro.gap_low == pytest.approx(np.quantile(boots, 0.025))
    assert result.macro.gap_high == pytest.approx(np.quantile(boots, 0.975))

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["overall"]["speech_score"] == summary["macro"]["speech_score"]  # old readers keep working
    assert summary["pooled"]["speech_score"] == pytest.approx(speech_ok.mean())
    table = result.format().splitlines()
    macro_row = next(line for line in table if line.startswith("macro "))
    pooled_row = next(line for line in table if line.startswith("pooled "))
    assert f"{100 * result.macro.speech_accuracy:.1f}" in macro_row
    assert f"{100 * speech_ok.mean():.1f}" in pooled_row


def test_a_summary_written_before_pooled_existed_still_loads(tmp_path):
    rng = np.random.default_rng(2)
    script, _, speech_ok = _script(12, rng)
    evaluate(ScriptedModel(script), _dataset(12), tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("macro", "pooled"):
        del summary[key]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    from speechgap.evaluation.result import EvalResult

    old = EvalResult.load(tmp_path)
    assert old.pooled.speech_accuracy == pytest.approx(speech_ok.mean())
    assert old.speech_accuracy == summary["overall"]["speech_score"]


def test_the_default_batch_answers_as_one_at_a_time_and_a_folder_resumes_under_another_batch_size(
    tiny_setup, tmp_path
):
    from speechgap.evaluation.run import DEFAULT_BATCH_SIZE
    from speechgap.models import load_model

    data = load_pairs(tiny_setup / "data" / "manifest.jsonl")
    model = load_model(tiny_setup / "model")
    one = evaluate(
        model, data, tmp_path / "one", EvalSettings(max_new_tokens=12, batch_size=1), progress=False
    )
    default = evaluate(model, data, tmp_path / "default", EvalSettings(max_new_tokens=12), progress=False)
    assert DEFAULT_BATCH_SIZE > 1 and EvalSettings().batch_size == DEFAULT_BATCH_SIZE
    by_key = {(r["id"], r["modality"]): r["response"] for r in _records(tmp_path / "one")}
    assert {(r["id"], r["modality"]): r["response"] for r in _records(tmp_path / "default")} == by_key
    assert one.summary["overall"] == default.summary["overall"]
    # the batch size is not part of the run's identity: the folder made one at a time resumes, nothing to do
    again = evaluate(model, data, tmp_path / "one", EvalSettings(max_new_tokens=12), progress=False)
    assert again.written == 0 and again.skipped == 10
    # any other setting still is
    with pytest.raises(ConfigError, match="different settings"):
        evaluate(model, data, tmp_path / "one", EvalSettings(max_new_tokens=13), progress=False)


def test_loglik_batches_score_as_one_at_a_time(tiny_setup, tmp_path, monkeypatch):
    from speechgap.models import load_model

    data = load_pairs(tiny_setup / "data" / "manifest.jsonl")
    model = load_model(tiny_setup / "model", protocol="instructed")
    passes: list[int] = []
    original = model.score_options_batch

    def counted(samples, modality, options):
        passes.append(len(samples))
        return original(samples, modality, options)

    monkeypatch.setattr(model, "score_options_batch", counted)
    settings = dict(answer_mode="loglik", modalities=("speech", "text"))
    evaluate(model, data, tmp_path / "one", EvalSettings(batch_size=1, **settings), progress=False)
    assert passes == [1] * 10  # one at a time: one sample per forward pass
    passes.clear()
    evaluate(model, data, tmp_path / "four", EvalSettings(batch_size=4, **settings), progress=False)
    assert passes == [4, 1, 4, 1]  # speech then text: 5 samples in batches of 4
    one = {(r["id"], r["modality"]): r for r in _records(tmp_path / "one")}
    four = {(r["id"], r["modality"]): r for r in _records(tmp_path / "four")}
    assert list(one) == list(four)  # the file's order does not depend on the batch size either
    for key, record in one.items():
        assert four[key]["response"] == record["response"] and four[key]["correct"] == record["correct"]
        for letter, value in record["option_log_probs"].items():
            assert four[key]["option_log_probs"][letter] == pytest.approx(value, abs=1e-5)
