"""Train the mini zoo: a base text LM, then Qwen2-Audio speech LLMs on top of it (full and LoRA).

The Ke-SpeechChat recipe in miniature (methods.md §4): synthetic questions → multi-speaker TTS → a speech
LLM whose language model starts from a text LM and whose audio encoder starts from a speech recogniser.
Stage 1 trains the base LM (``Qwen2ForCausalLM``) on the text questions. Stage 1b pretrains the audio
encoder on the training clips with CTC over the closed vocabulary (:mod:`speechgap.mini.encoder`; real
Qwen2-Audio's encoder starts from Whisper's). Stage 2 builds ``Qwen2AudioForConditionalGeneration`` with
that LM, that encoder and a fresh projector, and trains on spoken questions → the answer (the correct
option's word), with an ASR-style auxiliary task (audio + "Repeat the question." → the transcript) and a
share of text questions; variant ``full`` updates the LM,
variant ``lora`` freezes it and trains LoRA adapters on its attention projections (merged into the weights
when saved), as in paper 1 (methods.md §1). Every checkpoint is a ``save_pretrained`` folder with
safetensors, the processor, and ``speechgap_mini.json`` (seed, step, variant, data, metrics, provenance).
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from speechgap.errors import ConfigError, DataError
from speechgap.io import (
    RunLock,
    atomic_write_json,
    dumps_record,
    prepare_out_dir,
    read_json,
    remove_stale_temp_files,
)
from speechgap.mini.architecture import (
    ANSWER_INSTRUCTION,
    ASR_INSTRUCTION,
    MiniArchitecture,
    build_processor,
    speech_config,
)
from speechgap.mini.architecture import text_config as make_text_config
from speechgap.mini.encoder import EncoderSettings, PretrainedEncoder, ctc_targets, pretrain_encoder
from speechgap.mini.questions import LETTERS, MiniQuestion, generate_questions, match_question
from speechgap.mini.schedule import warmup_cosine
from speechgap.mini.speech import (
    RATES,
    SPEAKER_SPLIT,
    SPEAKER_SPLIT_SEED,
    SpokenQuestion,
    speak_questions,
    speaker_banks,
)
from speechgap.provenance import provenance

INFO_FILE = "speechgap_mini.json"
VARIANTS = ("full", "lora")


@dataclass
class TrainSettings:
    """Every setting of ``speechgap mini train``; the defaults reproduce the shipped zoo.

    Attributes:
        seed: seeds the questions' distractors, the TTS rates, weight init and data order.
        per_fact: question instances per fact and split (train / dev / test).
        speech_train_per_fact: how many of the train instances per fact are also spoken.
        text_steps, text_lr: stage 1 (base LM): at most this many steps, peak learning rate.
        text_mix: examples per stage-1 batch from each text task (:func:`text_task_examples`).
        text_eval_every, text_stop_accuracy: stage 1 evaluates on dev every so many steps and stops
            once the dev text accuracy reaches ``text_stop_accuracy``.
        encoder: stage 1b, the audio encoder's CTC pretraining (:class:`EncoderSettings`;
            ``steps=0`` starts the speech LLMs from a random encoder, as before this stage existed).
        speech_steps, speech_batch, speech_lr, lm_lr: stage 2 per variant; ``speech_lr`` for the
            encoder, projector and LoRA weights, ``lm_lr`` for the LM in the full variant.
        asr_share: share of speech examples given the ASR auxiliary task instead of the answer task.
        text_per_batch: text questions added to every stage-2 batch (keeps the LM answering text).
        lora_rank, lora_alpha: LoRA on q/k/v/o of the LM (variant ``lora``).
        checkpoints: checkpoints kept per variant, evenly spaced, the last at ``speech_steps``.
        eval_limit: at most this many held-out questions per evaluation (None = all).
        threads: torch CPU threads.
    """

    seed: int = 0
    per_fact: dict[str, int] = field(default_factory=lambda: {"train": 24, "dev": 1, "test": 2})
    speech_train_per_fact: int = 24
    text_steps: int = 2500
    text_mix: dict[str, int] = field(default_factory=lambda: {"mcq": 48, "content": 16, "match": 0})
    text_lr: float = 1e-3
    text_eval_every: int = 250
    text_stop_accuracy: float = 0.96
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    speech_steps: int = 3000
    speech_batch: int = 16
    speech_lr: float = 1.5e-3
    lm_lr: float = 2e-4
    asr_share: float = 0.5
    text_per_batch: int = 4
    lora_rank: int = 8
    lora_alpha: int = 16
    checkpoints: int = 4
    eval_limit: int | None = None
    threads: int = 1
    architecture: MiniArchitecture = field(default_factory=MiniArchitecture)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse settings that cannot train (checked again by :func:`train_zoo`, before anything is written).

        Raises:
            ConfigError: naming the argument (``encoder_steps`` for ``encoder.steps``, and so on).
        """
        whole = {
            "text_steps": (self.text_steps, 1),
            "speech_steps": (self.speech_steps, 1),
            "checkpoints": (self.checkpoints, 1),
            "threads": (self.threads, 1),
            "speech_batch": (self.speech_batch, 1),
            "text_per_batch": (self.text_per_batch, 0),
            "text_eval_every": (self.text_eval_every, 0),
            "speech_train_per_fact": (self.speech_train_per_fact, 1),
            "lora_rank": (self.lora_rank, 1),
            "encoder_steps": (self.encoder.steps, 0),
            "encoder_batch": (self.encoder.batch, 1),
            "encoder_eval_every": (self.encoder.eval_every, 0),
        }
        if self.eval_limit is not None:
            whole["eval_limit"] = (self.eval_limit, 1)
        for name, (value, least) in whole.items():
            if not _is_int(value) or value < least:
                raise ConfigError(f"argument '{name}' must be a whole number at least {least}, got {value!r}")
        if not _is_int(self.seed):
            raise ConfigError(f"argument 'seed' must be a whole number, got {self.seed!r}")
        positive = {
            "text_lr": self.text_lr,
            "speech_lr": self.speech_lr,
            "lm_lr": self.lm_lr,
            "lora_alpha": self.lora_alpha,
            "encoder_lr": self.encoder.lr,
        }
        for name, value in positive.items():
            if not _is_real(value) or not value > 0:
                raise ConfigError(f"argument '{name}' must be a finite number > 0, got {value!r}")
        if not _is_real(self.asr_share) or not 0 <= self.asr_share <= 1:
            raise ConfigError(f"argument 'asr_share' must be a share between 0 and 1, got {self.asr_share!r}")
        if not _is_real(self.text_stop_accuracy):
            raise ConfigError(
                f"argument 'text_stop_accuracy' must be a finite number, got {self.text_stop_accuracy!r}"
            )
        if self.checkpoints > self.speech_steps:
            raise ConfigError(
                f"argument 'checkpoints' ({self.checkpoints}) must be at most argument 'speech_steps' "
                f"({self.speech_steps}): each checkpoint is a distinct step"
            )
        splits = ("train", "dev", "test")
        if not isinstance(self.per_fact, dict) or sorted(self.per_fact) != sorted(splits):
            raise ConfigError(
                f"argument 'per_fact' must give a count for {', '.join(splits)}, got {self.per_fact!r}"
            )
        if not all(_is_int(v) and v >= 1 for v in self.per_fact.values()):
            raise ConfigError(
                f"argument 'per_fact' must hold whole numbers at least 1, got {self.per_fact!r}"
            )
        if self.speech_train_per_fact > self.per_fact["train"]:
            raise ConfigError(
                f"argument 'speech_train_per_fact' ({self.speech_train_per_fact}) must be at most the train "
                f"questions per fact (argument 'per_fact': {self.per_fact['train']})"
            )
        tasks = ("mcq", "content", "match")
        if (
            not isinstance(self.text_mix, dict)
            or not set(self.text_mix) <= set(tasks)
            or not all(_is_int(v) and v >= 0 for v in self.text_mix.values())
            or not sum(self.text_mix.values())
        ):
            raise ConfigError(
                f"argument 'text_mix' must map tasks among {', '.join(tasks)} to whole numbers >= 0, at least "
                f"one of them > 0, got {self.text_mix!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Example:
    """One training/eval sequence: token ids, the positions that are targets, and optional audio."""

    input_ids: list[int]
    target_start: int  # positions >= target_start are targets (the answer / the transcript + <|im_end|>)
    features: np.ndarray | None = None  # (n_mels, frames) float32
    feature_mask: np.ndarray | None = None  # (frames,) int


@dataclass
class EvalItem:
    """A held-out question ready for scoring: prompt ids, its answer letter, optional audio features."""

    question: MiniQuestion
    prompt_ids: list[int]
    features: np.ndarray | None = None
    feature_mask: np.ndarray | None = None
    voice: str | None = None


class TrainLog:
    """The training log: one JSON line per logged step (stage, variant, step, loss, lr, seconds)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "a", encoding="utf-8")
        self._start = time.time()

    def write(self, **record: Any) -> None:
        record["time_s"] = round(time.time() - self._start, 2)
        self._handle.write(dumps_record(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


# ---------------------------------------------------------------------------------------------- data


def text_prompt(processor, question: MiniQuestion) -> str:
    # the layout of speechgap's Qwen2-Audio adapter: transcript + newline, then the instruction
    content = [{"type": "text", "text": question.text + "\n"}, {"type": "text", "text": ANSWER_INSTRUCTION}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def speech_prompt(processor, instruction: str = ANSWER_INSTRUCTION) -> str:
    content = [{"type": "audio", "audio": "question.wav"}, {"type": "text", "text": instruction}]
    messages = [{"role": "user", "content": content}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _target_ids(tokenizer, target: str) -> list[int]:
    return tokenizer(target, add_special_tokens=False)["input_ids"] + [
        tokenizer.convert_tokens_to_ids("<|im_end|>")
    ]


def _chat_example(processor, user_text: str, target: str) -> Example:
    """A text example in the adapter's layout (``user_text\n`` + the answer instruction) → ``target``."""
    tokenizer = processor.tokenizer
    content = [{"type": "text", "text": user_text + "\n"}, {"type": "text", "text": ANSWER_INSTRUCTION}]
    messages = [{"role": "user", "content": content}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    return Example(ids + _target_ids(tokenizer, target), len(ids))


def text_examples(processor, questions: Sequence[MiniQuestion]) -> list[Example]:
    """The main task: question + four options → the correct option's word, e.g. " red" (the text run's
    prompt). Answering with the option text rather than its letter is what a tiny LM learns reliably in the
    time budget (letter matching stayed near chance for 1,000+ steps); speechgap's scorer reads the option
    from its text, exactly as for a real model that restates the option."""
    return [_chat_example(processor, q.text, " " + q.fact.answer) for q in questions]


def text_task_examples(processor, questions: Sequence[MiniQuestion]) -> dict[str, list[Example]]:
    """The base LM's three text tasks over the train questions.

    - ``mcq``: question + options → the correct option's word (the task itself);
    - ``content``: the question alone → the answer word, with its leading space so that it is the same
      token as in the options (one per fact: teaches the facts directly);
    - ``match``: "Which option is <answer>?" + the same options → letter (teaches finding an option by
      its content and answering with its letter, without needing the fact).
    """
    facts: dict[Any, MiniQuestion] = {}
    for q in questions:
        facts.setdefault(q.fact, q)
    match = []
    for q in questions:
        options = [f"{letter}. {choice}" for letter, choice in zip(LETTERS, q.choices, strict=True)]
        match.append(_chat_example(processor, "\n".join([match_question(q.fact.answer), *options]), q.answer))
    return {
        "mcq": text_examples(processor, questions),
        "content": [_chat_example(processor, q.question, " " + q.fact.answer) for q in facts.values()],
        "match": match,
    }


def _audio_inputs(
    processor, prompt: str, clips: Sequence[SpokenQuestion]
) -> list[tuple[list[int], Any, Any]]:
    """Expand the audio placeholder and compute features, one processor call per 64 clips."""
    out = []
    for start in range(0, len(clips), 64):
        batch = clips[start : start + 64]
        encoded = processor(
            text=[prompt] * len(batch),
            audio=[clip.audio for clip in batch],
            sampling_rate=16_000,
            padding=True,
            return_tensors="np",
        )
        for row in range(len(batch)):
            ids = [
                int(i)
                for i, m in zip(encoded["input_ids"][row], encoded["attention_mask"][row], strict=True)
                if m
            ]
            out.append(
                (
                    ids,
                    encoded["input_features"][row].astype(np.float32),
                    encoded["feature_attention_mask"][row].astype(np.int64),
                )
            )
    return out


def speech_examples(processor, clips: Sequence[SpokenQuestion], *, asr: bool) -> list[Example]:
    """Answer-task (audio → the correct option's word) or ASR-task (audio + instruction → the spoken
    question sentence, without the options) examples."""
    tokenizer = processor.tokenizer
    prompt = speech_prompt(processor, ASR_INSTRUCTION if asr else ANSWER_INSTRUCTION)
    examples = []
    for clip, (ids, features, mask) in zip(clips, _audio_inputs(processor, prompt, clips), strict=True):
        target = clip.question.question if asr else " " + clip.question.fact.answer
        examples.append(Example(ids + _target_ids(tokenizer, target), len(ids), features, mask))
    return examples


def eval_items(
    processor, questions: Sequence[MiniQuestion], clips: Sequence[SpokenQuestion] | None
) -> list[EvalItem]:
    """Text eval items (``clips`` None) or speech eval items (one per clip)."""
    tokenizer = processor.tokenizer
    if clips is None:
        return [
            EvalItem(q, tokenizer(text_prompt(processor, q), add_special_tokens=False)["input_ids"])
            for q in questions
        ]
    prompt = speech_prompt(processor)
    return [
        EvalItem(clip.question, ids, features, mask, clip.voice)
        for clip, (ids, features, mask) in zip(clips, _audio_inputs(processor, prompt, clips), strict=True)
    ]


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with ``labels`` (-100 outside targets) and, when present, audio features."""
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        attention[row, :n] = 1
        labels[row, example.target_start : n] = ids[row, example.target_start : n]
    batch = {"input_ids": ids, "attention_mask": attention, "labels": labels}
    if examples[0].features is not None:
        batch["input_features"] = torch.from_numpy(np.stack([e.features for e in examples]))
        batch["feature_attention_mask"] = torch.from_numpy(np.stack([e.feature_mask for e in examples]))
    return batch


def target_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy over the target positions."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


# ----------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def first_token_predictions(model, items: Sequence[EvalItem], pad_id: int, batch_size: int = 32) -> list[int]:
    """The greedy first answer token for each item (argmax over the whole vocabulary)."""
    model.eval()
    predictions: list[int] = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        batch = collate(
            [Example(i.prompt_ids, len(i.prompt_ids), i.features, i.feature_mask) for i in chunk], pad_id
        )
        batch.pop("labels")
        logits = model(**batch).logits
        last = batch["attention_mask"].sum(-1) - 1
        predictions += logits[torch.arange(len(chunk)), last].argmax(-1).tolist()
    return predictions


def accuracy(model, tokenizer, items: Sequence[EvalItem]) -> float:
    """Share of items whose greedy first token is the correct option's word (all are single tokens)."""
    if not items:
        return float("nan")
    predictions = first_token_predictions(model, items, tokenizer.pad_token_id)
    correct = sum(
        pred == tokenizer.encode(" " + item.question.fact.answer, add_special_tokens=False)[-1]
        for pred, item in zip(predictions, items, strict=True)
    )
    return correct / len(items)


# ------------------------------------------------------------------------------------------- training


def _progress(total: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="step", dynamic_ncols=True)


def train_text_lm(
    processor,
    tasks: dict[str, list[Example]],
    dev: Sequence[EvalItem],
    settings: TrainSettings,
    log: TrainLog,
):
    """Stage 1: a Qwen2 causal LM from scratch on the text tasks (loss on the answer tokens only).

    Every batch mixes the tasks of :func:`text_task_examples` as ``settings.text_mix`` says. Every
    ``text_eval_every`` steps the dev accuracy (text, first token = the answer word) is logged; training stops
    early once it reaches ``text_stop_accuracy`` (deterministic: it depends only on the seed).

    Returns:
        (model, steps actually trained).
    """
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(settings.seed)
    model = Qwen2ForCausalLM(make_text_config(settings.architecture, processor.tokenizer))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.text_lr, weight_decay=0.01)
    rng = random.Random(settings.seed + 1)
    pad_id = processor.tokenizer.pad_token_id
    steps = settings.text_steps
    model.train()
    with _progress(steps, "base LM") as bar:
        for step in range(steps):
            batch = []
            for task, count in settings.text_mix.items():
                if count and tasks[task]:
                    batch += rng.sample(tasks[task], min(count, len(tasks[task])))
            lr = warmup_cosine(step, steps, settings.text_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = target_loss(model, collate(batch, pad_id))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            bar.update(1)
            if step % 20 == 0 or step == steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
                log.write(stage="base", variant="text", step=step + 1, loss=round(loss.item(), 4), lr=lr)
            if settings.text_eval_every and (step + 1) % settings.text_eval_every == 0:
                dev_accuracy = accuracy(model, processor.tokenizer, dev)
                model.train()
                log.write(stage="base-dev", variant="text", step=step + 1, text_dev_accuracy=dev_accuracy)
                bar.set_postfix(loss=f"{loss.item():.3f}", dev=f"{dev_accuracy:.3f}")
                if dev_accuracy >= settings.text_stop_accuracy:
                    steps = step + 1
                    break
    model.eval()
    return model, steps


def build_speech_llm(processor, base_lm, settings: TrainSettings, encoder: PretrainedEncoder | None = None):
    """``Qwen2AudioForConditionalGeneration``: the base LM's weights, the pretrained encoder (a fresh one
    when ``encoder`` is None) and a fresh projector."""
    from transformers import Qwen2AudioForConditionalGeneration

    torch.manual_seed(settings.seed + 2)
    model = Qwen2AudioForConditionalGeneration(speech_config(settings.architecture, processor.tokenizer))
    model.model.language_model.load_state_dict(base_lm.model.state_dict())
    model.lm_head.load_state_dict(base_lm.lm_head.state_dict())
    if encoder is not None:
        model.model.audio_tower.load_state_dict(encoder.audio_tower)
    return model


def _lora_wrap(model, settings: TrainSettings):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=settings.lora_rank,
        lora_alpha=settings.lora_alpha,
        lora_dropout=0.0,
        target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)",
    )
    # the encoder and projector keep training beside the adapters; what the model itself keeps frozen
    # (the encoder's positional table, as in Qwen2-Audio) stays frozen
    trainable = {
        name
        for name, param in model.named_parameters()
        if param.requires_grad and ("audio_tower" in name or "multi_modal_projector" in name)
    }
    wrapped = get_peft_model(model, config)
    for name, param in wrapped.get_base_model().named_parameters():
        if name in trainable:
            param.requires_grad = True
    return wrapped


