"""Prefill FLOPs of a decoder-only language model from its config and the sequence length of each block.

Counted per block that processes ``n`` tokens (one multiply-add = 2 FLOPs), with width ``d``, ``h``
query heads, ``h_kv`` key/value heads, head size ``d_h`` and MLP width ``m``:

* projections: ``2 n d (h d_h)`` (query) + ``2 * 2 n d (h_kv d_h)`` (key, value) + ``2 n (h d_h) d`` (output);
* attention: ``2 n^2 h d_h`` (scores ``Q K^T``) + ``2 n^2 h d_h`` (weights times ``V``), the full square
  (what dense kernels compute; the causal half is masked, not skipped);
* MLP (gated, SwiGLU as in Qwen2/Llama): ``3 * 2 n d m``;

plus the LM head on the last position only, ``2 d V`` (what generation needs). Not counted: norms,
rotary, softmax, biases, residual adds, embeddings lookup, and the audio encoder/projector (the same
for merged and unmerged runs: merging happens after them). Merging itself (cosines over the span,
``O(n omega d)``) is negligible and not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechgap.errors import ConfigError


@dataclass
class DecoderShape:
    """The sizes the FLOPs count needs.

    Attributes:
        hidden: model width ``d``.
        heads, kv_heads: query and key/value heads.
        head_dim: ``d_h``.
        intermediate: MLP width ``m``.
        vocab: vocabulary size ``V``.
        layers: number of blocks ``L``.
    """

    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    layers: int

    @classmethod
    def from_config(cls, config: Any) -> DecoderShape:
        """From a transformers text config (``hidden_size``, ``num_attention_heads``, ...)."""
        if hasattr(config, "get_text_config"):
            config = config.get_text_config()
        heads = int(config.num_attention_heads)
        head_dim = getattr(config, "head_dim", None) or int(config.hidden_size) // heads
        return cls(
            hidden=int(config.hidden_size),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(head_dim),
            intermediate=int(config.intermediate_size),
            vocab=int(config.vocab_size),
            layers=int(config.num_hidden_layers),
        )


def block_flops(shape: DecoderShape, n: int) -> int:
    """FLOPs of one decoder block over ``n`` tokens (module docstring)."""
    d, q, kv = shape.hidden, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    projections = 2 * n * d * q + 2 * 2 * n * d * kv + 2 * n * q * d
    attention = 2 * 2 * n * n * q
    mlp = 3 * 2 * n * d * shape.intermediate
    return projections + attention + mlp


def prefill_flops(shape: DecoderShape, seq_lengths: list[int]) -> int:
    """Prefill FLOPs: every block over its own sequence length, plus the LM head on the last position.

    Args:
        shape: :class:`DecoderShape`.
        seq_lengths: ``(L,)`` tokens each block processed, in block order.
    """
    if len(seq_lengths) != shape.layers:
        raise ConfigError(
            f"argument 'seq_lengths' needs one length per block ({shape.layers}), got {len(seq_lengths)}"
        )
    return sum(block_flops(shape, int(n)) for n in seq_lengths) + 2 * shape.hidden * shape.vocab
