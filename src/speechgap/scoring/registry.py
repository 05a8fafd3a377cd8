"""The scorer registry: one scorer per benchmark mode, every scorer the same signature, looked up by name.

A scorer is a plain function ``score(response, item) -> ItemScore`` wrapped in a :class:`Scorer` that names
the mode, the benchmark subsets it claims and whether it needs a reference answer. Modes register
themselves when :mod:`speechgap.scoring` is imported; :func:`get_scorer` finds one by name and
:func:`scoring_mode` finds the mode of a subset from the scorers' claims. Adding a benchmark is one file::

    from speechgap.scoring.registry import ItemScore, Scorer, ScoringItem, register_scorer

    def score(response: str | None, item: ScoringItem) -> ItemScore:
        correct = (response or "").strip().lower() == str(item.answer).lower()
        return ItemScore("exact", correct, float(correct), bool(response), response, "exact_match")

    SCORER = register_scorer(Scorer("exact", score, subsets=("mybench",), needs_answer=True))

Protocols (run-level, applied to every mode): ``"speechgap"`` — honest, an unreadable response is wrong and
counted as a parse failure; ``"speechmmlu"`` — SpeechMMLU's strict multiple-choice pattern (other modes
score as ``"speechgap"``); ``"voicebench"`` — VoiceBench's published evaluators reproduced wherever they
are deterministic (compatibility only). Every :class:`ItemScore` records the protocol that produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from speechgap.errors import ConfigError
from speechgap.scoring.choice import PROTOCOLS

if TYPE_CHECKING:
    from speechgap.scoring.judge import Judge


@dataclass(frozen=True)
class ItemScore:
    """One response scored.

    Attributes:
        mode: the scoring mode (the scorer's name).
        correct: the per-item outcome used for accuracy and the paired statistics (for ``refusal``: refused;
            for ``ifeval``: all instructions followed, strict); None for ``judge``.
        score: the numeric score: 1.0/0.0 from ``correct``, or the judge's 1–5 mean (None if unparseable).
        parsed: whether an answer could be read from the response (False counts as a parse failure).
        prediction: what was read (letter, yes/no, "(A)", the refusal phrase, ...), or None.
        rule: the rule that decided, or why nothing could be read.
        detail: mode-specific extras (e.g. ifeval per-instruction results, the judge record).
        protocol: the protocol whose rules produced this score (``"speechgap"``, ``"speechmmlu"``,
            ``"voicebench"``); may differ from the one asked for where a mode has no such rules.
    """

    mode: str
    correct: bool | None
    score: float | None
    parsed: bool
    prediction: str | None
    rule: str
    detail: dict[str, Any] = field(default_factory=dict)
    protocol: str = "speechgap"


@dataclass(frozen=True)
class ScoringItem:
    """Everything a scorer may read about one item besides the response, and the scoring options.

    Attributes:
        answer: the reference: an option letter or 0-based index (mcq), ``yes``/``no``/``(A)``/``(B)`` (bbh),
            a string or list of strings (sdqa); None where the mode needs none.
        choices: option texts (mcq), optional.
        n_choices: number of options (mcq); None: ``len(choices)`` or 4.
        sample_id: the item id (names the BBH task when ``task`` is None; seeds compatibility draws).
        task: BBH task name.
        prompt: the question or instruction as text (ifeval, judge, sdqa judge).
        instruction_ids, instruction_kwargs: IFEval ``instruction_id_list`` and ``kwargs``.
        protocol: one of :data:`speechgap.scoring.choice.PROTOCOLS`.
        sdqa_matcher: ``"containment"`` (deterministic) or ``"judge"`` (the yes/no LLM judge).
        judge: a :class:`~speechgap.scoring.judge.Judge` (judge mode; sd-qa with ``sdqa_matcher="judge"``).
        seed: seed of the compatibility protocol's random fallbacks.
    """

    answer: Any = None
    choices: Sequence[str] | None = None
    n_choices: int | None = None
    sample_id: str | None = None
    task: str | None = None
    prompt: str | None = None
    instruction_ids: Sequence[str] | None = None
    instruction_kwargs: Sequence[Mapping[str, Any] | None] | None = None
    protocol: str = "speechgap"
    sdqa_matcher: str = "containment"
    judge: Judge | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"argument 'protocol' must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )


ScoreFunction = Callable[[str | None, ScoringItem], ItemScore]


@dataclass(frozen=True)
class Scorer:
    """A scoring mode.

    Attributes:
        name: the mode name (``"mcq"``, ``"bbh"``, ...), as stored in ``reference.scoring_mode``.
        score: ``score(response, item) -> ItemScore``.
        subsets: benchmark subset names this mode scores (lower case).
        prefixes: subset-name prefixes it claims (``"sd-qa"`` claims ``sd-qa-usa``, ``sd-qa/aus``).
        needs_answer: whether an item must carry a reference answer.
        judge_protocol: the :class:`~speechgap.scoring.judge.JudgeConfig` protocol this mode can use a
            judge with (``"score"``, ``"yesno"``), or None.
        needs_judge: whether the mode cannot score without that judge (left unscored without one).
        description: one line for listings and errors.
    """

    name: str
    score: ScoreFunction
    subsets: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    needs_answer: bool = False
    judge_protocol: str | None = None
    needs_judge: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip().lower():
            raise ConfigError(f"argument 'name' must be a lower-case, non-empty mode name, got {self.name!r}")
        if not callable(self.score):
            raise ConfigError(f"argument 'score' of scorer {self.name!r} must be callable")
        object.__setattr__(self, "subsets", tuple(s.strip().lower() for s in self.subsets))
        object.__setattr__(self, "prefixes", tuple(p.strip().lower() for p in self.prefixes))


_SCORERS: dict[str, Scorer] = {}


def register_scorer(scorer: Scorer, *, replace: bool = False) -> Scorer:
    """Add ``scorer`` to the registry and return it.

    Raises :class:`ConfigError` when its name is taken (unless ``replace``) or a subset it claims is
    already claimed by another scorer.
    """
    if scorer.name in _SCORERS and not replace:
        raise ConfigError(f"a scorer named {scorer.name!r} is already registered (argument 'replace')")
    for other in _SCORERS.values():
        if other.name == scorer.name:
            continue
        taken = set(other.subsets) & set(scorer.subsets)
        if taken:
            raise ConfigError(
                f"scorer {scorer.name!r} claims subset(s) {', '.join(sorted(taken))} already claimed by "
                f"scorer {other.name!r}"
            )
    _SCORERS[scorer.name] = scorer
    return scorer


def unregister_scorer(name: str) -> Scorer:
    """Remove the scorer ``name`` from the registry (for plug-ins and tests) and return it."""
    if name not in _SCORERS:
        raise ConfigError(f"argument 'name' names no registered scorer: {name!r}")
    return _SCORERS.pop(name)


def scorer_names() -> tuple[str, ...]:
    """The names of the registered scorers, sorted."""
    return tuple(sorted(_SCORERS))


def get_scorer(mode: str) -> Scorer:
    """The scorer of a mode; raises :class:`ConfigError` naming argument 'mode' and the known modes."""
    try:
        return _SCORERS[mode]
    except (KeyError, TypeError):
        raise ConfigError(
            f"argument 'mode' must be one of {', '.join(scorer_names())}, got {mode!r}"
        ) from None


def scoring_mode(subset: str) -> str:
    """The scoring mode of a benchmark subset, from the scorers' claims (case-insensitive).

    An exact subset name wins; otherwise the longest claimed prefix (``sd-qa-usa`` → ``sdqa``,
    ``bbh_navigate`` → ``bbh``). Raises :class:`ConfigError` if no scorer claims it.
    """
    key = subset.strip().lower()
    for scorer in _SCORERS.values():
        if key in scorer.subsets:
            return scorer.name
    claims = [(len(p), s.name) for s in _SCORERS.values() for p in s.prefixes if key.startswith(p)]
    if claims:
        return max(claims)[1]
    known = sorted({name for s in _SCORERS.values() for name in s.subsets})
    raise ConfigError(
        f"no scoring mode for argument 'subset' {subset!r}; known subsets: {', '.join(known)}; or pass a "
        f"mode: {', '.join(scorer_names())}"
    )


def modes_needing_answers() -> frozenset[str]:
    """The registered modes whose items must carry a reference answer."""
    return frozenset(s.name for s in _SCORERS.values() if s.needs_answer)
