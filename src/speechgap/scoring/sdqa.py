"""sd-qa: does the response contain a reference answer?

Default matcher ``"containment"``: both texts are normalised (Unicode NFKC, lower case, punctuation to
spaces, the articles a/an/the dropped, whitespace collapsed) and the response is correct when any reference
appears in it as a whole run of words ("in 1969" contains "1969"; "19690" does not).

``"pedant"`` uses PEDANT from the ``qa-metrics`` package (the matcher VoiceBench reports), only when that
package is installed; ``"auto"`` uses PEDANT when it loads and containment otherwise. The matcher actually
used is returned with every result so it can be recorded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from speechgap.errors import ConfigError, DataError

MATCHERS = ("auto", "containment", "pedant")
_ARTICLES = frozenset({"a", "an", "the"})


@dataclass(frozen=True)
class SdqaResult:
    """One sd-qa item scored.

    Attributes:
        correct: whether the response matches a reference.
        matcher: ``"containment"`` or ``"pedant"`` — the one that decided.
        matched_reference: the reference found (containment only), else None.
    """

    correct: bool
    matcher: str
    matched_reference: str | None = None


def normalise_answer(text: str) -> str:
    """Lower-cased words without punctuation or articles, single-spaced (SQuAD-style normalisation)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(word for word in text.split() if word not in _ARTICLES)


def _references(reference: str | Sequence[str] | None) -> list[str]:
    if reference is None:
        raise DataError("sd-qa scoring needs a reference answer, and this item has none", field="reference")
    refs = [reference] if isinstance(reference, str) else list(reference)
    refs = [str(ref) for ref in refs if str(ref).strip()]
    if not refs:
        raise DataError("sd-qa reference answer is empty", field="reference")
    return refs


def contains_reference(response: str | None, reference: str | Sequence[str]) -> str | None:
    """The first reference whose normalised words appear in the normalised response, else None."""
    words = f" {normalise_answer(response or '')} "
    for ref in _references(reference):
        norm = normalise_answer(ref)
        if norm and f" {norm} " in words:
            return ref
    return None


class _Pedant:
    """Lazy holder for one PEDANT model (loading it is slow)."""

    _instance: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls._instance is None:
            try:
                from qa_metrics.pedant import PEDANT
            except ImportError as err:
                raise ConfigError(
                    "argument 'matcher' 'pedant' needs the qa-metrics package (pip install qa-metrics); "
                    "use 'containment' or 'auto' without it"
                ) from err
            cls._instance = PEDANT()
        return cls._instance


def pedant_available() -> bool:
    """Whether the ``qa-metrics`` package (PEDANT) can be imported."""
    import importlib.util

    return importlib.util.find_spec("qa_metrics") is not None


def resolve_matcher(matcher: str) -> str:
    """``"auto"`` → ``"pedant"`` when qa-metrics is installed, else ``"containment"``."""
    if matcher not in MATCHERS:
        raise ConfigError(f"argument 'matcher' must be one of {', '.join(MATCHERS)}, got {matcher!r}")
    if matcher == "auto":
        return "pedant" if pedant_available() else "containment"
    return matcher


def score_sdqa(
    response: str | None,
    reference: str | Sequence[str] | None,
    *,
    question: str = "",
    matcher: str = "containment",
) -> SdqaResult:
    """Score one sd-qa response against its reference answer(s).

    Args:
        response: the model's answer; empty or None is wrong.
        reference: one reference answer or a list of accepted answers.
        question: the question text (PEDANT uses it).
        matcher: ``"containment"`` (default), ``"pedant"`` or ``"auto"``.
    """
    refs = _references(reference)
    used = resolve_matcher(matcher)
    if used == "pedant":
        if not (response or "").strip():
            return SdqaResult(False, "pedant")
        pedant = _Pedant.get()
        verdict = pedant.evaluate([ref.lower() for ref in refs], response.lower(), question.lower())
        return SdqaResult(bool(verdict), "pedant")
    found = contains_reference(response, refs)
    return SdqaResult(found is not None, "containment", found)
