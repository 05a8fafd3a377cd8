"""The base text LLM behind the same interface, text modality only.

Paper 1 splits the gap of a speech LLM into fine-tuning erosion (base LLM on text → speech LLM on text)
and alignment loss (speech LLM on text → speech LLM on speech). The base LLM answers the same text prompt:
same protocol, system prompt and instruction, the family's chat template from its tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from speechgap.data.types import PairedSample
from speechgap.errors import ModelError
from speechgap.models.base import SpeechLLM


class TextLM(SpeechLLM):
    """A causal text LM (``AutoModelForCausalLM``) with its tokenizer; speech runs are refused."""

    family = "text-lm"
    model_class = "AutoModelForCausalLM"
    modalities = ("text",)

    @classmethod
    def load_processor(cls, path: str | Path, trust_remote_code: bool = False) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)

    @property
    def audio_token_id(self) -> int:
        raise ModelError(f"{self.name_or_path}: a text LM has no audio placeholder token")

    def max_audio_seconds(self) -> float | None:
        return None

    def _check_sample(self, sample: PairedSample, modality: str) -> None:
        if modality != "text":
            raise ModelError(f"{self.name_or_path}: a base text LM runs the text modality only")
        super()._check_sample(sample, modality)

    def render_prompt(self, modality: str, text: str = "") -> str:
        """The chat template with content parts; templates that only take string content get the parts
        joined (the instruction's part starts with its own newline)."""
        if modality != "text":
            raise ModelError(f"{self.name_or_path}: a base text LM runs the text modality only")
        chat = self.messages(modality, text)
        rendered = self._render_chat(self.tokenizer, chat, modality)
        if "'type':" in rendered or '"type":' in rendered:
            flat = [
                {
                    "role": m["role"],
                    "content": "".join(p["text"] for p in m["content"] if p["type"] == "text"),
                }
                for m in chat
            ]
            rendered = self._render_chat(self.tokenizer, flat, modality)
        return rendered


def load_text_model(
    path: str | Path,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    **adapter_kwargs: Any,
) -> TextLM:
    """Load a base text LLM (safetensors weights) behind :class:`TextLM`.

    Args:
        path: a ``save_pretrained`` folder or a Hub id.
        device, dtype, trust_remote_code: as :func:`speechgap.load_model`.
        **adapter_kwargs: ``protocol=...``, ``system_prompt=...``, ``instruction=...`` (use the speech
            LLM's: :func:`text_prompts_of`).
    """
    from speechgap.models import _check_adapter_kwargs, _resolve_dtype, _with_default_protocol

    prompts = _with_default_protocol(str(path), _check_adapter_kwargs("load_text_model", adapter_kwargs))
    return TextLM.from_pretrained(
        path,
        device=device,
        dtype=_resolve_dtype(dtype) or torch.float32,
        trust_remote_code=trust_remote_code,
        **prompts,
    )


def text_prompts_of(speech_model: SpeechLLM) -> dict[str, Any]:
    """The prompt arguments that give a base text LM the speech LLM's text-run prompt: its protocol, and its
    system prompt and instruction as they are (a text LM's protocols hold no family system prompt)."""
    prompts: dict[str, Any] = {"protocol": speech_model.protocol, "system_prompt": speech_model.system_prompt}
    prompts["instruction"] = speech_model.instruction if speech_model.instruction is not None else ""
    return prompts
