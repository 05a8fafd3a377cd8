"""The LLM judge against hostile or broken servers on 127.0.0.1: redirects that would carry the key away,
servers that never finish a reply, secrets in the judge URL, and replies that are not chat-completions JSON.

Every server here binds 127.0.0.1, serves a bounded number of requests for a bounded time, and is stopped
by the test that started it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from speechgap.cli import main as cli_main
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.evaluation.report import score_run
from speechgap.evaluation.run import evaluate
from speechgap.io import read_jsonl
from speechgap.provenance import redact_command, redact_url
from speechgap.scoring.judge import Judge, JudgeConfig, JudgeError

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "SPEECHGAP_TEST_JUDGE_KEY"
KEY = "sk-KEYSECRET-0123456789"
SERVER_LIFETIME_S = 60.0  # no server here outlives this, whatever the test does
MAX_REQUESTS = 50


def _chat_reply(content: str = "4") -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


class ChatServer:
    """A scripted HTTP server: each request pops ``(status, body, headers)`` from ``script`` (else
    ``default``) and is recorded with its path and headers."""

    def __init__(self, default: tuple[int, object, dict] = (200, _chat_reply(), {})) -> None:
        self.requests: list[dict] = []
        self.script: list[tuple[int, object, dict]] = []
        self.default = default
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, payload, headers = outer.script.pop(0) if outer.script else outer.default
                if isinstance(payload, bytes):
                    data = payload
                elif isinstance(payload, str):
                    data = payload.encode()
                else:
                    data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 0.05
        self.port = self.httpd.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.url = self.origin + "/v1"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        ends = time.monotonic() + SERVER_LIFETIME_S
        while not self._stop.is_set() and time.monotonic() < ends and len(self.requests) < MAX_REQUESTS:
            self.httpd.handle_request()

    def key_seen(self, secret: str) -> bool:
        """Whether ``secret`` reached this server anywhere: path, a header, the body."""
        for request in self.requests:
            text = (
                request["path"] + json.dumps(request["headers"]) + request["body"].decode("utf-8", "replace")
            )
            if secret in text:
                return True
        return False

    def __enter__(self) -> ChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.httpd.server_close()


class SlowServer:
    """A raw socket server that never completes a reply: ``silent`` accepts and reads but never answers;
    ``trickle`` sends a valid reply one byte per second (each read succeeds, the reply never ends)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/v1"
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._accept_loop, daemon=True)

    def _accept_loop(self) -> None:
        ends = time.monotonic() + SERVER_LIFETIME_S
        while not self._stop.is_set() and time.monotonic() < ends and self.connections < MAX_REQUESTS:
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n" + b" " * 80
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)
                for byte in reply[: int(SERVER_LIFETIME_S)]:
                    if self._stop.wait(1.0):
                        return
                    if self.mode == "trickle":
                        conn.sendall(bytes([byte]))
                        self.bytes_sent += 1
            except OSError:
                return  # the client gave up and closed

    def __enter__(self) -> SlowServer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join(timeout=5)
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()


@contextmanager
def _servers(*servers):
    started = []
    try:
        for server in servers:
            started.append(server.__enter__())
        yield started
    finally:
        for server in reversed(started):
            server.__exit__(None, None, None)


def _config(url: str, **kwargs: object) -> JudgeConfig:
    settings = {"model": "judge-model", "timeout_s": 5.0, "backoff_s": 0.01, "retries": 0, **kwargs}
    return JudgeConfig(url=url, **settings)


# ---------------------------------------------------------------------------------------------- redirects


