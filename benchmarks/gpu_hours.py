"""GPU-hours of a VoiceBench SPEC, estimated with speechgap's own FLOPs counter (no model, no download).

The SPEC: Qwen2-Audio-7B-Instruct and Qwen2.5-Omni-7B x every VoiceBench subset (alpacaeval,
alpacaeval_full, commoneval, wildvoice, sd-qa with all 11 regions, mmsu, openbookqa, ifeval, bbh, advbench)
x three steps, each run as speechgap runs it:

* ``eval``    (``speechgap eval``): a speech run and a text run per sample, prefill + greedy decode, batched.
* ``analyze`` (``speechgap analyze --model``): one forward pass per modality per sample, no generation.
* ``dap``     (``speechgap compress --method dap``): the speech run unmerged and merged, one sample at a time;
  ``loglik`` (one prefill) for the multiple-choice subsets, ``generate`` for the others; plus the timing
  prefills (4 samples x 3 repeats x both engines).

Per forward pass the time is the larger of a compute time (FLOPs at ``--mfu`` of ``--gpu-tflops``) and a
memory time (bf16 weights + KV cache read once per pass, at ``--hbm-tbps``, never below ``--step-floor-ms``,
the per-pass host overhead of eager PyTorch). Decode passes are memory/overhead-bound, prefills compute-bound.
Decoder FLOPs come from :mod:`speechgap.compression.flops` (``DecoderShape.from_config`` on transformers
configs built here from the published numbers); the audio encoder's from the formula in
:func:`encoder_flops`. Every assumption is a constant below with its source; ``docs/scale.md`` explains them.

    python benchmarks/gpu_hours.py [--mfu 0.35] [--gpu-tflops 989] [--hbm-tbps 3.35] [--batch-size 8]
        [--step-floor-ms 20] [--answer-tokens judge=300,mcq=40] [--max-new-tokens judge=512]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace

from transformers import (
    Qwen2_5OmniAudioEncoderConfig,
    Qwen2_5OmniTextConfig,
    Qwen2AudioEncoderConfig,
    Qwen2Config,
)

from speechgap.compression.flops import DecoderShape, block_flops, prefill_flops

BYTES_PER_PARAM = 2
"""bf16 weights and KV cache."""
AUDIO_TOKENS_PER_SECOND = 25
"""Decoder speech positions per second: 100 mel frames/s, conv stride 2, average pooling 2 (both families)."""
ENCODER_POSITIONS_PER_SECOND = 50
"""Audio-encoder positions per second (after the stride-2 convolution, before pooling)."""
TEXT_TOKENS_PER_SECOND = 3.3
"""Transcript tokens per second of speech: ~2.5 words/s (150 wpm) x ~1.3 BPE tokens/word (assumption)."""
WAV_BYTES_PER_SECOND = 32_000
"""16 kHz mono 16-bit PCM: turns a VoiceBench parquet file's size into seconds of audio (assumption)."""
TIMING_PREFILLS = 4 * 3 * 2
"""``speechgap compress`` defaults: 4 timed samples x 3 repeats x (unmerged + merged engine)."""
STEP_FLOOR_MS = 20.0
"""Least wall time of one eager forward pass of a 28-32-block model, whatever its FLOPs and bytes: host
overhead. Measured host-side here (transformers 5.24, 2-core EPYC, width-32 stand-ins): ``generate`` 10-12 ms
per decode step, ``ShorteningEngine.step`` 15 ms; CUDA launches add a few ms on a GPU. The PyTorch team's
eager 7B baseline ran 25.5 tok/s on an A100 (39 ms/step, "heavily CPU overhead bound"). Assumption: 20 ms."""
STEPS = ("eval", "analyze", "dap")
DAP_SUBSETS = ("mmsu", "openbookqa")
"""The subsets docs/examples/voicebench_7b.yaml runs DAP on (``--dap-subsets all``: every subset)."""

