"""A small paired dataset for the sweep tests, written on demand."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf


def write_pairs(folder, n: int, *, seed: int = 0):
    """``n`` multiple-choice pairs with noise audio of different lengths; returns the manifest path."""
    rng = np.random.default_rng(seed)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.jsonl"
    with open(manifest, "w") as handle:
        for i in range(n):
            sf.write(folder / "audio" / f"q{i}.wav", 0.2 * rng.standard_normal(6000 + 700 * (i % 5)), 16000)
            record = {
                "id": f"q{i}",
                "text": f"Pick {i} now\nA. red\nB. blue\nC. green\nD. black",
                "audio": f"audio/q{i}.wav",
                "choices": ["red", "blue", "green", "black"],
                "answer": "ABCD"[i % 4],
                "subset": "colour" if i % 2 else "city",
            }
            handle.write(json.dumps(record) + "\n")
    return manifest
