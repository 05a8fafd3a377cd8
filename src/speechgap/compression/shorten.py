"""Prefill and greedy decoding with the speech span shortened inside the decoder.

The engine runs the language model's blocks itself, one at a time, so it controls at every block the
hidden states, the rotary positions and the attention mask; the KV cache is a transformers
``DynamicCache`` whose layers hold *different lengths*: blocks up to a merge layer cache the long
sequence, blocks after it the shortened one.

Consistency (see ``docs/compression.md``):

* Positions: every token carries a rotary position. Unmerged tokens keep theirs; a merged token keeps its
  first member's (``first``), its members' mean (``mean``) or the sequence is renumbered without gaps
  (``compact``). Attention in a block compares only that block's queries and keys, so blocks may disagree
  on positions; each block's next decode position is its own last position + 1.
* Mask: one sample at a time, no padding, so the mask is causal over the block's own sequence during the
  prefill and full over the block's cache at a decode step.
* Cache: each block appends its own keys/values; a decode token is never merged.

With no reduction (or none that merges) this is exactly the model's own forward pass: same blocks, same
positions, same mask (tested against ``model.generate``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from speechgap.compression.affinity import check_groups
from speechgap.compression.plan import MergePlan, SpanContext
from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError, ModelError
from speechgap.models.base import SpeechLLM


@functools.cache
def _cache_argument(layer_type: type) -> str:
    """The decoder layer's name for the KV cache: ``cache`` from transformers 5.24 on (where
    ``past_key_values`` is deprecated and warns on every call), ``past_key_values`` before."""
    parameters = inspect.signature(layer_type.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


@dataclass
class PrefillState:
    """The state after the prefill of one sample, ready for decode steps.

    Attributes:
        logits: float ``(vocab,)`` next-token logits after the prompt.
        cache: the per-block KV cache (blocks may hold different lengths).
        next_positions: ``(L,)`` the rotary position the next token gets in each block.
        seq_lengths: ``(L,)`` tokens each block processed in the prefill.
        speech_lengths: ``(L,)`` speech tokens in the input of each block.
        speech_tokens: speech tokens before any reduction (0 for a text run).
        prompt_tokens: prompt length before any reduction.
        hidden_size: the model width ``d`` (for memory arithmetic).
        members: for a speech run, the original speech positions behind each speech token that reached the
            last block, in order (a token merged from frames 3..5 is ``[3, 4, 5]``; a dropped frame is in none).
    """

    logits: torch.Tensor
    cache: Any
    next_positions: list[float]
    seq_lengths: list[int]
    speech_lengths: list[int]
    speech_tokens: int
    prompt_tokens: int
    hidden_size: int = 0
    members: list[list[int]] = field(default_factory=list)

    @property
    def retention(self) -> float:
        """Speech tokens reaching the last block over speech tokens at the input (1.0 for text)."""
        return self.speech_lengths[-1] / self.speech_tokens if self.speech_tokens else 1.0

    def kv_cache_bytes(self) -> int:
        """Bytes held by the KV cache now."""
        total = 0
        for layer in self.cache.layers:
            for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel() * tensor.element_size()
        return total


@dataclass
class Generation:
    """One greedy generation: new token ids (the stop token included when reached) and the prefill."""

    token_ids: list[int]
    prefill: PrefillState
    extra: dict[str, Any] = field(default_factory=dict)


class ShorteningEngine:
    """Prefill + greedy decode of one sample at a time, with the speech span shortened by a plan.

    Args:
        adapter: the loaded speech LLM (:func:`speechgap.load_model`).
        plan: :class:`MergePlan`; an empty plan is the unmodified model.

    Raises:
        ConfigError: a plan layer outside ``0..L-1``, or a model whose blocks this engine cannot drive
            (sliding-window layers, multi-axis rotary positions such as Qwen2.5-Omni's M-RoPE).
        ModelError: :meth:`prefill` or :meth:`step` inside an open ``with adapter.edit(...)`` block (the
            engine calls the blocks itself and cannot apply the edit).
    """

    def __init__(self, adapter: SpeechLLM, plan: MergePlan | None = None) -> None:
        self.adapter = adapter
        self.plan = plan or MergePlan()
        self.num_layers = adapter.num_layers
        bad = [layer for layer in self.plan.reductions if not 0 <= layer <= self.num_layers - 1]
        if bad:
            raise ConfigError(
                f"merge layers must be in 0..{self.num_layers - 1} (layer l shortens the input of block l+1), "
                f"got {bad}"
            )
        config = adapter.text_config
        if "sliding_attention" in (getattr(config, "layer_types", None) or []):
            raise ConfigError(
                f"{adapter.family}: sliding-window attention layers are not supported by merging"
            )
        self.rotary = getattr(adapter.decoder_owner, "rotary_emb", None)
        if self.rotary is None:
            raise ConfigError(f"{adapter.family}: no rotary embedding next to the decoder blocks")
        self.attn_implementation = getattr(config, "_attn_implementation", "sdpa") or "sdpa"
        generation_config = getattr(adapter.model, "generation_config", None)
        eos = getattr(generation_config, "eos_token_id", None)
        if eos is None:
            eos = adapter.tokenizer.eos_token_id
        self.eos_ids = {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos]) if e is not None}

    # ------------------------------------------------------------------ pieces
    def _refuse_edits(self) -> None:
        """The engine calls the decoder blocks itself, outside the adapter's forward pass, so the hooks of
        an open ``with adapter.edit(...)`` block could not be bound to this run's prompt and span."""
        if self.adapter.editing:
            raise ModelError(
                f"{self.adapter.family}: the shortening engine cannot run inside `with model.edit(...)`: it "
                "calls the decoder blocks itself and would not apply the edit; leave the edit block first"
            )

    def _mask(self, length: int, hidden: torch.Tensor) -> torch.Tensor | None:
        if self.attn_implementation == "sdpa" or length == 1:
            return None  # sdpa: is_causal with several queries, full attention for one (as transformers does)
        blocked = torch.ones(length, length, dtype=torch.bool, device=hidden.device).triu(1)
        mask = torch.zeros(length, length, dtype=hidden.dtype, device=hidden.device)
        return mask.masked_fill(blocked, torch.finfo(hidden.dtype).min)[None, None]

    def _block(
        self, index: int, hidden: torch.Tensor, positions: torch.Tensor, cache: Any, mask: torch.Tensor | None
    ) -> torch.Tensor:
        position_embeddings = self.rotary(hidden, positions[None])
        layer = self.adapter.decoder_layers[index]
        out = layer(
            hidden,
            attention_mask=mask,
            position_ids=positions.round().long()[None],
            use_cache=True,
            position_embeddings=position_embeddings,
            **{_cache_argument(type(layer)): cache},
        )
        return out[0] if isinstance(out, tuple) else out

    def _logits(self, last_hidden: torch.Tensor) -> torch.Tensor:
        norm = self.adapter.final_norm
        if norm is not None:
            last_hidden = norm(last_hidden)
        return self.adapter.model.get_output_embeddings()(last_hidden).reshape(-1).float()

    def _keys(self, layer: int) -> Callable[[np.ndarray], np.ndarray] | None:
        """The keys block ``layer + 1`` computes from span states: ``k_proj(input_layernorm(h))`` before the
        rotary embedding; None for a block without those parts."""
        block = self.adapter.decoder_layers[layer]
        norm = getattr(block, "input_layernorm", None)
        projection = getattr(getattr(block, "self_attn", None), "k_proj", None)
        if norm is None or projection is None:
            return None

        def keys(states: np.ndarray) -> np.ndarray:
            weight = projection.weight
            with torch.inference_mode():
                hidden = torch.as_tensor(states, device=weight.device).to(weight.dtype)
                return projection(norm(hidden)).float().cpu().numpy()

        return keys

    def _reduce(
        self,
        layer: int,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        span: tuple[int, int],
        members: list[list[int]],
        sample: PairedSample,
        base_frames: np.ndarray,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], list[list[int]]]:
        start, end = span
        states = hidden[0, start:end]
        frames = np.array([[base_frames[m[0], 0], base_frames[m[-1], 1]] for m in members], dtype=np.float64)
        context = SpanContext(sample=sample, frame_times=frames, members=members, keys=self._keys(layer))
        groups = self.plan.reductions[layer].groups(states.float().cpu().numpy(), context)
        check_groups(groups, end - start, contiguous=True)
        index = [torch.as_tensor(g, device=hidden.device) for g in groups]
        merged = torch.stack(
            [states[g].float().mean(0) if len(g) > 1 else states[g[0]].float() for g in index]
        )
        span_pos = positions[start:end]
        if self.plan.position == "mean":
            new_pos = torch.stack([span_pos[g].double().mean().float() for g in index])
        else:
            new_pos = torch.stack([span_pos[g[0]] for g in index])
        hidden = torch.cat([hidden[:, :start], merged.to(hidden.dtype)[None], hidden[:, end:]], dim=1)
        positions = torch.cat([positions[:start], new_pos, positions[end:]])
        if self.plan.position == "compact":
            positions = (
                torch.arange(hidden.shape[1], device=positions.device, dtype=torch.float32) + positions[0]
            )
        members = [[m for j in g for m in members[j]] for g in groups]
        return hidden, positions, (start, start + len(groups)), members

    # ------------------------------------------------------------------ public
    def prefill(self, sample: PairedSample, modality: str = "speech") -> PrefillState:
        """Run the prompt of one sample through every block, shortening the speech span as planned."""
        from transformers import DynamicCache

        self._refuse_edits()
        with torch.inference_mode():
            layer0 = self.adapter.layer0_inputs(sample, modality)
            hidden, positions, span = layer0.hidden, layer0.position_ids, layer0.span
            prompt_tokens = int(hidden.shape[1])
            cache = DynamicCache(config=self.adapter.text_config)
            speech = modality == "speech"
            n_speech = span[1] - span[0] if speech else 0
            members = [[i] for i in range(n_speech)]
            base_frames = self.adapter.frame_times(sample, n_speech) if speech else np.zeros((0, 2))
            seq_lengths, speech_lengths, next_positions = [], [], []
            for index in range(self.num_layers):
                if speech and index in self.plan.reductions:
                    hidden, positions, span, members = self._reduce(
                        index, hidden, positions, span, members, sample, base_frames
                    )
                seq_lengths.append(int(hidden.shape[1]))
                speech_lengths.append(len(members))
                next_positions.append(float(positions.max()) + 1.0)
                hidden = self._block(index, hidden, positions, cache, self._mask(hidden.shape[1], hidden))
            logits = self._logits(hidden[:, -1:])
        return PrefillState(
            logits=logits,
            cache=cache,
            next_positions=next_positions,
            seq_lengths=seq_lengths,
            speech_lengths=speech_lengths,
            speech_tokens=n_speech,
            prompt_tokens=prompt_tokens,
            hidden_size=self.adapter.hidden_size,
            members=members,
        )

    def step(self, state: PrefillState, token_id: int) -> torch.Tensor:
        """Feed one token after the prefill (or the previous step); returns the next logits ``(vocab,)``."""
        self._refuse_edits()
        with torch.inference_mode():
            ids = torch.tensor([[int(token_id)]], device=self.adapter.device)
            hidden = self.adapter.model.get_input_embeddings()(ids)
            for index in range(self.num_layers):
                position = torch.tensor(
                    [state.next_positions[index]], device=hidden.device, dtype=torch.float32
                )
                hidden = self._block(index, hidden, position, state.cache, None)
                state.next_positions[index] += 1.0
            return self._logits(hidden)

    def generate(self, sample: PairedSample, modality: str, max_new_tokens: int = 256) -> Generation:
        """Greedy decoding (argmax, no sampling) until a stop token or ``max_new_tokens``."""
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        state = self.prefill(sample, modality)
        token = int(torch.argmax(state.logits))
        tokens = [token]
        while len(tokens) < max_new_tokens and token not in self.eos_ids:
            token = int(torch.argmax(self.step(state, token)))
            tokens.append(token)
        return Generation(tokens, state)
