"""Tiny random-weight models of every supported family, with an offline-trained tokenizer and processor.

For tests, benchmarks and examples: no download, built from configs, saved with ``save_pretrained`` and
loaded back through :func:`speechgap.load_model` (the real loading path). Hidden sizes 32-64, 2-4 decoder
layers and a 2-layer audio encoder keep a forward pass at a few milliseconds. The weights are random: the
generated text is gibberish, but every shape, span and hook behaves as in the full-size model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError

_CORPUS = [
    "What is the capital of France? Paris is the capital of France.",
    "Answer the question. Which planet is known as the red planet? Mars.",
    "You are a helpful assistant. Listen to the audio and answer.",
    "The quick brown fox jumps over the lazy dog 0123456789 times!",
    "system user assistant audio transcript question option A B C D",
]


def train_tokenizer(special_tokens: list[str], vocab_size: int = 400, **kwargs: Any) -> Any:
    """A byte-level BPE tokenizer trained offline on a few sentences, wrapped for transformers.

    Args:
        special_tokens: added first, so their ids are ``0..len-1`` in order.
        vocab_size: BPE vocabulary size including the special tokens.
        **kwargs: passed to ``PreTrainedTokenizerFast`` (``eos_token``, ``pad_token``, ``bos_token``...).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs)


def _text_config(kind: str, vocab_size: int, hidden: int, layers: int, **extra: Any) -> dict[str, Any]:
    return {
        "model_type": kind,
        "vocab_size": vocab_size,
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": False,
        **extra,
    }


def _build_qwen2_audio(out_dir: Path, hidden: int, layers: int) -> None:
    from transformers import (
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]
    tokenizer = train_tokenizer(specials, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    # chunk_length 3 s: 300 mel frames = 2 x max_source_positions, as the Qwen2-Audio encoder requires
    extractor = WhisperFeatureExtractor(feature_size=16, chunk_length=3, sampling_rate=16000)
    processor = Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tokenizer)
    pad_id = tokenizer.pad_token_id
    config = Qwen2AudioConfig(
        audio_config={
            "model_type": "qwen2_audio_encoder",
            "num_mel_bins": 16,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "max_source_positions": 150,
        },
        text_config=_text_config("qwen2", len(tokenizer), hidden, layers, pad_token_id=pad_id),
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    _save(Qwen2AudioForConditionalGeneration(config), tokenizer, out_dir, processor)


_QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _build_qwen2_5_omni(out_dir: Path, hidden: int, layers: int) -> None:
    from transformers import (
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        WhisperFeatureExtractor,
    )

    names = {
        "audio_token": "<|AUDIO|>",
        "audio_bos_token": "<|audio_bos|>",
        "audio_eos_token": "<|audio_eos|>",
        "image_token": "<|IMAGE|>",
        "video_token": "<|VIDEO|>",
        "vision_bos_token": "<|vision_bos|>",
        "vision_eos_token": "<|vision_eos|>",
    }
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *names.values()]
    tokenizer = train_tokenizer(
        specials, eos_token="<|im_end|>", pad_token="<|endoftext|>", extra_special_tokens=names
    )
    tokenizer.chat_template = _QWEN_TEMPLATE
    extractor = WhisperFeatureExtractor(feature_size=16, chunk_length=3, sampling_rate=16000)
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}
    config = Qwen2_5OmniThinkerConfig(
        audio_config={
            "num_mel_bins": 16,
            "encoder_layers": 2,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "max_source_positions": 150,
            "n_window": 50,
            "output_dim": hidden,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "fullatt_block_indexes": [0],
        },
        text_config=_text_config(
            "qwen2_5_omni_text",
            len(tokenizer),
            hidden,
            layers,
            pad_token_id=tokenizer.pad_token_id,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0},
        ),
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
        user_token_id=tokenizer.convert_tokens_to_ids("user"),
    )
    # the upstream processor cannot be built without torchvision; its parts are saved instead and
    # Qwen25OmniLLM.load_processor puts them back together
    _save(Qwen2_5OmniThinkerForConditionalGeneration(config), tokenizer, out_dir, extractor, tokenizer)


