"""Copy a trained zoo into the package as float16 checkpoints (what ``speechgap mini ship`` does).

Weights are stored as float16 safetensors (half the size); :func:`speechgap.load_model` loads them as
float32 by default, so the shipped models compute in float32 on weights rounded to float16. The accuracies
in each ``speechgap_mini.json`` were measured on the float32 weights at training time; ``tests/mini``
re-measures the shipped default and base LM on a fixed held-out set.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from speechgap.errors import ConfigError
from speechgap.io import atomic_write_json

MAX_DEFAULT_MB = 15.0
MAX_ZOO_MB = 50.0


def folder_mb(folder: Path) -> float:
    """Total size of the files under ``folder`` in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _convert(source: Path, target: Path, kind: str) -> None:
    """``source`` checkpoint → ``target`` with float16 weights, the processor and the info file."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration, Qwen2ForCausalLM

    model_cls = Qwen2ForCausalLM if kind == "text" else Qwen2AudioForConditionalGeneration
    model = model_cls.from_pretrained(source, dtype=torch.float32)
    staging = target.with_name(target.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    model.to(torch.float16).save_pretrained(staging)
    AutoProcessor.from_pretrained(source).save_pretrained(staging)
    shutil.copy2(source / "speechgap_mini.json", staging / "speechgap_mini.json")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)


def ship_zoo(
    run_dir: str | Path, dest: str | Path | None = None, *, whole_zoo: bool = True
) -> dict[str, float]:
    """Write ``dest/default`` (the zoo's default) and, if it fits, ``dest/zoo`` (every checkpoint).

    Args:
        run_dir: a finished ``speechgap mini train`` output (with ``zoo.json``).
        dest: the package's checkpoint folder (default :data:`speechgap.mini.CHECKPOINTS_DIR`).
        whole_zoo: also ship every checkpoint (refused if the zoo would exceed 50 MB).

    Returns:
        sizes in MB: ``{"default": ..., "zoo": ...}``.
    """
    from speechgap.mini import CHECKPOINTS_DIR

    run_dir = Path(run_dir)
    dest = Path(dest) if dest is not None else CHECKPOINTS_DIR
    zoo_file = run_dir / "zoo.json"
    if not zoo_file.exists():
        raise ConfigError(f"argument 'run_dir' ({run_dir}) holds no finished zoo (zoo.json is missing)")
    zoo = json.loads(zoo_file.read_text(encoding="utf-8"))
    dest.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, float] = {}
    entries = {entry["name"]: entry for entry in zoo["checkpoints"]}
    default = zoo["default"]
    _convert(run_dir / default, dest / "default", entries[default]["kind"])
    sizes["default"] = round(folder_mb(dest / "default"), 2)
    if sizes["default"] > MAX_DEFAULT_MB:
        raise ConfigError(f"the default checkpoint is {sizes['default']} MB, over {MAX_DEFAULT_MB} MB")
    if whole_zoo:
        zoo_dest = dest / "zoo"
        zoo_dest.mkdir(exist_ok=True)
        for name, entry in entries.items():
            _convert(run_dir / name, zoo_dest / name, entry["kind"])
        atomic_write_json(zoo_dest / "zoo.json", {**zoo, "storage_dtype": "float16"})
        sizes["zoo"] = round(folder_mb(zoo_dest), 2)
        if sizes["zoo"] > MAX_ZOO_MB:
            shutil.rmtree(zoo_dest)
            raise ConfigError(f"the zoo is {sizes['zoo']} MB, over {MAX_ZOO_MB} MB: not shipped")
    return sizes
