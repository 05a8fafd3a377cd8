"""speechgap's embedded speech LLMs: a mini zoo of Qwen2-Audio checkpoints trained by its own script.

A base text LM and speech LLMs (full fine-tuning and LoRA, several steps each) trained on synthetic spoken
four-option questions over a small knowledge base — the Ke-SpeechChat recipe in miniature. They load
through the same adapter as the real Qwen2-Audio::

    >>> from speechgap.models import load_model
    >>> from speechgap.mini import default_model_path
    >>> model = load_model(default_model_path())

See ``docs/mini.md``.
"""

from __future__ import annotations

from pathlib import Path

from speechgap.errors import ModelError

CHECKPOINTS_DIR = Path(__file__).resolve().parent / "checkpoints"
"""Shipped checkpoints: ``default/`` (the default speech LLM) and, when shipped, ``zoo/`` (all of them)."""


def default_model_path() -> Path:
    """The folder of the shipped default speech LLM (a ``save_pretrained`` Qwen2-Audio checkpoint).

    Raises:
        ModelError: the package was installed without its checkpoint data.
    """
    path = CHECKPOINTS_DIR / "default"
    if not (path / "model.safetensors").exists():
        raise ModelError(f"the shipped mini checkpoint is missing at {path}; reinstall speechgap")
    return path


def ensure_zoo(cache_dir: str | Path, seed: int = 0) -> Path:
    """A folder holding the whole mini zoo and its ``zoo.json``: the shipped one, or trained once.

    When the package ships the whole zoo (``checkpoints/zoo/zoo.json``), that folder is returned.
    Otherwise the zoo is trained into ``cache_dir`` with the default settings (about 35 minutes on 2 CPU
    cores); a later call finds it there and returns at once, and an interrupted training resumes.
    """
    shipped = CHECKPOINTS_DIR / "zoo"
    if (shipped / "zoo.json").exists():
        return shipped
    cache_dir = Path(cache_dir)
    if (cache_dir / "zoo.json").exists():
        return cache_dir
    from speechgap.mini.train import TrainSettings, train_zoo

    train_zoo(cache_dir, TrainSettings(seed=seed))
    return cache_dir


__all__ = ["CHECKPOINTS_DIR", "default_model_path", "ensure_zoo"]
