"""Phi-4-multimodal (Microsoft 2025, arXiv 2503.01743): conformer audio encoder, Phi-4-mini LLM, text out.

The audio part of the chat is ``<|audio|>``; the processor expands it to one placeholder per audio embedding
(``audio_embed_sizes``: 10 ms mel frames / ``audio_compression_rate`` 8 / ``audio_downsample_rate`` 1 =
one position per 80 ms). The encoder has no fixed window: audio is not padded to a window and no position
covers padding; the length is bounded by the language model's context only.

The upstream processor also holds an image processor, which needs torchvision. Where torchvision cannot be
imported, speechgap builds the same ``Phi4MultimodalProcessor`` for speech and text only (tokenizer, audio
feature extractor, chat template); the placeholder expansion is still the processor's own ``__call__``.

The released checkpoint applies a speech LoRA adapter (``speech-lora``) for audio tasks; speechgap loads the
base weights only, so on a real checkpoint speech answers differ from Microsoft's reference setup. Verified
on tiny random-weight models only.

Batches: the conformer encoder is not invariant to padding (a clip padded to a longer one in the batch gets
different audio embeddings, ~1e-3 relative on the tiny model, although the processor passes
``audio_attention_mask``), so speech batches run one clip per forward pass; text batches are batched.

Prompt protocols (no system prompt in any):

- ``voicebench``: VoiceBench's ``src/models/phi.py``: the user turn holds the audio alone
  (``<|user|><|audio_1|><|end|><|assistant|>`` in the remote-code format; ``<|audio|>`` here). VoiceBench has
  no text run for this model; the text run is the question alone.
- ``official``: the model card's chat format ``<|user|>{content}<|end|><|assistant|>`` without a system
  message, the audio alone / the question alone (assumed: the model card, not reachable offline, was not
  checked for a speech-QA task prompt).
- ``instructed``: the audio or the question, a newline, then the instruction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.types import PairedSample
from speechgap.models.base import (
    DEFAULT_INSTRUCTION,
    INSTRUCTED_SOURCE,
    Capture,
    OptionScores,
    PromptProtocol,
    SpeechLLM,
)
from speechgap.models.registry import register_family

# prompt tokens outside the audio kept free when bounding the audio length by the context
_CONTEXT_RESERVE = 256


def speech_only_processor(tokenizer: Any, audio_processor: Any, chat_template: str | None) -> Any:
    """A ``Phi4MultimodalProcessor`` without its image processor (no torchvision needed)."""
    from transformers import Phi4MultimodalProcessor

    processor = Phi4MultimodalProcessor.__new__(Phi4MultimodalProcessor)
    processor.tokenizer = tokenizer
    processor.audio_processor = audio_processor
    processor.image_processor = None
    processor.chat_template = chat_template if chat_template is not None else tokenizer.chat_template
    for name in ("audio", "image"):
        setattr(processor, f"{name}_token", getattr(tokenizer, f"{name}_token"))
        setattr(processor, f"{name}_token_id", getattr(tokenizer, f"{name}_token_id"))
    return processor


@register_family
class Phi4MultimodalLLM(SpeechLLM):
    """Adapter for ``Phi4MultimodalForCausalLM`` (``model_type`` ``phi4_multimodal``)."""

    family = "phi4_multimodal"
    model_types = ("phi4_multimodal",)
    model_class = "Phi4MultimodalForCausalLM"
    default_system_prompt = None
    verified = "tiny random-weight model: capture == output_hidden_states, batched == unbatched, generate"

    @classmethod
    def prompt_protocols(cls) -> dict[str, PromptProtocol]:
        system = cls.default_system_prompt
        return {
            "voicebench": PromptProtocol(
                system,
                None,
                "VoiceBench src/models/phi.py: no system message, the audio alone; the text run (VoiceBench "
                "has none for this model): the question alone",
            ),
            "official": PromptProtocol(
                system,
                None,
                "Phi-4-multimodal model card chat format, no system message: the audio / the question alone "
                "(assumed; not checked offline)",
            ),
            "instructed": PromptProtocol(system, DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE),
        }

    @classmethod
    def load_processor(cls, path: str | Path, trust_remote_code: bool = False) -> Any:
        from transformers import AutoProcessor, AutoTokenizer, Phi4MultimodalFeatureExtractor
        from transformers.utils import is_torchvision_available

        if is_torchvision_available():
            return AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        extractor = Phi4MultimodalFeatureExtractor.from_pretrained(str(path))
        return speech_only_processor(tokenizer, extractor, None)

    @property
    def audio_token_id(self) -> int:
        return int(self.processor.audio_token_id)

    @property
    def seconds_per_position(self) -> float:
        """10 ms mel hop x ``audio_compression_rate`` x ``audio_downsample_rate`` (0.08 s)."""
        extractor = self.processor.audio_processor
        hop_s = extractor.hop_length / extractor.sampling_rate
        return hop_s * extractor.audio_compression_rate * extractor.audio_downsample_rate

    def max_audio_seconds(self) -> float | None:
        """The audio whose placeholders fit the context (less a prompt reserve), whole seconds."""
        context = int(self.text_config.max_position_embeddings) - _CONTEXT_RESERVE
        return float(math.floor(context * self.seconds_per_position))

    def frame_times(self, sample: PairedSample, num_positions: int) -> np.ndarray:
        """Position ``i`` covers ``[0.08 i, 0.08 (i + 1)]`` s, the last one clipped to the clip's end."""
        step = self.seconds_per_position
        starts = np.arange(num_positions) * step
        ends = np.maximum(np.minimum(starts + step, sample.duration_s), starts)
        return np.stack([starts, ends], axis=1)

    def capture_batch(
        self,
        samples: Sequence[PairedSample],
        modality: str,
        layers: Sequence[int] | None = None,
        post_norm: bool = False,
    ) -> list[Capture]:
        """Text: one padded forward pass; speech: one clip per pass (the encoder is not padding-invariant)."""
        if modality != "speech" or len(samples) <= 1:
            return super().capture_batch(samples, modality, layers=layers, post_norm=post_norm)
        return [
            super(Phi4MultimodalLLM, self).capture_batch([s], modality, layers, post_norm)[0] for s in samples
        ]

    def generate_batch(
        self, samples: Sequence[PairedSample], modality: str, max_new_tokens: int = 256
    ) -> list[str]:
        """Text: one left-padded call; speech: one clip per call (see :meth:`capture_batch`)."""
        if modality != "speech" or len(samples) <= 1:
            return super().generate_batch(samples, modality, max_new_tokens=max_new_tokens)
        return [
            super(Phi4MultimodalLLM, self).generate_batch([s], modality, max_new_tokens)[0] for s in samples
        ]

    def score_options_batch(
        self, samples: Sequence[PairedSample], modality: str, options: Sequence[Sequence[str]]
    ) -> list[OptionScores]:
        """Text: one padded forward pass; speech: one clip per pass (see :meth:`capture_batch`)."""
        if modality != "speech" or len(samples) <= 1 or len(options) != len(samples):
            return super().score_options_batch(
                samples, modality, options
            )  # (a length mismatch is refused there)
        return [
            super(Phi4MultimodalLLM, self).score_options_batch([s], modality, [o])[0]
            for s, o in zip(samples, options, strict=True)
        ]
