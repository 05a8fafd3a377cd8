"""IFEval: instruction following, checked by Google's instruction checkers from a maintained package.

The checkers come from ``if-verifiable`` (``if_verifiable.ifeval``: Google's IFEval instruction classes
and registry, packaged with light dependencies: nltk, langdetect, immutabledict). speechgap only runs
them: for each prompt, every instruction is checked on the response (*strict*) and on the eight loose
variants of Zhou et al. (2023) — first/last line removed, ``*`` removed — (*loose*). The four figures are

- prompt-level strict / loose: share of prompts whose instructions are *all* followed;
- instruction-level strict / loose: share of instructions followed;

and VoiceBench's ifeval score is their mean. An empty response follows no instruction. As in VoiceBench, a
leading turn marker ``<1>``/``<2>``/``<3>`` and a trailing ``<|user|>`` are removed before checking; the
checks and the four figures are the same under every protocol (VoiceBench's IFEval evaluator is
deterministic and this is its rule; the ``"voicebench"`` protocol additionally reproduces its keying of
responses by prompt text in :func:`speechgap.evaluation.report.score_run`).

Offline use: two checkers (``length_constraints:number_sentences`` and
``change_case:capital_word_frequency``) need NLTK's ``punkt_tab`` data, which cannot be downloaded here.
When it is not installed, those two checkers use an *untrained* Punkt sentence splitter (same algorithm, no
learned abbreviation list: "Mr. Smith" splits into two sentences); the splitter used is reported as
``sentence_tokenizer`` with every result. Install the data (``python -m nltk.downloader punkt_tab``) for
the exact reference behaviour. ``langdetect`` (``language:response_language``) is seeded with 0 during
scoring so that results are reproducible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from types import SimpleNamespace
from typing import Any

from speechgap.errors import ConfigError, DataError
from speechgap.scoring.registry import ItemScore, Scorer, ScoringItem, register_scorer

BACKEND = "if-verifiable"


@dataclass(frozen=True)
class IfevalItemResult:
    """One prompt checked.

    Attributes:
        instruction_ids: the prompt's instruction ids, in order.
        strict: per instruction, followed on the response as is.
        loose: per instruction, followed on any loose variant.
    """

    instruction_ids: list[str]
    strict: list[bool]
    loose: list[bool]

    @property
    def prompt_strict(self) -> bool:
        return all(self.strict)

    @property
    def prompt_loose(self) -> bool:
        return all(self.loose)


@dataclass(frozen=True)
class IfevalScores:
    """The four IFEval figures (each in [0, 1]) and their mean (VoiceBench's ifeval score).

    Attributes:
        prompt_strict, prompt_loose: share of prompts with every instruction followed.
        instruction_strict, instruction_loose: share of instructions followed.
        mean: mean of the four.
        num_prompts, num_instructions: denominators.
        backend: package and version of the checkers.
        sentence_tokenizer: ``"punkt_tab"`` or ``"punkt-untrained"`` (see the module doc).
    """

    prompt_strict: float
    prompt_loose: float
    instruction_strict: float
    instruction_loose: float
    mean: float
    num_prompts: int
    num_instructions: int
    backend: str
    sentence_tokenizer: str
    extra: dict[str, Any] = field(default_factory=dict)


def _load_backend() -> tuple[Any, Any, Any]:
    try:
        from if_verifiable.common import get_loose_transformations
        from if_verifiable.ifeval import instructions_util
        from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
    except ImportError as err:
        raise ConfigError(
            "IFEval scoring needs the if-verifiable package (Google's instruction checkers): "
            "pip install if-verifiable"
        ) from err
    return INSTRUCTION_DICT, get_loose_transformations, instructions_util


def backend_version() -> str:
    """``"if-verifiable==X.Y.Z"``."""
    try:
        return f"{BACKEND}=={metadata.version(BACKEND)}"
    except metadata.PackageNotFoundError as err:
        raise ConfigError(
            "IFEval scoring needs the if-verifiable package: pip install if-verifiable"
        ) from err


def sentence_tokenizer_name() -> str:
    """``"punkt_tab"`` when NLTK's trained English Punkt data is installed, else ``"punkt-untrained"``."""
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab/english/")
    except LookupError:
        return "punkt-untrained"
    return "punkt_tab"


@contextlib.contextmanager
def _offline_checkers(instructions_util: Any) -> Iterator[str]:
    """Make the checkers runnable without network, for the duration of the block only.

    Seeds langdetect; when punkt_tab is missing, gives the checkers' utility module an untrained Punkt
    splitter in place of the trained one. Everything is restored on exit.
    """
    import langdetect
    import nltk
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    name = sentence_tokenizer_name()
    old_seed = langdetect.DetectorFactory.seed
    old_getter = instructions_util._get_sentence_tokenizer
    old_nltk = instructions_util.nltk
    langdetect.DetectorFactory.seed = 0
    try:
        if name == "punkt-untrained":
            splitter = PunktSentenceTokenizer()
            words = NLTKWordTokenizer()

            def word_tokenize(text: str, language: str = "english", preserve_line: bool = False) -> list[str]:
                sentences = [text] if preserve_line else splitter.tokenize(text)
                return [token for sentence in sentences for token in words.tokenize(sentence)]

            instructions_util._get_sentence_tokenizer = lambda: splitter
            instructions_util.nltk = SimpleNamespace(
                word_tokenize=word_tokenize, tokenize=nltk.tokenize, data=nltk.data
            )
        yield name
    finally:
        langdetect.DetectorFactory.seed = old_seed
        instructions_util._get_sentence_tokenizer = old_getter
        instructions_util.nltk = old_nltk


def _check(
    registry: Mapping[str, Any],
    loose_variants: Any,
    response: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    prompt: str,
) -> IfevalItemResult:
    if len(kwargs_list) != len(instruction_ids):
        raise DataError(
            f"{len(instruction_ids)} instruction ids but {len(kwargs_list)} kwargs entries", field="kwargs"
        )
    variants = loose_variants(response) if response.strip() else []
    strict: list[bool] = []
    loose: list[bool] = []
    for instruction_id, kwargs in zip(instruction_ids, kwargs_list, strict=True):
        checker_class = registry.get(instruction_id)
        if checker_class is None:
            raise DataError(f"unknown IFEval instruction id {instruction_id!r}", field="instruction_id_list")
        checker = checker_class(instruction_id)
        # As in Google's evaluation: unset (None/empty) arguments are left to the checker's defaults.
        checker.build_description(**{key: value for key, value in (kwargs or {}).items() if value})
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=prompt)
        strict.append(bool(response.strip()) and bool(checker.check_following(response)))
        loose.append(any(variant.strip() and checker.check_following(variant) for variant in variants))
    return IfevalItemResult(list(instruction_ids), strict, loose)


