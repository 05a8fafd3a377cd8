"""Audio Flamingo 3 (Goel et al. 2025, arXiv 2507.08128): Whisper-style encoder, 2x pooling, Qwen2.5 LLM.

The audio part of the chat is the ``<sound>`` token; the processor splits audio into 30 s windows (up to
``max_audio_len`` seconds, 600 by default: this family *chunks* long audio instead of refusing it) and
expands ``<sound>`` to one placeholder per encoder output frame of every window, in order. One speech
position covers 40 ms of its window; speechgap refuses audio longer than ``max_audio_len`` rather than let
the processor truncate it.

Prompt protocols (no system prompt in any; VoiceBench has no adapter for this family):

- ``voicebench``: the audio alone / the question alone.
- ``official``: the same. Assumed: the model card's examples pair the audio with a task prompt
  (transcription, captioning); for a spoken question the audio alone is the voice-question use, and no
  system prompt is given there (not checked offline).
- ``instructed``: the audio or the question, a newline, then the instruction.
"""

from __future__ import annotations

import numpy as np

from speechgap.data.types import PairedSample
from speechgap.models.base import DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE, PromptProtocol, SpeechLLM
from speechgap.models.registry import register_family

SECONDS_PER_POSITION = 0.04


@register_family
class AudioFlamingo3LLM(SpeechLLM):
    """Adapter for ``AudioFlamingo3ForConditionalGeneration`` (``model_type`` ``audioflamingo3``)."""

    family = "audioflamingo3"
    model_types = ("audioflamingo3",)
    model_class = "AudioFlamingo3ForConditionalGeneration"
    default_system_prompt = None
    verified = "tiny random-weight model: capture == output_hidden_states, batched == unbatched, generate"

    @classmethod
    def prompt_protocols(cls) -> dict[str, PromptProtocol]:
        system = cls.default_system_prompt
        return {
            "voicebench": PromptProtocol(
                system, None, "no VoiceBench adapter: the audio alone / the question alone, no system prompt"
            ),
            "official": PromptProtocol(
                system,
                None,
                "Audio Flamingo 3 model card, no system prompt: the audio alone / the question alone "
                "(assumed; not checked offline)",
            ),
            "instructed": PromptProtocol(system, DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE),
        }

    def max_audio_seconds(self) -> float | None:
        return float(getattr(self.processor, "max_audio_len", 600))

    def frame_times(self, sample: PairedSample, num_positions: int) -> np.ndarray:
        """Position ``i`` covers ``[0.04 i, 0.04 (i + 1)]`` s (windows are contiguous), clipped to the clip."""
        starts = np.arange(num_positions) * SECONDS_PER_POSITION
        ends = np.maximum(np.minimum(starts + SECONDS_PER_POSITION, sample.duration_s), starts)
        return np.stack([starts, ends], axis=1)
