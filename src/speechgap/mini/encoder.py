"""Pretrain the mini audio encoder on speech recognition (CTC), as Qwen2-Audio's starts from Whisper's.

A real speech LLM does not learn its audio encoder from the answer loss alone: Qwen2-Audio's encoder is
initialised from Whisper-large-v3, which was trained on speech recognition, and paper 1's LSLMs start from
the Whisper encoder too (methods.md §1). The mini recipe does the same in miniature: before the speech LLMs
are built, their ``Qwen2AudioEncoder`` learns to recognise the spoken words of the training clips with a
CTC loss over the task's closed vocabulary, through a linear head that is used only here and never shipped.
Both variants (full, LoRA) then start from this one encoder, as paper 1's models share one Whisper encoder.

The encoder is run exactly as :class:`~transformers.Qwen2AudioModel` runs it (same padding mask, same
output positions), so what CTC trains is what the language model later reads.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from speechgap.errors import ConfigError, DataError
from speechgap.mini.questions import MiniQuestion, vocabulary
from speechgap.mini.schedule import warmup_cosine
from speechgap.synthesis.quality import edit_distance

BLANK = 0
"""The CTC blank's index; word ``vocabulary()[k]`` has index ``k + 1``."""

_WORD = re.compile(r"[A-Za-z]+")


def ctc_targets(question: MiniQuestion) -> list[int]:
    """The spoken words of ``question`` as CTC label indices (1-based over :func:`vocabulary`).

    The written form (question + ``"A. option"`` lines) has the same words in the same order as the spoken
    form (``"... A, red. B, blue. ..."``); punctuation is not spoken and not a label.
    """
    index = {word: k + 1 for k, word in enumerate(vocabulary())}
    return [index[word] for word in _WORD.findall(question.text)]


def encode_audio(
    audio_tower, features: torch.Tensor, feature_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a ``Qwen2AudioEncoder`` the way ``Qwen2AudioModel`` does.

    Args:
        audio_tower: the encoder (``model.model.audio_tower``).
        features: (batch, n_mels, frames) log-mel features, padded to the encoder's window.
        feature_mask: (batch, frames) 1 on real frames.

    Returns:
        (states, lengths): (batch, positions, d_model) encoder outputs (after pooling and the final layer
        norm: what the projector reads) and (batch,) the number of valid positions of each clip, which
        is the number of ``<|AUDIO|>`` placeholders the processor inserts for it.
    """
    from transformers.masking_utils import create_bidirectional_mask

    conv_lengths, lengths = audio_tower._get_feat_extract_output_lengths(feature_mask.sum(-1))
    positions = (features.shape[-1] - 2) // 2 + 1
    valid = (torch.arange(positions)[None, :] < conv_lengths[:, None]).long()
    mask = create_bidirectional_mask(
        config=audio_tower.config,
        inputs_embeds=torch.zeros(len(features), positions, 1),
        attention_mask=valid,
    )
    return audio_tower(features, attention_mask=mask).last_hidden_state, lengths


def greedy_ctc_decode(label_ids: Sequence[int]) -> list[int]:
    """Best-path CTC decoding of one clip's per-position argmax labels: merge repeats, drop blanks."""
    decoded = []
    previous = BLANK
    for label in label_ids:
        if label != previous and label != BLANK:
            decoded.append(int(label))
        previous = label
    return decoded


@dataclass
class EncoderSettings:
    """Settings of the CTC pretraining stage.

    Attributes:
        steps: optimisation steps (0 = no pretraining: the speech LLMs start from a random encoder).
        batch: clips per step.
        lr: peak AdamW learning rate (5 % warmup, cosine decay to 5 %).
        eval_every: word error rate on dev and test clips every so many steps (and at the end).
    """

    steps: int = 1000
    batch: int = 32
    lr: float = 2e-3
    eval_every: int = 500


@dataclass
class PretrainedEncoder:
    """The result of :func:`pretrain_encoder`.

    Attributes:
        audio_tower: the encoder's ``state_dict`` (loaded into every speech LLM before stage 2).
        head: the CTC head's ``state_dict`` (``weight`` (V + 1, d_model), ``bias``), for decoding only.
        steps: steps trained.
        word_error_rate: ``{"dev": ..., "test": ...}``: greedy CTC word error rate of the final encoder on
            dev clips (training speakers) and test clips (held-out speakers).
        seconds: wall time of the stage.
    """

    audio_tower: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor]
    steps: int
    word_error_rate: dict[str, float]
    seconds: float

    def describe(self) -> dict[str, Any]:
        return {"steps": self.steps, "word_error_rate": self.word_error_rate, "seconds": self.seconds}


@torch.no_grad()
def ctc_word_error_rate(
    audio_tower,
    head: torch.nn.Linear,
    clips: Sequence[tuple[np.ndarray, np.ndarray]],
    targets: Sequence[Sequence[int]],
    batch_size: int = 64,
) -> float:
    """Corpus word error rate of greedy CTC decoding: total edit distance / total reference words.

    Args:
        clips: (features (n_mels, frames), feature_mask (frames,)) per clip.
        targets: the reference label sequence of each clip (:func:`ctc_targets`).
    """
    was_training = audio_tower.training
    audio_tower.eval()
    errors = 0
    words = 0
    for start in range(0, len(clips), batch_size):
        chunk = clips[start : start + batch_size]
        features = torch.from_numpy(np.stack([features for features, _ in chunk]))
        mask = torch.from_numpy(np.stack([mask for _, mask in chunk]))
        states, lengths = encode_audio(audio_tower, features, mask)
        best = head(states).argmax(-1)
        for row, reference in enumerate(targets[start : start + batch_size]):
            hypothesis = greedy_ctc_decode(best[row, : lengths[row]].tolist())
            errors += edit_distance(list(reference), hypothesis)
            words += len(reference)
    audio_tower.train(was_training)
    return errors / max(1, words)


