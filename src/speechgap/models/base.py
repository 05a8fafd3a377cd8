"""The family-independent speech-LLM adapter: prompts, spans, layer capture, generation and edit hooks.

A :class:`SpeechLLM` wraps one transformers model and its processor. Everything that differs between
families (which transformers class to load, how the chat turn holds the audio, how long one speech
position lasts) lives in a small subclass in its own file; everything else lives here.

Layer convention (Xiang et al. 2025, arXiv 2510.12116; Hsu et al. 2026, arXiv 2603.01502):
index 0 is the input to the first decoder block (for speech, after the audio embeddings are spliced in);
index ``l >= 1`` is the output of decoder block ``l``, *before* the final norm. The post-norm final state
is returned separately when asked for (``post_norm=True``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors import SafetensorError as _SafetensorError

from speechgap.data.types import SAMPLE_RATE, PairedSample
from speechgap.errors import ConfigError, ModelError
from speechgap.io import JsonObject

MODALITIES = ("speech", "text")
DEFAULT_INSTRUCTION = "Answer the question."
_TEXT_MARKER = "\u0000SPEECHGAP_TRANSCRIPT\u0000"

PROTOCOLS = ("voicebench", "official", "instructed")
"""The named prompt protocols every family defines (:meth:`SpeechLLM.prompt_protocols`):

- ``voicebench``: the audio alone (speech run) and the question alone (text run), with the system prompt of
  VoiceBench's adapter for the family; the protocol of the VoiceBench leaderboard.
