"""Qwen2.5-Omni (Xu et al. 2025, arXiv 2503.20215), the thinker: audio/vision encoders + Qwen2.5 LLM, text out.

Only the thinker is used (the talker and the vocoder make speech output, which speechgap does not need).
A thinker-only folder (``model_type`` ``qwen2_5_omni_thinker``) loads directly; a full checkpoint
(``qwen2_5_omni``) loads ``Qwen2_5OmniForConditionalGeneration`` without audio output and keeps ``.thinker``.

The audio part of the chat is ``<|audio_bos|><|AUDIO|><|audio_eos|>``; the processor expands ``<|AUDIO|>``
to one placeholder per encoder output frame. One speech position covers 40 ms (the model's
``position_id_per_seconds`` is 25). The language model uses 3-D multimodal RoPE; with right padding its
position ids do not depend on the batch.

The upstream processor needs a video processor, which needs torchvision. Where torchvision cannot be
imported, speechgap builds the same processor for speech and text only (tokenizer, Whisper feature
extractor, chat template), which is all a speech run uses.

Prompt protocols:

- ``voicebench``: VoiceBench's ``src/models/qwen_omni.py``: system "You are a helpful assistant.", the audio
  alone. VoiceBench has no text run for this model; the text run is the question alone with the same system
  prompt.
- ``official``: the Qwen2.5-Omni model card's voice-chat example: its own system prompt ("You are Qwen, a
  virtual human ..."; the model card notes the audio output needs it), the audio alone / the question alone.
- ``instructed``: the audio or the question, a newline, then the instruction, with the model's own system
  prompt (this template joins content parts with nothing between them, so the newline is added here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechgap.data.types import PairedSample
from speechgap.models.base import (
    DEFAULT_INSTRUCTION,
    INSTRUCTED_SOURCE,
    PromptProtocol,
    SpeechLLM,
    load_checked,
)
from speechgap.models.registry import register_family

SECONDS_PER_POSITION = 0.04
VOICEBENCH_SYSTEM_PROMPT = "You are a helpful assistant."
"""The system message of VoiceBench's Qwen2.5-Omni adapter (not the model's own)."""
_TOKEN_NAMES = (
    "audio_token",
    "audio_bos_token",
    "audio_eos_token",
    "image_token",
    "video_token",
    "vision_bos_token",
    "vision_eos_token",
)


def speech_only_processor(tokenizer: Any, feature_extractor: Any, chat_template: str | None) -> Any:
    """A ``Qwen2_5OmniProcessor`` without image and video processors (no torchvision needed).

    Speech and text inputs go through the upstream ``__call__`` unchanged, so the audio placeholder
    expansion is the processor's own.
    """
    from transformers import Qwen2_5OmniProcessor

    processor = Qwen2_5OmniProcessor.__new__(Qwen2_5OmniProcessor)
    processor.tokenizer = tokenizer
    processor.feature_extractor = feature_extractor
    processor.image_processor = None
    processor.video_processor = None
    processor.chat_template = chat_template if chat_template is not None else tokenizer.chat_template
    for name in _TOKEN_NAMES:
        setattr(processor, name, getattr(tokenizer, name))
    for name in ("audio", "image", "video"):
        setattr(processor, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
    return processor


@register_family
class Qwen25OmniLLM(SpeechLLM):
    """Adapter for the Qwen2.5-Omni thinker (``Qwen2_5OmniThinkerForConditionalGeneration``)."""

    family = "qwen2_5_omni"
    model_types = ("qwen2_5_omni_thinker", "qwen2_5_omni")
    model_class = "Qwen2_5OmniThinkerForConditionalGeneration"
    default_system_prompt = (
        "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving "
        "auditory and visual inputs, as well as generating text and speech."
    )
    verified = "tiny random-weight thinker: capture == output_hidden_states, batched == unbatched, generate"

    @classmethod
    def prompt_protocols(cls) -> dict[str, PromptProtocol]:
        system = cls.default_system_prompt
        return {
            "voicebench": PromptProtocol(
                VOICEBENCH_SYSTEM_PROMPT,
                None,
                "VoiceBench src/models/qwen_omni.py: system 'You are a helpful assistant.', the audio alone; "
                "the text run (VoiceBench has none for this model): the question alone",
            ),
            "official": PromptProtocol(
                system,
                None,
                "Qwen2.5-Omni model card, voice chat: the model's own system prompt, the audio alone",
            ),
            "instructed": PromptProtocol(system, DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE),
        }

    @classmethod
    def load_processor(cls, path: str | Path, trust_remote_code: bool = False) -> Any:
        from transformers import AutoProcessor, AutoTokenizer, WhisperFeatureExtractor
        from transformers.utils import is_torchvision_available

        if is_torchvision_available():
            return AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        extractor = WhisperFeatureExtractor.from_pretrained(str(path))
        return speech_only_processor(tokenizer, extractor, None)

    @classmethod
    def load_weights(
        cls, path: str | Path, dtype: torch.dtype, trust_remote_code: bool = False
    ) -> torch.nn.Module:
        import transformers

        config = transformers.AutoConfig.from_pretrained(str(path))
        if config.model_type == "qwen2_5_omni":
            full = load_checked(
                transformers.Qwen2_5OmniForConditionalGeneration, path, dtype=dtype, enable_audio_output=False
            )
            return full.thinker
        return super().load_weights(path, dtype, trust_remote_code)

    def frame_times(self, sample: PairedSample, num_positions: int) -> np.ndarray:
        """Position ``i`` covers ``[0.04 i, 0.04 (i + 1)]`` s, the last one clipped to the clip's end."""
        starts = np.arange(num_positions) * SECONDS_PER_POSITION
        ends = np.maximum(np.minimum(starts + SECONDS_PER_POSITION, sample.duration_s), starts)
        return np.stack([starts, ends], axis=1)