def test_redirect_is_an_error_and_the_key_stays_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with _servers(ChatServer(), ChatServer()) as (home, elsewhere):
        location = elsewhere.url + "/chat/completions"
        home.default = (302, "", {"Location": location})
        with pytest.raises(JudgeError, match=r"redirect.*follow_redirects") as caught:
            Judge(_config(home.url, api_key_env=KEY_ENV, retries=3)).score("q", "a")
    assert elsewhere.requests == []
    assert len(home.requests) == 1  # a redirect is not retried
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("status", [302, 307, 308])
def test_followed_redirect_to_another_port_never_carries_the_key(
    status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with _servers(ChatServer(), ChatServer()) as (home, elsewhere):
        home.default = (status, "", {"Location": elsewhere.url + "/chat/completions"})
        config = _config(home.url, api_key_env=KEY_ENV, follow_redirects=True)
        verdict = Judge(config).score("q", "a")
    assert home.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"
    assert len(elsewhere.requests) == 1
    assert "Authorization" not in elsewhere.requests[0]["headers"]
    assert not elsewhere.key_seen(KEY)
    assert verdict.score == 4.0


def test_followed_redirect_drops_url_credentials_across_origins() -> None:
    with _servers(ChatServer(), ChatServer()) as (home, elsewhere):
        home.default = (307, "", {"Location": elsewhere.url + "/chat/completions"})
        url = f"http://judge-user:PWSECRET99@127.0.0.1:{home.port}/v1"
        Judge(_config(url, follow_redirects=True)).score("q", "a")
    assert home.requests[0]["headers"]["Authorization"].startswith("Basic ")
    assert "Authorization" not in elsewhere.requests[0]["headers"]
    assert not elsewhere.key_seen("PWSECRET99")


def test_followed_redirect_within_the_origin_keeps_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with _servers(ChatServer()) as (home,):
        home.script = [(307, "", {"Location": "/v2/chat/completions"})]
        verdict = Judge(_config(home.url, api_key_env=KEY_ENV, follow_redirects=True)).score("q", "a")
    assert [r["path"] for r in home.requests] == ["/v1/chat/completions", "/v2/chat/completions"]
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in home.requests)
    assert verdict.score == 4.0


def test_redirect_loop_ends() -> None:
    with _servers(ChatServer()) as (home,):
        home.default = (307, "", {"Location": "/v1/chat/completions"})
        with pytest.raises(JudgeError, match="redirects"):
            Judge(_config(home.url, follow_redirects=True)).score("q", "a")
    assert len(home.requests) == 6  # the first request and 5 redirects


# ------------------------------------------------------------------------------------------ total deadline


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_slow_server_is_cut_off_at_the_total_deadline(mode: str) -> None:
    config = JudgeConfig(url="http://127.0.0.1:1/v1", model="m", timeout_s=2, retries=1)
    assert config.total_timeout_s == 5.0  # 2 attempts of 2 s and one wait of 1 s
    with _servers(SlowServer(mode)) as (server,):
        judge = Judge(JudgeConfig(url=server.url, model="m", timeout_s=2, retries=1))
        started = time.monotonic()
        with pytest.raises(JudgeError, match=r"2 attempt\(s\).*no complete reply within"):
            judge.score("q", "a")
        elapsed = time.monotonic() - started
    assert 4.0 < elapsed < 6.0
    assert server.connections == 2
    if mode == "trickle":
        assert server.bytes_sent >= 2  # each read succeeded; only a total deadline stops it


def test_deadline_caps_the_whole_call() -> None:
    with _servers(SlowServer("trickle")) as (server,):
        judge = Judge(JudgeConfig(url=server.url, model="m", timeout_s=30, retries=5, deadline_s=1.5))
        assert judge.config.total_timeout_s == 1.5
        started = time.monotonic()
        with pytest.raises(JudgeError, match="1 attempt"):
            judge.score("q", "a")
        assert time.monotonic() - started < 2.5


def test_cli_defaults_have_the_documented_bound() -> None:
    from speechgap.cli import build_parser
    from speechgap.cli.judging import make_judge

    args = build_parser().parse_args(
        ["score", "DIR", "--judge-url", "http://127.0.0.1:1/v1", "--judge-model", "m"]
    )
    config = make_judge(args).config
    assert (config.timeout_s, config.retries, config.backoff_s) == (60.0, 3, 1.0)
    assert config.total_timeout_s == 247.0  # documented in JudgeConfig and in --judge-timeout's help
    assert "247" in (JudgeConfig.__doc__ or "")
    assert not config.follow_redirects


def test_cli_score_against_a_trickling_judge_ends_in_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import speechgap.api  # noqa: F401 (imported up front: only the judge's time is measured)

    _eval_folder(tmp_path)
    capsys.readouterr()
    with _servers(SlowServer("trickle")) as (server,):
        argv = ["score", str(tmp_path), "--judge-url", server.url, "--judge-model", "m"]
        started = time.monotonic()
        code = cli_main([*argv, "--judge-timeout", "1", "--judge-retries", "1"])
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 2
    assert elapsed < 4.0  # bound: 2 attempts of 1 s and one wait of 1 s, for the first sample
    assert "judging sample 'q0'" in err and "no complete reply" in err
    assert "Traceback" not in err


