"""The learning-rate schedule every stage of the mini recipe uses: linear warmup, then cosine decay."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total: int, peak: float = 1.0) -> float:
    """Learning rate at 0-based ``step`` of ``total``: linear warmup over the first 5 % of the steps to
    ``peak``, then cosine decay to 5 % of ``peak`` at the last step."""
    warmup = max(1, total // 20)
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
