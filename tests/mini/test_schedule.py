"""The mini recipe's learning-rate schedule: warmup to the peak, cosine down to 5 % of it."""

from __future__ import annotations

import numpy as np
import pytest

from speechgap.mini.schedule import warmup_cosine


def test_warmup_then_cosine_decay():
    total, peak = 200, 3e-3
    rates = np.array([warmup_cosine(step, total, peak) for step in range(total)])
    warmup = total // 20
    np.testing.assert_allclose(rates[:warmup], peak * np.arange(1, warmup + 1) / warmup)
    assert rates.max() == pytest.approx(peak)
    assert np.all(np.diff(rates[warmup - 1 :]) <= 1e-15)  # never rises after the warmup
    assert rates[-1] == pytest.approx(0.05 * peak, rel=1e-2)
    # the scale alone times the peak is the same schedule (how stage 2 applies one scale to two groups)
    assert all(
        warmup_cosine(s, total) * peak == pytest.approx(warmup_cosine(s, total, peak)) for s in range(total)
    )


def test_a_single_step_run_trains_at_the_peak():
    assert warmup_cosine(0, 1, 0.5) == 0.5