def test_cli_translates_judge_settings_to_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _eval_folder(tmp_path)
    argv = ["score", str(tmp_path), "--judge-url", "http://127.0.0.1:1/v1", "--judge-model", "m"]
    assert cli_main([*argv, "--judge-timeout", "0"]) == 2
    assert "--judge-timeout must be > 0" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ secrets in URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://h:8/v1?api-key=S3CRET", "http://h:8/v1?api-key=REDACTED"),
        ("http://h/v1?API_KEY=S3CRET&x=1", "http://h/v1?API_KEY=REDACTED&x=REDACTED"),
        ("http://h/v1?sig=S3CRET&api-version=2024-06-01", "http://h/v1?sig=REDACTED&api-version=2024-06-01"),
        ("https://user:S3CRET@h:9/v1", "https://REDACTED@h:9/v1"),
        ("https://S3CRET@h/v1", "https://REDACTED@h/v1"),
        ("http://h/v1?S3CRET", "http://h/v1?REDACTED"),
        ("http://h/v1#S3CRET", "http://h/v1#REDACTED"),
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_command() -> None:
    command = [
        "speechgap",
        "score",
        "d",
        "--judge-url",
        "http://u:S3CRET@h/v1",
        "--judge-url=http://h/?k=S3CRET",
    ]
    assert "S3CRET" not in " ".join(redact_command(command))
    assert redact_command(["--judge-model", "m"]) == ["--judge-model", "m"]


class ScriptedModel:
    """A stand-in for the adapter: the same open-ended answer to every question."""

    def generate_batch(self, samples, modality, max_new_tokens):
        return [f"An answer to {sample.id} by {modality}." for sample in samples]

    def score_options(self, sample, modality, options):
        raise AssertionError("not used")

    def render_prompt(self, modality, text=""):
        return f"<{modality}>{text}"

    def generation_settings(self, max_new_tokens=256):
        return {"do_sample": False, "max_new_tokens": max_new_tokens}

    def describe(self):
        return {"name_or_path": "scripted"}


def _eval_folder(out: Path, n: int = 2) -> Path:
    """An evaluation folder of ``n`` open-ended (judge-scored) questions in both modalities, not judged."""
    samples = [
        PairedSample(
            id=f"q{i}",
            text=f"Tell me about topic {i}.",
            audio=np.full(1600, 0.1, np.float32),
            subset="alpacaeval",
        )
        for i in range(n)
    ]
    evaluate(ScriptedModel(), PairedDataset.from_samples(samples, {"loader": "test"}), out, progress=False)
    assert all(r["rule"] == "not_judged" for _, r in read_jsonl(out / "results.jsonl"))
    return out


def _speechgap(*argv: str) -> subprocess.CompletedProcess:
    """A separate ``speechgap`` process: its real ``sys.argv`` and what it prints, tracebacks included."""
    return subprocess.run(
        [sys.executable, "-m", "speechgap", *argv], cwd=REPO, capture_output=True, text=True, timeout=180
    )