# Paper 2 (Xiang et al., Findings of ACL 2026), dual AP on Qwen2-Audio: 14.91 % of the speech tokens reach the
# last block, prefill FLOPs 72.52 %. The input-AP retention is not reported; it is solved from these two with
# our counter on a LibriSpeech test-clean-like utterance (5.4 h / 2,620 utterances = 7.4 s, ~40 prompt tokens).
DAP_FINAL_RETENTION = 0.1491
DAP_FLOPS_RATIO = 0.7252
DAP_REFERENCE_SECONDS = 7.4
DAP_REFERENCE_TEXT_TOKENS = 40


@dataclass(frozen=True)
class EncoderShape:
    """Whisper-large-v3-like audio encoder: ``layers`` blocks of width ``d``, MLP width ``ffn`` (2 matrices)."""

    layers: int
    d: int
    ffn: int
    mel_bins: int
    window_positions: int
    projector_out: int


@dataclass(frozen=True)
class ModelSpec:
    """One speech LLM as the estimate sees it.

    Attributes:
        decoder: the language model's shape (our FLOPs counter's :class:`DecoderShape`).
        encoder: the audio encoder's shape.
        pads_to_window: True when every clip is padded to the 30 s window before the encoder (Qwen2-Audio);
            False when the encoder runs on the clip's own length in chunks of ``chunk_positions`` (Omni).
        chunk_positions: encoder attention span in positions when not padded (Omni: ``n_window`` 100 mel
            frames x 2 = 2 s = 100 positions).
        template_tokens: chat-template tokens around the audio or question, ``voicebench`` protocol.
        instructed_tokens: the same under ``instructed`` (what ``speechgap compress`` loads).
    """

    name: str
    decoder: DecoderShape
    encoder: EncoderShape
    pads_to_window: bool
    chunk_positions: int
    template_tokens: int
    instructed_tokens: int


@dataclass(frozen=True)
class Subset:
    """One VoiceBench subset: ``samples`` clips of ``duration_s`` mean seconds, scored as ``family``."""

    name: str
    samples: int
    duration_s: float
    duration_source: str
    family: str


def qwen2_audio() -> ModelSpec:
    """Qwen2-Audio-7B-Instruct: its ``config.json`` sets ``text_config`` intermediate 11008, vocab 156032 and
    leaves hidden 4096, 32 layers, 32 heads, 32 KV heads to ``Qwen2Config``'s defaults; the encoder has 32
    layers, d 1280, 20 heads, FFN 5120, 128 mel bins, 1500 positions; the projector maps 1280 -> 4096."""
    text = Qwen2Config(
        hidden_size=4096,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
        intermediate_size=11008,
        vocab_size=156032,
    )
    audio = Qwen2AudioEncoderConfig(
        encoder_layers=32, d_model=1280, encoder_attention_heads=20, encoder_ffn_dim=5120, num_mel_bins=128
    )
    encoder = EncoderShape(
        audio.encoder_layers, audio.d_model, audio.encoder_ffn_dim, audio.num_mel_bins, 1500, text.hidden_size
    )
    # template: "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1:
    # <|audio_bos|>..<|audio_eos|>\n<|im_end|>\n<|im_start|>assistant\n" ~ 25 tokens, counted by hand;
    # instructed adds "\nAnswer with the letter of the correct option." ~ 10
    return ModelSpec("Qwen2-Audio-7B-Instruct", DecoderShape.from_config(text), encoder, True, 1500, 25, 35)


def qwen2_5_omni() -> ModelSpec:
    """Qwen2.5-Omni-7B's thinker: hidden 3584, 28 layers, 28 heads, 4 KV heads, intermediate 18944, vocab
    152064; its audio encoder: 32 layers, d 1280, 20 heads, FFN 5120, ``n_window`` 100, output 3584."""
    text = Qwen2_5OmniTextConfig(
        hidden_size=3584,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        intermediate_size=18944,
        vocab_size=152064,
    )
    audio = Qwen2_5OmniAudioEncoderConfig(
        encoder_layers=32,
        d_model=1280,
        encoder_attention_heads=20,
        encoder_ffn_dim=5120,
        num_mel_bins=128,
        n_window=100,
        output_dim=3584,
    )
    encoder = EncoderShape(
        audio.encoder_layers, audio.d_model, audio.encoder_ffn_dim, audio.num_mel_bins, 1500, audio.output_dim
    )
    # voicebench: system "You are a helpful assistant." + "<|audio_bos|>..<|audio_eos|>" ~ 25 tokens;
    # instructed: the model's own 35-token system prompt + the instruction ~ 65
    # a chunk is 2 x n_window mel frames, n_window positions after the stride-2 convolution
    return ModelSpec(
        "Qwen2.5-Omni-7B", DecoderShape.from_config(text), encoder, False, audio.n_window, 25, 65
    )


