"""One registry of the methods that change how a speech LLM answers: interventions and speech-token merging.

A method is a factory: given a :class:`MethodContext` (the adapter, the method's settings as keyword
arguments, its output folder, the evaluation samples), it returns something that answers questions — an
object with the evaluation runner's interface (:class:`~speechgap.evaluation.run.AnswersQuestions`), such as
an :class:`~speechgap.interventions.base.InterventionModel` or a
:class:`~speechgap.compression.run.CompressedModel`. ``speechgap.intervene`` and ``speechgap.compress``
(and their commands) look methods up here, so a method registered once is reachable through every door.

    >>> from speechgap.evaluation.methods import register_method
    >>> @register_method("zero-span", kind="intervention", settings=("layer",))
    ... def zero_span(context):
    ...     return InterventionModel(context.adapter, ZeroSpan(**context.options))

The built-in methods register when their packages are imported (:mod:`speechgap.interventions.run`,
:mod:`speechgap.compression.experiment`); ``import speechgap`` followed by any verb imports both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError

KINDS = ("intervention", "compression")


@dataclass
class MethodContext:
    """What a method factory may use to build the model that answers.

    Attributes:
        adapter: the speech LLM (:class:`~speechgap.models.base.SpeechLLM`).
        options: the method's own settings, as the user passed them (keyword name -> value).
        out_dir: the method's output folder (a factory may keep files there, e.g. a log of its edits).
        evaluation: the evaluation samples.
        calibration: a calibration split, for methods that estimate statistics first.
        progress: show progress bars.
    """

    adapter: Any
    options: Mapping[str, Any] = field(default_factory=dict)
    out_dir: Path = Path(".")
    evaluation: PairedDataset | None = None
    calibration: PairedDataset | None = None
    progress: bool = False


@dataclass(frozen=True)
class Method:
    """A registered method.

    Attributes:
        name: what ``method=`` / ``--method`` takes.
        kind: ``"intervention"`` (edits hidden states during the normal forward pass; evaluated as baseline
            vs treated, ``comparison.json``) or ``"compression"`` (shortens the speech span inside the
            decoder; evaluated with lengths, FLOPs and timing, ``compression.json``).
        factory: ``factory(context) -> model that answers``.
        settings: the keyword settings the method reads from ``context.options``.
        description: one line for listings.
    """

    name: str
    kind: str
    factory: Callable[[MethodContext], Any]
    settings: tuple[str, ...] = ()
    description: str = ""

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Refuse settings the method does not read, naming them and the ones it does."""
        unknown = sorted(set(options) - set(self.settings))
        if unknown:
            names = ", ".join(f"argument {name!r}" for name in unknown)
            known = ", ".join(self.settings) or "none"
            raise ConfigError(f"{names} is not a setting of method {self.name!r} (its settings: {known})")

    def build(self, context: MethodContext) -> Any:
        """The model that answers with this method applied."""
        self.check_options(context.options)
        return self.factory(context)


METHODS: dict[str, Method] = {}
"""Every registered method: name -> :class:`Method`."""


def register_method(
    name: str,
    factory: Callable[[MethodContext], Any] | None = None,
    *,
    kind: str = "intervention",
    settings: Sequence[str] = (),
    description: str = "",
) -> Any:
    """Register ``factory`` under ``name`` (usable as a decorator); re-registering a name replaces it."""
    if kind not in KINDS:
        raise ConfigError(f"argument 'kind' must be one of {KINDS}, got {kind!r}")

    def add(fn: Callable[[MethodContext], Any]) -> Callable[[MethodContext], Any]:
        METHODS[name] = Method(name, kind, fn, tuple(settings), description)
        return fn

    return add(factory) if factory is not None else add


def method_names(kind: str | None = None) -> list[str]:
    """The registered method names (of one kind), sorted."""
    return sorted(name for name, method in METHODS.items() if kind is None or method.kind == kind)


def get_method(name: str, kind: str | None = None) -> Method:
    """The registered method ``name``; a clear error listing the others when there is none."""
    method = METHODS.get(name)
    if method is None or (kind is not None and method.kind != kind):
        raise ConfigError(f"argument 'method' must be one of {', '.join(method_names(kind))}, got {name!r}")
    return method