def _speechgap_here(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``speechgap ARGV`` in this process with ``sys.argv`` as the shell would set it (provenance records
    it); the exit code and everything printed. An exception other than a handled error fails the test."""
    monkeypatch.setattr(sys, "argv", ["speechgap", *argv])
    capsys.readouterr()
    code = cli_main(argv)
    printed = capsys.readouterr()
    return code, printed.out + printed.err


def _files_holding(folder: Path, secret: str) -> list[str]:
    return [
        str(path) for path in folder.rglob("*") if path.is_file() and secret.encode() in path.read_bytes()
    ]


@pytest.mark.parametrize("form", ["query", "userinfo"])
def test_no_secret_in_any_written_file(
    form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    out = _eval_folder(tmp_path / "run")
    with _servers(ChatServer()) as (server,):
        url = {
            "query": f"{server.url}?api-key=URLSECRET42",
            "userinfo": f"http://judge-user:URLSECRET42@127.0.0.1:{server.port}/v1",
        }[form]
        argv = ["score", str(out), "--judge-url", url, "--judge-model", "m", "--judge-api-key-env", KEY_ENV]
        code, printed = _speechgap_here(argv, monkeypatch, capsys)
    assert code == 0, printed
    assert len(server.requests) == 4  # 2 questions x 2 modalities, each asked once
    assert server.key_seen(KEY)
    if form == "query":  # requests go to the real URL
        assert server.requests[0]["path"] == "/v1/chat/completions?api-key=URLSECRET42"
    for secret in ("URLSECRET42", KEY):
        assert _files_holding(out, secret) == []
        assert secret not in printed
    records = [r for _, r in read_jsonl(out / "results.jsonl")]
    assert all(r["score"] == 4.0 for r in records)
    assert "REDACTED" in records[0]["scoring_detail"]["judge"]["endpoint"]
    summary = json.loads((out / "summary.json").read_text())
    assert "REDACTED" in " ".join(summary["provenance"]["command"])


def test_no_secret_and_no_traceback_from_a_real_process(tmp_path: Path) -> None:
    out = _eval_folder(tmp_path / "run")
    with _servers(ChatServer()) as (server,):
        # plain HTTP behind an https:// URL: the TLS handshake fails, so the error path is taken too
        failing = f"https://judge-user:URLSECRET42@127.0.0.1:{server.port}/v1?token=URLSECRET43"
        failed = _speechgap(
            "score", str(out), "--judge-url", failing, "--judge-model", "m", "--judge-retries", "0"
        )
        working = f"{server.url}?api-key=URLSECRET44"
        done = _speechgap("score", str(out), "--judge-url", working, "--judge-model", "m")
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    assert "judging sample 'q0'" in failed.stderr and "REDACTED@127.0.0.1" in failed.stderr
    assert done.returncode == 0, done.stderr
    assert len(server.requests) == 4
    for secret in ("URLSECRET42", "URLSECRET43", "URLSECRET44"):
        assert _files_holding(out, secret) == []
        assert secret not in failed.stdout + failed.stderr + done.stdout + done.stderr


# ----------------------------------------------------------------------------------------------- bad replies

BAD_REPLIES = {
    "not_utf8": ((200, b'{"choices": [{"message": {"content": "\xff\xfe4"}}]}', {}), "not UTF-8"),
    "not_json": ((200, "<html>gateway says hi</html>", {}), "not JSON"),
    "no_choices": ((200, {"error": {"message": "model overloaded"}}, {}), "without choices"),
    "json_list": ((200, [1, 2], {}), "not an object"),
    "http_500": ((500, "Internal Server Error", {}), "HTTP 500"),
}


@pytest.mark.parametrize("case", list(BAD_REPLIES))
def test_bad_reply_is_a_clear_judge_error(case: str) -> None:
    reply, reason = BAD_REPLIES[case]
    with _servers(ChatServer(default=reply)) as (server,):
        with pytest.raises(JudgeError, match=reason) as caught:
            Judge(_config(server.url, retries=1)).score("q", "a")
    assert server.url in str(caught.value)


@pytest.mark.parametrize("case", ["not_utf8", "not_json", "no_choices", "http_500"])
def test_bad_reply_through_the_cli_names_the_sample(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _eval_folder(tmp_path / "run")
    reply, reason = BAD_REPLIES[case]
    with _servers(ChatServer(default=reply)) as (server,):
        argv = ["score", str(out), "--judge-url", server.url, "--judge-model", "m", "--judge-retries", "0"]
        code, printed = _speechgap_here(argv, monkeypatch, capsys)
    assert code == 2
    assert "Traceback" not in printed
    assert printed.startswith("speechgap score: error: judging sample 'q0'")
    assert reason in printed
    assert len(server.requests) == 1
    assert [1 for _ in read_jsonl(out / "judge.jsonl")] == []  # a failure is not cached


def test_failed_sample_is_not_cached_and_a_rerun_asks_only_for_the_rest(tmp_path: Path) -> None:
    out = _eval_folder(tmp_path / "run")  # 4 judge-mode records
    with _servers(ChatServer()) as (server,):
        server.script = [(200, _chat_reply("5"), {}), (200, _chat_reply("3"), {}), (500, "down", {})]
        judge = Judge(_config(server.url))
        with pytest.raises(JudgeError, match=r"judging sample '\w+' .*HTTP 500.*rerun"):
            score_run(out, judge=judge)
        assert len([1 for _ in read_jsonl(out / "judge.jsonl")]) == 2
        result = score_run(out, judge=judge)
        assert len(server.requests) == 5  # 2 kept, 1 failed, then only the 2 not yet judged
        score_run(out, judge=judge)
        assert len(server.requests) == 5  # everything cached now
    scores = sorted(r["score"] for _, r in read_jsonl(out / "results.jsonl"))
    assert scores == [3.0, 4.0, 4.0, 5.0]
    assert result.summary["protocol"]["judge"] == "judge-model"