def _seconds(parquet_mb: float, samples: int) -> float:
    return parquet_mb * 1e6 / samples / WAV_BYTES_PER_SECOND


SUBSETS = (
    # samples: VoiceBench README (MatthewCYM/VoiceBench); sizes: hlt-lab/voicebench parquet files on the Hub
    Subset("alpacaeval", 199, _seconds(33.5, 199), "33.5 MB parquet", "judge"),
    Subset("alpacaeval_full", 636, _seconds(130, 636), "130 MB parquet", "judge"),
    Subset("commoneval", 200, _seconds(27.6, 200), "27.6 MB parquet", "judge"),
    Subset("wildvoice", 1000, 8.0, "assumed (human recordings, size not usable)", "judge"),
    Subset("sd-qa", 553 * 11, _seconds(803, 553 * 11), "803 MB, 11 regions", "sdqa"),
    Subset("mmsu", 3074, _seconds(2139.3, 3074), "2139 MB, 12 splits", "mcq"),
    Subset("openbookqa", 455, _seconds(251, 455), "251 MB parquet", "mcq"),
    Subset("ifeval", 345, _seconds(118, 345), "118 MB parquet", "ifeval"),
    Subset("bbh", 1000, 15.0, "assumed (human recordings, size not usable)", "bbh"),
    Subset("advbench", 520, _seconds(75, 520), "75 MB parquet", "refusal"),
)

ANSWER_TOKENS = {"judge": 300, "ifeval": 350, "sdqa": 60, "mcq": 40, "bbh": 80, "refusal": 80}
"""Mean generated tokens per answer (FLOPs), by scoring family: assumptions, to be replaced by a pilot run."""
MAX_NEW_TOKENS = {"judge": 512, "ifeval": 768, "sdqa": 256, "mcq": 128, "bbh": 256, "refusal": 256}
"""``--max-new-tokens`` per family; a left-padded batch decodes until its longest answer stops, taken as this."""