def _build_audioflamingo3(out_dir: Path, hidden: int, layers: int) -> None:
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"]
    tokenizer = train_tokenizer(specials, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    template = _QWEN_TEMPLATE.replace("<|audio_bos|><|AUDIO|><|audio_eos|>", "<sound>")
    extractor = WhisperFeatureExtractor(feature_size=16, chunk_length=3, sampling_rate=16000)
    # max_audio_len 6 s: two 3 s windows, so chunking is exercised by audio longer than one window
    processor = AudioFlamingo3Processor(
        feature_extractor=extractor, tokenizer=tokenizer, chat_template=template, max_audio_len=6
    )
    config = AudioFlamingo3Config(
        audio_config={
            "num_mel_bins": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "hidden_size": 32,
            "max_source_positions": 150,
        },
        text_config=_text_config(
            "qwen2", len(tokenizer), hidden, layers, pad_token_id=tokenizer.pad_token_id
        ),
        audio_token_id=tokenizer.convert_tokens_to_ids("<sound>"),
    )
    _save(AudioFlamingo3ForConditionalGeneration(config), tokenizer, out_dir, processor)


_PHI4_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}<|audio|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _build_phi4_multimodal(out_dir: Path, hidden: int, layers: int) -> None:
    from transformers import (
        Phi4MultimodalConfig,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalForCausalLM,
    )

    names = {"audio_token": "<|audio|>", "image_token": "<|image|>"}
    specials = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", *names.values()]
    tokenizer = train_tokenizer(
        specials, eos_token="<|end|>", pad_token="<|endoftext|>", extra_special_tokens=names
    )
    tokenizer.chat_template = _PHI4_TEMPLATE
    extractor = Phi4MultimodalFeatureExtractor(feature_size=16)
    config = Phi4MultimodalConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        original_max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
            "crop_size": 28,
            "image_token_id": tokenizer.convert_tokens_to_ids(names["image_token"]),
        },
        audio_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_blocks": 2,
            "num_attention_heads": 2,
            "input_size": 16,
            "ext_pw_out_channel": 32,
            "depthwise_separable_out_channel": 32,
            "nemo_conv_channels": 32,
            "audio_token_id": tokenizer.convert_tokens_to_ids(names["audio_token"]),
        },
    )
    # the upstream processor needs torchvision (image processor); its speech and text parts are saved and
    # Phi4MultimodalLLM.load_processor puts them back together
    _save(Phi4MultimodalForCausalLM(config), tokenizer, out_dir, extractor, tokenizer)


