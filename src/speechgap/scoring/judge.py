"""An LLM judge: open-ended answers on a 1–5 scale, and sd-qa answers by a yes/no majority vote.

Talks to any OpenAI-compatible ``/chat/completions`` endpoint given by URL (a local vLLM or llama.cpp
server, or a hosted API) over ``httpx``. Two judge protocols (:data:`JUDGE_PROTOCOLS`, ``JudgeConfig.protocol``):

- ``"score"`` (open-ended subsets: alpacaeval, commoneval, wildvoice, mtbench): the prompt follows
  VoiceBench's rubric (rate the transcribed response to the transcribed instruction from 1 to 5, output the
  score only) in speechgap's own words. Temperature 0 and one sample by default (VoiceBench's own runs
  sample three at temperature 0.5, top-p 0.95, and average; set ``temperature``/``n``/``top_p`` to do the
  same). The score is the mean of the parseable samples.
- ``"yesno"`` (sd-qa): the judge sees the question, the reference answer and the candidate answer and is
  asked whether the candidate is correct, replying only "Yes" or "No" (VoiceBench's ``api_judge.py``
  semantics, speechgap's wording). Defaults are VoiceBench's sampling: ``n=3``, temperature 0.5, top-p
  0.95. Each sample is read by :func:`parse_yes_no` and the verdict is the majority
  (:func:`majority_vote`): more yes than no is correct, more no than yes is wrong, a tie or no readable
  sample is *undecided* — scored wrong and counted as a parse failure.

Every :class:`JudgeVerdict` records the judge URL (passed through :func:`redact_url`, so a key in the URL
is never written), model, prompt template name and text hash, and sampling settings, so a score can be
traced to exactly how it was produced. An unreachable server, a redirect, or a reply that is not a
chat-completions JSON raises :class:`JudgeError` naming the (redacted) URL once the retries or the time
are spent; the caller's already-written results are untouched.

Credentials (the API key and any ``user:password@`` in the URL) go only to the origin (scheme, host and
port) of the configured URL: a redirect is an error unless ``follow_redirects=True``, and even then a
redirect to another origin is followed without them.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import json
import os
import re
import time
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from speechgap.errors import ConfigError, SpeechgapError
from speechgap.provenance import PUBLIC_QUERY_NAMES, REDACTED, redact_url

JUDGE_PROTOCOLS = ("score", "yesno")

OPEN_ENDED_TEMPLATE = """\
You are rating how well a voice assistant answered a spoken request. You see a transcription of what the \
user said [Instruction] and a transcription of what the assistant said back [Response].

Give one score from 1 to 5:
1: the response is irrelevant, wrong, or does not address the request.
2: the response is partly relevant but inaccurate or incomplete.
3: the response is relevant and mostly accurate, but wordy or padded with detail that does not help.
4: the response is relevant, accurate and concise: a clear answer without needless elaboration.
5: the response is highly relevant, accurate and to the point: exactly the information the user needed.

[Instruction]: {prompt}
[Response]: {response}

Reply with the score only: a single digit from 1 to 5, nothing else."""

YES_NO_TEMPLATE = """\
You are checking a voice assistant's answer to a spoken question against the reference answer.

[Question]: {prompt}
[Reference answer]: {reference}
[Candidate answer]: {response}