def ctc_min_positions(targets: Sequence[int]) -> int:
    """The fewest output positions CTC needs for ``targets``: one per label, plus a blank between repeats."""
    repeats = sum(1 for a, b in zip(targets, targets[1:], strict=False) if a == b)
    return len(targets) + repeats


def _check_inputs(audio_tower, train: Sequence, settings: EncoderSettings) -> None:
    """Refuse settings and clips CTC cannot train on, instead of a silent zero loss or an error in torch."""
    for name in ("steps", "eval_every"):
        if getattr(settings, name) < 0:
            raise ConfigError(
                f"EncoderSettings argument '{name}' must be at least 0, got {getattr(settings, name)}"
            )
    if settings.batch < 1:
        raise ConfigError(f"EncoderSettings argument 'batch' must be at least 1, got {settings.batch}")
    if not train:
        raise ConfigError("pretrain_encoder: no training clips (argument 'train' is empty)")
    masks = torch.from_numpy(np.stack([mask for _, mask, _ in train]))
    _, positions = audio_tower._get_feat_extract_output_lengths(masks.sum(-1))
    for index, ((_, _, targets), available) in enumerate(zip(train, positions.tolist(), strict=True)):
        if not targets:
            raise DataError(f"training clip {index} has no target words", field="targets")
        if ctc_min_positions(targets) > available:
            raise DataError(
                f"training clip {index} has {len(targets)} target words but only {available} encoder positions: "
                "CTC cannot align it (clip too short for its transcript?)",
                field="targets",
            )


def pretrain_encoder(
    audio_tower,
    train: Sequence[tuple[np.ndarray, np.ndarray, Sequence[int]]],
    held_out: dict[str, tuple[Sequence[tuple[np.ndarray, np.ndarray]], Sequence[Sequence[int]]]],
    settings: EncoderSettings,
    *,
    seed: int,
    log=None,
    progress: bool = True,
) -> PretrainedEncoder:
    """Train ``audio_tower`` in place with CTC over the closed vocabulary.

    Args:
        audio_tower: a freshly initialised ``Qwen2AudioEncoder``.
        train: (features, feature_mask, targets) per training clip.
        held_out: split name -> (clips, targets), e.g. ``{"dev": ..., "test": ...}``, for the word error
            rate logged every ``settings.eval_every`` steps and reported at the end.
        seed: seeds the head's initialisation and the batch order (deterministic for a seed).
        log: a :class:`~speechgap.mini.train.TrainLog` (or None).
    """
    _check_inputs(audio_tower, train, settings)
    started = time.time()
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(audio_tower.config.d_model, len(vocabulary()) + 1)
    with torch.no_grad():
        bound = 1 / math.sqrt(audio_tower.config.d_model)
        head.weight.uniform_(-bound, bound, generator=generator)
        head.bias.zero_()
    params = [p for p in audio_tower.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.01)
    rng = random.Random(seed)
    word_error_rate: dict[str, float] = {}

    def evaluate(step: int) -> None:
        for split, (clips, targets) in held_out.items():
            word_error_rate[split] = round(ctc_word_error_rate(audio_tower, head, clips, targets), 4)
        if log is not None:
            log.write(stage="encoder-eval", variant="ctc", step=step, word_error_rate=dict(word_error_rate))

    from tqdm.auto import tqdm

    audio_tower.train()
    with tqdm(total=settings.steps, desc="encoder (CTC)", unit="step", disable=not progress) as bar:
        for step in range(settings.steps):
            batch = [train[i] for i in rng.sample(range(len(train)), min(settings.batch, len(train)))]
            features = torch.from_numpy(np.stack([features for features, _, _ in batch]))
            mask = torch.from_numpy(np.stack([mask for _, mask, _ in batch]))
            states, lengths = encode_audio(audio_tower, features, mask)
            log_probs = head(states).log_softmax(-1).transpose(0, 1)  # (positions, batch, V + 1)
            labels = torch.tensor([label for _, _, targets in batch for label in targets])
            label_lengths = torch.tensor([len(targets) for _, _, targets in batch])
            loss = F.ctc_loss(log_probs, labels, lengths, label_lengths, blank=BLANK)
            scale = warmup_cosine(step, settings.steps)
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * scale
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            bar.update(1)
            if step % 20 == 0 or step == settings.steps - 1:
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if log is not None:
                    log.write(
                        stage="encoder",
                        variant="ctc",
                        step=step + 1,
                        loss=round(loss.item(), 4),
                        lr=settings.lr * scale,
                    )
            if settings.eval_every and (step + 1) % settings.eval_every == 0 and step + 1 < settings.steps:
                evaluate(step + 1)
    evaluate(settings.steps)
    audio_tower.eval()
    return PretrainedEncoder(
        audio_tower={k: v.detach().clone() for k, v in audio_tower.state_dict().items()},
        head={k: v.detach().clone() for k, v in head.state_dict().items()},
        steps=settings.steps,
        word_error_rate=dict(word_error_rate),
        seconds=round(time.time() - started, 1),
    )