def _plain(model, variant: str):
    """A plain Qwen2-Audio model to evaluate or save (LoRA merged into a copy)."""
    if variant == "lora":
        return copy.deepcopy(model).merge_and_unload()
    return model


def train_speech_llm(
    variant: str,
    processor,
    base_lm,
    speech_train: tuple[list[Example], list[Example]],
    text_train: list[Example],
    settings: TrainSettings,
    log: TrainLog,
    on_checkpoint,
    encoder: PretrainedEncoder | None = None,
) -> None:
    """Stage 2 for one variant; calls ``on_checkpoint(plain_model, step)`` at each checkpoint step."""
    if variant not in VARIANTS:
        raise ValueError(f"argument 'variant' must be one of {VARIANTS}, got {variant!r}")
    model = build_speech_llm(processor, base_lm, settings, encoder)
    if variant == "lora":
        model = _lora_wrap(model, settings)
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": params, "peak": settings.speech_lr}]
    else:
        new = [p for n, p in model.named_parameters() if "audio_tower" in n or "multi_modal_projector" in n]
        new_ids = {id(p) for p in new}
        lm = [p for p in model.parameters() if id(p) not in new_ids]
        groups = [{"params": new, "peak": settings.speech_lr}, {"params": lm, "peak": settings.lm_lr}]
    optimizer = torch.optim.AdamW(groups, lr=settings.speech_lr, weight_decay=0.01)
    answer_examples, asr_examples = speech_train
    rng = random.Random(settings.seed + (3 if variant == "full" else 4))
    checkpoint_steps = {
        round(settings.speech_steps * (k + 1) / settings.checkpoints) for k in range(settings.checkpoints)
    }
    pad_id = processor.tokenizer.pad_token_id
    model.train()
    with _progress(settings.speech_steps, f"speech LLM ({variant})") as bar:
        for step in range(settings.speech_steps):
            picks = rng.sample(range(len(answer_examples)), settings.speech_batch)
            speech = [
                asr_examples[i] if rng.random() < settings.asr_share else answer_examples[i] for i in picks
            ]
            text = [text_train[i] for i in rng.sample(range(len(text_train)), settings.text_per_batch)]
            lr_scale = warmup_cosine(step, settings.speech_steps)
            for group in optimizer.param_groups:
                group["lr"] = group["peak"] * lr_scale
            loss = target_loss(model, collate(speech, pad_id))
            if text:
                loss = loss + 0.5 * target_loss(model, collate(text, pad_id))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
            optimizer.step()
            bar.update(1)
            if step % 20 == 0 or step == settings.speech_steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
                log.write(
                    stage="speech",
                    variant=variant,
                    step=step + 1,
                    loss=round(loss.item(), 4),
                    lr=settings.speech_lr * lr_scale,
                )
            if step + 1 in checkpoint_steps:
                plain = _plain(model, variant)
                plain.eval()
                on_checkpoint(plain, step + 1)
                model.train()


