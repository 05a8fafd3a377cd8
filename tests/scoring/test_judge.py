"""The LLM judge (1–5 scores and the sd-qa yes/no vote) against a small OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from speechgap.errors import ConfigError
from speechgap.scoring import score_response
from speechgap.scoring.judge import (
    Judge,
    JudgeConfig,
    JudgeError,
    majority_vote,
    parse_judge_score,
    parse_judge_score_voicebench,
    parse_yes_no,
    voicebench_majority,
)


class _Server:
    """Answers chat-completions with scripted replies; records each request body."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.script: list[tuple[int, object]] = []  # (status, body) popped per request; default: score 4
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                outer.requests.append(json.loads(self.rfile.read(length)))
                outer.headers.append(dict(self.headers))
                status, body = outer.script.pop(0) if outer.script else (200, _reply(["4"]))
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 0.05
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        """Bounded in count and time, whatever a test does."""
        ends = time.monotonic() + 60.0
        while not self.stop.is_set() and time.monotonic() < ends and len(self.requests) < 50:
            self.httpd.handle_request()


def _reply(contents: list[str]) -> dict:
    return {
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": c}} for i, c in enumerate(contents)
        ]
    }


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.thread.join(timeout=5)
        srv.httpd.server_close()


def _config(url: str, **kwargs: object) -> JudgeConfig:
    return JudgeConfig(url=url, model="judge-model", timeout_s=5.0, backoff_s=0.01, **kwargs)


def test_scores_and_records(server: _Server) -> None:
    verdict = Judge(_config(server.url)).score("What is the capital of France?", "Paris.")
    assert verdict.score == 4.0
    assert verdict.sample_scores == [4]
    request = server.requests[0]
    assert request["model"] == "judge-model"
    assert request["temperature"] == 0.0
    assert "What is the capital of France?" in request["messages"][1]["content"]
    assert "Paris." in request["messages"][1]["content"]
    assert verdict.judge["model"] == "judge-model"
    assert verdict.judge["temperature"] == 0.0
    assert verdict.judge["endpoint"] == server.url + "/chat/completions"
    assert len(verdict.judge["template_sha256"]) == 16


def test_several_samples_averaged(server: _Server) -> None:
    server.script = [(200, _reply(["5", "Score: 3", "no idea"]))]
    verdict = Judge(_config(server.url, n=3, temperature=0.5)).score("q", "a")
    assert verdict.sample_scores == [5, 3, None]
    assert verdict.score == pytest.approx(4.0)
    assert server.requests[0]["n"] == 3


def test_retries_server_errors(server: _Server) -> None:
    server.script = [(500, "oops"), (503, "busy"), (200, _reply(["2"]))]
    verdict = Judge(_config(server.url, retries=3)).score("q", "a")
    assert verdict.score == 2.0
    assert len(server.requests) == 3


def test_gives_up_with_url(server: _Server) -> None:
    server.script = [(500, "oops")] * 3
    with pytest.raises(JudgeError, match=r"127\.0\.0\.1.*3 attempt"):
        Judge(_config(server.url, retries=2)).score("q", "a")
    assert len(server.requests) == 3


def test_client_error_not_retried(server: _Server) -> None:
    server.script = [(401, "unauthorised")]
    with pytest.raises(JudgeError, match="HTTP 401"):
        Judge(_config(server.url, retries=3)).score("q", "a")
    assert len(server.requests) == 1


def test_bad_reply_shape(server: _Server) -> None:
    server.script = [(200, {"error": "nope"})]
    with pytest.raises(JudgeError, match="choices"):
        Judge(_config(server.url)).score("q", "a")


def test_api_key_from_env(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHGAP_TEST_JUDGE_KEY", "secret-123")
    verdict = Judge(_config(server.url, api_key_env="SPEECHGAP_TEST_JUDGE_KEY")).score("q", "a")
    assert server.headers[0]["Authorization"] == "Bearer secret-123"
    assert "secret-123" not in json.dumps(verdict.judge)
    monkeypatch.delenv("SPEECHGAP_TEST_JUDGE_KEY")
    with pytest.raises(ConfigError, match="SPEECHGAP_TEST_JUDGE_KEY"):
        Judge(_config(server.url, api_key_env="SPEECHGAP_TEST_JUDGE_KEY")).score("q", "a")


def test_unreachable_names_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(JudgeError, match=f"127.0.0.1:{port}"):
        Judge(_config(url, retries=1)).score("q", "a")


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="http"):
        JudgeConfig(url="127.0.0.1:8000", model="m")
    with pytest.raises(ConfigError, match="template"):
        JudgeConfig(url="http://127.0.0.1:1", model="m", template="no placeholders")
    with pytest.raises(ConfigError, match="model"):
        JudgeConfig(url="http://127.0.0.1:1", model="")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4),
        ("Score: 5", 5),
        ("**3**", 3),
        ("I'd give it a 2 out of 5.", 2),
        ("4.5", None),
        ("10", None),
        ("zero", None),
        ("", None),
        ("1", 1),
    ],
)
def test_parse_judge_score(text: str, expected: int | None) -> None:
    assert parse_judge_score(text) == expected


def test_scores_inside_a_running_event_loop(server: _Server) -> None:
    """As in a notebook: the synchronous call works while an event loop runs in the calling thread."""

    async def from_a_coroutine() -> float | None:
        return Judge(_config(server.url)).score("q", "a").score

    assert asyncio.run(from_a_coroutine()) == 4.0
    assert len(server.requests) == 1


