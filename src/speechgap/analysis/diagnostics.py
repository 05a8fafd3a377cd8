"""Paper 3's per-sample diagnostics: logit lens, attention dispersion, layer-update cosines, path stability.

One speech and one text forward pass per sample, with hooks on the decoder blocks (every layer's states at
every position, layer convention as everywhere: 0 = input of block 1, L = pre-norm output of block L) and on
the attention modules (the decision step's attention row only). Attention weights need the eager attention
kernel; the pass switches the model to it and back (:func:`eager_attention`), so the model's other runs keep
their kernel. Eager attention costs one ``(heads, T, T)`` matrix per layer at a time — the diagnostics keep
only its last row.

Measures (``docs/analysis.md``):

* ``lens_top1[l]`` / ``lens_rank[l]``: for each transcript token, its DTW-aligned speech frame at layer
  ``l`` read through the model's final norm and LM head: the share of tokens that are the lens's top-1 and
  the median rank.
* ``answer_rank[m][l]`` / ``answer_logprob[m][l]``: at the decision step (last prompt position) of run
  ``m``, the rank and log-probability of the correct option letter's first token (multiple choice only);
  ``answer_word_rank`` / ``answer_word_logprob`` the same for the first token of the correct option's text,
  for models that answer with the option rather than its letter.
* ``dispersion[m]``: normalized entropy, maximum weight and Cov_0.90 of the decision step's attention over
  the question span (speech span / transcript span), per layer, averaged over heads.
* ``update_cosine[l-1]``: mean cosine of the speech and text updates ``h_l − h_{l−1}`` on the DTW path.
* ``path_stability``: agreement of the DTW paths computed at several base layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError, ModelError
from speechgap.metrics import (
    PathStability,
    attention_dispersion,
    cosine_matrix,
    dtw_path,
    path_stability,
    token_frames,
    update_cosines,
)
from speechgap.models.base import SpeechLLM

MODALITIES = ("speech", "text")


@contextlib.contextmanager
def eager_attention(adapter: SpeechLLM) -> Iterator[None]:
    """Run the model with the eager attention kernel inside the block (attention weights are computed),
    and give it back its own kernel after."""
    model = adapter.model
    previous = getattr(model.config, "_attn_implementation", None) or "sdpa"
    if previous == "eager":
        yield
        return
    try:
        model.set_attn_implementation("eager")
    except (AttributeError, ValueError) as err:
        raise ModelError(
            f"{adapter.family}: cannot switch to eager attention for the diagnostics: {err}"
        ) from err
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


@dataclass
class ModalityPass:
    """What one forward pass of one modality leaves for the diagnostics.

    Attributes:
        states: ``(L+1, T, d)`` float32 states of every real position.
        span: ``(start, end)`` of the speech / transcript span in ``states``.
        input_ids: ``(T,)`` the prompt's token ids.
        attention: ``(L, heads, T)`` the decision step's attention row per layer and head.
    """

    states: np.ndarray
    span: tuple[int, int]
    input_ids: np.ndarray
    attention: np.ndarray

    @property
    def decision(self) -> int:
        """The decision step: the last prompt position."""
        return self.states.shape[1] - 1


def _output(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def run_pass(adapter: SpeechLLM, sample: PairedSample, modality: str) -> ModalityPass:
    """One forward pass with every block's states and the decision step's attention rows recorded."""
    batch = adapter.prepare([sample], modality)
    offset, length = batch.offsets[0], batch.lengths[0]
    states: dict[int, torch.Tensor] = {}
    rows: dict[int, torch.Tensor] = {}
    blocks = adapter.decoder_layers
    handles = []

    def record_input(_m: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        states[0] = hidden.detach()[0, offset : offset + length].float()

    def record_attention(index: int, out: Any) -> None:
        weights = out[1] if isinstance(out, tuple) and len(out) > 1 else None
        if weights is None:
            raise ModelError(
                f"{adapter.family}: block {index + 1} returned no attention weights in eager mode"
            )
        rows[index] = weights.detach()[0, :, offset + length - 1, offset : offset + length].float()

    handles.append(blocks[0].register_forward_pre_hook(record_input, with_kwargs=True))
    for index, block in enumerate(blocks):
        handles.append(
            block.register_forward_hook(
                lambda _m, _a, out, layer=index + 1: states.__setitem__(
                    layer, _output(out).detach()[0, offset : offset + length].float()
                )
            )
        )
        attention = getattr(block, "self_attn", None)
        if attention is None:
            raise ModelError(f"{adapter.family}: block {index + 1} has no self_attn module")
        handles.append(
            attention.register_forward_hook(lambda _m, _a, out, index=index: record_attention(index, out))
        )
    try:
        with eager_attention(adapter):
            adapter.forward(batch)
    finally:
        for handle in handles:
            handle.remove()
    layers = adapter.num_layers
    start, end = batch.spans[0]
    return ModalityPass(
        states=torch.stack([states[layer] for layer in range(layers + 1)]).cpu().numpy(),
        span=(start - offset, end - offset),
        input_ids=batch.input_ids[0, offset : offset + length].cpu().numpy().astype(np.int64),
        attention=torch.stack([rows[index] for index in range(layers)]).cpu().numpy(),
    )


def _lens(adapter: SpeechLLM, states: np.ndarray) -> torch.Tensor:
    """Float32 lens logits ``(..., vocab)``: the model's own final norm and LM head (call in inference mode)."""
    head = adapter.model.get_output_embeddings()
    hidden = torch.as_tensor(states, device=head.weight.device).to(head.weight.dtype)
    norm = adapter.final_norm
    return head(norm(hidden) if norm is not None else hidden).float()