# Mistral's special tokens at the ranks Voxtral's tokenizer uses; VoxtralProcessor hard-codes the audio
# placeholder id 24. The ranks not named here are fillers ("<SPECIAL_i>"), as in a real tekken.json.
_TEKKEN_SPECIALS = {
    0: "<unk>",
    1: "<s>",
    2: "</s>",
    3: "[INST]",
    4: "[/INST]",
    5: "[AVAILABLE_TOOLS]",
    6: "[/AVAILABLE_TOOLS]",
    7: "[TOOL_RESULTS]",
    8: "[/TOOL_RESULTS]",
    9: "[TOOL_CALLS]",
    10: "[IMG]",
    11: "<pad>",
    12: "[IMG_BREAK]",
    13: "[IMG_END]",
    14: "[PREFIX]",
    15: "[MIDDLE]",
    16: "[SUFFIX]",
    17: "[SYSTEM_PROMPT]",
    18: "[/SYSTEM_PROMPT]",
    19: "[TOOL_CONTENT]",
    24: "[AUDIO]",
    25: "[BEGIN_AUDIO]",
    32: "[ARGS]",
    33: "[CALL_ID]",
    34: "[TRANSCRIBE]",
}
# a tiktoken split pattern: letter runs, single digits, punctuation runs, newlines, spaces
_TEKKEN_PATTERN = r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def write_tiny_tekken(
    path: str | Path,
    num_special_tokens: int = 40,
    num_merges: int = 144,
    chunk_length_s: float = 4.0,
    num_mel_bins: int = 16,
) -> Path:
    """Write a minimal valid ``tekken.json`` (mistral-common's Tekken tokenizer file, version v7 with audio).

    The vocabulary is the 256 single bytes followed by the merges of a byte-level BPE trained offline on a
    few sentences (rank = merge order, as tiktoken expects); token id = ``num_special_tokens + rank``.
    The audio section makes mistral-common expand an audio chunk to ``[BEGIN_AUDIO]`` followed by one
    ``[AUDIO]`` per 80 ms (frame rate 12.5 Hz), the audio padded to a multiple of ``chunk_length_s``.

    Args:
        path: the file to write (its name must contain ``tekken`` and end in ``.json``).
        num_special_tokens: special-token slots (>= 35); the real tokenizer reserves 1000.
        num_merges: BPE merges after the 256 bytes.
        chunk_length_s: audio window in seconds (the real tokenizer: 30).
        num_mel_bins: mel bins recorded in the audio encoding config.
    """
    import base64
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=256 + num_merges, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_CORPUS * 10, trainer)
    byte_level = decoders.ByteLevel()
    vocab = [bytes([b]) for b in range(256)]
    for merge in json.loads(bpe.to_str())["model"]["merges"]:
        left, right = merge if isinstance(merge, list) else merge.split(" ")
        # the corpus is ASCII, so every merged piece decodes to valid UTF-8
        piece = (byte_level.decode([left]) + byte_level.decode([right])).encode("utf-8")
        if piece not in vocab:
            vocab.append(piece)
    specials = [
        {"rank": i, "token_str": _TEKKEN_SPECIALS.get(i, f"<SPECIAL_{i}>"), "is_control": True}
        for i in range(num_special_tokens)
    ]
    data = {
        "config": {
            "pattern": _TEKKEN_PATTERN,
            "num_vocab_tokens": len(vocab),
            "default_vocab_size": len(vocab) + num_special_tokens,
            "default_num_special_tokens": num_special_tokens,
            "version": "v7",
        },
        "vocab": [
            {
                "rank": rank,
                "token_bytes": base64.b64encode(piece).decode("ascii"),
                "token_str": piece.decode("utf-8", "replace"),
            }
            for rank, piece in enumerate(vocab)
        ],
        "special_tokens": specials,
        "audio": {
            "sampling_rate": 16000,
            "frame_rate": 12.5,
            "chunk_length_s": chunk_length_s,
            "audio_encoding_config": {"num_mel_bins": num_mel_bins, "hop_length": 160, "window_size": 400},
        },
    }
    path = Path(path)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _build_voxtral(out_dir: Path, hidden: int, layers: int) -> None:
    from transformers import (
        MistralCommonBackend,
        VoxtralConfig,
        VoxtralForConditionalGeneration,
        VoxtralProcessor,
        WhisperFeatureExtractor,
    )

    # 4 s windows: 400 mel frames -> 200 encoder frames (max_source_positions) -> 50 positions of 4 frames
    tekken = write_tiny_tekken(out_dir / "tekken.json", chunk_length_s=4.0, num_mel_bins=16)
    tokenizer = MistralCommonBackend(tokenizer_path=str(tekken))
    extractor = WhisperFeatureExtractor(feature_size=16, chunk_length=4, sampling_rate=16000)
    processor = VoxtralProcessor(feature_extractor=extractor, tokenizer=tokenizer)
    config = VoxtralConfig(
        audio_config={
            "num_mel_bins": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "hidden_size": 32,
            # the projector stacks intermediate_size / hidden_size = 4 encoder frames per speech position
            "intermediate_size": 128,
            "max_source_positions": 200,
        },
        text_config=_text_config(
            "llama",
            len(tokenizer),
            hidden,
            layers,
            head_dim=hidden // 4,
            rope_theta=10000.0,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        audio_token_id=processor.audio_token_id,
    )
    _save(VoxtralForConditionalGeneration(config), tokenizer, out_dir, processor)


def _save(model: Any, tokenizer: Any, out_dir: Path, *parts: Any) -> None:
    """Save the model (safetensors) and each processor part with ``save_pretrained``."""
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out_dir, safe_serialization=True)
    for part in parts:
        part.save_pretrained(out_dir)


BUILDERS: dict[str, Callable[[Path, int, int], None]] = {
    "qwen2_audio": _build_qwen2_audio,
    "qwen2_5_omni": _build_qwen2_5_omni,
    "audioflamingo3": _build_audioflamingo3,
    "voxtral": _build_voxtral,
    "phi4_multimodal": _build_phi4_multimodal,
}


def build_tiny_model(
    family: str, out_dir: str | Path, seed: int = 0, hidden: int = 32, layers: int = 3
) -> Path:
    """Build, save and return the folder of a tiny random-weight model of ``family``.

    Args:
        family: one of :data:`BUILDERS` (``"qwen2_audio"``, ...).
        out_dir: folder to write (created); load it with ``speechgap.load_model(out_dir)``.
        seed: torch seed for the random weights (same seed, same weights).
        hidden: the language model's hidden size.
        layers: the number of decoder blocks.
    """
    import torch

    builder = BUILDERS.get(family)
    if builder is None:
        raise ConfigError(
            f"argument 'family' must be one of {sorted(BUILDERS)} (the families with a tiny builder), "
            f"got {family!r}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    builder(out_dir, hidden, layers)
    return out_dir
