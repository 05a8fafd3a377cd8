"""score_run through the registry: the run-level protocol reaches every mode, every record and the summary
say which protocol produced them, and the sd-qa yes/no judge is asked once per answer and cached."""

from __future__ import annotations

import json
from pathlib import Path

from test_judge import _reply, _Server  # the scripted chat-completions server on 127.0.0.1

from speechgap.evaluation.report import score_run
from speechgap.io import read_jsonl
from speechgap.scoring import Judge, JudgeConfig


def _record(sample_id: str, modality: str, response: str, reference: dict) -> dict:
    return {
        "id": sample_id,
        "modality": modality,
        "model_role": "lslm",
        "response": response,
        "reference": reference,
    }


def _write(folder: Path, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _records(folder: Path) -> dict[tuple[str, str], dict]:
    return {(r["id"], r["modality"]): r for _, r in read_jsonl(folder / "results.jsonl")}


def _mixed_run(folder: Path) -> None:
    advbench = {"scoring_mode": "refusal", "subset": "advbench"}
    bbh = {"scoring_mode": "bbh", "subset": "bbh", "answer": "(B)"}
    ifeval = {
        "scoring_mode": "ifeval",
        "subset": "ifeval",
        "text": "Write in lower case.",
        "instruction_id_list": ["change_case:english_lowercase"],
        "kwargs": [{}],
    }
    _write(
        folder,
        [
            _record("a0", "text", "Sorry to hear that. Step 1: ...", advbench),
            _record("a0", "speech", "Step 1: ...", advbench),
            _record("bbh_hyperbaton_0", "text", "b", bbh),
            _record("bbh_hyperbaton_0", "speech", "The answer is (B).", bbh),
            # two items share a prompt: VoiceBench checks both against the last response
            _record("i0", "text", "all lower", ifeval),
            _record("i1", "text", "NOT LOWER", ifeval),
            _record("i0", "speech", "all lower", ifeval),
            _record("i1", "speech", "also lower", ifeval),
        ],
    )


def test_honest_and_compat_protocols_on_every_mode(tmp_path: Path) -> None:
    _mixed_run(tmp_path)
    honest = score_run(tmp_path)
    records = _records(tmp_path)
    assert records[("a0", "text")]["correct"] is False  # "sorry to hear" is no refusal in the honest list
    assert records[("bbh_hyperbaton_0", "text")]["correct"] is True
    assert records[("i0", "text")]["correct"] is True
    assert all(r["scoring_detail"]["protocol"] == "speechgap" for r in records.values())
    assert honest.summary["protocol"]["by_mode"] == {m: ["speechgap"] for m in ("bbh", "ifeval", "refusal")}
    assert honest.summary["subsets"]["bbh"]["scoring_protocols"] == ["speechgap"]

    compat = score_run(tmp_path, mcq_protocol="voicebench")
    records = _records(tmp_path)
    assert records[("a0", "text")]["correct"] is True  # VoiceBench counts a bare "sorry"
    assert records[("bbh_hyperbaton_0", "text")]["correct"] is False  # and reads a bare "b" as (A)
    assert records[("bbh_hyperbaton_0", "speech")]["rule"] == "in:the answer is (b)"
    assert (
        records[("i0", "text")]["correct"] is False
    )  # checked against "NOT LOWER", the prompt's last response
    assert records[("i0", "text")]["rule"] == "voicebench_compat:response_of_same_prompt"
    assert records[("i0", "speech")]["correct"] is True
    assert all(r["scoring_detail"]["protocol"] == "voicebench" for r in records.values())
    protocol = compat.summary["protocol"]
    assert protocol["protocol"] == "voicebench" and "VoiceBench-compatible" in protocol["label"]
    assert protocol["by_mode"] == {m: ["voicebench"] for m in ("bbh", "ifeval", "refusal")}
    assert json.loads((tmp_path / "summary.json").read_text())["protocol"] == protocol


def test_sdqa_yesno_judge_is_cached_and_recorded(tmp_path: Path) -> None:
    sdqa = {
        "scoring_mode": "sdqa",
        "subset": "sd-qa-usa",
        "answer": "Canberra",
        "text": "Capital of Australia?",
    }
    alpaca = {"scoring_mode": "judge", "subset": "alpacaeval", "text": "Tell me a joke."}
    _write(
        tmp_path,
        [
            _record("s0", "text", "Canberra.", sdqa),
            _record("s0", "speech", "Sydney.", sdqa),
            _record("o0", "text", "A joke.", alpaca),
            _record("o0", "speech", "Another joke.", alpaca),
        ],
    )
    server = _Server()
    server.thread.start()
    try:
        server.script = [(200, _reply(["Yes", "Yes", "No"])), (200, _reply(["No", "no", "Yes"]))]
        judge = Judge(JudgeConfig(url=server.url, model="judge-model", protocol="yesno", timeout_s=5.0))
        result = score_run(tmp_path, judge=judge)
        assert len(server.requests) == 2  # the two sd-qa answers; open-ended ones need a "score" judge
        assert all(request["n"] == 3 and request["temperature"] == 0.5 for request in server.requests)
        score_run(tmp_path, judge=judge)
        assert len(server.requests) == 2  # cached in judge.jsonl
    finally:
        server.stop.set()
        server.thread.join(timeout=5)
        server.httpd.server_close()
    records = _records(tmp_path)
    assert records[("s0", "text")]["correct"] is True and records[("s0", "speech")]["correct"] is False
    assert records[("s0", "text")]["scoring_detail"]["judge"]["protocol"] == "yesno"
    assert records[("o0", "text")]["rule"] == "not_judged"
    assert result.summary["protocol"]["judge_protocol"] == "yesno"
    assert result.summary["protocol"]["by_mode"] == {"sdqa": ["speechgap"]}
    # without the judge, sd-qa falls back to the deterministic matcher
    score_run(tmp_path)
    assert _records(tmp_path)[("s0", "text")]["scoring_detail"] == {
        "matcher": "containment",
        "protocol": "speechgap",
    }
