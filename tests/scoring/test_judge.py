"""The LLM judge against a small OpenAI-compatible server on 127.0.0.1."""

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
from speechgap.scoring.judge import Judge, JudgeConfig, JudgeError, parse_judge_score


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
