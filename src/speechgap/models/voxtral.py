"""Voxtral (Liu et al. 2025, arXiv 2507.13264): Whisper-large-v3 encoder, 4-frame stacking projector, Mistral LLM.

Voxtral has no Jinja chat template: its processor tokenizes the chat with ``mistral-common`` (the Tekken
tokenizer, ``tekken.json``), which also expands the audio. An audio part becomes ``[BEGIN_AUDIO]`` followed by
one ``[AUDIO]`` placeholder (id 24) per 80 ms (frame rate 12.5 Hz = 10 ms mel hop x conv stride 2 x 4 stacked
frames), the audio first padded to a multiple of the 30 s window. So the speech span of a clip shorter than
30 s always has 375 positions, the ones after the clip covering the zero padding; mistral-common splits
longer audio into 30 s windows (chunking, as the real model does).

Both runs go through ``processor.apply_chat_template`` with ``tokenize=True``. With an instruction
(protocol ``instructed``):

- speech: ``<s>[INST][BEGIN_AUDIO][AUDIO]...[AUDIO]{instruction}[/INST]``
- text:   ``<s>[INST]{transcript}\\n\\n{instruction}[/INST]``

mistral-common joins adjacent text parts of a message with ``"\\n\\n"``, so the transcript is followed by
that separator and the instruction (no separator is added here); the instruction is tokenized the same in
both runs (the Tekken split pattern never merges a letter run with the newlines before it). Without one
(``voicebench``, ``official``): ``<s>[INST][BEGIN_AUDIO][AUDIO]...[AUDIO][/INST]`` and
``<s>[INST]{transcript}[/INST]``.

Prompt protocols: VoiceBench has no Voxtral adapter, so ``voicebench`` is the audio alone / the question
alone without a system prompt; ``official`` is the same (Voxtral's model card: questions are asked through
the audio, in a user turn without a system message); ``instructed`` adds the instruction. The Tekken tokenizer has no offset mapping:
the transcript span is found from the byte pieces of the prompt's tokens (every token whose bytes overlap
the transcript's bytes), which is robust to BPE merges at the boundaries.

mistral-common refuses a system message in a chat with audio (tokenizer v7), so this family has no system
prompt; a given ``system_prompt`` is refused rather than placed differently in the two runs.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechgap.data.types import SAMPLE_RATE, PairedSample
from speechgap.errors import ConfigError, ModelError
from speechgap.models.base import (
    DEFAULT_INSTRUCTION,
    INSTRUCTED_SOURCE,
    PreparedBatch,
    PromptProtocol,
    SpeechLLM,
)
from speechgap.models.registry import register_family

_TEXT_MARKER = "SPEECHGAPTRANSCRIPTMARKER"
# prompt tokens outside the audio kept free when bounding the audio length by the context
_CONTEXT_RESERVE = 256


def _wav_base64(audio: np.ndarray) -> str:
    """The waveform as a base64 float32 WAV (lossless: mistral-common reads it back sample for sample)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(audio, dtype=np.float32), SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@register_family