def lens_logits(adapter: SpeechLLM, states: np.ndarray) -> np.ndarray:
    """The logit lens: the model's own final norm and LM head applied to states ``(..., d)`` -> ``(..., vocab)``."""
    with torch.inference_mode():
        return _lens(adapter, states).cpu().numpy()


def lens_ranks(adapter: SpeechLLM, states: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank (0 = top-1, ties count as top) and log-probability of ``targets`` ``(...)`` under the logit lens
    of ``states`` ``(..., d)``, computed in torch without materializing the logits in float64 (the same
    numbers as :func:`~speechgap.metrics.token_ranks` / :func:`~speechgap.metrics.token_log_probs` of
    :func:`lens_logits`; tested)."""
    with torch.inference_mode():
        logits = _lens(adapter, states)
        index = torch.as_tensor(np.asarray(targets), device=logits.device, dtype=torch.long)[..., None]
        chosen = logits.gather(-1, index)
        ranks = (logits > chosen).sum(-1)
        log_probs = chosen[..., 0] - torch.logsumexp(logits, dim=-1)
    return ranks.cpu().numpy().astype(np.int64), log_probs.double().cpu().numpy()


@dataclass
class SampleDiagnostics:
    """Paper 3's diagnostics of one sample (see the module docstring); arrays are per layer.

    ``decision_states[m]`` ``(L+1, d)``: the decision step's state per layer in run ``m`` (for the answer
    probes); ``pooled_states[m]`` ``(L+1, d)``: the span's mean state per layer (for the modality probe);
    ``word_states`` ``(L+1, W, d)``: the speech frame at the middle of each spoken word, with ``word_labels``
    (the words, lower case), for the word-identity probe; None without word timings.
    """

    sample_id: str
    base_layer: int
    lens_top1: np.ndarray
    lens_rank: np.ndarray
    update_cosine: np.ndarray
    dispersion: dict[str, dict[str, np.ndarray]]
    path_stability: PathStability
    answer_rank: dict[str, np.ndarray] = field(default_factory=dict)
    answer_logprob: dict[str, np.ndarray] = field(default_factory=dict)
    answer_word_rank: dict[str, np.ndarray] = field(default_factory=dict)
    answer_word_logprob: dict[str, np.ndarray] = field(default_factory=dict)
    decision_states: dict[str, np.ndarray] = field(default_factory=dict)
    pooled_states: dict[str, np.ndarray] = field(default_factory=dict)
    word_states: np.ndarray | None = None
    word_labels: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """One line of ``diagnostics.jsonl`` (the decision states go to the probes, not to the line)."""
        return {
            "id": self.sample_id,
            "base_layer": self.base_layer,
            "lens_top1": self.lens_top1.tolist(),
            "lens_rank": self.lens_rank.tolist(),
            "update_cosine": self.update_cosine.tolist(),
            "dispersion": {m: {k: v.tolist() for k, v in d.items()} for m, d in self.dispersion.items()},
            "path_stability": self.path_stability.to_json(),
            "answer_rank": {m: v.tolist() for m, v in self.answer_rank.items()},
            "answer_logprob": {m: v.tolist() for m, v in self.answer_logprob.items()},
            "answer_word_rank": {m: v.tolist() for m, v in self.answer_word_rank.items()},
            "answer_word_logprob": {m: v.tolist() for m, v in self.answer_word_logprob.items()},
        }


def word_centre_frames(frame_times: np.ndarray, word_times: Sequence[tuple[str, float, float]]) -> list[int]:
    """For each word, the speech position whose time interval holds the word's midpoint (the nearest one
    when the midpoint falls past the last position)."""
    starts, ends = frame_times[:, 0], frame_times[:, 1]
    frames = []
    for _, start, end in word_times:
        middle = (float(start) + float(end)) / 2.0
        inside = np.nonzero((starts <= middle) & (middle < ends))[0]
        frames.append(
            int(inside[0]) if inside.size else int(np.argmin(np.abs((starts + ends) / 2.0 - middle)))
        )
    return frames


def _word_label(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum() or ch in "'-")


def _aligned_frames(speech: np.ndarray, text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    path = dtw_path(cosine_matrix(speech, text))
    return path, token_frames(path, text.shape[0])


def answer_letter(sample: PairedSample) -> str | None:
    """The correct option letter of a multiple-choice sample (an index answer mapped to its letter)."""
    if not sample.choices or sample.answer is None:
        return None
    answer = str(sample.answer).strip().strip("()").upper()
    if answer.isdigit():
        answer = chr(ord("A") + int(answer))
    letters = [chr(ord("A") + i) for i in range(len(sample.choices))]
    return answer if answer in letters else None


def answer_word(sample: PairedSample) -> str | None:
    """The correct option's text (the answer word), for models that answer with it rather than a letter."""
    letter = answer_letter(sample)
    if letter is None:
        return None
    return str(sample.choices[ord(letter) - ord("A")]).strip()


