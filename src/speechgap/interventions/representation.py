"""Angle projection and length normalization of critical speech tokens (Xiang et al., EMNLP 2025).

Paper 1 (arXiv 2510.12116) aligns the speech frames of a sample with its transcript's tokens and edits the
speech frames whose alignment is worst ("critical tokens"):

- **angle projection**: ``h^s_i <- ||h^s_i|| * h^t_j / ||h^t_j||`` — take the aligned text token's direction,
  keep the speech state's norm;
- **length normalization**: ``h^s_i <- ||h^t_j|| * h^s_i / ||h^s_i||`` — keep the direction, take the text
  token's norm.

Both are *oracle* interventions: they need the transcript's hidden states of the same sample (one text
capture at the path layer and, if different, at the application layer, before the edited speech run). A
batch of samples is captured in one pass per modality (:meth:`_AlignedReplacement.prepare_batch`).

Critical tokens (:func:`critical_tokens`): the cosine matrix ``A[i, j]`` between speech frames and text
tokens at the path layer gives a path — paper 1's argmax path ``i*_j = argmax_i A[i, j]`` or paper 3's
monotonic DTW path — whose pairs ``(i, j)`` carry the path score ``A[i, j]``. A speech frame paired with
several text tokens keeps the best-scoring one (its own path score is then that best score, ties to the
lower token index). ``bottom-k`` keeps the ``k`` frames with the lowest path scores (ties to the lower
frame index), ``all`` keeps every frame on the path.

Open choices (methods.md §1) and defaults: the path layer and the application layer are settings; both
default to layer 0, the input of the first decoder block, which is what the paper's wording suggests
(“the input embeddings”).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError
from speechgap.interventions.base import EditPlan, Intervention
from speechgap.metrics import argmax_path, cosine_matrix, dtw_path
from speechgap.models.base import Capture, SpeechLLM

PATH_KINDS = ("argmax", "dtw")
CRITICAL_KINDS = ("bottom-k", "all")


def angle_projection(speech: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """``||s_i|| * t_i / ||t_i||`` row by row: the text direction at the speech norm (paper 1).

    Args:
        speech: ``(n, d)`` speech states.
        text: ``(n, d)`` the aligned text states, one per speech row.

    Returns:
        ``(n, d)`` in ``speech``'s dtype (computed in float32 or wider). A row whose text state is zero has
        no direction to take and is left unchanged.
    """
    _check_pairs(speech, text)
    s = speech.to(torch.promote_types(speech.dtype, torch.float32))
    t = text.to(s.dtype)
    s_norm = s.norm(dim=-1, keepdim=True)
    t_norm = t.norm(dim=-1, keepdim=True)
    projected = s_norm * t / torch.where(t_norm > 0, t_norm, torch.ones_like(t_norm))
    return torch.where(t_norm > 0, projected, s).to(speech.dtype)


def length_normalization(speech: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """``||t_i|| * s_i / ||s_i||`` row by row: the speech direction at the text norm (paper 1).

    Args:
        speech: ``(n, d)`` speech states.
        text: ``(n, d)`` the aligned text states, one per speech row.

    Returns:
        ``(n, d)`` in ``speech``'s dtype. A zero speech row has no direction and is left unchanged.
    """
    _check_pairs(speech, text)
    s = speech.to(torch.promote_types(speech.dtype, torch.float32))
    t = text.to(s.dtype)
    s_norm = s.norm(dim=-1, keepdim=True)
    t_norm = t.norm(dim=-1, keepdim=True)
    scaled = t_norm * s / torch.where(s_norm > 0, s_norm, torch.ones_like(s_norm))
    return torch.where(s_norm > 0, scaled, s).to(speech.dtype)


def _check_pairs(speech: torch.Tensor, text: torch.Tensor) -> None:
    if speech.ndim != 2 or tuple(speech.shape) != tuple(text.shape):
        raise ConfigError(
            f"argument 'speech' and argument 'text' must both be (n, d) states with the same shape, got "
            f"{tuple(speech.shape)} "
            f"and {tuple(text.shape)}"
        )


@dataclass(frozen=True)
class CriticalTokens:
    """The speech frames chosen for editing and the text token each is paired with.

    Attributes:
        frames: int64 ``(k,)`` speech-frame indices within the speech span, ascending.
        tokens: int64 ``(k,)`` the paired text token (index within the transcript span) of each frame.
        scores: float64 ``(k,)`` each frame's path score (cosine similarity at the path layer).
        path: ``"argmax"`` or ``"dtw"``.
        critical: ``"bottom-k"`` or ``"all"``.
        k: the k of bottom-k (None for all).
    """

    frames: np.ndarray
    tokens: np.ndarray
    scores: np.ndarray
    path: str
    critical: str
    k: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames.tolist(),
            "tokens": self.tokens.tolist(),
            "scores": [round(float(s), 6) for s in self.scores],
            "path": self.path,
            "critical": self.critical,
            "k": self.k,
        }


def path_pairs(similarity: np.ndarray, path: str = "argmax") -> tuple[np.ndarray, np.ndarray]:
    """The ``(frame, token)`` pairs of an alignment path through a ``(T_s, T_t)`` similarity matrix.

    ``argmax``: one pair per text token, ``(argmax_i A[i, j], j)`` (paper 1). ``dtw``: every cell of the
    monotonic DTW path (paper 3), via :func:`speechgap.metrics.dtw_path`.

    Returns:
        ``(frames, tokens)``, two int64 arrays of equal length.
    """
    if path == "argmax":
        frames = argmax_path(similarity)
        return frames, np.arange(len(frames), dtype=np.int64)
    if path == "dtw":
        pairs = np.asarray(dtw_path(similarity), dtype=np.int64)
        return pairs[:, 0], pairs[:, 1]
    raise ConfigError(f"argument 'path' must be one of {PATH_KINDS}, got {path!r}")


def critical_tokens_from_similarity(
    similarity: np.ndarray, *, path: str = "argmax", critical: str = "bottom-k", k: int = 3
) -> CriticalTokens:
    """Critical speech frames from a ``(T_s, T_t)`` speech × text similarity matrix (rules in module doc)."""
    if critical not in CRITICAL_KINDS:
        raise ConfigError(f"argument 'critical' must be one of {CRITICAL_KINDS}, got {critical!r}")
    if critical == "bottom-k" and not _is_integer(k):
        raise ConfigError(f"argument 'k' must be an integer (frames kept by bottom-k), got {k!r}")
    if critical == "bottom-k" and k < 1:
        raise ConfigError(f"argument 'k' must be >= 1 for bottom-k, got {k}")
    similarity = np.asarray(similarity, dtype=np.float64)
    frames, tokens = path_pairs(similarity, path)
    scores = similarity[frames, tokens]
    # one text token per frame: the best-scoring one (ties: lower token index)
    order = np.lexsort((tokens, -scores, frames))
    frames, tokens, scores = frames[order], tokens[order], scores[order]
    first = np.ones(len(frames), dtype=bool)
    first[1:] = frames[1:] != frames[:-1]
    frames, tokens, scores = frames[first], tokens[first], scores[first]
    if critical == "bottom-k":
        chosen = np.lexsort((frames, scores))[:k]  # lowest scores first, ties to the lower frame
        chosen = np.sort(chosen)
        frames, tokens, scores = frames[chosen], tokens[chosen], scores[chosen]
    return CriticalTokens(
        frames=frames.astype(np.int64),
        tokens=tokens.astype(np.int64),
        scores=scores.astype(np.float64),
        path=path,
        critical=critical,
        k=k if critical == "bottom-k" else None,
    )


def critical_tokens(
    speech: Any, text: Any, *, path: str = "argmax", critical: str = "bottom-k", k: int = 3
) -> CriticalTokens:
    """Critical speech frames of one sample from its speech and text states at the path layer.

    Args:
        speech: ``(T_s, d)`` speech-span states.
        text: ``(T_t, d)`` transcript-span states, same layer.
        path: ``"argmax"`` (paper 1, default) or ``"dtw"`` (paper 3).
        critical: ``"bottom-k"`` (default; paper 1's Bottom3 with ``k=3``) or ``"all"``.
        k: how many frames bottom-k keeps (fewer when the path has fewer frames).
    """
    return critical_tokens_from_similarity(cosine_matrix(speech, text), path=path, critical=critical, k=k)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class _AlignedReplacement(Intervention):
    """Shared logic of angle projection and length normalization: critical tokens, then a row formula."""

    formula: ClassVar[Any] = None

    def __init__(
        self,
        *,
        critical: str = "bottom-k",
        k: int = 3,
        path: str = "argmax",
        path_layer: int = 0,
        apply_layer: int = 0,
    ) -> None:
        if critical not in CRITICAL_KINDS:
            raise ConfigError(f"argument 'critical' must be one of {CRITICAL_KINDS}, got {critical!r}")
        if path not in PATH_KINDS:
            raise ConfigError(f"argument 'path' must be one of {PATH_KINDS}, got {path!r}")
        if not _is_integer(k):
            raise ConfigError(f"argument 'k' must be an integer (frames kept by bottom-k), got {k!r}")
        if critical == "bottom-k" and k < 1:
            raise ConfigError(f"argument 'k' must be >= 1, got {k}")
        for name, layer in (("path_layer", path_layer), ("apply_layer", apply_layer)):
            if not _is_integer(layer):
                raise ConfigError(f"argument '{name}' must be an integer (a layer), got {layer!r}")
            if layer < 0:
                raise ConfigError(f"argument '{name}' must be >= 0, got {layer}")
        self.critical = critical
        self.k = int(k)
        self.path = path
        self.path_layer = int(path_layer)
        self.apply_layer = int(apply_layer)

    def settings(self) -> dict[str, Any]:
        return {
            "critical": self.critical,
            "k": self.k if self.critical == "bottom-k" else None,
            "path": self.path,
            "similarity": "cosine",
            "path_layer": self.path_layer,
            "apply_layer": self.apply_layer,
            "phase": "prefill",
        }

    def validate(self, adapter: SpeechLLM) -> None:
        for name, layer in (("path_layer", self.path_layer), ("apply_layer", self.apply_layer)):
            if layer > adapter.num_layers:
                raise ConfigError(
                    f"argument '{name}' must be in 0..{adapter.num_layers} for this model, got {layer}"
                )

    def prepare(self, adapter: SpeechLLM, sample: PairedSample) -> EditPlan:
        """Capture the transcript (path and application layers) and the speech run (path layer)."""
        return self.prepare_batch(adapter, [sample])[0]

    def prepare_batch(self, adapter: SpeechLLM, samples: Sequence[PairedSample]) -> list[EditPlan]:
        """:meth:`prepare` for several samples: one transcript capture and one speech capture of the whole
        batch (right-padded, so each sample's states equal its own capture's up to float rounding)."""
        self.validate(adapter)
        samples = list(samples)
        if not samples:
            return []
        texts = adapter.capture_batch(samples, "text", layers=sorted({self.path_layer, self.apply_layer}))
        speeches = adapter.capture_batch(samples, "speech", layers=[self.path_layer])
        return [self._plan(speech, text) for speech, text in zip(speeches, texts, strict=True)]

    def _plan(self, speech: Capture, text: Capture) -> EditPlan:
        """The plan of one sample from its speech capture (path layer) and its transcript capture."""
        chosen = critical_tokens(
            speech.hidden[0],
            text.hidden[text.layers.index(self.path_layer)],
            path=self.path,
            critical=self.critical,
            k=self.k,
        )
        targets = torch.from_numpy(text.hidden[text.layers.index(self.apply_layer)][chosen.tokens].copy())
        formula = type(self).formula

        def replace(states: torch.Tensor, _positions: torch.Tensor) -> torch.Tensor:
            return formula(states, targets.to(states.device))

        positions = [speech.span[0] + int(frame) for frame in chosen.frames]
        details = {
            **chosen.to_dict(),
            "text_tokens": [text.tokens[int(j)] for j in chosen.tokens] if text.tokens else None,
            "positions": positions,
            "speech_frames": speech.num_tokens,
            "text_tokens_total": text.num_tokens,
        }
        return EditPlan({self.apply_layer: replace}, positions=positions, decode=False, details=details)


class AngleProjection(_AlignedReplacement):
    """Paper 1's angle projection of critical speech tokens: text direction, speech norm.

    Args:
        critical: ``"bottom-k"`` (default) or ``"all"`` path frames.
        k: frames kept by bottom-k (default 3, the paper's Bottom3).
        path: ``"argmax"`` (default, paper 1) or ``"dtw"`` (paper 3).
        path_layer: layer whose cosine matrix gives the path (default 0, the decoder input).
        apply_layer: layer whose speech states are replaced (default 0, the decoder input).
    """

    name = "angle"
    formula = staticmethod(angle_projection)


class LengthNormalization(_AlignedReplacement):
    """Paper 1's length normalization of critical speech tokens: speech direction, text norm.

    Arguments as :class:`AngleProjection`.
    """

    name = "length"
    formula = staticmethod(length_normalization)