def test_endpoint_keeps_the_query_after_the_path() -> None:
    config = JudgeConfig(url="https://h.example/openai/v1/?api-version=2024-06-01", model="m")
    assert config.endpoint == "https://h.example/openai/v1/chat/completions?api-version=2024-06-01"
    assert (
        JudgeConfig(url="http://h/v1/chat/completions", model="m").endpoint == "http://h/v1/chat/completions"
    )


# ------------------------------------------------------------------------- the yes/no protocol (sd-qa)


def _yesno(url: str, **kwargs: object) -> JudgeConfig:
    return _config(url, protocol="yesno", **kwargs)


def test_yesno_request_carries_voicebench_sampling_and_the_prompt(server: _Server) -> None:
    server.script = [(200, _reply(["Yes", "No.", "yes"]))]
    judge = Judge(_yesno(server.url))
    verdict = judge.judge_answer("Who wrote Hamlet?", "William Shakespeare", "Shakespeare wrote it.")
    request = server.requests[0]
    assert (request["n"], request["temperature"], request["top_p"]) == (3, 0.5, 0.95)
    user = request["messages"][1]["content"]
    for part in ("Who wrote Hamlet?", "William Shakespeare", "Shakespeare wrote it.", '"Yes" or "No"'):
        assert part in user
    assert verdict.votes == ["yes", "no", "yes"] and verdict.correct is True
    assert verdict.judge["protocol"] == "yesno" and verdict.judge["template_name"] == "speechgap-yes-no-v1"


def test_yesno_placeholders_in_answers_stay_text(server: _Server) -> None:
    Judge(_yesno(server.url)).judge_answer("q {response}", "r {prompt}", "a {reference}")
    user = server.requests[0]["messages"][1]["content"]
    assert "q {response}" in user and "r {prompt}" in user and "a {reference}" in user


@pytest.mark.parametrize(
    ("replies", "correct"),
    [
        (["No", "no", "Yes"], False),
        (["Yes", "maybe", "I cannot tell"], True),  # unreadable replies count for neither side
        (["Yes", "No", "unsure"], None),  # a tie is undecided
        (["??", "", "The answer is yes"], None),  # nothing readable
    ],
)
def test_yesno_majority(server: _Server, replies: list[str], correct: bool | None) -> None:
    server.script = [(200, _reply(replies))]
    assert Judge(_yesno(server.url)).judge_answer("q", "r", "a").correct is correct


def test_sdqa_scored_through_the_yesno_judge(server: _Server) -> None:
    judge = Judge(_yesno(server.url))
    server.script = [(200, _reply(["Yes", "Yes.", "No"])), (200, _reply(["Yes", "No", "?"]))]
    item = score_response(
        "Shakespeare.", "sdqa", answer="William Shakespeare", prompt="Who?", sdqa_matcher="judge", judge=judge
    )
    assert item.correct and item.parsed and item.rule == "judge_majority" and item.protocol == "speechgap"
    assert (
        item.detail["votes"] == ["yes", "yes", "no"] and item.detail["containment"] is True
    )  # the surname rule agrees
    tie = score_response("Maybe.", "sdqa", answer="x", prompt="q", sdqa_matcher="judge", judge=judge)
    assert tie.correct is False and not tie.parsed and tie.rule == "judge_majority_tie"


def test_sdqa_voicebench_vote(server: _Server) -> None:
    judge = Judge(_yesno(server.url))
    server.script = [(200, _reply(["Yes.", "Yes.", "Yes"]))]  # VoiceBench: "yes." is not "yes"
    item = score_response(
        "x", "sdqa", answer="x", prompt="q", sdqa_matcher="judge", judge=judge, protocol="voicebench"
    )
    assert item.correct is False and item.protocol == "voicebench" and item.rule == "voicebench_majority"


def test_vote_rules() -> None:
    assert parse_yes_no("**Yes.**") == "yes" and parse_yes_no(" no, wrong") == "no"
    assert parse_yes_no("Yesterday") is None and parse_yes_no("Nope") is None
    assert majority_vote(["yes", None, None]) is True and majority_vote([None, None]) is None
    assert voicebench_majority(["Yes", " yes ", "No"]) is True
    assert voicebench_majority(["No", "no", "Yes"]) is False
    assert voicebench_majority(["yes", "no", "Yes."]) is None  # VoiceBench's tie: its set order decides
    assert parse_judge_score_voicebench(" 4 ") == 4.0 and parse_judge_score_voicebench("Rating: [[5]]") == 5.0
    assert parse_judge_score_voicebench("Score: 4") is None


def test_protocols_do_not_mix(server: _Server) -> None:
    with pytest.raises(ConfigError, match="'protocol' 'score'"):
        Judge(_yesno(server.url)).score("q", "a")
    with pytest.raises(ConfigError, match="'protocol' 'yesno'"):
        Judge(_config(server.url)).judge_answer("q", "r", "a")
    with pytest.raises(ConfigError, match="argument 'protocol'"):
        JudgeConfig(url="http://127.0.0.1:1", model="m", protocol="pairwise")
    with pytest.raises(ConfigError, match=r"\{reference\}"):
        JudgeConfig(url="http://127.0.0.1:1", model="m", protocol="yesno", template="{prompt} {response}")
    assert server.requests == []
    config = JudgeConfig(url="http://127.0.0.1:1", model="m", protocol="yesno", n=5, temperature=0.0)
    assert (config.n, config.temperature, config.top_p) == (5, 0.0, 0.95)