# ------------------------------------------------------------------------------------------- the zoo


@dataclass
class ZooData:
    """Everything stage 1 and 2 train and evaluate on, built once per run."""

    questions: dict[str, list[MiniQuestion]]
    text_train: list[Example]
    text_tasks: dict[str, list[Example]]
    text_dev: list[EvalItem]
    speech_answer: list[Example]
    speech_asr: list[Example]
    text_test: list[EvalItem]
    speech_test: list[EvalItem]
    speech_dev: list[EvalItem]
    durations_s: dict[str, float]
    speakers: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {
            "task": "speechgap mini: four-option questions over a fixed knowledge base",
            "splits": {split: len(items) for split, items in self.questions.items()},
            "speech_train_clips": len(self.speech_answer),
            "speakers": self.speakers,
            "durations_s": self.durations_s,
        }


def build_data(processor, settings: TrainSettings, speech_dir: Path) -> ZooData:
    """Questions, TTS (``speechgap synthesize`` into ``speech_dir``) and features, deterministic for the seed.

    Train and dev questions are spoken by the train speakers, test questions by the disjoint test speakers
    (:func:`speechgap.mini.speech.speaker_banks`); synthesis seeds ``seed``, ``seed + 200``, ``seed + 100``.
    """
    questions = generate_questions(settings.per_fact, seed=settings.seed)
    train = questions["train"]
    n_spoken = settings.speech_train_per_fact * len(train) // max(1, settings.per_fact["train"])
    window = float(settings.architecture.chunk_seconds)
    test = questions["test"][: settings.eval_limit]
    dev = questions["dev"][: settings.eval_limit]
    spoken_test = speak_questions(
        test, "test", speech_dir / "test", seed=settings.seed + 100, max_seconds=window
    )
    spoken_dev = speak_questions(
        dev, "train", speech_dir / "dev", seed=settings.seed + 200, max_seconds=window
    )
    spoken_train = speak_questions(
        train[:n_spoken], "train", speech_dir / "train", seed=settings.seed, max_seconds=window
    )
    banks = speaker_banks()
    speakers = {
        "engine": "espeak-ng",
        "rates": list(RATES),
        "split": {"fractions": SPEAKER_SPLIT, "seed": SPEAKER_SPLIT_SEED, "group_by": "voice"},
        "train_speakers": len(banks["train"]),
        "test_speakers": len(banks["test"]),
        "test_voices": sorted({voice.name for voice in banks["test"]}),
    }
    durations = [clip.duration_s for clip in spoken_train + spoken_test + spoken_dev]
    return ZooData(
        questions=questions,
        text_train=text_examples(processor, train),
        text_tasks=text_task_examples(processor, train),
        text_dev=eval_items(processor, dev, None),
        speech_answer=speech_examples(processor, spoken_train, asr=False),
        speech_asr=speech_examples(processor, spoken_train, asr=True),
        text_test=eval_items(processor, test, None),
        speech_test=eval_items(processor, test, spoken_test),
        speech_dev=eval_items(processor, dev, spoken_dev),
        durations_s={
            "min": round(min(durations), 3),
            "mean": round(float(np.mean(durations)), 3),
            "max": round(max(durations), 3),
        },
        speakers=speakers,
    )


