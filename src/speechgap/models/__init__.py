"""Speech LLMs behind one adapter: load a model, capture hidden states, generate, edit states.

>>> import speechgap
>>> model = speechgap.load_model("Qwen/Qwen2-Audio-7B-Instruct")        # or a local save_pretrained folder
>>> cap = model.capture(sample, "speech")                               # Capture.hidden: (layers, T, d)

See ``docs/models.md`` for the families, the layer convention and how to add a family.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speechgap.errors import ModelError
from speechgap.models import audioflamingo3 as _audioflamingo3  # noqa: F401  (registers the family)
from speechgap.models import phi4_multimodal as _phi4_multimodal  # noqa: F401
from speechgap.models import qwen2_5_omni as _qwen2_5_omni  # noqa: F401
from speechgap.models import qwen2_audio as _qwen2_audio  # noqa: F401
from speechgap.models import voxtral as _voxtral  # noqa: F401
from speechgap.models.base import (
    DEFAULT_PROTOCOL,
    PROTOCOLS,
    Capture,
    OptionScores,
    PreparedBatch,
    PromptProtocol,
    SampleEdit,
    SpeechLLM,
    check_device,
    check_protocol,
    read_config,
)
from speechgap.models.registry import family_for, known_families, register_family

__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "Capture",
    "OptionScores",
    "PreparedBatch",
    "PromptProtocol",
    "SampleEdit",
    "SpeechLLM",
    "known_families",
    "load_model",
    "load_prompts",
    "register_family",
]
_ADAPTER_ARGUMENTS = ("protocol", "system_prompt", "instruction")

_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "float16": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
}


def _resolve_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ModelError(f"argument 'dtype' must be one of {sorted(set(_DTYPES.values()))}, got {dtype!r}")
    return getattr(torch, name)


def _read_config(name_or_path: str, trust_remote_code: bool) -> tuple[str, dict[str, Any]]:
    """The config's ``model_type`` and raw dict, without importing any remote code."""
    path = Path(name_or_path)
    if path.is_dir():
        raw = read_config(path)
    elif path.exists():
        raise ModelError(f"{path}: expected a model folder, got a file")
    else:
        try:
            from transformers import PretrainedConfig

            raw, _ = PretrainedConfig.get_config_dict(name_or_path)
        except Exception as err:
            raise ModelError(
                f"{name_or_path!r}: not a local folder and could not be fetched from the Hub ({err})"
            ) from None
    model_type = raw.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelError(
            f"{name_or_path}: config.json has no model_type (a string such as 'qwen2_audio'), so its family "
            "is unknown; save the model with save_pretrained"
        )
    return model_type, raw


def _family(name: str, trust_remote_code: bool) -> type[SpeechLLM]:
    """The adapter class of the model at ``name`` (from its config alone).

    Raises:
        ModelError: unknown family (listing the known ones), a model without audio input, remote code
            needed but not allowed.
    """
    model_type, raw = _read_config(name, trust_remote_code)
    family = family_for(model_type)
    if family is None:
        if raw.get("auto_map") and not trust_remote_code:
            raise ModelError(
                f"{name}: model_type {model_type!r} uses its own code; set argument 'trust_remote_code' to "
                "True if you trust it, and register its family (docs/models.md)"
            )
        known = ", ".join(f"{fam} ({', '.join(types)})" for fam, types in known_families().items())
        takes_audio = any(key in raw for key in ("audio_config", "audio_token_id", "audio_token_index"))
        reason = "is not a speech LLM family speechgap knows" if takes_audio else "takes no audio input"
        raise ModelError(f"{name}: model_type {model_type!r} {reason}. Known families: {known}")
    if raw.get("auto_map") and family.requires_remote_code and not trust_remote_code:
        raise ModelError(
            f"{name}: {family.family} needs its own code; set argument 'trust_remote_code' to True to load it"
        )
    return family


def _check_adapter_kwargs(verb: str, adapter_kwargs: dict[str, Any]) -> dict[str, Any]:
    unknown = [key for key in adapter_kwargs if key not in _ADAPTER_ARGUMENTS]
    if unknown:
        raise ModelError(
            f"{verb} takes no argument {unknown[0]!r} (adapter arguments: {', '.join(_ADAPTER_ARGUMENTS)})"
        )
    prompts = {key: value for key, value in adapter_kwargs.items() if value is not None}
    check_protocol(prompts.get("protocol", DEFAULT_PROTOCOL))
    return prompts


TRAINED_PROTOCOL_FILE = "speechgap_mini.json"
TRAINED_PROTOCOL = "instructed"


def checkpoint_protocol(name_or_path: str | Path) -> str:
    """The protocol a checkpoint is run with when none is given: ``voicebench``, except for speechgap's own
    mini models (a folder holding ``speechgap_mini.json``), which were trained on the question, a newline and
    the instruction, i.e. ``instructed``."""
    folder = Path(name_or_path)
    if folder.is_dir() and (folder / TRAINED_PROTOCOL_FILE).is_file():
        return TRAINED_PROTOCOL
    return DEFAULT_PROTOCOL


def _with_default_protocol(name: str, prompts: dict[str, Any]) -> dict[str, Any]:
    if "protocol" not in prompts:
        prompts = {**prompts, "protocol": checkpoint_protocol(name)}
    return prompts


def load_model(
    name_or_path: str | Path,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    **adapter_kwargs: Any,
) -> SpeechLLM:
    """Load a speech LLM behind the :class:`SpeechLLM` adapter.

    Args:
        name_or_path: a local folder written by ``save_pretrained`` or a Hub id (when online).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None leaves it on the CPU.
        dtype: ``"float32"`` (default), ``"float16"``, ``"bfloat16"`` or a ``torch.dtype``.
        trust_remote_code: allow the model's own code (only for families that need it).
        **adapter_kwargs: ``protocol=...`` (``"voicebench"`` by default, ``"instructed"`` for speechgap's
            mini models: :func:`checkpoint_protocol`; see :data:`PROTOCOLS`), ``system_prompt=...``,
            ``instruction=...`` (replace the protocol's).

    Raises:
        ConfigError: a ``device`` this machine does not have or an unknown ``protocol``, checked before
            anything is loaded.
        ModelError: unknown family (the message lists the known ones), a model without audio input,
            remote code needed but not allowed, a missing folder, an unreadable ``config.json``, damaged
            weights or a broken chat template (see :meth:`SpeechLLM.from_pretrained`).
    """
    name = str(name_or_path)
    check_device(device)
    prompts = _with_default_protocol(name, _check_adapter_kwargs("load_model", adapter_kwargs))
    torch_dtype = _resolve_dtype(dtype)
    family = _family(name, trust_remote_code)
    return family.from_pretrained(
        name, device=device, dtype=torch_dtype, trust_remote_code=trust_remote_code, **prompts
    )


def load_prompts(
    name_or_path: str | Path, trust_remote_code: bool = False, **adapter_kwargs: Any
) -> SpeechLLM:
    """The adapter of a speech LLM without its weights, for rendering prompts only (processor + config).

    Takes the arguments of :func:`load_model` but ``device`` and ``dtype``; see
    :meth:`SpeechLLM.for_prompts`.
    """
    name = str(name_or_path)
    prompts = _with_default_protocol(name, _check_adapter_kwargs("load_prompts", adapter_kwargs))
    family = _family(name, trust_remote_code)
    return family.for_prompts(name, trust_remote_code=trust_remote_code, **prompts)