Given the question and the reference answer, is the candidate answer correct? \
Reply with a single word, "Yes" or "No", and nothing else."""

SYSTEM_PROMPT = "You are a careful and impartial evaluator."

_PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "score": {
        "template": OPEN_ENDED_TEMPLATE,
        "template_name": "speechgap-open-ended-v1",
        "temperature": 0.0,
        "top_p": 1.0,
        "n": 1,
    },
    # VoiceBench's sd-qa judge: three samples at temperature 0.5, top-p 0.95, majority vote
    "yesno": {
        "template": YES_NO_TEMPLATE,
        "template_name": "speechgap-yes-no-v1",
        "temperature": 0.5,
        "top_p": 0.95,
        "n": 3,
    },
}
_PLACEHOLDERS = {"score": ("{prompt}", "{response}"), "yesno": ("{prompt}", "{reference}", "{response}")}


_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_REPLY_BYTES = 16 * 2**20  # a chat-completions reply is kilobytes; more is a misbehaving server
_DEFAULT_PORTS = {"http": 80, "https": 443}


class JudgeError(SpeechgapError):
    """The judge could not be reached or gave no usable answer; the message names the (redacted) URL."""


@dataclass(frozen=True)
class JudgeConfig:
    """Everything that decides a judge score (recorded with every verdict, URL redacted).

    Time bound: one :meth:`Judge.score` call — connecting, sending, reading the whole reply, every retry
    and every wait between attempts — ends within :attr:`total_timeout_s` seconds, which is
    ``deadline_s`` if given, else ``(retries + 1) * timeout_s + backoff_s * (2**retries - 1)``: 247 s
    with the defaults (4 attempts of at most 60 s, waits of 1, 2 and 4 s). A server that trickles its
    reply byte by byte is cut off at that bound like one that never answers.

    Attributes:
        url: base URL of an OpenAI-compatible server (``http://127.0.0.1:8000/v1``) or the full
            ``…/chat/completions`` URL. Records hold :func:`redact_url` of it.
        model: the judge model name sent in the request.
        api_key_env: name of the environment variable holding the API key (None: no key sent).
        protocol: ``"score"`` (1–5, open-ended) or ``"yesno"`` (sd-qa: majority of yes/no replies).
        template: the user-prompt template with ``{prompt}`` and ``{response}`` (and ``{reference}`` for
            ``"yesno"``); None: the protocol's own.
        template_name: a short name for the template, recorded; None: the protocol's own.
        system_prompt: the system message.
        temperature, top_p, max_tokens, n: sampling settings (None: the protocol's defaults, ``score``:
            0.0, 1.0, n=1; ``yesno``: 0.5, 0.95, n=3); ``score`` averages the ``n`` samples, ``yesno``
            takes their majority.
        timeout_s: wall-clock seconds one attempt may take in all (connect, send, the whole reply) — not
            per read.
        retries: extra attempts after a failed one (connection error, timeout, HTTP 429 or 5xx, a reply
            that is not JSON); HTTP 4xx and redirects are not retried.
        backoff_s: first wait between attempts in seconds, doubled each time.
        deadline_s: wall-clock seconds one :meth:`Judge.score` call may take in all; None: the bound
            above.
        follow_redirects: follow the server's HTTP redirects (at most 5, re-sending the same POST). Off by
            default: a redirect is an error. Even when on, the API key and URL credentials are sent only
            to the configured URL's origin (scheme, host and port), never to another.
    """

    url: str
    model: str
    api_key_env: str | None = None
    protocol: str = "score"
    template: str | None = None
    template_name: str | None = None
    system_prompt: str = SYSTEM_PROMPT
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 16
    n: int | None = None
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 1.0
    deadline_s: float | None = None
    follow_redirects: bool = False

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"argument 'url' must start with http:// or https://, got {redact_url(self.url)!r}"
            )
        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 (parsing the port is the check)
            httpx.URL(self.url)
        except (ValueError, httpx.InvalidURL) as err:
            raise ConfigError(
                f"argument 'url' is not a valid URL ({err}): {redact_url(self.url)!r}"
            ) from None
        if not parts.hostname:
            raise ConfigError(f"argument 'url' has no host: {redact_url(self.url)!r}")
        if not self.model:
            raise ConfigError("argument 'model' (the judge model name) is empty")
        if self.protocol not in JUDGE_PROTOCOLS:
            raise ConfigError(
                f"argument 'protocol' must be one of {', '.join(JUDGE_PROTOCOLS)}, got {self.protocol!r}"
            )
        for name, value in _PROTOCOL_DEFAULTS[self.protocol].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        placeholders = _PLACEHOLDERS[self.protocol]
        if any(placeholder not in self.template for placeholder in placeholders):
            raise ConfigError(
                f"argument 'template' of a {self.protocol!r} judge must contain {' and '.join(placeholders)}"
            )
        if self.n < 1:
            raise ConfigError(f"argument 'n' must be >= 1, got {self.n}")
        if self.retries < 0:
            raise ConfigError(f"argument 'retries' must be >= 0, got {self.retries}")
        if not self.timeout_s > 0:
            raise ConfigError(f"argument 'timeout_s' must be > 0, got {self.timeout_s}")
        if not self.backoff_s >= 0:
            raise ConfigError(f"argument 'backoff_s' must be >= 0, got {self.backoff_s}")
        if self.deadline_s is not None and not self.deadline_s > 0:
            raise ConfigError(f"argument 'deadline_s' must be > 0, got {self.deadline_s}")

    @property
    def endpoint(self) -> str:
        """The chat-completions URL requests go to (credentials included: never record it); a query
        string (``?api-version=…``) stays after the path."""
        parts = urlsplit(self.url)
        path = parts.path.rstrip("/")
        if not path.endswith("/chat/completions"):
            path += "/chat/completions"
        return urlunsplit(parts._replace(path=path))

    @property
    def total_timeout_s(self) -> float:
        """Seconds one :meth:`Judge.score` call takes at most, all attempts and waits included."""
        bound = (self.retries + 1) * self.timeout_s + self.backoff_s * (2**self.retries - 1)
        return bound if self.deadline_s is None else min(self.deadline_s, bound)

    def describe(self) -> dict[str, Any]:
        """The settings as recorded in results (URLs redacted; the key itself is never recorded)."""
        record = asdict(self)
        record.pop("template")
        record["url"] = redact_url(self.url)
        record["template_sha256"] = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:16]
        record["endpoint"] = redact_url(self.endpoint)
        return record


@dataclass(frozen=True)
class YesNoVerdict:
    """One answer judged by the yes/no protocol.

    Attributes:
        correct: the majority verdict (True: more yes than no; False: more no than yes); None when the vote
            is tied or no sample could be read.
        votes: per sample, ``"yes"``, ``"no"`` or None (unreadable), see :func:`parse_yes_no`.
        samples: the raw judge outputs.
        judge: :meth:`JudgeConfig.describe` of the judge that produced it.
    """

    correct: bool | None
    votes: list[str | None]
    samples: list[str]
    judge: dict[str, Any] = field(default_factory=dict)


def parse_yes_no(text: str) -> str | None:
    """``"yes"`` or ``"no"`` when the reply opens with that word ("Yes", "**No.**", "yes, it is"), else None
    ("The answer is yes", "Maybe", "")."""
    match = re.match(r"[\s*_`\"'(\[]*(yes|no)\b", text, flags=re.IGNORECASE)
    return match.group(1).lower() if match else None


def majority_vote(votes: Sequence[str | None]) -> bool | None:
    """True when more votes are ``"yes"`` than ``"no"``, False when fewer, None on a tie (unreadable votes
    count for neither side; no readable vote is a tie)."""
    yes, no = sum(v == "yes" for v in votes), sum(v == "no" for v in votes)
    return None if yes == no else yes > no


def voicebench_majority(samples: Sequence[str]) -> bool | None:
    """VoiceBench's sd-qa vote (``qa.py``): the most common lower-cased, stripped reply must be exactly
    ``"yes"``. A reply such as "Yes." counts as a different answer. None when the most common replies tie
    (VoiceBench then picks one by Python's set order, which varies between runs)."""
    replies = [sample.strip().lower() for sample in samples]
    if not replies:
        return None
    counts = {reply: replies.count(reply) for reply in replies}
    top = max(counts.values())
    leaders = [reply for reply, count in counts.items() if count == top]
    return None if len(leaders) > 1 else leaders[0] == "yes"


def parse_judge_score_voicebench(text: str) -> float | None:
    """VoiceBench's reading of one open-ended judge reply (``open.py``): ``float(reply)``, else the number
    in ``[[n]]``; None where VoiceBench would stop with an error."""
    try:
        return float(text)
    except ValueError:
        pass
    match = re.search(r"\[\[(\d+)\]\]", text)
    return float(match.group(1)) if match else None


@dataclass(frozen=True)
class JudgeVerdict:
    """One judged response.

    Attributes:
        score: mean of the parsed 1–5 scores, or None when no sample gave a parseable score.
        samples: the raw judge outputs.
        sample_scores: per sample, the parsed score or None.
        judge: :meth:`JudgeConfig.describe` of the judge that produced it.
    """

    score: float | None
    samples: list[str]
    sample_scores: list[int | None]
    judge: dict[str, Any] = field(default_factory=dict)


def parse_judge_score(text: str) -> int | None:
    """The first standalone digit 1–5 in a judge reply ("4", "Score: 4", "**4**"), else None."""
    match = re.search(r"(?<![\d.])([1-5])(?!\d|\.\d)", text)
    return int(match.group(1)) if match else None


class _AttemptFailed(Exception):
    """One attempt gave no usable reply; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return (url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme))


class Judge:
    """An OpenAI-compatible chat-completions judge.

    Example:
        >>> judge = Judge(JudgeConfig(url="http://127.0.0.1:8000/v1", model="qwen2.5-7b-instruct"))
        >>> verdict = judge.score("What is the capital of France?", "Paris.")
    """

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config

    def _credentials(self) -> dict[str, str]:
        """The Authorization header for the configured origin: the API key, else the URL's userinfo."""
        config = self.config
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                raise ConfigError(
                    f"the judge API key variable {config.api_key_env} (argument 'api_key_env') is not set"
                )
            if not (key.isascii() and key.isprintable()):
                raise ConfigError(
                    f"the judge API key in {config.api_key_env} (argument 'api_key_env') has characters "
                    "an HTTP header cannot carry (non-ASCII or control characters)"
                )
            return {"Authorization": f"Bearer {key}"}
        userinfo = urlsplit(config.endpoint).netloc.rpartition("@")[0]
        if userinfo:
            token = base64.b64encode(unquote(userinfo).encode("utf-8")).decode("ascii")
            return {"Authorization": f"Basic {token}"}
        return {}

    def _secrets(self, credentials: dict[str, str]) -> list[str]:
        """Strings that must not appear in an error message: the key, the userinfo, query values."""
        parts = urlsplit(self.config.endpoint)
        secrets = [value.partition(" ")[2] for value in credentials.values()]
        secrets += [unquote(part) for part in re.split(r"[:@]", parts.netloc.rpartition("@")[0])]
        secrets += [
            value or name
            for name, _, value in (item.partition("=") for item in parts.query.split("&"))
            if unquote(name).lower() not in PUBLIC_QUERY_NAMES
        ]
        secrets += [parts.fragment]
        secrets += [unquote(secret) for secret in secrets]
        return sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True)

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        config = self.config
        credentials = self._credentials()
        body = json.dumps(payload).encode("utf-8")
        started = time.monotonic()
        try:
            return _run(self._post_with_retries(body, credentials, started + config.total_timeout_s))
        except JudgeError as err:
            message = str(err)
            for secret in self._secrets(credentials):
                message = message.replace(secret, REDACTED)
            raise JudgeError(message) from None

    async def _post_with_retries(
        self, body: bytes, credentials: dict[str, str], deadline: float
    ) -> dict[str, Any]:
        config = self.config
        where = redact_url(config.endpoint)
        attempts, last_error = 0, "no attempt fitted in the time"
        for attempt in range(config.retries + 1):
            if attempt:
                wait = config.backoff_s * 2 ** (attempt - 1)
                if deadline - time.monotonic() <= wait:
                    break  # no time left for another attempt after the wait
                await asyncio.sleep(wait)
            limit = min(config.timeout_s, deadline - time.monotonic())
            if limit <= 0:
                break
            attempts += 1
            try:
                return await asyncio.wait_for(self._attempt(body, credentials, limit), timeout=limit)
            except asyncio.TimeoutError:
                last_error = f"no complete reply within {limit:.2g} s"
            except _AttemptFailed as err:
                last_error = str(err)
                if not err.retry:
                    break
        raise JudgeError(
            f"judge at {where} failed after {attempts} attempt(s) "
            f"(bound {config.total_timeout_s:.3g} s in all): {last_error}"
        )

    async def _attempt(self, body: bytes, credentials: dict[str, str], limit: float) -> dict[str, Any]:
        """One POST, following redirects only as :class:`JudgeConfig` allows; the parsed JSON reply."""
        config = self.config
        home = httpx.URL(config.endpoint)
        url = home.copy_with(userinfo=b"")  # the userinfo travels as the Authorization header, or not at all
        async with httpx.AsyncClient(timeout=httpx.Timeout(limit), follow_redirects=False) as client:
            for _hop in range(_MAX_REDIRECTS + 1):
                headers = {"Content-Type": "application/json", "Accept": "application/json"}
                if _origin(url) == _origin(home):
                    headers.update(credentials)
                try:
                    async with client.stream("POST", url, content=body, headers=headers) as reply:
                        if reply.status_code in _REDIRECT_STATUSES and "location" in reply.headers:
                            url = self._redirect_target(url, reply)
                            continue
                        content = await _read_limited(reply)
                except (httpx.HTTPError, httpx.InvalidURL) as err:
                    retry = isinstance(err, httpx.TransportError)  # a connection error may pass
                    raise _AttemptFailed(f"{type(err).__name__}: {err}", retry=retry) from None
                return _parse_reply(reply, content)
        raise _AttemptFailed(f"more than {_MAX_REDIRECTS} redirects", retry=False)

    def _redirect_target(self, url: httpx.URL, reply: httpx.Response) -> httpx.URL:
        try:
            target = url.join(reply.headers["location"])
        except httpx.InvalidURL as err:
            message = f"HTTP {reply.status_code} redirect to an invalid URL ({err})"
            raise _AttemptFailed(message, retry=False) from None
        shown = redact_url(str(target))
        if not self.config.follow_redirects:
            raise _AttemptFailed(
                f"HTTP {reply.status_code} redirect to {shown}; judge redirects are not followed unless "
                "allowed (argument 'follow_redirects'); give the final URL instead",
                retry=False,
            )
        if target.scheme not in _DEFAULT_PORTS:
            raise _AttemptFailed(f"HTTP {reply.status_code} redirect to a non-HTTP URL {shown}", retry=False)
        return target.copy_with(userinfo=b"")

    def _require(self, protocol: str, method: str) -> None:
        if self.config.protocol != protocol:
            raise ConfigError(
                f"Judge.{method} needs a judge with argument 'protocol' {protocol!r}; this one is "
                f"{self.config.protocol!r}"
            )

    def _ask(self, values: dict[str, str]) -> list[str]:
        """The ``n`` sampled replies to the template filled with ``values`` (in one pass, so a placeholder
        inside a response is left as text)."""
        config = self.config
        template = config.template or ""
        user = re.sub(
            r"\{(prompt|reference|response)\}", lambda m: values.get(m.group(1), m.group(0)), template
        )
        payload = {
            "model": config.model,
            "messages": [
                {"role": "system", "content": config.system_prompt},
                {"role": "user", "content": user},
            ],
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "n": config.n,
        }
        reply = self._post(payload)
        where = redact_url(config.endpoint)
        try:
            samples = [str(choice["message"]["content"] or "") for choice in reply["choices"]]
        except (KeyError, TypeError, IndexError) as err:
            raise JudgeError(f"judge at {where} sent a reply without choices[].message.content") from err
        if not samples:
            raise JudgeError(f"judge at {where} sent no choices")
        return samples

    def score(self, prompt: str, response: str) -> JudgeVerdict:
        """Judge one response to one instruction (both as text) on the 1–5 scale (protocol ``"score"``);
        see :class:`JudgeConfig` for the time bound. Raises :class:`JudgeError` when no usable reply came."""
        self._require("score", "score")
        samples = self._ask({"prompt": prompt, "response": response or ""})
        sample_scores = [parse_judge_score(sample) for sample in samples]
        valid = [value for value in sample_scores if value is not None]
        score = sum(valid) / len(valid) if valid else None
        return JudgeVerdict(score, samples, sample_scores, self.config.describe())

    def judge_answer(self, question: str, reference: str, response: str) -> YesNoVerdict:
        """Is ``response`` a correct answer to ``question`` given ``reference``? (protocol ``"yesno"``)

        The ``n`` samples are read by :func:`parse_yes_no` and combined by :func:`majority_vote`. Raises
        :class:`JudgeError` when no usable reply came.
        """
        self._require("yesno", "judge_answer")
        samples = self._ask({"prompt": question, "reference": reference, "response": response or ""})
        votes = [parse_yes_no(sample) for sample in samples]
        return YesNoVerdict(majority_vote(votes), votes, samples, self.config.describe())

    def score_many(self, prompts: Sequence[str], responses: Sequence[str]) -> list[JudgeVerdict]:
        """Judge pairs in order (stops with :class:`JudgeError` at the first unreachable request)."""
        if len(prompts) != len(responses):
            raise ConfigError(
                f"argument 'prompts' has {len(prompts)} entries but argument 'responses' has {len(responses)}"
            )
        return [self.score(prompt, response) for prompt, response in zip(prompts, responses, strict=True)]


async def _read_limited(reply: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in reply.aiter_raw():
        size += len(chunk)
        if size > _MAX_REPLY_BYTES:
            raise _AttemptFailed(f"reply larger than {_MAX_REPLY_BYTES} bytes", retry=False)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_reply(reply: httpx.Response, content: bytes) -> dict[str, Any]:
    """The JSON object of a 2xx reply; any other status or body is a failed attempt."""
    status = reply.status_code
    if not 200 <= status < 300:
        snippet = content[:200].decode("utf-8", errors="replace").strip()
        detail = f"HTTP {status} {reply.reason_phrase}" + (f": {snippet!r}" if snippet else "")
        # a client error (bad key, unknown model) will not go away by retrying
        raise _AttemptFailed(detail, retry=status >= 500 or status == 429)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _AttemptFailed(f"reply is not UTF-8 text ({err})", retry=True) from None
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        raise _AttemptFailed(f"reply is not JSON ({err}): {text[:80]!r}", retry=True) from None
    if not isinstance(parsed, dict):
        raise _AttemptFailed(f"reply is JSON but not an object: {text[:80]!r}", retry=True)
    return parsed


def _run(coroutine: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run the request coroutine to completion from synchronous code, also inside a running event loop
    (a notebook), where it runs on a short-lived worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
