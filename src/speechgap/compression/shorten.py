"""Prefill and greedy decoding with the speech span shortened inside the decoder, for one sample or a batch.

The engine runs the language model's blocks itself, one at a time, so it controls at every block the
hidden states, the rotary positions and the attention mask; the KV cache is a transformers
``DynamicCache`` whose layers hold *different lengths*: blocks up to a merge layer cache the long
sequence, blocks after it the shortened one.

Consistency (see ``docs/compression.md``):

* Positions: every token carries a rotary position. Unmerged tokens keep theirs; a merged token keeps its
  first member's (``first``), its members' mean (``mean``) or the sequence is renumbered without gaps
  (``compact``). Attention in a block compares only that block's queries and keys, so blocks may disagree
  on positions; each block's next decode position is its own last position + 1.
* Mask: one sample alone needs no padding, so the mask is causal over the block's own sequence during the
  prefill and full over the block's cache at a decode step.
* Cache: each block appends its own keys/values; a decode token is never merged.

A batch (:meth:`ShorteningEngine.prefill_batch`, :meth:`ShorteningEngine.generate_batch`) shortens every
row by itself (each sample to its own length, the reducer sees that row's states only) and pads each
block's input on the right to the longest row *of that block*. The mask of a row is causal over its own
real tokens with the pads masked out; its rotary positions are those it has alone. At a decode step each
row attends to its own real prefill entries and the decode tokens, never to the pads between them, so a
row's answer is the one it gets alone (up to float rounding of the batched kernels; tested). One sample is
a batch of one: it has no pads and so no explicit mask, exactly the unpadded run above.

With no reduction (or none that merges) this is exactly the model's own forward pass: same blocks, same
positions, same mask (tested against ``model.generate``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
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


BATCHED_ATTENTION = ("sdpa", "eager")
"""Attention implementations that take the engine's per-row additive 4-D masks. Under any other (such as
``flash_attention_2``, which reads a 2-D padding mask) :meth:`ShorteningEngine.generate_batch` runs one
sample at a time."""


@dataclass
class PrefillState:
    """The state after the prefill of one sample, ready for decode steps.

    Attributes:
        logits: float ``(vocab,)`` next-token logits after the prompt.
        cache: the per-block KV cache (blocks may hold different lengths); None for a row of a batch
            (:class:`BatchPrefillState`), whose rows share the batch's cache.
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
        """Bytes held by the KV cache now.

        Raises:
            ConfigError: for a row of a batch, which holds no cache of its own (its entries sit in the batch's
                padded cache); measure one sample with :meth:`ShorteningEngine.prefill`.
        """
        if self.cache is None:
            raise ConfigError(
                "this prefill is a row of a batch and shares the batch's padded KV cache; measure the cache of "
                "one sample with ShorteningEngine.prefill"
            )
        total = 0
        for layer in self.cache.layers:
            for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
                if isinstance(tensor, torch.Tensor):
                    total += tensor.numel() * tensor.element_size()
        return total


@dataclass
class BatchPrefillState:
    """The state after the prefill of several samples in one padded batch, ready for batched decode steps.

    Attributes:
        rows: one :class:`PrefillState` per row (logits, lengths, positions, members), in the cache's row
            order; a row's ``seq_lengths[l]`` is its count of real entries in block ``l`` of the cache.
        cache: the per-block KV cache of every row: block ``l`` holds ``(rows, kv_heads, padded_lengths[l] +
            steps, head_dim)``: each row's real prefill entries first, its pads up to ``padded_lengths[l]``,
            then the decode tokens.
        padded_lengths: ``(L,)`` the longest row of each block in the prefill.
        steps: decode tokens fed so far.
    """

    rows: list[PrefillState]
    cache: Any
    padded_lengths: list[int]
    steps: int = 0

    def select(self, keep: Sequence[int]) -> None:
        """Keep only the rows ``keep`` (indices into :attr:`rows`, in that order), in the cache too; for
        dropping rows that finished decoding."""
        keep = [int(k) for k in keep]
        if not keep:
            raise ConfigError("argument 'keep' must name at least one row")
        if keep == list(range(len(self.rows))):
            return
        self.rows = [self.rows[k] for k in keep]
        device = self.rows[0].logits.device
        self.cache.batch_select_indices(torch.as_tensor(keep, dtype=torch.long, device=device))


@dataclass
class Generation:
    """One greedy generation: new token ids (the stop token included when reached) and the prefill."""

    token_ids: list[int]
    prefill: PrefillState
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Row:
    """One sample on its way through the prefill: its real (unpadded) states entering the next block."""

    sample: PairedSample
    hidden: torch.Tensor  # (1, T, d)
    positions: torch.Tensor  # float32 (T,)
    span: tuple[int, int]
    members: list[list[int]]
    base_frames: np.ndarray
    speech_tokens: int
    prompt_tokens: int
    seq_lengths: list[int] = field(default_factory=list)
    speech_lengths: list[int] = field(default_factory=list)
    next_positions: list[float] = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(self.hidden.shape[1])


