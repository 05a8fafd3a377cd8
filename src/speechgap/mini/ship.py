"""Copy a trained zoo into the package as float16 checkpoints (what ``speechgap mini ship`` does).

Weights are stored as float16 safetensors (half the size); :func:`speechgap.load_model` loads them as
float32 by default, so the shipped models compute in float32 on weights rounded to float16. The accuracies
in each ``speechgap_mini.json`` were measured on the float32 weights at training time; ``tests/mini``
re-measures the shipped default and base LM on a fixed held-out set.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from speechgap.errors import ConfigError, DataError
from speechgap.io import atomic_write_json, read_json

MAX_DEFAULT_MB = 15.0
MAX_ZOO_MB = 50.0


def folder_mb(folder: Path) -> float:
    """Total size of the files under ``folder`` in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _convert(source: Path, target: Path, kind: str) -> None:
    """``source`` checkpoint → ``target`` with float16 weights, the processor and the info file."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration, Qwen2ForCausalLM

    model_cls = Qwen2ForCausalLM if kind == "text" else Qwen2AudioForConditionalGeneration
    if not (source / "model.safetensors").is_file():
        raise ConfigError(f"{source}: no model.safetensors; is the zoo finished (`speechgap mini train`)?")
    model = model_cls.from_pretrained(source, dtype=torch.float32, use_safetensors=True)
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
    zoo = read_json(zoo_file, what="zoo record")
    entries = _entries(zoo, zoo_file)
    default = zoo.get("default")
    if default not in entries:
        raise DataError(
            f"the default {default!r} is not one of the listed checkpoints {sorted(entries)}",
            path=zoo_file,
            field="default",
        )
    dest.mkdir(parents=True, exist_ok=True)
    sizes: dict[str, float] = {}
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


def _entries(zoo: dict, zoo_file: Path) -> dict[str, dict]:
    """``name -> entry`` of a zoo record, each entry checked: a plain folder name, a kind, no name twice."""
    listed = zoo.get("checkpoints")
    if not isinstance(listed, list) or not listed:
        raise DataError("expected a non-empty list of checkpoints", path=zoo_file, field="checkpoints")
    entries: dict[str, dict] = {}
    for k, entry in enumerate(listed):
        where = f"checkpoints[{k}]"
        if not isinstance(entry, dict):
            raise DataError(f"expected an object, got {type(entry).__name__}", path=zoo_file, field=where)
        name = entry.get("name")
        if not isinstance(name, str) or not name or name in (".", "..") or "/" in name or "\\" in name:
            raise DataError(
                f"expected a checkpoint folder name, got {name!r}", path=zoo_file, field=f"{where}.name"
            )
        if entry.get("kind") not in ("text", "speech"):
            raise DataError(
                f"expected 'text' or 'speech', got {entry.get('kind')!r}",
                path=zoo_file,
                field=f"{where}.kind",
            )
        if name in entries:
            raise DataError(f"checkpoint {name!r} is listed twice", path=zoo_file, field=f"{where}.name")
        entries[name] = entry
    return entries
