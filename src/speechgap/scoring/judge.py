"""An LLM judge for open-ended answers (alpacaeval, commoneval, wildvoice, mtbench), 1–5 scale.

Talks to any OpenAI-compatible ``/chat/completions`` endpoint given by URL (a local vLLM or llama.cpp
server, or a hosted API) with the standard library only. The prompt follows VoiceBench's rubric for
open-ended answers (rate the transcribed response to the transcribed instruction from 1 to 5, output the
score only); the wording here is speechgap's own. Temperature 0 and one sample by default (VoiceBench's
own runs sample three at temperature 0.5 and average; set ``temperature``/``n`` to do the same).

Every :class:`JudgeVerdict` records the judge URL, model, prompt template name and text hash, and sampling
settings, so a score can be traced to exactly how it was produced. An unreachable server raises
:class:`JudgeError` naming the URL after the retries are spent; the caller's already-written results are
untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from speechgap.errors import ConfigError, SpeechgapError

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

SYSTEM_PROMPT = "You are a careful and impartial evaluator."


class JudgeError(SpeechgapError):
    """The judge could not be reached or gave no usable answer; the message names the URL."""


@dataclass(frozen=True)
class JudgeConfig:
    """Everything that decides a judge score (recorded with every verdict).

    Attributes:
        url: base URL of an OpenAI-compatible server (``http://127.0.0.1:8000/v1``) or the full
            ``…/chat/completions`` URL.
        model: the judge model name sent in the request.
        api_key_env: name of the environment variable holding the API key (None: no key sent).
        template: the user-prompt template with ``{prompt}`` and ``{response}``.
        template_name: a short name for the template, recorded.
        system_prompt: the system message.
        temperature, top_p, max_tokens, n: sampling settings; the score is the mean of the ``n`` samples.
        timeout_s: seconds per HTTP request.
        retries: extra attempts after a failed request.
        backoff_s: first wait between attempts, doubled each time.
    """

    url: str
    model: str
    api_key_env: str | None = None
    template: str = OPEN_ENDED_TEMPLATE
    template_name: str = "speechgap-open-ended-v1"
    system_prompt: str = SYSTEM_PROMPT
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 16
    n: int = 1
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"argument 'url' must start with http:// or https://, got {self.url!r}")
        if not self.model:
            raise ConfigError("argument 'model' (the judge model name) is empty")
        if "{prompt}" not in self.template or "{response}" not in self.template:
            raise ConfigError("argument 'template' must contain {prompt} and {response}")
        if self.n < 1:
            raise ConfigError(f"argument 'n' must be >= 1, got {self.n}")
        if self.retries < 0:
            raise ConfigError(f"argument 'retries' must be >= 0, got {self.retries}")
        if not self.timeout_s > 0:
            raise ConfigError(f"argument 'timeout_s' must be > 0, got {self.timeout_s}")

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else base + "/chat/completions"

    def describe(self) -> dict[str, Any]:
        """The settings as recorded in results (the key itself is never recorded)."""
        record = asdict(self)
        record.pop("template")
        record["template_sha256"] = hashlib.sha256(self.template.encode("utf-8")).hexdigest()[:16]
        record["endpoint"] = self.endpoint
        return record


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


class Judge:
    """An OpenAI-compatible chat-completions judge.

    Example:
        >>> judge = Judge(JudgeConfig(url="http://127.0.0.1:8000/v1", model="qwen2.5-7b-instruct"))
        >>> verdict = judge.score("What is the capital of France?", "Paris.")
    """

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.config.api_key_env:
            key = os.environ.get(self.config.api_key_env)
            if not key:
                raise ConfigError(
                    f"the judge API key variable {self.config.api_key_env} (argument 'api_key_env') is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        config = self.config
        body = json.dumps(payload).encode("utf-8")
        last_error = ""
        for attempt in range(config.retries + 1):
            if attempt:
                time.sleep(config.backoff_s * 2 ** (attempt - 1))
            request = urllib.request.Request(
                config.endpoint, data=body, headers=self._headers(), method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=config.timeout_s) as reply:
                    return json.loads(reply.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                last_error = f"HTTP {err.code} {err.reason}"
                if err.code < 500 and err.code != 429:
                    break  # a client error will not go away by retrying
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
                last_error = str(getattr(err, "reason", err))
            except json.JSONDecodeError as err:
                last_error = f"reply is not JSON ({err})"
        raise JudgeError(f"judge at {config.endpoint} failed after {attempt + 1} attempt(s): {last_error}")

    def score(self, prompt: str, response: str) -> JudgeVerdict:
        """Judge one response to one instruction (both as text)."""
        config = self.config
        user = config.template.replace("{prompt}", prompt).replace("{response}", response or "")
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
        try:
            samples = [str(choice["message"]["content"] or "") for choice in reply["choices"]]
        except (KeyError, TypeError) as err:
            raise JudgeError(
                f"judge at {config.endpoint} sent a reply without choices[].message.content"
            ) from err
        if not samples:
            raise JudgeError(f"judge at {config.endpoint} sent no choices")
        sample_scores = [parse_judge_score(sample) for sample in samples]
        valid = [value for value in sample_scores if value is not None]
        score = sum(valid) / len(valid) if valid else None
        return JudgeVerdict(score, samples, sample_scores, config.describe())

    def score_many(self, prompts: Sequence[str], responses: Sequence[str]) -> list[JudgeVerdict]:
        """Judge pairs in order (stops with :class:`JudgeError` at the first unreachable request)."""
        if len(prompts) != len(responses):
            raise ConfigError(
                f"argument 'prompts' has {len(prompts)} entries but argument 'responses' has {len(responses)}"
            )
        return [self.score(prompt, response) for prompt, response in zip(prompts, responses, strict=True)]