class ShorteningEngine:
    """Prefill + greedy decode with the speech span shortened by a plan, one sample or a padded batch.

    Args:
        adapter: the loaded speech LLM (:func:`speechgap.load_model`).
        plan: :class:`MergePlan`; an empty plan is the unmodified model.

    Attributes:
        batched: whether :meth:`generate_batch` runs several samples per forward pass (the attention
            implementation is one of :data:`BATCHED_ATTENTION`); otherwise it runs them one at a time.

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
        self.batched = self.attn_implementation in BATCHED_ATTENTION
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

    @staticmethod
    def _additive(allowed: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """``allowed`` (rows, queries, keys) as an additive mask ``(rows, 1, queries, keys)``: 0 where a query
        may attend, the dtype's minimum where not (its softmax weight is exactly 0)."""
        mask = torch.zeros(allowed.shape, dtype=hidden.dtype, device=hidden.device)
        return mask.masked_fill(~allowed, torch.finfo(hidden.dtype).min)[:, None]

    def _prefill_mask(self, lengths: list[int], hidden: torch.Tensor) -> torch.Tensor | None:
        """The mask of one block's padded prefill: each row causal over its own ``lengths[row]`` real tokens,
        its pads masked as keys. Rows without pads get the unpadded rule (:meth:`_mask`)."""
        padded = int(hidden.shape[1])
        if all(n == padded for n in lengths):
            return self._mask(padded, hidden)
        keys = torch.arange(padded, device=hidden.device)
        real = torch.as_tensor(lengths, device=hidden.device)
        # a pad query sees its row's real tokens (never an empty row, so softmax stays finite); it is never read
        allowed = (keys[None, :] <= keys[:, None])[None] & (keys[None, None, :] < real[:, None, None])
        return self._additive(allowed, hidden)

    def _decode_mask(self, state: BatchPrefillState, index: int, hidden: torch.Tensor) -> torch.Tensor | None:
        """The mask of one decode token in block ``index``: each row sees its real prefill entries and every
        decode token, not the pads between them. None (full attention) when no row has pads."""
        padded = state.padded_lengths[index]
        lengths = [row.seq_lengths[index] for row in state.rows]
        if all(n == padded for n in lengths):
            return None
        keys = torch.arange(padded + state.steps + 1, device=hidden.device)
        real = torch.as_tensor(lengths, device=hidden.device)
        allowed = (keys[None, :] < real[:, None]) | (keys[None, :] >= padded)
        return self._additive(allowed[:, None, :], hidden)

    def _block(
        self, index: int, hidden: torch.Tensor, positions: torch.Tensor, cache: Any, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Run decoder block ``index`` on ``hidden`` ``(rows, T, d)`` at rotary ``positions`` ``(rows, T)``
        (or ``(T,)`` for one row), appending to ``cache``."""
        if positions.dim() == 1:
            positions = positions[None]
        position_embeddings = self.rotary(hidden, positions)
        layer = self.adapter.decoder_layers[index]
        out = layer(
            hidden,
            attention_mask=mask,
            position_ids=positions.round().long(),
            use_cache=True,
            position_embeddings=position_embeddings,
            **{_cache_argument(type(layer)): cache},
        )
        return out[0] if isinstance(out, tuple) else out

    def _logits(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """Float ``(rows, vocab)`` next-token logits from the last real states ``(rows, 1, d)``."""
        norm = self.adapter.final_norm
        if norm is not None:
            last_hidden = norm(last_hidden)
        logits = self.adapter.model.get_output_embeddings()(last_hidden)
        return logits.reshape(last_hidden.shape[0], -1).float()

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

    def _reduce(self, layer: int, row: _Row) -> None:
        """Shorten the speech span of ``row`` (its real states, no pads) with the plan's reducer at ``layer``."""
        start, end = row.span
        states = row.hidden[0, start:end]
        frames = np.array(
            [[row.base_frames[m[0], 0], row.base_frames[m[-1], 1]] for m in row.members], dtype=np.float64
        )
        context = SpanContext(
            sample=row.sample, frame_times=frames, members=row.members, keys=self._keys(layer)
        )
        groups = self.plan.reductions[layer].groups(states.float().cpu().numpy(), context)
        check_groups(groups, end - start, contiguous=True)
        index = [torch.as_tensor(g, device=states.device) for g in groups]
        merged = torch.stack(
            [states[g].float().mean(0) if len(g) > 1 else states[g[0]].float() for g in index]
        )
        span_pos = row.positions[start:end]
        if self.plan.position == "mean":
            new_pos = torch.stack([span_pos[g].double().mean().float() for g in index])
        else:
            new_pos = torch.stack([span_pos[g[0]] for g in index])
        hidden = torch.cat(
            [row.hidden[:, :start], merged.to(row.hidden.dtype)[None], row.hidden[:, end:]], dim=1
        )
        positions = torch.cat([row.positions[:start], new_pos, row.positions[end:]])
        if self.plan.position == "compact":
            positions = (
                torch.arange(hidden.shape[1], device=positions.device, dtype=torch.float32) + positions[0]
            )
        row.hidden, row.positions = hidden, positions
        row.span = (start, start + len(groups))
        row.members = [[m for j in g for m in row.members[j]] for g in groups]

    def _layer0_rows(self, samples: list[PairedSample], modality: str) -> list[_Row]:
        """The rows at layer 0: the model's own input of the first block (audio encoder, projector,
        splicing), computed one sample at a time through :meth:`SpeechLLM.layer0_inputs`, so that a row's
        layer-0 states (and so its input merge) are bit-identical to the sample's alone."""
        rows = []
        speech = modality == "speech"
        for sample in samples:
            layer0 = self.adapter.layer0_inputs(sample, modality)
            n_speech = layer0.span[1] - layer0.span[0] if speech else 0
            rows.append(
                _Row(
                    sample=sample,
                    hidden=layer0.hidden,
                    positions=layer0.position_ids,
                    span=layer0.span,
                    members=[[i] for i in range(n_speech)],
                    base_frames=self.adapter.frame_times(sample, n_speech) if speech else np.zeros((0, 2)),
                    speech_tokens=n_speech,
                    prompt_tokens=int(layer0.hidden.shape[1]),
                )
            )
        return rows

    @staticmethod
    def _pad(rows: list[_Row]) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows' states ``(rows, P, d)`` and positions ``(rows, P)``, right-padded with zeros to the
        longest row ``P`` (pads are masked as keys, and their outputs never read)."""
        padded = max(row.length for row in rows)
        if all(row.length == padded for row in rows):
            return torch.cat([row.hidden for row in rows]), torch.stack([row.positions for row in rows])
        first = rows[0].hidden
        hidden = first.new_zeros(len(rows), padded, first.shape[-1])
        positions = rows[0].positions.new_zeros(len(rows), padded)
        for b, row in enumerate(rows):
            hidden[b, : row.length] = row.hidden[0]
            positions[b, : row.length] = row.positions
        return hidden, positions

    # ------------------------------------------------------------------ public
    def prefill(self, sample: PairedSample, modality: str = "speech") -> PrefillState:
        """Run the prompt of one sample through every block, shortening the speech span as planned."""
        return self.prefill_batch([sample], modality).rows[0]

    def prefill_batch(self, samples: Sequence[PairedSample], modality: str = "speech") -> BatchPrefillState:
        """Run the prompts of several samples through every block in one padded batch, each speech span
        shortened by itself as planned.

        Each block's input is right-padded to its longest row; a row's mask is causal over its own real
        tokens, its positions are those it has alone (module docstring). A batch of one has no pads and is
        :meth:`prefill` (whose row keeps the cache).

        Raises:
            ConfigError: no samples; several samples under an attention implementation that is not in
                :data:`BATCHED_ATTENTION` (see :attr:`batched`).
            ModelError: inside an open ``with adapter.edit(...)`` block.
        """
        from transformers import DynamicCache

        samples = list(samples)
        if not samples:
            raise ConfigError("argument 'samples' must hold at least one sample")
        if len(samples) > 1 and not self.batched:
            raise ConfigError(
                f"{self.adapter.family}: attention {self.attn_implementation!r} does not take the per-row masks "
                f"a padded batch needs (only {BATCHED_ATTENTION}); prefill one sample at a time"
            )
        self._refuse_edits()
        speech = modality == "speech"
        with torch.inference_mode():
            rows = self._layer0_rows(samples, modality)
            cache = DynamicCache(config=self.adapter.text_config)
            hidden = positions = mask = None
            lengths: list[int] = []
            padded_lengths: list[int] = []
            for index in range(self.num_layers):
                reduce = speech and index in self.plan.reductions
                if reduce:
                    for b, row in enumerate(rows):
                        if hidden is not None:  # the row's real outputs of the previous block
                            row.hidden, row.positions = (
                                hidden[b : b + 1, : row.length],
                                positions[b, : row.length],
                            )
                        self._reduce(index, row)
                if hidden is None or reduce:
                    hidden, positions = self._pad(rows)
                    lengths = [row.length for row in rows]
                    mask = self._prefill_mask(lengths, hidden)
                for b, row in enumerate(rows):
                    row.seq_lengths.append(lengths[b])
                    row.speech_lengths.append(len(row.members))
                    row.next_positions.append(float(positions[b, : lengths[b]].max()) + 1.0)
                padded_lengths.append(int(hidden.shape[1]))
                hidden = self._block(index, hidden, positions, cache, mask)
            last = torch.as_tensor(lengths, device=hidden.device) - 1
            logits = self._logits(hidden[torch.arange(len(rows), device=hidden.device), last][:, None])
        states = [
            PrefillState(
                logits=logits[b],
                cache=cache if len(rows) == 1 else None,
                next_positions=row.next_positions,
                seq_lengths=row.seq_lengths,
                speech_lengths=row.speech_lengths,
                speech_tokens=row.speech_tokens,
                prompt_tokens=row.prompt_tokens,
                hidden_size=self.adapter.hidden_size,
                members=row.members,
            )
            for b, row in enumerate(rows)
        ]
        return BatchPrefillState(states, cache, padded_lengths)

    def step(self, state: PrefillState, token_id: int) -> torch.Tensor:
        """Feed one token after the prefill (or the previous step); returns the next logits ``(vocab,)``."""
        self._refuse_edits()
        if state.cache is None:
            raise ConfigError("this prefill is a row of a batch; feed its tokens with step_batch")
        with torch.inference_mode():
            ids = torch.tensor([[int(token_id)]], device=self.adapter.device)
            hidden = self.adapter.model.get_input_embeddings()(ids)
            for index in range(self.num_layers):
                position = torch.tensor(
                    [state.next_positions[index]], device=hidden.device, dtype=torch.float32
                )
                hidden = self._block(index, hidden, position, state.cache, None)
                state.next_positions[index] += 1.0
            return self._logits(hidden)[0]

    def step_batch(self, state: BatchPrefillState, token_ids: Sequence[int]) -> torch.Tensor:
        """Feed one token to each row of ``state`` (after the prefill or the previous step).

        Args:
            state: from :meth:`prefill_batch` (rows possibly dropped with :meth:`BatchPrefillState.select`).
            token_ids: one token id per row, in row order.

        Returns:
            Float ``(rows, vocab)`` next-token logits.
        """
        self._refuse_edits()
        if len(token_ids) != len(state.rows):
            raise ConfigError(f"argument 'token_ids': {len(token_ids)} tokens for {len(state.rows)} rows")
        with torch.inference_mode():
            ids = torch.tensor([[int(t)] for t in token_ids], device=self.adapter.device)
            hidden = self.adapter.model.get_input_embeddings()(ids)
            for index in range(self.num_layers):
                positions = torch.tensor(
                    [[row.next_positions[index]] for row in state.rows],
                    device=hidden.device,
                    dtype=torch.float32,
                )
                mask = self._decode_mask(state, index, hidden)
                hidden = self._block(index, hidden, positions, state.cache, mask)
                for row in state.rows:
                    row.next_positions[index] += 1.0
            state.steps += 1
            return self._logits(hidden)

    def generate(self, sample: PairedSample, modality: str, max_new_tokens: int = 256) -> Generation:
        """Greedy decoding (argmax, no sampling) until a stop token or ``max_new_tokens``."""
        return self.generate_batch([sample], modality, max_new_tokens)[0]

    def generate_batch(
        self, samples: Sequence[PairedSample], modality: str, max_new_tokens: int = 256
    ) -> list[Generation]:
        """:meth:`generate` for several samples: one padded prefill, then batched greedy steps in which each
        row stops at its own stop token (finished rows leave the batch). One sample at a time when the
        attention implementation takes no per-row masks (:attr:`batched` is False)."""
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        samples = list(samples)
        if not samples:
            return []
        if len(samples) > 1 and not self.batched:
            return [self.generate_batch([sample], modality, max_new_tokens)[0] for sample in samples]
        state = self.prefill_batch(samples, modality)
        prefills = list(state.rows)
        tokens = [[int(torch.argmax(row.logits))] for row in prefills]

        def running(row: int) -> bool:
            return len(tokens[row]) < max_new_tokens and tokens[row][-1] not in self.eos_ids

        in_batch = list(range(len(samples)))  # the sample of each row of ``state``
        active = [row for row in in_batch if running(row)]
        while active:
            if active != in_batch:
                state.select([in_batch.index(row) for row in active])
                in_batch = active
            logits = self.step_batch(state, [tokens[row][-1] for row in active])
            for k, row in enumerate(active):
                tokens[row].append(int(torch.argmax(logits[k])))
            active = [row for row in active if running(row)]
        return [Generation(tokens[row], prefills[row]) for row in range(len(samples))]