class VoxtralLLM(SpeechLLM):
    """Adapter for ``VoxtralForConditionalGeneration`` (``model_type`` ``voxtral``), via mistral-common."""

    family = "voxtral"
    model_types = ("voxtral",)
    model_class = "VoxtralForConditionalGeneration"
    default_system_prompt = None
    verified = "tiny random-weight model: capture == output_hidden_states, batched == unbatched, generate"

    @classmethod
    def prompt_protocols(cls) -> dict[str, PromptProtocol]:
        return {
            "voicebench": PromptProtocol(
                None, None, "no VoiceBench adapter: the audio alone / the question alone, no system prompt"
            ),
            "official": PromptProtocol(
                None,
                None,
                "Voxtral model card (built-in Q&A through the audio): the audio alone / the question alone, "
                "no system prompt",
            ),
            "instructed": PromptProtocol(None, DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE),
        }

    @classmethod
    def load_processor(cls, path: str | Path, trust_remote_code: bool = False) -> Any:
        from transformers.utils import is_mistral_common_available

        if not is_mistral_common_available():
            raise ModelError(
                f"{path}: Voxtral's tokenizer needs the mistral-common package: pip install 'mistral-common>=1.5'"
            )
        return super().load_processor(path, trust_remote_code=trust_remote_code)

    # ------------------------------------------------------------------ audio geometry
    @property
    def _audio_config(self) -> Any:
        """mistral-common's ``AudioConfig`` (frame rate, window length) from ``tekken.json``."""
        encoder = self.tokenizer.tokenizer.instruct_tokenizer.audio_encoder
        if encoder is None:
            raise ModelError(f"{self.name_or_path}: the Tekken tokenizer has no audio section")
        return encoder.audio_config

    @property
    def seconds_per_position(self) -> float:
        """Audio duration of one speech position: 1 / frame rate (0.08 s for Voxtral)."""
        return 1.0 / float(self._audio_config.frame_rate)

    def max_audio_seconds(self) -> float | None:
        """Whole windows whose placeholders fit the language model's context (less a prompt reserve).

        Voxtral chunks audio into windows itself; the only bound is the context length (for the released
        models, 131072 positions: far beyond the 30-40 min the model card states as its working range).
        """
        window = float(self._audio_config.chunk_length_s or 30.0)
        per_window = window * float(self._audio_config.frame_rate)
        context = int(self.text_config.max_position_embeddings) - _CONTEXT_RESERVE
        return max(1, math.floor(context / per_window)) * window

    def frame_times(self, sample: PairedSample, num_positions: int) -> np.ndarray:
        """Position ``i`` covers ``[0.08 i, 0.08 (i + 1)]`` s, clipped to the clip.

        Positions that cover only the zero padding up to the next window boundary get the zero-length
        interval ``[duration, duration]``: they cover no audio of the clip. Select real positions with
        ``frame_times[:, 1] > frame_times[:, 0]``.
        """
        step = self.seconds_per_position
        starts = np.minimum(np.arange(num_positions) * step, sample.duration_s)
        ends = np.minimum(starts + step, sample.duration_s)
        return np.stack([starts, ends], axis=1)

    # ------------------------------------------------------------------ prompts
    def user_content(self, modality: str, text: str, audio: np.ndarray | None = None) -> list[dict[str, Any]]:
        """The user turn: the audio (base64 WAV) or the transcript, then the instruction if there is one
        (mistral-common puts ``"\\n\\n"`` between text parts)."""
        if modality == "speech":
            if audio is None:
                # rendering only: a 0.1 s silence stands for the audio (its placeholders are collapsed)
                audio = np.zeros(SAMPLE_RATE // 10, dtype=np.float32)
            first = {"type": "audio", "base64": _wav_base64(audio)}
        else:
            first = {"type": "text", "text": text}
        if self.instruction is None:
            return [first]
        return [first, {"type": "text", "text": self.instruction}]

    def messages(self, modality: str, text: str, audio: np.ndarray | None = None) -> list[dict[str, Any]]:
        if self.system_prompt is not None:
            raise ConfigError(
                "voxtral: mistral-common accepts no system message in a chat with audio; "
                "leave argument 'system_prompt' unset and put the guidance in argument 'instruction'"
            )
        return [{"role": "user", "content": self.user_content(modality, text, audio)}]

    def _tokenize_chats(
        self, chats: list[list[dict[str, Any]]], padding_side: str
    ) -> dict[str, torch.Tensor]:
        """``processor.apply_chat_template`` on several chats: ids, mask and (with audio) mel features."""
        audio = self._audio_config
        window_samples = int(round(float(audio.chunk_length_s or 30.0) * audio.sampling_rate))
        tokenizer = self.tokenizer
        old_side = tokenizer.padding_side
        tokenizer.padding_side = padding_side
        try:
            encoded = self.processor.apply_chat_template(
                chats,
                processor_kwargs={
                    "audio_kwargs": {
                        # the mel features cover the same whole windows as mistral-common's placeholders
                        "pad_to_multiple_of": window_samples,
                        "max_source_positions": window_samples // audio.encoding_config.hop_length,
                    }
                },
            )
        finally:
            tokenizer.padding_side = old_side
        return dict(encoded)

    def _render(self, ids: list[int]) -> str:
        """The prompt text of token ids, special tokens kept, each run of ``[AUDIO]`` shown once."""
        from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy

        collapsed = [i for k, i in enumerate(ids) if not (i == self.audio_token_id and k and ids[k - 1] == i)]
        return self.tokenizer.tokenizer.decode(collapsed, special_token_policy=SpecialTokenPolicy.KEEP)

    def render_prompt(self, modality: str, text: str = "") -> str:
        """The prompt as mistral-common encodes it (audio placeholders collapsed to one ``[AUDIO]``)."""
        # the tokenizer alone: the placeholders are collapsed, so no mel features are needed
        ids = self.tokenizer.apply_chat_template(
            self.messages(modality, text), tokenize=True, return_dict=False
        )
        return self._render(list(ids))

    # ------------------------------------------------------------------ inputs
    def processor_call(
        self, prompts: list[str], audios: list[np.ndarray], padding_side: str = "right"
    ) -> dict[str, torch.Tensor]:
        """The speech chats of ``audios`` through the processor (``prompts`` is the rendered form only)."""
        return self._tokenize_chats([self.messages("speech", "", audio) for audio in audios], padding_side)

    def _prepare_text(self, samples: list[PairedSample]) -> PreparedBatch:
        from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy

        tekken = self.tokenizer.tokenizer.instruct_tokenizer.tokenizer
        marked = self.render_prompt("text", _TEXT_MARKER)
        if marked.count(_TEXT_MARKER) != 1:
            raise ModelError(f"{self.family}: the chat does not place the transcript exactly once")
        prefix = marked[: marked.index(_TEXT_MARKER)].encode("utf-8")
        encoded = self._tokenize_chats(
            [self.messages("text", sample.text) for sample in samples], self.tokenizer.padding_side
        )
        input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
        spans, offsets, lengths, prompts = [], [], [], []
        for row, sample in enumerate(samples):
            real = torch.nonzero(mask[row]).flatten()
            offset, length = int(real[0]), int(real.numel())
            ids = input_ids[row, offset : offset + length].tolist()
            pieces = [tekken.id_to_byte_piece(i, SpecialTokenPolicy.KEEP) for i in ids]
            rendered = b"".join(pieces)
            text = sample.text.encode("utf-8")
            start_byte, end_byte = len(prefix), len(prefix) + len(text)
            if rendered[:start_byte] != prefix or rendered[start_byte:end_byte] != text:
                raise ModelError(f"sample {sample.id!r}: the transcript is not where the chat places it")
            # a token belongs to the transcript when its bytes overlap the transcript's bytes
            ends = np.cumsum([len(piece) for piece in pieces])
            starts = ends - np.array([len(piece) for piece in pieces])
            inside = np.nonzero((ends > start_byte) & (starts < end_byte) & (ends > starts))[0]
            if inside.size == 0:
                raise ModelError(f"sample {sample.id!r}: the transcript maps to no token of the prompt")
            spans.append((offset + int(inside[0]), offset + int(inside[-1]) + 1))
            offsets.append(offset)
            lengths.append(length)
            prompts.append(self._render(ids))
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        return PreparedBatch(inputs, samples, "text", prompts, spans, offsets, lengths)