def _save(model, processor, folder: Path, info: dict[str, Any]) -> None:
    """Write a checkpoint folder atomically: into ``folder.tmp`` first, then renamed into place."""
    staging = folder.with_name(folder.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    model.save_pretrained(staging)
    processor.save_pretrained(staging)
    atomic_write_json(staging / INFO_FILE, info)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)


def _is_complete(folder: Path) -> bool:
    return (folder / INFO_FILE).exists() and (folder / "model.safetensors").exists()


ENCODER_WEIGHTS = "encoder.safetensors"


def encoder_stage(
    folder: Path, processor, data: ZooData, settings: TrainSettings, log: TrainLog
) -> PretrainedEncoder:
    """Stage 1b: the CTC-pretrained audio encoder, trained once and kept in ``folder`` for a rerun.

    ``folder`` holds ``encoder.safetensors`` (``audio_tower.*``: the encoder, ``ctc_head.*``: the CTC head)
    and ``speechgap_mini.json`` (steps, word error rates, seconds, settings, provenance).
    """
    from safetensors.torch import load_file, save_file
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

    if (folder / INFO_FILE).exists() and (folder / ENCODER_WEIGHTS).exists():
        info = _read_info(folder).get("encoder")
        if not isinstance(info, dict) or not {"steps", "word_error_rate", "seconds"} <= set(info):
            raise DataError(
                f"no encoder description; delete {folder} to pretrain it again",
                path=folder / INFO_FILE,
                field="encoder",
            )
        weights = load_file(str(folder / ENCODER_WEIGHTS))
        return PretrainedEncoder(
            audio_tower={
                k[len("audio_tower.") :]: v for k, v in weights.items() if k.startswith("audio_tower.")
            },
            head={k[len("ctc_head.") :]: v for k, v in weights.items() if k.startswith("ctc_head.")},
            steps=info["steps"],
            word_error_rate=info["word_error_rate"],
            seconds=info["seconds"],
        )
    torch.manual_seed(settings.seed + 5)
    audio_tower = Qwen2AudioEncoder(speech_config(settings.architecture, processor.tokenizer).audio_config)
    train = [
        (example.features, example.feature_mask, ctc_targets(question))
        # the spoken training clips are the first train questions, in order (build_data)
        for example, question in zip(
            data.speech_answer, data.questions["train"][: len(data.speech_answer)], strict=True
        )
    ]
    held_out = {
        split: (
            [(item.features, item.feature_mask) for item in items],
            [ctc_targets(i.question) for i in items],
        )
        for split, items in (("dev", data.speech_dev), ("test", data.speech_test))
    }
    encoder = pretrain_encoder(
        audio_tower, train, held_out, settings.encoder, seed=settings.seed + 5, log=log
    )
    staging = folder.with_name(folder.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    tensors = {f"audio_tower.{k}": v.contiguous() for k, v in encoder.audio_tower.items()}
    tensors.update({f"ctc_head.{k}": v.contiguous() for k, v in encoder.head.items()})
    save_file(tensors, str(staging / ENCODER_WEIGHTS))
    atomic_write_json(
        staging / INFO_FILE,
        {"seed": settings.seed, "encoder": encoder.describe(), "provenance": _prov(settings, data)},
    )
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
    return encoder


@dataclass(frozen=True)
class ZooCheckpoint:
    """One checkpoint of a trained zoo (an entry of ``zoo.json``)."""

    name: str
    kind: str = "speech"
    variant: str | None = None
    step: int | None = None
    text_accuracy: float | None = None
    speech_accuracy: float | None = None
    speech_dev_accuracy: float | None = None
    gap: float | None = None
    train_seconds: float | None = None


@dataclass
class ZooResult:
    """What :func:`train_zoo` trained: the checkpoints with their held-out accuracies.

    Attributes:
        out_dir: the zoo folder (``zoo.json``, one folder per checkpoint).
        record: the content of ``zoo.json``.
    """

    out_dir: Path
    record: dict[str, Any]

    @property
    def default(self) -> str:
        """The checkpoint chosen as the default (best speech accuracy on the dev split)."""
        return self.record["default"]

    @property
    def checkpoints(self) -> list[ZooCheckpoint]:
        known = set(ZooCheckpoint.__dataclass_fields__)
        return [
            ZooCheckpoint(**{k: v for k, v in entry.items() if k in known})
            for entry in self.record["checkpoints"]
        ]

    @property
    def encoder(self) -> dict[str, Any] | None:
        """The pretrained encoder's description (its CTC word error rates), when that stage ran."""
        return self.record.get("encoder")

    @property
    def total_seconds(self) -> float:
        return float(self.record["total_seconds"])

    def to_json(self) -> dict[str, Any]:
        """The content of ``zoo.json``."""
        return self.record

    def to_frame(self) -> Any:
        """One row per checkpoint."""
        import pandas as pd

        return pd.DataFrame([asdict(checkpoint) for checkpoint in self.checkpoints])

    @classmethod
    def load(cls, out_dir: str | Path) -> ZooResult:
        from speechgap.io import read_json

        return cls(Path(out_dir), read_json(Path(out_dir) / "zoo.json", what="zoo record"))


def train_zoo(out_dir: str | Path, settings: TrainSettings | None = None) -> ZooResult:
    """Train the base LM and both speech LLM variants; write every checkpoint under ``out_dir``.

    Layout: ``out_dir/base_lm``, ``out_dir/encoder`` (the CTC-pretrained audio encoder, not a model
    checkpoint), ``out_dir/full-step{N}``, ``out_dir/lora-step{N}``, ``out_dir/zoo.json`` (one entry per
    checkpoint with its metrics, and the encoder's word error rates) and ``out_dir/train_log.jsonl``. A
    rerun after a crash keeps finished stages (base LM; encoder; a variant whose last checkpoint exists) and
    redoes the rest. Every stage records the settings it was trained with; a rerun with settings that
    change a finished stage (e.g. other ``text_steps`` for the base LM) is refused before anything runs.

    Returns:
        the ``zoo.json`` record.

    Raises:
        ConfigError: bad settings; ``out_dir`` in use by another run, or holding stages trained with other
            settings.
    """
    settings = settings or TrainSettings()
    if not isinstance(settings, TrainSettings):
        raise ConfigError(f"argument 'settings' must be a TrainSettings, got {type(settings).__name__}")
    settings.validate()
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="mini train"):
        remove_stale_temp_files(out_dir)
        _check_finished_stages(out_dir, settings)
        return _train_zoo_locked(out_dir, settings)