- ``official``: the family's own voice-chat inference example.
- ``instructed``: the audio or the question, a newline, then an instruction (``"Answer the question."``).
"""
DEFAULT_PROTOCOL = "voicebench"
INSTRUCTED_SOURCE = "speechgap: the question (audio or transcript), a newline, then the instruction"


@dataclass(frozen=True)
class PromptProtocol:
    """What one family puts around the question under one named protocol.

    Attributes:
        system_prompt: the system message of both runs; None sends none (a chat template may still add
            its own default, as Qwen2-Audio's does).
        instruction: the text after the audio (speech run) or the transcript (text run), on its own line;
            None sends the audio or the question alone.
        source: where the definition comes from (an adapter file, a model card), recorded with the model.
    """

    system_prompt: str | None
    instruction: str | None
    source: str


def check_protocol(protocol: Any) -> str:
    """``protocol`` if it names a prompt protocol.

    Raises:
        ConfigError: naming argument 'protocol' and the choices.
    """
    if not isinstance(protocol, str) or protocol not in PROTOCOLS:
        raise ConfigError(f"argument 'protocol' must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return protocol


@dataclass
class Capture:
    """Hidden states of one sample's speech span or transcript span.

    Attributes:
        sample_id: the :attr:`PairedSample.id` captured.
        modality: ``"speech"`` or ``"text"``.
        hidden: float32 array ``(layers, tokens, dim)``: row ``k`` is layer ``layers[k]`` (layer convention
            in the module docstring), restricted to the span positions.
        layers: the layer indices in ``hidden``, ascending.
        span: ``(start, end)``, end exclusive, positions of the span in the full (unpadded) prompt sequence.
        input_ids: int64 array ``(seq,)``: the full prompt as the model saw it (audio placeholders expanded).
        tokens: the span's tokens as strings (text run); None for speech.
        frame_times: float64 array ``(tokens, 2)``: start and end in seconds of the audio each speech
            position covers (speech run); None for text.
        final_norm: float32 array ``(tokens, dim)``: the final-norm output at the span, when asked for.
        prompt: the rendered prompt text (audio placeholders unexpanded).
    """

    sample_id: str
    modality: str
    hidden: np.ndarray
    layers: list[int]
    span: tuple[int, int]
    input_ids: np.ndarray
    tokens: list[str] | None = None
    frame_times: np.ndarray | None = None
    final_norm: np.ndarray | None = None
    prompt: str = ""

    @property
    def num_tokens(self) -> int:
        return int(self.hidden.shape[1])


@dataclass
class OptionScores:
    """Next-token log-probabilities of answer options after the prompt.

    Attributes:
        options: the option strings scored ("A", "B", ...).
        token_ids: the first token id of each option (the one scored).
        log_probs: float64 array ``(options,)``: log p(first token of option | prompt), over the full vocab.
        margin: best minus second-best option log-probability (>= 0; 0 for a single option).
        best: the option with the highest log-probability.
    """

    options: list[str]
    token_ids: list[int]
    log_probs: np.ndarray
    margin: float
    best: str

    @classmethod
    def from_logits(
        cls, options: Sequence[str], token_ids: Sequence[int], logits: torch.Tensor
    ) -> OptionScores:
        """Scores from the next-token logits after the prompt.

        Args:
            options: the option strings, in order.
            token_ids: the first token id of each option (:meth:`SpeechLLM.option_token_ids`).
            logits: ``(vocab,)`` next-token logits, any float dtype; normalised over the full vocab in
                float64.
        """
        options = [str(option) for option in options]
        token_ids = [int(token_id) for token_id in token_ids]
        if not options:
            raise ConfigError("argument 'options': must not be empty")
        if len(token_ids) != len(options):
            raise ConfigError(
                f"argument 'token_ids': {len(token_ids)} ids for {len(options)} options; expected one per option"
            )
        if logits.dim() != 1:
            raise ConfigError(f"argument 'logits': expected shape (vocab,), got {tuple(logits.shape)}")
        log_probs = torch.log_softmax(logits.detach().double(), dim=-1)[token_ids].cpu().numpy()
        order = np.argsort(-log_probs)
        margin = float(log_probs[order[0]] - log_probs[order[1]]) if len(options) > 1 else 0.0
        return cls(options, token_ids, log_probs, margin, options[int(order[0])])


@dataclass
class Layer0Inputs:
    """The input of the first decoder block for one sample, from the model's own forward pass.

    Attributes:
        hidden: ``(1, T, d)`` tensor, in the model's dtype and on its device: the states entering block 1
            (layer 0 of the layer convention: for speech, after the audio embeddings are spliced in).
        position_ids: float32 ``(T,)`` rotary position of each token; ``arange(T)`` when the model passes
            none to its blocks.
        span: ``(start, end)``, end exclusive, of the speech or transcript span.
    """

    hidden: torch.Tensor
    position_ids: torch.Tensor
    span: tuple[int, int]


@dataclass
class PreparedBatch:
    """Model inputs for several samples of one modality, with each row's span.

    Attributes:
        inputs: tensors to pass to the model (``input_ids``, ``attention_mask``, audio features...).
        samples: the samples, one per row.
        modality: ``"speech"`` or ``"text"``.
        prompts: the rendered prompt text of each row.
        spans: ``(start, end)`` of the speech or transcript span in each padded row.
        offsets: index of each row's first real token (left padding), 0 with right padding.
        lengths: number of real tokens in each row.
    """

    inputs: dict[str, torch.Tensor]
    samples: list[PairedSample]
    modality: str
    prompts: list[str]
    spans: list[tuple[int, int]]
    offsets: list[int]
    lengths: list[int]

    @property
    def input_ids(self) -> torch.Tensor:
        return self.inputs["input_ids"]


EditFn = Callable[[torch.Tensor, torch.Tensor], "torch.Tensor | None"]
"""``fn(states, positions)``: ``states`` is ``(n, dim)`` (the hidden states of one row at ``positions``,
absolute int64 positions ``(n,)`` in the padded row); returns the replacement ``(n, dim)``, or None to only
read."""


@dataclass
class SampleEdit:
    """The edit of one sample's runs inside :meth:`SpeechLLM.edit_per_sample`: the arguments of
    :meth:`SpeechLLM.edit`, for one sample.

    Attributes:
        layers: ``{layer: fn}`` (layer 0 = input of block 1, ``l >= 1`` = output of block ``l``).
        positions: ``"span"``, ``"all"``, or positions in the sample's unpadded prompt.
        decode: also call ``fn`` at each decode step of ``generate`` (default: prefill only).
    """

    layers: dict[int, EditFn]
    positions: str | Sequence[int] = "span"
    decode: bool = False


class _StopForward(Exception):
    """Raised by a capture hook once every requested layer is recorded: the rest of the model is skipped."""


_EDIT_ENTRY_POINTS = (
    "capture",
    "capture_batch",
    "forward",
    "generate",
    "generate_batch",
    "score_options",
    "layer0_inputs",
)


def check_device(device: str | torch.device | None) -> torch.device | None:
    """``device`` as a :class:`torch.device`, checked against this machine before anything is loaded.

    Raises:
        ConfigError: a string that names no device (``"banana"``), or a device this machine does not have
            (``"cuda"`` without a CUDA GPU, ``"cuda:3"`` with two, ``"mps"`` off Apple silicon).
    """
    if device is None:
        return None
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"argument 'device' must be cpu, cuda, cuda:N or mps, got {device!r}") from None
    if target.type == "cpu":
        return target
    if target.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this PyTorch is built without CUDA"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise ConfigError(
                f"argument 'device' is {device!r}, but {why}; run on 'cpu' or on a machine with one"
            )
        count = torch.cuda.device_count()
        if target.index is not None and target.index >= count:
            raise ConfigError(
                f"argument 'device' is {device!r}, but this machine has {count} CUDA device(s): "
                f"cuda:0 .. cuda:{count - 1}"
            )
        return target
    backend = getattr(torch.backends, target.type, None) or getattr(torch, target.type, None)
    available = getattr(backend, "is_available", None)
    if callable(available) and available():
        return target
    raise ConfigError(
        f"argument 'device' is {device!r}, but this machine has no {target.type} device; use 'cpu'"
    )


_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def read_config(path: str | Path) -> JsonObject:
    """The raw ``config.json`` of a local model folder.

    Raises:
        ModelError: no ``config.json``, or one that is not UTF-8 JSON holding an object (naming the file).
    """
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        raise ModelError(f"{path}: no config.json; save the model with save_pretrained")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ModelError(f"{config_file}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ModelError(f"{config_file}: not valid JSON ({err})") from None
    except OSError as err:
        raise ModelError(f"{config_file}: cannot be read ({err.strerror})") from None
    if not isinstance(raw, dict):
        kind = _JSON_TYPES.get(type(raw), type(raw).__name__)
        raise ModelError(f"{config_file}: expected a JSON object, found a JSON {kind}")
    return raw


def load_checked(model_cls: Any, path: str | Path, **kwargs: Any) -> torch.nn.Module:
    """``model_cls.from_pretrained(path, use_safetensors=True, **kwargs)``, refusing a checkpoint that
    would leave part of the model randomly initialised.

    transformers re-initialises a weight whose shape differs from the checkpoint's, or that the checkpoint
    lacks, and only warns; every measure of such a model would be meaningless, so both are errors here.

    Raises:
        ModelError: naming the weights of the wrong shape, or the missing ones.
    """
    model, info = model_cls.from_pretrained(
        str(path), use_safetensors=True, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
    )
    mismatched = sorted(info.get("mismatched_keys") or [], key=str)
    if mismatched:
        shown = [
            f"{entry[0]}: checkpoint {tuple(entry[1])}, model {tuple(entry[2])}"
            if isinstance(entry, tuple) and len(entry) == 3
            else str(entry)
            for entry in mismatched[:3]
        ]
        more = f" and {len(mismatched) - 3} more" if len(mismatched) > 3 else ""
        raise ModelError(
            f"{path}: {len(mismatched)} weight(s) of the checkpoint have another shape than config.json "
            f"gives ({'; '.join(shown)}{more}); the weights and the config are from different models"
        )
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelError(
            f"{path}: {len(missing)} weight(s) are missing from the checkpoint ({', '.join(missing[:3])}{more}) "
            "and would be random; the weight files are incomplete or belong to another model"
        )
    return model


class SpeechLLM:
    """A speech LLM behind one interface: capture hidden states, generate, score options, edit states.

    Subclasses set the class attributes below and override the few methods whose behaviour differs
    between families (:meth:`prompt_protocols`, :meth:`user_content`, :meth:`frame_times`,
    :meth:`max_audio_seconds`).

    Args:
        model: the loaded transformers model (eval mode).
        processor: its processor (tokenizer + feature extractor + chat template).
        name_or_path: where the model was loaded from, recorded in provenance.
        protocol: the prompt protocol (:data:`PROTOCOLS`), which sets the system prompt and the instruction
            of both runs (:meth:`prompt_protocols`).
        system_prompt: replaces the protocol's system message in both runs; None keeps the protocol's.
        instruction: replaces the protocol's instruction in both runs; None keeps the protocol's, ``""``
            sends none.
    """

    family: ClassVar[str] = ""
    model_types: ClassVar[tuple[str, ...]] = ()
    model_class: ClassVar[str] = ""
    default_system_prompt: ClassVar[str | None] = None
    """The family's own system prompt (its official inference example); None: none."""
    audio_ends_line: ClassVar[bool] = False
    """Whether the chat template already ends the audio part with a newline (no separator is added before
    the instruction of the speech run)."""
    audio_token_attr: ClassVar[tuple[str, ...]] = ("audio_token_id", "audio_token_index")
    requires_remote_code: ClassVar[bool] = False
    verified: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = MODALITIES
    """The runs the adapter can do; :meth:`from_pretrained` renders a prompt of each to check the template."""

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        name_or_path: str = "",
        protocol: str = DEFAULT_PROTOCOL,
        system_prompt: str | None = None,
        instruction: str | None = None,
    ) -> None:
        self.model = model.eval()
        self.processor = processor
        self.name_or_path = str(name_or_path)
        self._set_prompts(protocol, system_prompt, instruction)
        self._blocks, self._final_norm, self._decoder_owner = _probe_decoder(model, self.num_layers)
        self._active_batch: PreparedBatch | None = None
        self._open_edits = 0

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        trust_remote_code: bool = False,
        protocol: str = DEFAULT_PROTOCOL,
        system_prompt: str | None = None,
        instruction: str | None = None,
    ) -> SpeechLLM:
        """Load model and processor from a local folder (or Hub id), weights from safetensors only.

        ``protocol``, ``system_prompt`` and ``instruction`` set the prompts (see the class).

        Raises:
            ConfigError: ``device`` is not a device of this machine (checked before anything is loaded).
            ModelError: an unreadable ``config.json``, damaged or incomplete weights (a truncated file, a
                weight of the wrong shape, weights missing from the checkpoint), a processor that does not
                load, or a chat template that fails to render.
        """
        target = check_device(device)
        check_protocol(protocol)
        if Path(path).is_dir():
            read_config(path)
        try:
            processor = cls.load_processor(path, trust_remote_code=trust_remote_code)
            model = cls.load_weights(path, dtype=dtype or torch.float32, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, TypeError, ImportError, RuntimeError, _SafetensorError) as err:
            raise ModelError(f"{path}: cannot load the {cls.family} model or its processor: {err}") from None
        if target is not None:
            try:
                model = model.to(target)
            except RuntimeError as err:  # out of memory, a device that went away
                raise ModelError(f"{path}: cannot move the {cls.family} model to {target}: {err}") from None
        adapter = cls(
            model,
            processor,
            name_or_path=str(path),
            protocol=protocol,
            system_prompt=system_prompt,
            instruction=instruction,
        )
        for modality in cls.modalities:
            adapter.render_prompt(modality, "?")  # a broken chat template fails here, not mid-run
        return adapter

    @classmethod
    def for_prompts(
        cls,
        path: str | Path,
        *,
        trust_remote_code: bool = False,
        protocol: str = DEFAULT_PROTOCOL,
        system_prompt: str | None = None,
        instruction: str | None = None,
    ) -> SpeechLLM:
        """An adapter that only renders prompts: the processor is loaded, the weights are not.

        For showing the prompts of a protocol in seconds (``speechgap eval --show-prompt``);
        :meth:`render_prompt`, :meth:`messages` and :meth:`describe_prompts` work, anything that needs the
        model raises.

        Raises:
            ConfigError: an unknown ``protocol``.
            ModelError: an unreadable ``config.json``, a processor that does not load, or a chat template
                that fails to render.
        """
        check_protocol(protocol)
        if Path(path).is_dir():
            read_config(path)
        try:
            processor = cls.load_processor(path, trust_remote_code=trust_remote_code)
        except (OSError, ValueError, TypeError, ImportError, RuntimeError) as err:
            raise ModelError(f"{path}: cannot load the {cls.family} processor: {err}") from None
        adapter = cls.__new__(cls)
        adapter.model = None
        adapter.processor = processor
        adapter.name_or_path = str(path)
        adapter._set_prompts(protocol, system_prompt, instruction)
        for modality in cls.modalities:
            adapter.render_prompt(modality, "?")
        return adapter

    @classmethod
    def load_processor(cls, path: str | Path, trust_remote_code: bool = False) -> Any:
        """The processor (tokenizer, feature extractor, chat template) saved with the model."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(str(path), trust_remote_code=trust_remote_code)

    @classmethod
    def load_weights(
        cls, path: str | Path, dtype: torch.dtype, trust_remote_code: bool = False
    ) -> torch.nn.Module:
        """The model, as :attr:`model_class`, from safetensors weights only (see :func:`load_checked`)."""
        import transformers

        model_cls = getattr(transformers, cls.model_class)
        return load_checked(model_cls, path, dtype=dtype, trust_remote_code=trust_remote_code)

    # ------------------------------------------------------------------ structure
    @property
    def text_config(self) -> Any:
        config = self.model.config
        return config.get_text_config() if hasattr(config, "get_text_config") else config

    @property
    def num_layers(self) -> int:
        """Number of decoder blocks L; captured layer indices run 0..L."""
        return int(self.text_config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.text_config.hidden_size)

    @property
    def decoder_layers(self) -> torch.nn.ModuleList:
        """The decoder blocks of the language model, found by probing the module tree."""
        return self._blocks

    @property
    def decoder_owner(self) -> torch.nn.Module:
        """The module that owns :attr:`decoder_layers` (and, next to them, the token embeddings, the final
        norm and, for rotary models, ``rotary_emb``)."""
        return self._decoder_owner

    @property
    def final_norm(self) -> torch.nn.Module | None:
        return self._final_norm

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def audio_token_id(self) -> int:
        """The id of the audio placeholder token (each speech position holds one after expansion)."""
        for source in (getattr(self.model, "config", None), self.processor):
            for name in self.audio_token_attr:
                value = getattr(source, name, None)
                if isinstance(value, int):
                    return value
        raise ModelError(f"{self.family}: cannot find the audio placeholder token id in config or processor")

    def max_audio_seconds(self) -> float | None:
        """Longest audio the model accepts in one clip, in seconds; None when unbounded."""
        extractor = getattr(self.processor, "feature_extractor", None)
        n_samples = getattr(extractor, "n_samples", None)
        rate = getattr(extractor, "sampling_rate", SAMPLE_RATE)
        return None if n_samples is None else float(n_samples) / float(rate)

    def describe(self) -> dict[str, Any]:
        """Model provenance: path, family, class, sizes, dtype, prompts (:meth:`describe_prompts`)."""
        return {
            "name_or_path": self.name_or_path,
            "family": self.family,
            "model_type": getattr(self.model.config, "model_type", None),
            "class": type(self.model).__name__,
            "num_layers": self.num_layers,
            "hidden_size": self.hidden_size,
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            **self.describe_prompts(),
        }

    # ------------------------------------------------------------------ prompts
    @classmethod
    def prompt_protocols(cls) -> dict[str, PromptProtocol]:
        """The family's definition of each protocol of :data:`PROTOCOLS`.

        This default serves a family that VoiceBench has no adapter for: ``voicebench`` and ``official``
        send the audio alone and the question alone with the family's :attr:`default_system_prompt`;
        ``instructed`` adds :data:`DEFAULT_INSTRUCTION`. Families override it with their sources.
        """
        alone = "no VoiceBench adapter for this family: the audio / the question alone, family system prompt"
        return {
            "voicebench": PromptProtocol(cls.default_system_prompt, None, alone),
            "official": PromptProtocol(cls.default_system_prompt, None, "the family's default system prompt"),
            "instructed": PromptProtocol(cls.default_system_prompt, DEFAULT_INSTRUCTION, INSTRUCTED_SOURCE),
        }

    def _set_prompts(self, protocol: str, system_prompt: str | None, instruction: str | None) -> None:
        self.protocol = protocol
        self.system_prompt = system_prompt
        self.instruction = instruction

    @property
    def protocol(self) -> str:
        """The prompt protocol's name (:data:`PROTOCOLS`)."""
        return self._protocol

    @protocol.setter
    def protocol(self, name: str) -> None:
        definitions = self.prompt_protocols()
        missing = [p for p in PROTOCOLS if p not in definitions]
        if missing:
            raise ModelError(f"{self.family}: prompt_protocols() does not define {', '.join(missing)}")
        self._protocol = check_protocol(name)

    @property
    def protocol_definition(self) -> PromptProtocol:
        return self.prompt_protocols()[self._protocol]

    @property
    def system_prompt(self) -> str | None:
        """The system message of both runs: the override, else the protocol's (None: none)."""
        if self._system_prompt is not None:
            return self._system_prompt
        return self.protocol_definition.system_prompt

    @system_prompt.setter
    def system_prompt(self, value: str | None) -> None:
        self._system_prompt = value

    @property
    def instruction(self) -> str | None:
        """The instruction after the question in both runs: the override, else the protocol's; None: the
        audio or the question alone."""
        value = self._instruction if self._instruction is not None else self.protocol_definition.instruction
        return value or None

    @instruction.setter
    def instruction(self, value: str | None) -> None:
        self._instruction = value

    def describe_prompts(self) -> dict[str, Any]:
        """The prompt settings as recorded: the protocol, its source, the system prompt and instruction in
        use, and which of them replace the protocol's (``prompt_overrides``)."""
        return {
            "protocol": self.protocol,
            "protocol_source": self.protocol_definition.source,
            "system_prompt": self.system_prompt,
            "instruction": self.instruction,
            "prompt_overrides": [
                name
                for name, value in (
                    ("system_prompt", self._system_prompt),
                    ("instruction", self._instruction),
                )
                if value is not None
            ],
        }

    def user_content(self, modality: str, text: str) -> list[dict[str, Any]]:
        """The user turn's content parts: the audio (speech run) or ``text`` (text run), then, when the
        protocol has one, the instruction on its own line.

        ``text`` is the transcript for the text run; for the speech run it is unused. The newline before
        the instruction is part of the instruction's text part (none in the speech run when the template
        already ends the audio with one, :attr:`audio_ends_line`).
        """
        if modality == "speech":
            parts: list[dict[str, Any]] = [{"type": "audio", "audio": "<audio>"}]
            separator = "" if self.audio_ends_line else "\n"
        else:
            parts = [{"type": "text", "text": text}]
            separator = "\n"
        if self.instruction is not None:
            parts.append({"type": "text", "text": separator + self.instruction})
        return parts

    def messages(self, modality: str, text: str) -> list[dict[str, Any]]:
        """The chat of one run: optional system message, then the user turn."""
        chat: list[dict[str, Any]] = []
        if self.system_prompt is not None:
            chat.append({"role": "system", "content": [{"type": "text", "text": self.system_prompt}]})
        chat.append({"role": "user", "content": self.user_content(modality, text)})
        return chat

    def render_prompt(self, modality: str, text: str = "") -> str:
        """The prompt string from the family's chat template (audio placeholders not yet expanded).

        Rendered once per (modality, text, prompt settings, template): evaluation records the prompt of
        every answer, and a Jinja render costs ~0.6 ms.
        """
        template = getattr(self.processor, "chat_template", None)
        key = (
            modality,
            text,
            self.system_prompt,
            self.instruction,
            getattr(self, "_protocol", None),
            template if template is None or isinstance(template, str) else id(template),
        )
        cache = self.__dict__.setdefault("_rendered_prompts", {})
        prompt = cache.get(key)
        if prompt is None:
            if len(cache) >= 4096:
                cache.clear()
            prompt = cache[key] = self._render_chat(self.processor, self.messages(modality, text), modality)
        return prompt

    def _render_chat(self, owner: Any, chat: list[dict[str, Any]], modality: str) -> str:
        """``owner.apply_chat_template`` (a processor or tokenizer), a failing template as a ModelError.

        Chat templates are Jinja programs saved with the model; transformers runs them in Jinja's sandbox,
        which refuses attribute access outside it (``SecurityError``).
        """
        import jinja2

        where = self.name_or_path or self.family
        try:
            return owner.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
        except jinja2.exceptions.SecurityError as err:
            raise ModelError(
                f"{where}: the chat template tried an operation the sandbox forbids ({err}); do not use this "
                "model's chat_template.jinja (or the chat_template of its tokenizer_config.json)"
            ) from None
        except (jinja2.TemplateError, ValueError, TypeError, KeyError) as err:
            raise ModelError(
                f"{where}: the chat template failed to render the {modality} prompt: "
                f"{type(err).__name__}: {err}"
            ) from None

    def _text_prompt(self, sample: PairedSample) -> tuple[str, int, int]:
        """The text-run prompt and the character range ``[start, end)`` of the transcript in it."""
        templated = self.render_prompt("text", _TEXT_MARKER)
        if templated.count(_TEXT_MARKER) != 1:
            raise ModelError(f"{self.family}: the chat template does not place the transcript exactly once")
        start = templated.index(_TEXT_MARKER)
        prompt = templated.replace(_TEXT_MARKER, sample.text)
        return prompt, start, start + len(sample.text)

    # ------------------------------------------------------------------ inputs
    def _check_sample(self, sample: PairedSample, modality: str) -> None:
        if modality not in MODALITIES:
            raise ConfigError(f"modality must be one of {MODALITIES}, got {modality!r}")
        if modality == "text":
            if not sample.text or not sample.text.strip():
                raise ModelError(f"sample {sample.id!r}: empty transcript, nothing to run as text")
            return
        audio = sample.audio
        if audio is None or np.asarray(audio).size == 0:
            raise ModelError(f"sample {sample.id!r}: no audio, cannot run it as speech")
        if np.asarray(audio).ndim != 1:
            raise ModelError(f"sample {sample.id!r}: audio must be mono (n_samples,), got {np.shape(audio)}")
        finite = np.isfinite(audio)
        if not finite.all():
            raise ModelError(
                f"sample {sample.id!r}: the audio holds {int(finite.size - finite.sum())} non-finite values "
                f"(NaN or inf) of {finite.size}; every hidden state would be NaN. Check its audio file"
            )
        if sample.sample_rate != SAMPLE_RATE:
            raise ModelError(
                f"sample {sample.id!r}: audio at {sample.sample_rate} Hz; load it through speechgap (16 kHz)"
            )
        limit = self.max_audio_seconds()
        if limit is not None and sample.duration_s > limit + 1e-9:
            raise ModelError(
                f"sample {sample.id!r}: audio is {sample.duration_s:.2f} s but {self.family} accepts at most "
                f"{limit:.2f} s per clip (its encoder window); trim or split the audio"
            )

    def build_inputs(self, sample: PairedSample, modality: str) -> PreparedBatch:
        """The exact model inputs of one run (a batch of one), with the rendered prompt in ``prompts[0]``."""
        return self.prepare([sample], modality)

    def prepare(
        self, samples: Sequence[PairedSample], modality: str, padding_side: str = "right"
    ) -> PreparedBatch:
        """Model inputs for several samples of one modality, padded on ``padding_side``.

        Right padding (the default, for capture) leaves every real token at the position it has alone, so
        a causal model gives the same states batched as one at a time. Generation uses left padding.
        """
        samples = list(samples)
        if not samples:
            raise ConfigError("no samples to prepare")
        for sample in samples:
            self._check_sample(sample, modality)
        tokenizer = self.tokenizer
        old_side = getattr(tokenizer, "padding_side", "right")
        tokenizer.padding_side = padding_side
        try:
            if modality == "speech":
                batch = self._prepare_speech(samples, padding_side)
            else:
                batch = self._prepare_text(samples)
        finally:
            tokenizer.padding_side = old_side
        self._check_positions(batch)
        return batch

    @property
    def max_positions(self) -> int | None:
        """The longest sequence the language model takes (``max_position_embeddings``); None if unknown."""
        value = getattr(self.text_config, "max_position_embeddings", None)
        return value if isinstance(value, int) and value > 0 else None

    def _check_positions(self, batch: PreparedBatch, new_tokens: int = 0) -> None:
        """Refuse a prompt (plus ``new_tokens`` to generate) longer than the model's positions: beyond
        them a model runs without an error and gives meaningless states and answers."""
        limit = self.max_positions
        if limit is None:
            return
        for sample, length in zip(batch.samples, batch.lengths, strict=True):
            if length + new_tokens > limit:
                room = f" and {new_tokens} new token(s)" if new_tokens else ""
                shorten = "audio" if batch.modality == "speech" else "text"
                raise ModelError(
                    f"sample {sample.id!r}: the {batch.modality} prompt is {length} tokens{room}, more than the "
                    f"{limit} positions {self.family} takes (max_position_embeddings); shorten its {shorten}"
                )

    def processor_call(
        self, prompts: list[str], audios: list[np.ndarray], padding_side: str = "right"
    ) -> dict[str, torch.Tensor]:
        """Run the processor on prompts with their audio; families override for extra arguments."""
        return dict(
            self.processor(
                text=prompts,
                audio=audios,
                sampling_rate=SAMPLE_RATE,
                # padding for the text only: audio features keep each family's own padding (fixed windows)
                text_kwargs={"padding": True, "padding_side": padding_side},
                return_tensors="pt",
            )
        )

    def _prepare_speech(self, samples: list[PairedSample], padding_side: str) -> PreparedBatch:
        prompt = self.render_prompt("speech")
        prompts = [prompt] * len(samples)
        audios = [np.asarray(s.audio, dtype=np.float32) for s in samples]
        inputs = self.processor_call(prompts, audios, padding_side)
        input_ids = inputs["input_ids"]
        mask = inputs["attention_mask"]
        spans, offsets, lengths = [], [], []
        audio_id = self.audio_token_id
        for row, sample in enumerate(samples):
            where = torch.nonzero(input_ids[row] == audio_id).flatten()
            if where.numel() == 0:
                raise ModelError(f"sample {sample.id!r}: the processor produced no audio placeholder tokens")
            start, end = int(where[0]), int(where[-1]) + 1
            if end - start != where.numel():
                raise ModelError(f"sample {sample.id!r}: audio placeholder tokens are not contiguous")
            spans.append((start, end))
            real = torch.nonzero(mask[row]).flatten()
            offsets.append(int(real[0]))
            lengths.append(int(real.numel()))
        return PreparedBatch(dict(inputs), samples, "speech", prompts, spans, offsets, lengths)

    def _prepare_text(self, samples: list[PairedSample]) -> PreparedBatch:
        tokenizer = self.tokenizer
        prompts, char_spans = [], []
        for sample in samples:
            prompt, start, end = self._text_prompt(sample)
            prompts.append(prompt)
            char_spans.append((start, end))
        encoded = tokenizer(
            prompts, add_special_tokens=False, padding=True, return_offsets_mapping=True, return_tensors="pt"
        )
        offsets_map = encoded.pop("offset_mapping")
        mask = encoded["attention_mask"]
        spans, offsets, lengths = [], [], []
        for row, sample in enumerate(samples):
            start_char, end_char = char_spans[row]
            real = mask[row].bool()
            starts, ends = offsets_map[row, :, 0], offsets_map[row, :, 1]
            # a token belongs to the transcript when its characters overlap the transcript's characters
            inside = real & (ends > start_char) & (starts < end_char) & (ends > starts)
            where = torch.nonzero(inside).flatten()
            if where.numel() == 0:
                raise ModelError(f"sample {sample.id!r}: the transcript maps to no token of the prompt")
            spans.append((int(where[0]), int(where[-1]) + 1))
            real_idx = torch.nonzero(real).flatten()
            offsets.append(int(real_idx[0]))
            lengths.append(int(real_idx.numel()))
        inputs = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
        return PreparedBatch(inputs, samples, "text", prompts, spans, offsets, lengths)

    def frame_times(self, sample: PairedSample, num_positions: int) -> np.ndarray:
        """Start/end seconds ``(num_positions, 2)`` of the audio each speech position covers.

        Default: the clip's duration split evenly over the positions. Families with a fixed stride
        override this.
        """
        edges = np.linspace(0.0, sample.duration_s, num_positions + 1)
        return np.stack([edges[:-1], edges[1:]], axis=1)

    # ------------------------------------------------------------------ forward
    def _model_inputs(self, batch: PreparedBatch) -> dict[str, Any]:
        device = self.device
        dtype = next(self.model.parameters()).dtype
        moved = {}
        for key, value in batch.inputs.items():
            if not isinstance(value, torch.Tensor):
                continue
            value = value.to(device)
            if value.is_floating_point():
                value = value.to(dtype)
            moved[key] = value
        return moved

    def forward(self, batch: PreparedBatch, **kwargs: Any) -> Any:
        """One forward pass of the whole model on a prepared batch (no cache); edit hooks apply."""
        with self._activate(batch), torch.inference_mode():
            return self.model(**self._model_inputs(batch), use_cache=False, **kwargs)

    @contextlib.contextmanager
    def _activate(self, batch: PreparedBatch) -> Iterator[None]:
        """Bind the forward passes inside to ``batch`` (for edits) and check their hidden states are finite.

        The outermost block watches every decoder layer's states at the real positions of each row and
        raises a :class:`ModelError` naming the sample and the first non-finite layer when it ends.
        """
        previous = self._active_batch
        self._active_batch = batch
        guard = _FiniteGuard(self, batch) if previous is None else None
        try:
            yield
            if guard is not None:
                guard.check()
        finally:
            if guard is not None:
                guard.remove()
            self._active_batch = previous

    def _resolve_layers(self, layers: Sequence[int] | None) -> list[int]:
        if layers is None:
            return list(range(self.num_layers + 1))
        resolved = sorted({int(layer) for layer in layers})
        bad = [layer for layer in resolved if not 0 <= layer <= self.num_layers]
        if bad or not resolved:
            raise ConfigError(
                f"argument 'layers' must be in 0..{self.num_layers} for this model, got {list(layers)}"
            )
        return resolved

    def capture(
        self,
        sample: PairedSample,
        modality: str,
        layers: Sequence[int] | None = None,
        post_norm: bool = False,
    ) -> Capture:
        """Hidden states of the speech span (``"speech"``) or the transcript span (``"text"``), one pass.

        Args:
            sample: the paired sample.
            modality: ``"speech"`` or ``"text"``.
            layers: layer indices to keep (0..L, see the layer convention); None keeps all L + 1.
            post_norm: also return the final-norm output at the span (``Capture.final_norm``).
        """
        return self.capture_batch([sample], modality, layers=layers, post_norm=post_norm)[0]

    def capture_batch(
        self,
        samples: Sequence[PairedSample],
        modality: str,
        layers: Sequence[int] | None = None,
        post_norm: bool = False,
    ) -> list[Capture]:
        """:meth:`capture` for several samples in one right-padded forward pass (same results)."""
        wanted = self._resolve_layers(layers)
        batch = self.prepare(samples, modality)
        states = self._run_capture(batch, wanted, post_norm)
        captures = []
        for row, sample in enumerate(batch.samples):
            start, end = batch.spans[row]
            offset, length = batch.offsets[row], batch.lengths[row]
            hidden = np.stack([states[layer][row, start:end].float().cpu().numpy() for layer in wanted])
            ids = batch.input_ids[row, offset : offset + length].cpu().numpy().astype(np.int64)
            tokens = frames = None
            if modality == "text":
                tokens = self.tokenizer.convert_ids_to_tokens(batch.input_ids[row, start:end].tolist())
            else:
                frames = self.frame_times(sample, end - start)
            final = None
            if post_norm:
                final = states["norm"][row, start:end].float().cpu().numpy()
            captures.append(
                Capture(
                    sample_id=sample.id,
                    modality=modality,
                    hidden=hidden.astype(np.float32, copy=False),
                    layers=list(wanted),
                    span=(start - offset, end - offset),
                    input_ids=ids,
                    tokens=tokens,
                    frame_times=frames,
                    final_norm=final,
                    prompt=batch.prompts[row],
                )
            )
        return captures

    def _run_capture(
        self, batch: PreparedBatch, wanted: list[int], post_norm: bool
    ) -> dict[Any, torch.Tensor]:
        """Forward with hooks on the needed blocks only; stops once the last needed state is recorded.

        Returns ``{layer: (batch, seq, dim)}``, plus ``"norm"`` with ``post_norm`` and, with layer 0,
        ``"position_ids"`` when the model passes them to its first block.
        """
        if post_norm and self._final_norm is None:
            raise ModelError(f"{self.family}: no final norm found, post_norm is unavailable")
        states: dict[Any, torch.Tensor] = {}
        last_needed: Any = "norm" if post_norm else max(wanted)
        handles = []

        def record(key: Any, tensor: torch.Tensor) -> None:
            states[key] = tensor.detach()
            if key == last_needed:
                raise _StopForward

        def record_input(_m: torch.nn.Module, args: tuple, kwargs: dict) -> None:
            if isinstance(kwargs.get("position_ids"), torch.Tensor):
                states["position_ids"] = kwargs["position_ids"].detach()
            record(0, _block_input(args, kwargs))

        # activated first, so that the finiteness check sees a layer before its recording stops the pass
        with self._activate(batch):
            try:
                if 0 in wanted:
                    handles.append(self._blocks[0].register_forward_pre_hook(record_input, with_kwargs=True))
                for layer in wanted:
                    if layer >= 1:
                        handles.append(
                            self._blocks[layer - 1].register_forward_hook(
                                lambda _m, _a, out, layer=layer: record(layer, _block_output(out))
                            )
                        )
                if post_norm:
                    handles.append(
                        self._final_norm.register_forward_hook(lambda _m, _a, out: record("norm", out))
                    )
                self.forward(batch)
            except _StopForward:
                pass
            finally:
                for handle in handles:
                    handle.remove()
        missing = [key for key in [*wanted, *(["norm"] if post_norm else [])] if key not in states]
        if missing:
            raise ModelError(f"{self.family}: the forward pass never reached layers {missing}")
        return states

    def layer0_inputs(self, sample: PairedSample, modality: str) -> Layer0Inputs:
        """The input of the first decoder block and its rotary positions, from the model's own forward pass.

        The audio encoder, projector and splicing are the family's code; the pass stops at the first
        block. Edits at layer 0 apply (as in :meth:`capture`).

        Raises:
            ConfigError: the model gives its blocks multi-axis rotary position ids (such as Qwen2.5-Omni's
                M-RoPE), which have no single position per token.
        """
        batch = self.prepare([sample], modality)
        states = self._run_capture(batch, [0], post_norm=False)
        hidden = states[0]
        position_ids = states.get("position_ids")
        if position_ids is None:
            position_ids = torch.arange(hidden.shape[1], device=hidden.device)
        elif position_ids.dim() != 2 or position_ids.shape[0] != 1:
            raise ConfigError(
                f"{self.family}: position ids of shape {tuple(position_ids.shape)} (multi-axis rotary) give "
                "no single position per token; layer0_inputs (and merging) need one-axis rotary positions"
            )
        return Layer0Inputs(hidden, position_ids.reshape(-1).to(torch.float32), batch.spans[0])

    # ------------------------------------------------------------------ generation and scoring
    def generation_settings(self, max_new_tokens: int = 256) -> dict[str, Any]:
        """Every setting that decides the generated text: greedy, no sampling, no repetition penalty."""
        return {
            "do_sample": False,
            "num_beams": 1,
            "max_new_tokens": int(max_new_tokens),
            "repetition_penalty": 1.0,
            "protocol": self.protocol,
            "system_prompt": self.system_prompt,
            "instruction": self.instruction,
        }

    def generate(self, sample: PairedSample, modality: str, max_new_tokens: int = 256) -> str:
        """Greedy, deterministic answer of one run: the decoded new text (special tokens removed)."""
        return self.generate_batch([sample], modality, max_new_tokens=max_new_tokens)[0]

    def generate_batch(
        self, samples: Sequence[PairedSample], modality: str, max_new_tokens: int = 256
    ) -> list[str]:
        """:meth:`generate` for several samples, left-padded in one call."""
        if max_new_tokens < 1:
            raise ConfigError(f"argument 'max_new_tokens' must be >= 1, got {max_new_tokens}")
        batch = self.prepare(samples, modality, padding_side="left")
        self._check_positions(batch, new_tokens=1)
        settings = self.generation_settings(max_new_tokens)
        pad_id = self.tokenizer.pad_token_id
        eos_id = self.tokenizer.eos_token_id
        inputs = self._model_inputs(batch)
        with self._activate(batch), torch.inference_mode():
            out = self.model.generate(
                **inputs,
                do_sample=False,
                num_beams=1,
                max_new_tokens=settings["max_new_tokens"],
                repetition_penalty=1.0,
                pad_token_id=pad_id if pad_id is not None else eos_id,
                temperature=None,
                top_p=None,
                top_k=None,
            )
        sequences = out.sequences if hasattr(out, "sequences") else out
        # given input_ids, generate returns prompt + new tokens; given only inputs_embeds, the new tokens
        new_tokens = sequences[:, batch.input_ids.shape[1] :] if "input_ids" in inputs else sequences
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)

    def score_options(
        self, sample: PairedSample, modality: str, options: Sequence[str] = ("A", "B", "C", "D")
    ) -> OptionScores:
        """Log-probability of each option's first token as the next token after the prompt.

        For log-likelihood multiple choice: the prompt (with the instruction) is followed directly by the
        answer, so the instruction should ask for the letter only; ``speechgap eval`` refuses ``loglik``
        under a protocol without an instruction.
        """
        return self.score_options_batch([sample], modality, [options])[0]

    def score_options_batch(
        self,
        samples: Sequence[PairedSample],
        modality: str,
        options: Sequence[Sequence[str]],
    ) -> list[OptionScores]:
        """:meth:`score_options` for several samples in one right-padded forward pass (same scores within
        float rounding, ~1e-6).

        Args:
            samples: the samples.
            modality: ``"speech"`` or ``"text"``.
            options: the options of each sample (samples may have different numbers of options).
        """
        if len(options) != len(samples):
            raise ConfigError(
                f"argument 'options': {len(options)} option lists for {len(samples)} samples; expected one each"
            )
        token_ids = [self.option_token_ids([str(option) for option in opts]) for opts in options]
        batch = self.prepare(samples, modality)
        logits = self._next_token_logits(batch)
        scores = []
        for row, sample in enumerate(batch.samples):
            next_token = logits[row]
            if not bool(torch.isfinite(next_token).all()):
                raise ModelError(
                    f"sample {sample.id!r} ({modality} run): the next-token logits are not finite (NaN or inf)"
                    + (" inside an edit block: check the edit" if self.editing else "")
                )
            scores.append(
                OptionScores.from_logits([str(o) for o in options[row]], token_ids[row], next_token)
            )
        return scores

    def _next_token_logits(self, batch: PreparedBatch) -> torch.Tensor:
        """``(batch, vocab)`` logits after each row's last real token, from one forward pass.

        The LM head sees only those positions (a pre-hook on the output embedding selects them), so a batch
        of long prompts never holds ``batch × tokens × vocab`` logits.
        """
        head = self.model.get_output_embeddings()
        last = torch.tensor(
            [offset + length - 1 for offset, length in zip(batch.offsets, batch.lengths, strict=True)]
        )

        def select_last(_module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
            hidden = args[0]
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            return (hidden[rows, last.to(hidden.device)].unsqueeze(1), *args[1:])

        handle = head.register_forward_pre_hook(select_last) if head is not None else None
        try:
            logits = self.forward(batch).logits
        finally:
            if handle is not None:
                handle.remove()
        if head is None:  # a model without a separate head: every position's logits, then the last ones
            rows = torch.arange(logits.shape[0], device=logits.device)
            return logits[rows, last.to(logits.device)]
        return logits[:, -1]

    def option_token_ids(self, options: Sequence[str]) -> list[int]:
        """The first token id of each option (the token :meth:`score_options` scores).

        Raises:
            ConfigError: no options, an option that encodes to no token, or options sharing a first token
                (their scores could not be told apart).
        """
        options = [str(option) for option in options]
        if not options:
            raise ConfigError("argument 'options': must not be empty")
        token_ids = []
        for option in options:
            ids = self.tokenizer.encode(option, add_special_tokens=False)
            if not ids:
                raise ConfigError(f"argument 'options': {option!r} encodes to no token")
            token_ids.append(int(ids[0]))
        for token_id in dict.fromkeys(token_ids):
            sharing = [option for option, other in zip(options, token_ids, strict=True) if other == token_id]
            if len(sharing) > 1:
                raise ConfigError(
                    f"argument 'options': {sharing} share a first token; they cannot be told apart"
                )
        return token_ids

    # ------------------------------------------------------------------ edits
    @contextlib.contextmanager
    def edit(
        self,
        layers: dict[int, EditFn],
        positions: str | Sequence[int] = "span",
        decode: bool = False,
    ) -> Iterator[SpeechLLM]:
        """Read or replace hidden states at chosen layers and positions during the forward passes inside.

        Args:
            layers: ``{layer: fn}``; layer 0 edits the input of block 1 (after audio splicing), layer
                ``l >= 1`` edits the output of block ``l`` (before the final norm). ``fn(states, positions)``
                gets ``states`` ``(n, dim)`` of one batch row at the chosen positions and returns the
                replacement ``(n, dim)`` (or None to leave them unchanged, e.g. to only read).
            positions: ``"span"`` (the run's speech or transcript span), ``"all"`` (every real token), or
                explicit positions in the unpadded prompt.
            decode: prefill only by default: at decode steps (one new token per forward during
                :meth:`generate`) the hooks do nothing. With ``decode=True``, ``fn`` is also called at each
                decode step on the new token's state, with its absolute position.

        The hooks are removed on exit, also when the block raises; the model is left as it was.
        Edits apply to the adapter's calls made inside the block: :meth:`capture`, :meth:`capture_batch`,
        :meth:`forward`, :meth:`generate`, :meth:`generate_batch`, :meth:`score_options` and
        :meth:`layer0_inputs`. A forward pass the adapter did not start (``model.model(**inputs)``, or
        decoder blocks called directly, as the shortening engine does) cannot be bound to its prompt and
        span: when it reaches an edited block it raises :class:`ModelError` instead of running unedited.
        Every row of a batch gets the same edit; :meth:`edit_per_sample` gives each sample its own.
        """
        same = self._check_edit(layers, positions, decode)
        with self._edit_hooks(sorted(same.layers), lambda _batch, _row: same):
            yield self

    @contextlib.contextmanager
    def edit_per_sample(self, plans: dict[str, SampleEdit]) -> Iterator[SpeechLLM]:
        """:meth:`edit` with each sample's own layers, functions and positions, in the same forward passes.

        A batched call inside the block (``generate_batch``, ``capture_batch``, ...) edits each row with
        the :class:`SampleEdit` of its sample, looked up by the sample's id: row ``r`` gets exactly what
        ``with edit(**plans[id_r])`` gives it alone, so a batch equals its samples run one at a time (up to
        the batching's float rounding). As with :meth:`edit`, ``fn`` receives the row's states and their
        positions in the padded row.

        Args:
            plans: ``{sample_id: SampleEdit}``, one entry per sample the block runs (more are allowed).

        Raises:
            ConfigError: on entry, when ``plans`` is empty or a plan has a layer out of range, a function
                that is not callable or positions that are not ``"span"``, ``"all"`` or integers (naming the
                sample).
            ModelError: inside, when a pass runs a sample that has no plan (naming it): an edit that cannot
                apply fails instead of leaving that sample unedited.

        Example:
            >>> plans = {s.id: SampleEdit({0: fn_for[s.id]}, positions=[3, 7]) for s in samples}
            >>> with model.edit_per_sample(plans):
            ...     answers = model.generate_batch(samples, "speech", max_new_tokens=32)
        """
        if not isinstance(plans, dict) or not plans:
            raise ConfigError(
                f"argument 'plans' must be a non-empty dict {{sample_id: SampleEdit}}, got {plans!r}"
            )
        checked: dict[str, SampleEdit] = {}
        for sample_id, plan in plans.items():
            if not isinstance(plan, SampleEdit):
                raise ConfigError(
                    f"argument 'plans': the plan of sample {sample_id!r} must be a SampleEdit, got "
                    f"{type(plan).__name__}"
                )
            checked[str(sample_id)] = self._check_edit(
                plan.layers, plan.positions, plan.decode, sample_id=str(sample_id)
            )

        def plan_for(batch: PreparedBatch, row: int) -> SampleEdit:
            sample_id = batch.samples[row].id
            if sample_id not in checked:
                known = ", ".join(repr(i) for i in list(checked)[:5]) + (" ..." if len(checked) > 5 else "")
                raise ModelError(
                    f"sample {sample_id!r} ({batch.modality} run): no edit plan for this sample in the open "
                    f"edit_per_sample block (plans for {len(checked)} sample(s): {known}); every sample a pass "
                    "runs inside the block needs its plan"
                )
            return checked[sample_id]

        layers = sorted({layer for plan in checked.values() for layer in plan.layers})
        with self._edit_hooks(layers, plan_for):
            yield self

    def _check_edit(
        self, layers: Any, positions: Any, decode: Any, sample_id: str | None = None
    ) -> SampleEdit:
        """The arguments of one edit, checked and normalised (int layers, positions as a list of ints)."""
        where = "" if sample_id is None else f"sample {sample_id!r}: "
        if not isinstance(layers, dict):
            raise ConfigError(f"{where}edit layers must be a dict {{layer: fn}}, got {type(layers).__name__}")
        normalised: dict[int, EditFn] = {}
        for layer, fn in layers.items():
            if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
                raise ConfigError(f"{where}edit layer {layer!r} is not a layer index (an int)")
            if not 0 <= int(layer) <= self.num_layers:
                raise ConfigError(f"{where}edit layer {layer} not in 0..{self.num_layers}")
            if not callable(fn):
                raise ConfigError(f"{where}edit for layer {layer} is not callable")
            normalised[int(layer)] = fn
        if isinstance(positions, str):
            if positions not in ("span", "all"):
                raise ConfigError(
                    f"{where}positions must be 'span', 'all' or a list of ints, got {positions!r}"
                )
            return SampleEdit(normalised, positions, bool(decode))
        try:
            idx = torch.as_tensor(list(positions))
        except (TypeError, ValueError, RuntimeError):
            raise ConfigError(
                f"{where}positions must be 'span', 'all' or a list of ints, got {positions!r}"
            ) from None
        if idx.ndim != 1 or (idx.numel() and (idx.is_floating_point() or idx.dtype == torch.bool)):
            raise ConfigError(f"{where}positions must be 'span', 'all' or a list of ints, got {positions!r}")
        return SampleEdit(normalised, [int(p) for p in idx.tolist()], bool(decode))

    @contextlib.contextmanager
    def _edit_hooks(
        self, layers: Sequence[int], plan_for: Callable[[PreparedBatch, int], SampleEdit]
    ) -> Iterator[None]:
        """Hooks on the blocks of ``layers`` that edit each row with ``plan_for(batch, row)``; removed on
        exit, also when the block raises."""
        handles = []
        self._open_edits += 1
        try:
            for layer in layers:
                steps = [0]
                if layer == 0:

                    def pre_hook(_m, args, kwargs, steps=steps):
                        hidden = _block_input(args, kwargs)
                        edited = self._apply_edit(plan_for, hidden, steps, layer=0)
                        if edited is None:
                            return None
                        if "hidden_states" in kwargs:
                            return args, {**kwargs, "hidden_states": edited}
                        return (edited, *args[1:]), kwargs

                    handles.append(self._blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
                else:

                    def post_hook(_m, _args, out, steps=steps, layer=layer):
                        hidden = _block_output(out)
                        edited = self._apply_edit(plan_for, hidden, steps, layer)
                        if edited is None:
                            return None
                        if isinstance(out, tuple):
                            return (edited, *out[1:])
                        return edited

                    handles.append(self._blocks[layer - 1].register_forward_hook(post_hook))
            yield
        finally:
            for handle in handles:
                handle.remove()
            self._open_edits -= 1

    @property
    def editing(self) -> bool:
        """Whether an :meth:`edit` block is open (its hooks are on the decoder blocks)."""
        return self._open_edits > 0

    def _apply_edit(
        self,
        plan_for: Callable[[PreparedBatch, int], SampleEdit],
        hidden: torch.Tensor,
        steps: list[int],
        layer: int,
    ) -> torch.Tensor | None:
        """Run each row's function of ``layer`` on its chosen states; ``steps[0]`` counts the decode steps
        seen so far. Returns the edited states, or None when no row changed.

        Raises:
            ModelError: ``fn`` returned non-finite values (naming the sample and the layer).
        """
        batch = self._active_batch
        if batch is None:
            raise ModelError(
                f"{self.family}: an edit hook fired on a forward pass not started through the adapter "
                "(such as model.model(**inputs) inside `with model.edit(...)`), which it cannot bind to a "
                f"prompt and span; edits apply only through the adapter's {', '.join(_EDIT_ENTRY_POINTS)}"
            )
        prefill = hidden.shape[1] == batch.input_ids.shape[1]
        if prefill:
            steps[0] = 0
        edited = None
        for row in range(hidden.shape[0]):
            plan = plan_for(batch, row)
            fn = plan.layers.get(layer)
            if fn is None or not (prefill or plan.decode):
                continue
            if prefill:
                idx = self._edit_positions(batch, row, plan.positions)
                local = idx
            else:
                # a decode step: one new token, at this absolute position of the padded row
                idx = torch.tensor([batch.input_ids.shape[1] + steps[0]], dtype=torch.long)
                local = torch.tensor([hidden.shape[1] - 1], dtype=torch.long)
            if idx.numel() == 0:
                continue
            states = hidden[row, local.to(hidden.device)]
            result = fn(states, idx)
            if result is None:
                continue
            if tuple(result.shape) != tuple(states.shape):
                raise ConfigError(
                    f"edit returned shape {tuple(result.shape)}, expected {tuple(states.shape)}"
                    f" (sample {batch.samples[row].id!r}, layer {layer})"
                )
            if not bool(torch.isfinite(result).all()):
                raise ModelError(
                    f"sample {batch.samples[row].id!r} ({batch.modality} run): the edit at layer {layer} "
                    "returned non-finite values (NaN or inf)"
                )
            if edited is None:
                edited = hidden.clone()
            edited[row, local.to(hidden.device)] = result.to(hidden.dtype)
        if not prefill:
            steps[0] += 1
        return edited

    def _edit_positions(self, batch: PreparedBatch, row: int, positions: str | Sequence[int]) -> torch.Tensor:
        offset, length = batch.offsets[row], batch.lengths[row]
        if positions == "span":
            start, end = batch.spans[row]
            return torch.arange(start, end)
        if positions == "all":
            return torch.arange(offset, offset + length)
        idx = torch.as_tensor(list(positions), dtype=torch.long)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= length):
            raise ConfigError(
                f"edit positions must be in 0..{length - 1} for this prompt (sample {batch.samples[row].id!r})"
            )
        return idx + offset


def _block_input(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    return kwargs["hidden_states"]


def _block_output(out: Any) -> torch.Tensor:
    # transformers 5.x decoder blocks return a tensor; older ones a tuple whose first item is the state
    return out[0] if isinstance(out, tuple) else out


class _FiniteGuard:
    """Watches the decoder's hidden states for NaN and inf during the forward passes of one batch.

    A non-finite state (from NaN audio features, a float16 overflow, an edit) spreads to every later layer
    and ends as an empty answer or NaN captures, with no error. The hooks flag, per layer and row, whether
    a real (non-padding) position holds a non-finite value; the flags stay on the device, so there is one
    synchronisation per batch (in :meth:`check`), not one per layer and decode step. The prompt's pass is
    watched at every layer (to name the first bad one); a decode step only at the last block, since the
    residual stream carries a NaN or inf from the layer it appears in to the last.
    """

    def __init__(self, adapter: SpeechLLM, batch: PreparedBatch) -> None:
        self.adapter = adapter
        self.batch = batch
        self.prefill_length = int(batch.input_ids.shape[1])
        self._mask = batch.inputs.get("attention_mask")
        self._mask_on: dict[torch.device, torch.Tensor] = {}
        self.flags: dict[int, torch.Tensor] = {}
        blocks = adapter._blocks
        self.last_layer = len(blocks)
        self.handles = [
            blocks[0].register_forward_pre_hook(
                lambda _m, args, kwargs: self._flag(0, _block_input(args, kwargs)), with_kwargs=True
            )
        ]
        for layer, block in enumerate(blocks, start=1):
            self.handles.append(
                block.register_forward_hook(
                    lambda _m, _a, out, layer=layer: self._flag(layer, _block_output(out))
                )
            )

    def _real(self, bad: torch.Tensor) -> torch.Tensor:
        """``bad`` ``(rows, seq)`` restricted to the real tokens of the prompt (prefill only)."""
        if self._mask is None or tuple(bad.shape) != tuple(self._mask.shape):
            return bad
        mask = self._mask_on.get(bad.device)
        if mask is None:
            mask = self._mask_on[bad.device] = self._mask.to(bad.device).bool()
        return bad & mask

    def _flag(self, layer: int, hidden: Any) -> None:
        if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or not hidden.is_floating_point():
            return
        prefill = hidden.shape[1] == self.prefill_length
        if not prefill and layer != self.last_layer:
            return
        bad = ~torch.isfinite(hidden).all(dim=-1)
        if prefill:
            bad = self._real(bad)
        rows = bad.any(dim=-1)
        previous = self.flags.get(layer)
        self.flags[layer] = rows if previous is None or previous.shape != rows.shape else previous | rows

    def check(self) -> None:
        """Raise :class:`ModelError` naming the sample and the first layer with a non-finite state."""
        if not self.flags:
            return
        layers = sorted(self.flags)
        flags = torch.stack([self.flags[layer].reshape(-1).to(torch.bool).cpu() for layer in layers])
        if not bool(flags.any()):
            return
        first_layer, row = (int(v) for v in torch.nonzero(flags)[0])
        samples = self.batch.samples
        sample_id = samples[row].id if row < len(samples) else samples[0].id
        cause = (
            "inside an edit block: an edit made them or fed them to a later layer"
            if self.adapter.editing
            else "check the input, and the dtype: float16 can overflow where bfloat16 or float32 does not"
        )
        raise ModelError(
            f"sample {sample_id!r} ({self.batch.modality} run): the hidden states at layer {layers[first_layer]} "
            f"are not finite (NaN or inf); {cause}"
        )

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _probe_decoder(
    model: torch.nn.Module, num_layers: int
) -> tuple[torch.nn.ModuleList, torch.nn.Module | None, torch.nn.Module]:
    """Find the language model's decoder blocks, final norm and their owner by walking the module tree.

    The blocks are the ``ModuleList`` named ``layers`` (or ``h``/``blocks``) of length ``num_layers`` whose
    parent also owns the token embeddings; outside audio/vision towers. The final norm is the parent's
    ``norm`` (or ``final_layernorm``/``ln_f``) module. Returns ``(blocks, norm, parent)``.
    """
    candidates = []
    for name, module in model.named_modules():
        lowered = name.lower()
        if any(tower in lowered for tower in ("audio", "visual", "vision", "encoder", "speech")):
            continue
        for attr in ("layers", "h", "blocks"):
            blocks = getattr(module, attr, None)
            if isinstance(blocks, torch.nn.ModuleList) and len(blocks) == num_layers:
                has_embed = any(
                    isinstance(getattr(module, e, None), torch.nn.Module) for e in ("embed_tokens", "wte")
                )
                candidates.append((not has_embed, len(name), name, module, blocks))
    if not candidates:
        raise ModelError(
            f"cannot find the {num_layers} decoder blocks of the language model in {type(model).__name__}"
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    _, _, _, parent, blocks = candidates[0]
    norm = None
    for attr in ("norm", "final_layernorm", "ln_f"):
        if isinstance(getattr(parent, attr, None), torch.nn.Module):
            norm = getattr(parent, attr)
            break
    return blocks, norm, parent