# ---------------------------------------------------------------------------------------------- counting
def encoder_flops(model: ModelSpec, seconds: float) -> float:
    """Audio encoder + projector FLOPs for one clip of ``seconds``.

    Per block over ``n`` positions with attention span ``c``: ``8 n d^2`` (Q, K, V, O) + ``4 n c d`` (scores and
    weights x V) + ``4 n d f`` (two MLP matrices); plus the two convolutions (kernel 3; the second has stride 2)
    and the projector on the ``n / 2`` pooled positions. Qwen2-Audio pads every clip to the 30 s window
    (``n = c = 1500``, whatever the clip's length); Qwen2.5-Omni runs ``n = 50 x seconds`` positions in
    2 s chunks (``c = 100``).
    """
    enc = model.encoder
    if model.pads_to_window:
        n = span = enc.window_positions
    else:
        n = math.ceil(ENCODER_POSITIONS_PER_SECOND * seconds)
        span = min(model.chunk_positions, n)
    blocks = enc.layers * (8 * n * enc.d**2 + 4 * n * span * enc.d + 4 * n * enc.d * enc.ffn)
    convs = 2 * (2 * n) * enc.mel_bins * 3 * enc.d + 2 * n * enc.d * 3 * enc.d
    projector = 2 * (n // 2) * enc.d * enc.projector_out
    return float(blocks + convs + projector)


def decode_flops(shape: DecoderShape, seq_lengths: list[int], answer_tokens: int) -> float:
    """FLOPs of the ``answer_tokens - 1`` decode passes after a prefill of ``seq_lengths`` (one per block).

    Each pass is one token through every block (:func:`block_flops` at ``n = 1`` for the projections and
    MLP) with its attention over the growing cache instead of the ``n^2`` term: ``4 (h d_h)`` per cached
    position per block; plus the LM head ``2 d V``. Pass ``k`` (1..A-1) sees ``len_b + k`` positions in block b.
    """
    steps = max(answer_tokens - 1, 0)
    q = shape.heads * shape.head_dim
    matmuls = shape.layers * (block_flops(shape, 1) - 4 * q) + 2 * shape.hidden * shape.vocab
    context = steps * sum(seq_lengths) + len(seq_lengths) * steps * (steps + 1) // 2
    return float(steps * matmuls + 4 * q * context)


def weight_bytes(shape: DecoderShape) -> float:
    """bf16 bytes read per decoder pass: every block's matrices and the LM head."""
    d, q, kv = shape.hidden, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    block = 2 * d * q + 2 * d * kv + 3 * d * shape.intermediate
    return float(BYTES_PER_PARAM * (shape.layers * block + d * shape.vocab))


def kv_bytes(shape: DecoderShape, seq_lengths: list[int]) -> float:
    """bf16 bytes of one sequence's KV cache, blocks holding ``seq_lengths`` positions."""
    return float(BYTES_PER_PARAM * 2 * shape.kv_heads * shape.head_dim * sum(seq_lengths))


def dap_lengths(
    shape: DecoderShape, text_tokens: int, speech_tokens: int, input_retention: float
) -> list[int]:
    """Tokens each block processes under dual AP: input AP before block 1, deep AP after layer
    ``round(29/32 L)`` (speechgap's mapping of paper 2's layer 29 of 32)."""
    deep = min(max(round(29 / 32 * shape.layers), 1), shape.layers - 1)
    first = text_tokens + round(input_retention * speech_tokens)
    last = text_tokens + round(DAP_FINAL_RETENTION * speech_tokens)
    return [first] * deep + [last] * (shape.layers - deep)


def solve_input_retention(shape: DecoderShape) -> float:
    """The input-AP retention that gives paper 2's 72.52 % prefill FLOPs with its 14.91 % final retention."""
    speech = round(AUDIO_TOKENS_PER_SECOND * DAP_REFERENCE_SECONDS)
    total = DAP_REFERENCE_TEXT_TOKENS + speech
    base = prefill_flops(shape, [total] * shape.layers)
    low, high = DAP_FINAL_RETENTION, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        ratio = prefill_flops(shape, dap_lengths(shape, DAP_REFERENCE_TEXT_TOKENS, speech, mid)) / base
        low, high = (mid, high) if ratio < DAP_FLOPS_RATIO else (low, mid)
    return (low + high) / 2


# ---------------------------------------------------------------------------------------------- timing
@dataclass
class Hardware:
    """One GPU: bf16 dense ``peak_flops`` (FLOP/s) used at ``mfu``, HBM bandwidth (bytes/s), per-pass floor (s)."""

    peak_flops: float
    mfu: float
    hbm_bytes_per_s: float
    step_floor_s: float

    def seconds(self, flops: float, passes: float, bytes_per_pass: float) -> tuple[float, float, float]:
        """(compute, memory, estimate) seconds of ``passes`` equal passes totalling ``flops``."""
        if passes <= 0:
            return 0.0, 0.0, 0.0
        compute = flops / passes / (self.peak_flops * self.mfu)
        memory = max(bytes_per_pass / self.hbm_bytes_per_s, self.step_floor_s)
        return passes * compute, passes * memory, passes * max(compute, memory)


@dataclass
class Row:
    """One (model, step, subset) line: FLOPs and the three times, in seconds."""

    model: str
    step: str
    subset: str
    samples: int
    prefill_flops: float = 0.0
    decode_flops: float = 0.0
    compute_s: float = 0.0
    memory_s: float = 0.0
    estimate_s: float = 0.0

    def add(self, hw: Hardware, flops: float, passes: float, bytes_per_pass: float, decode: bool) -> None:
        compute, memory, estimate = hw.seconds(flops, passes, bytes_per_pass)
        if decode:
            self.decode_flops += flops
        else:
            self.prefill_flops += flops
        self.compute_s += compute
        self.memory_s += memory
        self.estimate_s += estimate


def _run(
    row: Row,
    hw: Hardware,
    model: ModelSpec,
    subset: Subset,
    *,
    speech: bool,
    prompt_lengths: list[int],
    batch: int,
    answer: int,
    steps_per_batch: int,
    full_logits: bool = False,
    timing: int = 0,
) -> None:
    """Add ``subset.samples`` prefills (+ decodes when ``answer`` > 0) of one modality to ``row``."""
    shape, n = model.decoder, subset.samples
    weights = weight_bytes(shape)
    per_prefill = prefill_flops(shape, prompt_lengths)
    if speech:
        per_prefill += encoder_flops(model, subset.duration_s)
    if timing:  # compress's timed prefills run through the engine: LM head on the last position only
        row.add(hw, timing * per_prefill, timing, weights, decode=False)
    if full_logits:  # adapter.score_options computes the LM head at every prompt position
        per_prefill += 2 * shape.hidden * shape.vocab * (prompt_lengths[0] - 1)
    batches = math.ceil(n / batch)
    row.add(hw, n * per_prefill, batches, weights, decode=False)
    if answer > 1:
        total = n * decode_flops(shape, prompt_lengths, answer)
        mid_context = [length + steps_per_batch // 2 for length in prompt_lengths]
        passes = batches * (steps_per_batch - 1)
        row.add(hw, total, passes, weights + batch * kv_bytes(shape, mid_context), decode=True)


def estimate(
    models: list[ModelSpec],
    hw: Hardware,
    batch: int,
    answers: dict[str, int],
    budgets: dict[str, int],
    dap_subsets: tuple[str, ...] = DAP_SUBSETS,
) -> tuple[list[Row], dict[str, float]]:
    """Every (model, step, subset) row, and the input-AP retention used per model (DAP on ``dap_subsets``)."""
    rows, retentions = [], {}
    for model in models:
        shape, layers = model.decoder, model.decoder.layers
        retention = retentions[model.name] = solve_input_retention(shape)
        for subset in SUBSETS:
            speech = round(AUDIO_TOKENS_PER_SECOND * subset.duration_s)
            question = round(TEXT_TOKENS_PER_SECOND * subset.duration_s)
            answer, budget = answers[subset.family], budgets[subset.family]
            speech_len = [model.template_tokens + speech] * layers
            text_len = [model.template_tokens + question] * layers

            row = Row(model.name, "eval", subset.name, subset.samples)
            for is_speech, lengths in ((True, speech_len), (False, text_len)):
                steps = budget if batch > 1 else answer
                _run(row, hw, model, subset, speech=is_speech, prompt_lengths=lengths, batch=batch,
                     answer=answer, steps_per_batch=steps)  # fmt: skip
            rows.append(row)

            row = Row(model.name, "analyze", subset.name, subset.samples)
            for is_speech, lengths in ((True, speech_len), (False, text_len)):
                _run(row, hw, model, subset, speech=is_speech, prompt_lengths=lengths, batch=1, answer=0,
                     steps_per_batch=0)  # fmt: skip
            rows.append(row)

            if subset.name not in dap_subsets:
                continue
            row = Row(model.name, "dap", subset.name, subset.samples)
            loglik = subset.family == "mcq"
            dap_answer = 0 if loglik else answer
            base_len = [model.instructed_tokens + speech] * layers
            merged_len = dap_lengths(shape, model.instructed_tokens, speech, retention)
            _run(row, hw, model, subset, speech=True, prompt_lengths=base_len, batch=1, answer=dap_answer,
                 steps_per_batch=dap_answer, full_logits=loglik, timing=TIMING_PREFILLS // 2)  # fmt: skip
            _run(row, hw, model, subset, speech=True, prompt_lengths=merged_len, batch=1, answer=dap_answer,
                 steps_per_batch=dap_answer, timing=TIMING_PREFILLS // 2)  # fmt: skip
            rows.append(row)
    return rows, retentions


# ---------------------------------------------------------------------------------------------- output
def _mapping(text: str | None, defaults: dict[str, int], flag: str) -> dict[str, int]:
    values = dict(defaults)
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        if key not in values or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"{flag}: expected family=N with family in {sorted(values)}, got {item!r}")
        values[key] = int(value)
    return values


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:9.2f}"


def _totals(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    """Rows grouped per (model, step), per model, per step over both models, and all together."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for model in dict.fromkeys(r.model for r in rows):
        for step in (*STEPS, "all"):
            groups[(model, step)] = [r for r in rows if r.model == model and step in (r.step, "all")]
    for step in (*STEPS, "all"):
        groups[("both models", step)] = [r for r in rows if step in (r.step, "all")]
    return groups


def _total_hours(rows: list[Row]) -> float:
    return sum(r.estimate_s for r in rows) / 3600


def print_report(
    rows: list[Row], models: list[ModelSpec], retentions: dict[str, float], args: argparse.Namespace
) -> None:
    print(
        "GPU-hours: Qwen2-Audio-7B-Instruct and Qwen2.5-Omni-7B x VoiceBench (all subsets) x eval + analyze + DAP"
    )
    print(
        f"GPU: {args.gpu_tflops:g} TFLOP/s bf16 dense at MFU {args.mfu:g}; HBM {args.hbm_tbps:g} TB/s; "
        f"per-pass floor {args.step_floor_ms:g} ms; eval batch {args.batch_size}; analyze and DAP batch 1"
    )
    for model in models:
        shape = model.decoder
        print(
            f"{model.name}: decoder L={shape.layers} d={shape.hidden} h={shape.heads} h_kv={shape.kv_heads} "
            f"m={shape.intermediate} V={shape.vocab}; {weight_bytes(shape) / 1e9:.1f} GB bf16 read per pass; "
            f"KV {kv_bytes(shape, [1] * shape.layers) / 1e3:.0f} kB/token; "
            f"encoder {encoder_flops(model, 5.0) / 1e12:.2f} TFLOP per 5 s clip; "
            f"DAP input retention {retentions[model.name]:.3f}, final {DAP_FINAL_RETENTION}"
        )
    print(
        "subsets: " + "; ".join(f"{s.name} {s.samples} x {s.duration_s:.1f} s ({s.family})" for s in SUBSETS)
    )
    print(
        "answer tokens (mean / budget): "
        + ", ".join(f"{k} {args.answers[k]}/{args.budgets[k]}" for k in sorted(args.answers))
    )
    print()
    header = (
        f"{'model':<24} {'step':<8} {'subset':<16} {'n':>6} {'prefill TF':>11} {'decode TF':>10} "
        f"{'h compute':>9} {'h memory':>9} {'h est.':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.model:<24} {row.step:<8} {row.subset:<16} {row.samples:>6} {row.prefill_flops / 1e12:>11.0f} "
            f"{row.decode_flops / 1e12:>10.0f} {_hours(row.compute_s)} {_hours(row.memory_s)} "
            f"{_hours(row.estimate_s)}"
        )
    print()
    header = f"{'totals':<24} {'step':<8} {'PFLOP':>9} {'h compute':>9} {'h memory':>9} {'h est.':>9}"
    print(header)
    print("-" * len(header))
    for (model, step), members in _totals(rows).items():
        flops = sum(r.prefill_flops + r.decode_flops for r in members)
        print(
            f"{model:<24} {step:<8} {flops / 1e15:>9.1f} {_hours(sum(r.compute_s for r in members))} "
            f"{_hours(sum(r.memory_s for r in members))} {_hours(sum(r.estimate_s for r in members))}"
        )


def print_sensitivity(models: list[ModelSpec], args: argparse.Namespace) -> None:
    """Grand total when one assumption moves (the others at their given values)."""
    hw = Hardware(args.gpu_tflops * 1e12, args.mfu, args.hbm_tbps * 1e12, args.step_floor_ms / 1e3)

    def total(hardware: Hardware, batch: int, scale: float) -> float:
        answers = {k: max(2, round(v * scale)) for k, v in args.answers.items()}
        budgets = {k: max(answers[k], round(v * scale)) for k, v in args.budgets.items()}
        return _total_hours(estimate(models, hardware, batch, answers, budgets, args.dap)[0])

    cases = [
        ("as given", total(hw, args.batch_size, 1.0)),
        (
            "no per-pass floor (pure HBM bandwidth)",
            total(replace(hw, step_floor_s=0.0), args.batch_size, 1.0),
        ),
        ("per-pass floor x2", total(replace(hw, step_floor_s=2 * hw.step_floor_s), args.batch_size, 1.0)),
        ("answers and budgets x0.5", total(hw, args.batch_size, 0.5)),
        ("answers and budgets x2", total(hw, args.batch_size, 2.0)),
        ("eval batch 1", total(hw, 1, 1.0)),
        ("MFU halved", total(replace(hw, mfu=hw.mfu / 2), args.batch_size, 1.0)),
    ]
    print()
    print("sensitivity of the grand total (GPU-hours):")
    for name, hours in cases:
        print(f"  {name:<40} {hours:7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mfu", type=float, default=0.35, help="model FLOPs utilisation of prefills (0.35)")
    parser.add_argument(
        "--gpu-tflops", type=float, default=989.0, help="bf16 dense peak, H100/H200 SXM (989)"
    )
    parser.add_argument("--hbm-tbps", type=float, default=3.35, help="HBM bandwidth, H100 SXM 3.35, H200 4.8")
    parser.add_argument("--batch-size", type=int, default=8, help="speechgap eval --batch-size (8)")
    parser.add_argument(
        "--step-floor-ms",
        type=float,
        default=STEP_FLOOR_MS,
        help=f"least time of one eager forward pass, host overhead ({STEP_FLOOR_MS:g})",
    )
    parser.add_argument("--answer-tokens", default=None, help="mean answer tokens, e.g. judge=300,mcq=40")
    parser.add_argument("--max-new-tokens", default=None, help="budgets per family, e.g. judge=512")
    parser.add_argument(
        "--dap-subsets",
        default=",".join(DAP_SUBSETS),
        help="subsets DAP runs on, comma-separated, or 'all' (default: mmsu,openbookqa, as the example spec)",
    )
    args = parser.parse_args()
    names = [subset.name for subset in SUBSETS]
    args.dap = tuple(names) if args.dap_subsets == "all" else tuple(args.dap_subsets.split(","))
    unknown = [name for name in args.dap if name not in names]
    if unknown:
        raise SystemExit(f"--dap-subsets: {unknown[0]!r} is not a VoiceBench subset ({', '.join(names)})")
    if not 0 < args.mfu <= 1 or args.gpu_tflops <= 0 or args.hbm_tbps <= 0 or args.batch_size < 1:
        raise SystemExit("--mfu must be in (0, 1], --gpu-tflops and --hbm-tbps > 0, --batch-size >= 1")
    if args.step_floor_ms < 0:
        raise SystemExit("--step-floor-ms must be >= 0")
    args.answers = _mapping(args.answer_tokens, ANSWER_TOKENS, "--answer-tokens")
    args.budgets = _mapping(args.max_new_tokens, MAX_NEW_TOKENS, "--max-new-tokens")
    for family, budget in args.budgets.items():
        if budget < args.answers[family]:
            raise SystemExit(
                f"--max-new-tokens {family}={budget} is below its mean answer {args.answers[family]}"
            )
    hw = Hardware(args.gpu_tflops * 1e12, args.mfu, args.hbm_tbps * 1e12, args.step_floor_ms / 1e3)
    models = [qwen2_audio(), qwen2_5_omni()]
    rows, retentions = estimate(models, hw, args.batch_size, args.answers, args.budgets, args.dap)
    print_report(rows, models, retentions, args)
    print_sensitivity(models, args)


if __name__ == "__main__":
    main()
