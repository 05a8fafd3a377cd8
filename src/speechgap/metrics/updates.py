"""Layer-update vectors (paper 3, Fig. 5) and the stability of alignment paths across base layers.

A block's update at layer ``l`` is ``h_l − h_{l−1}``: what the block added to the residual stream. Paper 3
finds the updates of speech frames and of their aligned text tokens highly cosine-aligned: the layers do the
same work on both modalities. Layer convention as everywhere: index 0 is the input of block 1, so the update
of block ``l`` is ``states[l] − states[l − 1]`` for ``l = 1..L``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.errors import ConfigError
from speechgap.metrics._scale import unit_rows
from speechgap.metrics._validation import as_array, as_layered, check_same_dim


def _pairs(path: Any, n_speech: int, n_text: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = as_array(path, "path", ndim=2, dtype=np.int64)
    if pairs.shape[0] == 0 or pairs.shape[1] != 2:
        raise ConfigError(
            f"argument 'path': expected non-empty (K, 2) (speech i, text j) pairs, got {pairs.shape}"
        )
    i, j = pairs[:, 0], pairs[:, 1]
    if i.min() < 0 or i.max() >= n_speech or j.min() < 0 or j.max() >= n_text:
        raise ConfigError(
            f"argument 'path': pairs must index 0..{n_speech - 1} speech frames and 0..{n_text - 1} text tokens"
        )
    return i, j


def update_cosines(speech_states: Any, text_states: Any, path: Any) -> np.ndarray:
    """Mean cosine between the speech and the text update ``h_l − h_{l−1}`` at aligned positions, per layer.

    Args:
        speech_states: ``(L+1, T_s, d)`` hidden states of the speech span (layer 0 = input of block 1).
        text_states: ``(L+1, T_t, d)`` hidden states of the transcript span, same layers.
        path: ``(K, 2)`` (speech frame i, text token j) pairs, e.g. a DTW path.

    Returns:
        ``(L,)`` float64: entry ``l − 1`` is the mean over the pairs of cos(Δs_l[i], Δt_l[j]) for block ``l``
        (a zero update has cosine 0 with anything).
    """
    speech = as_layered(speech_states, "speech_states")
    text = as_layered(text_states, "text_states")
    check_same_dim(speech, text, "speech_states", "text_states")
    if speech.shape[0] != text.shape[0] or speech.shape[0] < 2:
        raise ConfigError(
            f"argument 'speech_states' and argument 'text_states': need the same number (>= 2) of layers, got "
            f"{speech.shape[0]} and {text.shape[0]}"
        )
    i, j = _pairs(path, speech.shape[1], text.shape[1])
    speech_updates = unit_rows(np.diff(speech[:, i, :], axis=0))  # (L, K, d)
    text_updates = unit_rows(np.diff(text[:, j, :], axis=0))
    return (speech_updates * text_updates).sum(axis=-1).mean(axis=-1)


@dataclass(frozen=True)
class PathStability:
    """Agreement of the alignment paths computed at several base layers.

    Attributes:
        layers: the base layers, in the order of the matrix.
        agreement: ``(n, n)`` share of text tokens whose aligned frame is the same under both layers' paths.
        mean_shift: ``(n, n)`` mean absolute difference of those frames (in frames).
    """

    layers: list[int]
    agreement: np.ndarray
    mean_shift: np.ndarray

    def to_json(self) -> dict[str, Any]:
        """The record ``summary.json`` holds."""
        return {
            "layers": list(self.layers),
            "agreement": self.agreement.tolist(),
            "mean_shift": self.mean_shift.tolist(),
        }


def path_stability(frames_by_layer: Mapping[int, Any]) -> PathStability:
    """Pairwise agreement of per-token frames from paths at different base layers (paper 3: stable >= 5).

    Args:
        frames_by_layer: base layer -> ``(T_t,)`` frame index per text token (e.g.
            :func:`~speechgap.metrics.alignment.token_frames` of each layer's DTW path).

    Returns:
        :class:`PathStability` over the layers in ascending order.
    """
    if not frames_by_layer:
        raise ConfigError("argument 'frames_by_layer' is empty: give the frames of at least one base layer")
    layers = sorted(int(layer) for layer in frames_by_layer)
    frames = [as_array(frames_by_layer[layer], f"frames_by_layer[{layer}]", ndim=1) for layer in layers]
    lengths = {f.shape[0] for f in frames}
    if len(lengths) != 1 or 0 in lengths:
        raise ConfigError(
            f"argument 'frames_by_layer': every layer needs frames for the same non-zero number of tokens, got "
            f"{sorted(lengths)}"
        )
    stacked = np.stack(frames)  # (n, T_t)
    agreement = (stacked[:, None, :] == stacked[None, :, :]).mean(axis=-1)
    shift = np.abs(stacked[:, None, :] - stacked[None, :, :]).mean(axis=-1)
    return PathStability(layers=layers, agreement=agreement, mean_shift=shift)