def _checkpoint_names(variant: str, settings: TrainSettings) -> list[str]:
    return [
        f"{variant}-step{round(settings.speech_steps * (k + 1) / settings.checkpoints)}"
        for k in range(settings.checkpoints)
    ]


_STAGE_SETTINGS: dict[str, tuple[str, ...] | None] = {
    "base_lm": (
        "seed",
        "per_fact",
        "text_steps",
        "text_mix",
        "text_lr",
        "text_eval_every",
        "text_stop_accuracy",
        "eval_limit",
        "architecture",
    ),
    "encoder": ("seed", "per_fact", "speech_train_per_fact", "eval_limit", "encoder", "architecture"),
    "speech": None,  # every setting but the thread count and the number of checkpoints kept
}
"""The settings each stage's result depends on (``None``: all of them but ``threads`` and ``checkpoints``)."""


def _stage_settings(stage: str, settings: dict[str, Any]) -> dict[str, Any]:
    keys = _STAGE_SETTINGS[stage]
    if keys is None:
        keys = tuple(key for key in settings if key not in ("threads", "checkpoints"))
    return {key: settings.get(key) for key in keys}


def _flatten(settings: dict[str, Any]) -> dict[str, Any]:
    """``{"encoder": {"steps": 3}}`` -> ``{"encoder_steps": 3}`` (the names the arguments go by)."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if key in ("encoder", "architecture") and isinstance(value, dict):
            flat.update({f"{key}_{sub}": item for sub, item in value.items()})
        else:
            flat[key] = value
    return flat


def _read_info(folder: Path) -> dict[str, Any]:
    return read_json(folder / INFO_FILE, what="mini checkpoint record")


def _check_finished_stages(out_dir: Path, settings: TrainSettings) -> None:
    """Refuse to reuse a finished stage trained with settings other than ``settings``."""
    current = json.loads(json.dumps(settings.to_dict()))
    stages = [("base_lm", out_dir / "base_lm")]
    if settings.encoder.steps:
        stages.append(("encoder", out_dir / "encoder"))
    stages += [
        ("speech", out_dir / name) for variant in VARIANTS for name in _checkpoint_names(variant, settings)
    ]
    for stage, folder in stages:
        if not (folder / INFO_FILE).is_file():
            continue
        info = _read_info(folder)
        recorded = info.get("settings") or (info.get("provenance") or {}).get("settings")
        if not isinstance(recorded, dict):
            raise DataError(
                f"records no training settings, so it cannot be checked against this run; delete {folder} "
                "to train that stage again",
                path=folder / INFO_FILE,
                field="settings",
            )
        there = _flatten(_stage_settings(stage, recorded))
        now = _flatten(_stage_settings(stage, current))
        changed = [key for key in now if there.get(key) != now[key]]
        if changed:
            differences = "; ".join(
                f"argument '{key}' is {now[key]!r} now, {there.get(key)!r} there" for key in changed
            )
            raise ConfigError(
                f"{folder} was trained with other settings ({differences}); rerun with that folder's "
                f"settings to resume, give another output folder (argument 'out_dir'), or delete {folder} "
                "to train that stage again"
            )


def _train_zoo_locked(out_dir: Path, settings: TrainSettings) -> ZooResult:
    torch.set_num_threads(settings.threads)
    started = time.time()
    log = TrainLog(out_dir / "train_log.jsonl")
    try:
        return _train_stages(out_dir, settings, log, started)
    finally:
        log.close()


def _train_stages(out_dir: Path, settings: TrainSettings, log: TrainLog, started: float) -> ZooResult:
    processor = build_processor(settings.architecture)
    tokenizer = processor.tokenizer
    data = build_data(processor, settings, out_dir / "speech")
    if settings.speech_batch > len(data.speech_answer):
        raise ConfigError(
            f"argument 'speech_batch' ({settings.speech_batch}) is larger than the {len(data.speech_answer)} "
            "spoken training questions"
        )
    if settings.text_per_batch > len(data.text_train):
        raise ConfigError(
            f"argument 'text_per_batch' ({settings.text_per_batch}) is larger than the {len(data.text_train)} "
            "text training questions"
        )
    log.write(stage="data", **data.describe())
    base_info = {"seed": settings.seed, "settings": settings.to_dict(), "data": data.describe()}
    entries: list[dict[str, Any]] = []

    base_dir = out_dir / "base_lm"
    if _is_complete(base_dir):
        from transformers import Qwen2ForCausalLM

        base_lm = Qwen2ForCausalLM.from_pretrained(base_dir, dtype=torch.float32, use_safetensors=True)
        entries.append(_info_entry(base_dir))
    else:
        t0 = time.time()
        base_lm, text_steps = train_text_lm(processor, data.text_tasks, data.text_dev, settings, log)
        entry = {
            "name": "base_lm",
            "kind": "text",
            "variant": "text",
            "step": text_steps,
            "text_accuracy": accuracy(base_lm, tokenizer, data.text_test),
            "train_seconds": round(time.time() - t0, 1),
        }
        log.write(stage="eval", **entry)
        _save(
            base_lm, processor, base_dir, {**base_info, "entry": entry, "provenance": _prov(settings, data)}
        )
        entries.append(entry)

    encoder = None
    if settings.encoder.steps:
        encoder = encoder_stage(out_dir / "encoder", processor, data, settings, log)

    for variant in VARIANTS:
        names = _checkpoint_names(variant, settings)
        if all(_is_complete(out_dir / n) for n in names):
            entries += [_info_entry(out_dir / n) for n in names]
            continue
        t0 = time.time()

        def on_checkpoint(
            model, step: int, variant: str = variant, t0: float = t0, entries: list = entries
        ) -> None:
            entry = {
                "name": f"{variant}-step{step}",
                "kind": "speech",
                "variant": variant,
                "step": step,
                "text_accuracy": accuracy(model, tokenizer, data.text_test),
                "speech_accuracy": accuracy(model, tokenizer, data.speech_test),
                "speech_dev_accuracy": accuracy(model, tokenizer, data.speech_dev),
                "train_seconds": round(time.time() - t0, 1),
            }
            entry["gap"] = round(entry["text_accuracy"] - entry["speech_accuracy"], 4)
            log.write(stage="eval", **entry)
            info = {**base_info, "entry": entry, "provenance": _prov(settings, data)}
            _save(model, processor, out_dir / entry["name"], info)
            entries.append(entry)

        train_speech_llm(
            variant,
            processor,
            base_lm,
            (data.speech_answer, data.speech_asr),
            data.text_train,
            settings,
            log,
            on_checkpoint,
            encoder,
        )

    # the default is chosen among the speech LLMs' last checkpoints on the dev split (training voices,
    # held-out instances), never on test; the base LM is no candidate, whatever its step count
    last = [e for e in entries if e.get("kind") == "speech" and e["step"] == settings.speech_steps]
    zoo = {
        "default": max(last, key=lambda e: (e["speech_dev_accuracy"], e["variant"] == "full"))["name"],
        "checkpoints": entries,
        "encoder": None if encoder is None else encoder.describe(),
        "total_seconds": round(time.time() - started, 1),
        "provenance": _prov(settings, data),
    }
    atomic_write_json(out_dir / "zoo.json", zoo)
    return ZooResult(out_dir, zoo)


def _info_entry(folder: Path) -> dict[str, Any]:
    entry = _read_info(folder).get("entry")
    if not isinstance(entry, dict) or "name" not in entry:
        raise DataError(
            f"no checkpoint entry; delete {folder} to train it again", path=folder / INFO_FILE, field="entry"
        )
    return entry


def _prov(settings: TrainSettings, data: ZooData) -> dict[str, Any]:
    return provenance(
        model={"family": "qwen2_audio", "name": "speechgap-mini"},
        data=data.describe(),
        settings=settings.to_dict(),
    )
