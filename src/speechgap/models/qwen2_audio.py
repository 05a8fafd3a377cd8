"""Qwen2-Audio (Chu et al. 2024, arXiv 2407.10759): Whisper-large-v3 encoder, 2x average pooling, Qwen-7B.

The chat template renders the audio as ``Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\\n``; the processor
expands ``<|AUDIO|>`` to one placeholder per encoder output frame. One speech position covers 40 ms
(10 ms mel hop x conv stride 2 x pooling 2); a checkpoint with another mel hop (e.g. speechgap's mini models,
25 ms hop -> 100 ms per position) gets its stride from its feature extractor. The encoder window is 30 s (``n_samples`` of the feature
extractor); longer audio is refused, not truncated.

Prompt protocols (the mode follows from the prompt, as Qwen2-Audio's README says: audio alone is voice chat,
audio with a text instruction is audio analysis):

- ``voicebench`` = ``official``: voice chat. Speech run ``Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\\n``
  alone, text run the question alone, system prompt "You are a helpful assistant." (VoiceBench's
  ``src/models/qwen2.py`` sends no system message; Qwen2-Audio's chat template then adds this default one, so
  the rendered prompt is the same.)
- ``instructed``: the audio or the question, a newline, then the instruction (audio-analysis mode).
"""

from __future__ import annotations

import numpy as np

from speechgap.data.types import PairedSample
from speechgap.models.base import DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE, PromptProtocol, SpeechLLM
from speechgap.models.registry import register_family

SECONDS_PER_POSITION = 0.04
"""Real Qwen2-Audio: 160-sample hop at 16 kHz (10 ms) x ``ENCODER_DOWNSAMPLING``."""
ENCODER_DOWNSAMPLING = 4
"""Mel frames per speech position: the encoder's second convolution (stride 2) x the average pooling (2)."""


@register_family
class Qwen2AudioLLM(SpeechLLM):
    """Adapter for ``Qwen2AudioForConditionalGeneration`` (``model_type`` ``qwen2_audio``)."""

    family = "qwen2_audio"
    model_types = ("qwen2_audio",)
    model_class = "Qwen2AudioForConditionalGeneration"
    default_system_prompt = "You are a helpful assistant."
    # the template renders the audio as "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    audio_ends_line = True
    verified = "tiny random-weight model: capture == output_hidden_states, batched == unbatched, generate"

    @classmethod
    def prompt_protocols(cls) -> dict[str, PromptProtocol]:
        system = cls.default_system_prompt
        return {
            "voicebench": PromptProtocol(
                system,
                None,
                "VoiceBench src/models/qwen2.py: the audio alone / the question alone; no system message, so "
                "the chat template adds its default 'You are a helpful assistant.'",
            ),
            "official": PromptProtocol(
                system,
                None,
                "Qwen2-Audio README, voice chat inference: the audio alone, default system prompt",
            ),
            "instructed": PromptProtocol(system, DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE),
        }

    @property
    def seconds_per_position(self) -> float:
        """Seconds of audio per speech position: mel hop / sampling rate x ``ENCODER_DOWNSAMPLING``.

        0.04 s for the real Qwen2-Audio (hop 160 at 16 kHz); falls back to 0.04 s when the processor has no
        feature extractor with ``hop_length`` and ``sampling_rate``.
        """
        extractor = getattr(self.processor, "feature_extractor", None)
        hop = getattr(extractor, "hop_length", None)
        rate = getattr(extractor, "sampling_rate", None)
        if not hop or not rate:
            return SECONDS_PER_POSITION
        return float(hop) / float(rate) * ENCODER_DOWNSAMPLING

    def frame_times(self, sample: PairedSample, num_positions: int) -> np.ndarray:
        """Position ``i`` covers ``[s i, s (i + 1)]`` s (``s`` = :attr:`seconds_per_position`, 0.04 for
        Qwen2-Audio), the last one clipped to the clip's end."""
        stride = self.seconds_per_position
        starts = np.arange(num_positions) * stride
        ends = np.maximum(np.minimum(starts + stride, sample.duration_s), starts)
        return np.stack([starts, ends], axis=1)