def _answer_tokens(adapter: SpeechLLM, sample: PairedSample) -> tuple[int | None, int | None]:
    """The first token of the correct letter and of the correct option's text (as a reply starts: after a
    space)."""
    letter = answer_letter(sample)
    if letter is None:
        return None, None
    letters = [chr(ord("A") + i) for i in range(len(sample.choices))]
    word = answer_word(sample)
    word_ids = adapter.tokenizer(" " + word, add_special_tokens=False)["input_ids"] if word else []
    return adapter.option_token_ids(letters)[letters.index(letter)], (int(word_ids[0]) if word_ids else None)


def diagnose_sample(
    adapter: SpeechLLM,
    sample: PairedSample,
    *,
    base_layer: int,
    stability_layers: Sequence[int] = (),
    mass: float = 0.90,
) -> SampleDiagnostics:
    """Every per-sample diagnostic of paper 3 from one speech and one text pass.

    Args:
        adapter: the model.
        sample: a paired sample (multiple choice for the answer read-outs).
        base_layer: the layer of the DTW path that pairs speech frames with transcript tokens (0..L).
        stability_layers: base layers whose paths are compared (path stability); ``base_layer`` is added.
        mass: the ``p`` of Cov_p (paper 3: 0.90).
    """
    layers = adapter.num_layers
    chosen = sorted({int(base_layer), *(int(x) for x in stability_layers)})
    bad = [layer for layer in chosen if not 0 <= layer <= layers]
    if bad:
        raise ConfigError(f"argument 'base_layer'/'stability_layers' must be in 0..{layers}, got {bad}")
    passes = {modality: run_pass(adapter, sample, modality) for modality in MODALITIES}
    speech, text = passes["speech"], passes["text"]
    s0, s1 = speech.span
    t0, t1 = text.span
    if s1 - s0 < 1 or t1 - t0 < 1:
        raise ModelError(f"sample {sample.id!r}: an empty speech or transcript span; nothing to diagnose")
    speech_span = speech.states[:, s0:s1]
    text_span = text.states[:, t0:t1]
    frames_by_layer = {layer: _aligned_frames(speech_span[layer], text_span[layer])[1] for layer in chosen}
    path, frames = _aligned_frames(speech_span[base_layer], text_span[base_layer])
    transcript = text.input_ids[t0:t1]
    aligned = speech_span[:, frames]  # (L+1, T_t, d)
    ranks, _ = lens_ranks(adapter, aligned, np.broadcast_to(transcript, aligned.shape[:-1]))
    dispersion = {}
    for modality, run in passes.items():
        stats = attention_dispersion(run.attention, run.span, mass=mass)
        dispersion[modality] = {
            "normalized_entropy": stats.normalized_entropy.mean(axis=-1),
            "max_attention": stats.max_attention.mean(axis=-1),
            "coverage": stats.coverage.mean(axis=-1),
            "span_mass": stats.span_mass.mean(axis=-1),
        }
    result = SampleDiagnostics(
        sample_id=sample.id,
        base_layer=int(base_layer),
        lens_top1=(ranks == 0).mean(axis=-1),
        lens_rank=np.median(ranks, axis=-1),
        update_cosine=update_cosines(speech_span, text_span, path),
        dispersion=dispersion,
        path_stability=path_stability(frames_by_layer),
        decision_states={m: run.states[:, run.decision] for m, run in passes.items()},
        pooled_states={m: run.states[:, run.span[0] : run.span[1]].mean(axis=1) for m, run in passes.items()},
    )
    if sample.word_times:
        centres = word_centre_frames(adapter.frame_times(sample, s1 - s0), sample.word_times)
        result.word_states = speech_span[:, centres]
        result.word_labels = [_word_label(word) for word, _, _ in sample.word_times]
    letter_token, word_token = _answer_tokens(adapter, sample)
    if letter_token is not None:
        for modality, run in passes.items():
            decision = run.states[:, run.decision]  # (L+1, d)
            targets = np.full(decision.shape[0], letter_token)
            result.answer_rank[modality], result.answer_logprob[modality] = lens_ranks(
                adapter, decision, targets
            )
            if word_token is not None:
                targets = np.full(decision.shape[0], word_token)
                result.answer_word_rank[modality], result.answer_word_logprob[modality] = lens_ranks(
                    adapter, decision, targets
                )
    return result