def strip_turn_markers(response: str) -> str:
    """The response without a leading ``<1>``/``<2>``/``<3>`` and a trailing ``<|user|>`` (VoiceBench's
    order: the leading marker first)."""
    if response.startswith(("<1>", "<2>", "<3>")):
        response = response[3:].strip()
    if response.endswith("<|user|>"):
        response = response[:-8].strip()
    return response


def check_ifeval(
    responses: Sequence[str | None],
    instruction_id_lists: Sequence[Sequence[str]],
    kwargs_lists: Sequence[Sequence[Mapping[str, Any] | None]],
    prompts: Sequence[str],
) -> tuple[list[IfevalItemResult], str]:
    """Check every response against its prompt's instructions.

    Args:
        responses: one model response per prompt (None or empty follows nothing).
        instruction_id_lists: per prompt, the instruction ids (VoiceBench/IFEval ``instruction_id_list``).
        kwargs_lists: per prompt, one argument dict per instruction (``kwargs``).
        prompts: the prompt texts (a few checkers read them).

    Returns:
        ``(per-prompt results, sentence tokenizer name)``.
    """
    n = len(responses)
    if not (len(instruction_id_lists) == len(kwargs_lists) == len(prompts) == n):
        raise ConfigError(
            f"argument 'responses' has {n} entries, argument 'instruction_id_lists' "
            f"{len(instruction_id_lists)}, argument 'kwargs_lists' {len(kwargs_lists)} and argument 'prompts' "
            f"{len(prompts)}; they must match"
        )
    registry, loose_variants, util = _load_backend()
    results: list[IfevalItemResult] = []
    with _offline_checkers(util) as tokenizer_name:
        for index in range(n):
            ids = instruction_id_lists[index]
            if not ids:
                raise DataError(f"IFEval item {index} has no instructions", field="instruction_id_list")
            response = strip_turn_markers(responses[index] or "")
            results.append(
                _check(registry, loose_variants, response, ids, kwargs_lists[index], prompts[index])
            )
    return results, tokenizer_name


def ifeval_scores(results: Sequence[IfevalItemResult], sentence_tokenizer: str) -> IfevalScores:
    """Aggregate per-prompt results into the four IFEval figures and their mean."""
    if not results:
        raise ConfigError("argument 'results' must hold at least one result")
    num_instructions = sum(len(result.strict) for result in results)
    prompt_strict = sum(result.prompt_strict for result in results) / len(results)
    prompt_loose = sum(result.prompt_loose for result in results) / len(results)
    instruction_strict = sum(sum(result.strict) for result in results) / num_instructions
    instruction_loose = sum(sum(result.loose) for result in results) / num_instructions
    return IfevalScores(
        prompt_strict=prompt_strict,
        prompt_loose=prompt_loose,
        instruction_strict=instruction_strict,
        instruction_loose=instruction_loose,
        mean=(prompt_strict + prompt_loose + instruction_strict + instruction_loose) / 4.0,
        num_prompts=len(results),
        num_instructions=num_instructions,
        backend=backend_version(),
        sentence_tokenizer=sentence_tokenizer,
    )


def score(response: str | None, item: ScoringItem) -> ItemScore:
    """``correct`` = every instruction followed (prompt-level strict); the per-instruction strict and loose
    flags go to ``detail`` for the four figures."""
    if not item.instruction_ids:
        raise DataError(
            "IFEval scoring needs the instruction ids, and this item has none", field="instruction_id_list"
        )
    ids = list(item.instruction_ids)
    kwargs = list(item.instruction_kwargs) if item.instruction_kwargs is not None else [{} for _ in ids]
    results, tokenizer = check_ifeval([response], [ids], [kwargs], [item.prompt or ""])
    result = results[0]
    protocol = "voicebench" if item.protocol == "voicebench" else "speechgap"
    return ItemScore(
        "ifeval",
        result.prompt_strict,
        float(result.prompt_strict),
        bool((response or "").strip()),
        None,
        "instruction_checkers",
        {
            "strict": result.strict,
            "loose": result.loose,
            "instruction_ids": result.instruction_ids,
            "backend": backend_version(),
            "sentence_tokenizer": tokenizer,
            "protocol": protocol,
        },
        protocol=protocol,
    )


SCORER = register_scorer(
    Scorer(
        "ifeval",
        score,
        subsets=("ifeval",),
        description="IFEval: all instructions followed (strict); subset score = mean of the four figures",
    )
)
