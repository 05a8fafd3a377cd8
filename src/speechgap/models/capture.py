"""Dataset-scale capture: hidden states of every sample written to safetensors shards, read back lazily.

Layout of a capture folder::

    DIR/capture.json                  provenance: model, data, settings (layers, storage dtype, ...)
    DIR/index.jsonl                   one line per finished sample: shard, keys, spans, tokens, frame times
    DIR/shards/shard-00000.safetensors  tensors "{id}/{modality}/hidden" (layers, tokens, dim),
                                      "{id}/{modality}/input_ids" (seq,), "{id}/{modality}/final_norm"

Memory stays bounded: captures are buffered for at most ``shard_samples`` samples (or ``max_shard_bytes``)
and then written as one shard. Crash safety: a shard is written atomically *before* the index lines of its
samples are appended, so an index line always points to a complete shard; samples captured but not yet
indexed when a run dies are captured again on resume (into a new shard), never duplicated in the index.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.types import PairedDataset, PairedSample, sample_hash
from speechgap.errors import ConfigError, DataError, ModelError
from speechgap.io import (
    JsonlAppender,
    ResumeWarning,
    RunLock,
    atomic_write_json,
    prepare_out_dir,
    read_json,
    read_jsonl,
)
from speechgap.models.base import MODALITIES, Capture, SpeechLLM
from speechgap.provenance import provenance

STORAGE_DTYPES = ("float32", "float16", "bfloat16")
_SHARD_RE = re.compile(r"shard-(\d{5,})\.safetensors$")


def _settings_key(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings that must match for a resumed run to continue the same capture."""
    keep = ("layers", "modalities", "storage_dtype", "post_norm", "protocol", "system_prompt", "instruction")
    return {key: settings.get(key) for key in keep}


def check_capture_settings(
    *,
    modalities: Sequence[str] = MODALITIES,
    storage_dtype: str = "float32",
    batch_size: int = 1,
    shard_samples: int = 32,
    max_shard_bytes: int = 512 * 2**20,
    on_error: str = "skip",
) -> None:
    """Check the settings of :func:`capture_dataset` that need no model, before one is loaded.

    Raises:
        ConfigError: naming the argument.
    """
    if storage_dtype not in STORAGE_DTYPES:
        raise ConfigError(f"argument 'storage_dtype' must be one of {STORAGE_DTYPES}, got {storage_dtype!r}")
    bad = [m for m in modalities if m not in MODALITIES]
    if bad or not modalities or len(set(modalities)) != len(modalities):
        raise ConfigError(
            f"argument 'modalities' must name each of {MODALITIES} at most once, and one at least, "
            f"got {list(modalities)}"
        )
    for name, value in (
        ("batch_size", batch_size),
        ("shard_samples", shard_samples),
        ("max_shard_bytes", max_shard_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ConfigError(f"argument '{name}' must be an integer, got {value!r}")
        if value < 1:
            raise ConfigError(f"argument '{name}' must be >= 1, got {value}")
    if on_error not in ("skip", "raise"):
        raise ConfigError(f"argument 'on_error' must be 'skip' or 'raise', got {on_error!r}")


def capture_dataset(
    adapter: SpeechLLM,
    dataset: PairedDataset,
    out_dir: str | Path,
    *,
    layers: Sequence[int] | None = None,
    modalities: Sequence[str] = MODALITIES,
    storage_dtype: str = "float32",
    post_norm: bool = False,
    batch_size: int = 1,
    shard_samples: int = 32,
    max_shard_bytes: int = 512 * 2**20,
    on_error: str = "skip",
    progress: bool = True,
    command: list[str] | None = None,
) -> CaptureStore:
    """Capture every sample of ``dataset`` into ``out_dir``; resume a run that stopped.

    Args:
        adapter: the loaded model.
        dataset: the paired samples (audio decoded one sample at a time).
        out_dir: the capture folder (created).
        layers: layer indices (0..L, see :mod:`speechgap.models.base`); None keeps all.
        modalities: which runs to capture per sample.
        storage_dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` on disk; read back as float32.
        post_norm: also store the final-norm state of the span.
        batch_size: samples per forward pass (results equal one at a time).
        shard_samples: samples per shard; with ``max_shard_bytes`` this bounds the memory held.
        max_shard_bytes: flush the shard early once its tensors reach this size.
        on_error: ``"skip"``: a sample the model refuses (too-long audio, no audio) is recorded in the
            index with its reason and skipped; ``"raise"``: stop at it.
        progress: show a tqdm progress bar.
        command: the command line, for provenance.

    Returns:
        a :class:`CaptureStore` on ``out_dir``.

    Raises:
        ConfigError: a bad setting; ``out_dir`` is a file, not writable, in use by another run, or holds a
            capture with other settings, of another model or of other data (the message names the sample
            that changed).
        DataError: a damaged ``capture.json``, ``index.jsonl`` or shard in the folder being resumed.

    Resuming checks the finished samples against ``dataset`` (each index line keeps the sample's content
    hash, ``sample_hash``). Dropped duplicate index lines, or lines written before hashes existed, are
    warned about (:class:`~speechgap.io.ResumeWarning`) and noted in ``capture.json`` under ``warnings``.
    """
    check_capture_settings(
        modalities=modalities,
        storage_dtype=storage_dtype,
        batch_size=batch_size,
        shard_samples=shard_samples,
        max_shard_bytes=max_shard_bytes,
        on_error=on_error,
    )
    modalities = list(modalities)
    if len(dataset) == 0:
        raise ConfigError("argument 'dataset' holds no samples")
    wanted = adapter._resolve_layers(layers)
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="capture"):
        return _capture_locked(
            adapter, dataset, out_dir, wanted, modalities, storage_dtype, post_norm, batch_size,
            shard_samples, max_shard_bytes, on_error, progress, command,
        )  # fmt: skip


def _capture_locked(
    adapter: SpeechLLM,
    dataset: PairedDataset,
    out_dir: Path,
    wanted: list[int],
    modalities: list[str],
    storage_dtype: str,
    post_norm: bool,
    batch_size: int,
    shard_samples: int,
    max_shard_bytes: int,
    on_error: str,
    progress: bool,
    command: list[str] | None,
) -> CaptureStore:
    """:func:`capture_dataset` once it holds the folder's lock."""
    (out_dir / "shards").mkdir(parents=True, exist_ok=True)
    settings = {
        "layers": wanted,
        "modalities": list(modalities),
        "storage_dtype": storage_dtype,
        "post_norm": bool(post_norm),
        "batch_size": int(batch_size),
        "shard_samples": int(shard_samples),
        "max_shard_bytes": int(max_shard_bytes),
        "protocol": adapter.protocol,
        "system_prompt": adapter.system_prompt,
        "instruction": adapter.instruction,
        "layer_convention": "0 = input to block 1; l >= 1 = output of block l before the final norm",
    }
    meta_path = out_dir / "capture.json"
    index_path = out_dir / "index.jsonl"
    record = provenance(model=adapter.describe(), data=dataset.describe(), settings=settings, command=command)
    if not meta_path.exists() and index_path.exists():
        raise DataError(
            "index.jsonl is here but capture.json is missing, so nothing tells which capture wrote it; "
            + _start_fresh(out_dir),
            path=meta_path,
        )
    if meta_path.exists():
        previous = _read_meta(meta_path)
        if _settings_key(previous.get("settings", {})) != _settings_key(settings):
            raise ConfigError(
                f"{out_dir} holds a capture with other settings ({_settings_key(previous['settings'])}); "
                "give another folder as argument 'out_dir' or the same settings to resume"
            )
        if previous.get("model", {}).get("name_or_path") != adapter.name_or_path:
            raise ConfigError(
                f"{out_dir} holds a capture of {previous['model']['name_or_path']}, not this model"
            )
        record["resumed_from"] = previous.get("created")
        record["warnings"] = list(previous.get("warnings", []))

    # every index line points at a shard already written: commit each at once, so none is lost after its shard
    with JsonlAppender(
        index_path, key=lambda r: r["id"], remember=_index_memory, commit_interval_s=0
    ) as index:
        notes = []
        if index.duplicates:
            notes.append(
                f"{index_path}: dropped {index.duplicates} duplicate line(s) (two runs wrote into this "
                "folder at once); the first line of each sample is kept"
            )
        hashes, unchecked = _check_resume(out_dir, dataset, index)
        if unchecked:
            notes.append(
                f"{index_path}: {unchecked} finished sample(s) were written before sample fingerprints "
                "existed; they cannot be checked against this data"
            )
        for note in notes:
            warnings.warn(note, ResumeWarning, stacklevel=3)
        if notes:
            record["warnings"] = [*record.get("warnings", []), *notes]
        atomic_write_json(meta_path, record)
        todo = [i for i, sample_id in enumerate(dataset.ids) if not index.done(sample_id)]
        writer = _ShardWriter(out_dir / "shards", storage_dtype, index)
        bar = _progress(len(dataset), len(dataset) - len(todo), progress)
        try:
            for start in range(0, len(todo), batch_size):
                chunk = [dataset[i] for i in todo[start : start + batch_size]]
                for sample, entry in _capture_chunk(adapter, chunk, modalities, wanted, post_norm, on_error):
                    writer.add(sample.id, entry, hashes.get(sample.id) or sample_hash(sample))
                if writer.num_samples >= shard_samples or writer.num_bytes >= max_shard_bytes:
                    writer.flush()
                bar.update(len(chunk))
            writer.flush()
        finally:
            bar.close()
    return CaptureStore(out_dir)


def _start_fresh(out_dir: Path) -> str:
    return f"give a new argument 'out_dir', or delete {out_dir} to capture afresh"


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        return read_json(path, what="capture record")
    except DataError as err:
        raise DataError(f"{err} (the capture's record is damaged); " + _start_fresh(path.parent)) from None


def _index_memory(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """What a resume needs of an index line: the sample's hash and its shard."""
    return record.get("sample_hash"), record.get("shard")


def _check_resume(out_dir: Path, dataset: PairedDataset, index: JsonlAppender) -> tuple[dict[str, str], int]:
    """The finished samples must be of this data and their shards whole.

    Returns:
        ``{id: hash}`` of the finished samples checked, and the number of finished samples without a
        stored hash.

    Raises:
        ConfigError: a finished sample that ``dataset`` lacks or whose content changed.
        DataError: a shard the index points to that is missing or damaged.
    """
    index_path = out_dir / "index.jsonl"
    done = {sample_id: index.remembered(sample_id) for sample_id in index.done_keys}
    position = {sample_id: i for i, sample_id in enumerate(dataset.ids)}
    gone = sorted(sample_id for sample_id in done if sample_id not in position)
    if gone:
        raise ConfigError(
            f"{index_path} holds {len(gone)} sample(s) that this data does not have (such as {gone[0]!r}): "
            "the folder was captured from other data; " + _start_fresh(out_dir)
        )
    shards: dict[str, list[str]] = {}
    in_order = sorted(done, key=position.__getitem__)
    for sample_id in in_order:
        shard = done[sample_id][1]
        if shard is not None:
            shards.setdefault(shard, []).append(sample_id)
    for shard, ids in sorted(shards.items()):
        _check_shard(out_dir / shard, ids, out_dir)
    checked: dict[str, str] = {}
    unchecked = 0
    for sample_id in in_order:
        stored = done[sample_id][0]
        if stored is None:
            unchecked += 1
            continue
        now = sample_hash(dataset[position[sample_id]])
        if stored != now:
            raise ConfigError(
                f"sample {sample_id!r} changed since {index_path} was written (content hash {stored}, now "
                f"{now}): its text, audio or other fields differ, so the capture would mix two datasets; "
                + _start_fresh(out_dir)
            )
        checked[sample_id] = now
    return checked, unchecked


def _check_shard(path: Path, ids: list[str], out_dir: Path) -> None:
    """A shard the index points to must exist and have a whole safetensors header (a truncated file fails
    here: the header records every tensor's extent)."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise DataError(
            f"missing: it holds {len(ids)} captured sample(s) (such as {ids[0]!r}) that index.jsonl lists; "
            + _start_fresh(out_dir),
            path=path,
        )
    try:
        with safe_open(path, framework="pt"):
            pass
    except (SafetensorError, OSError) as err:
        raise DataError(
            f"damaged or truncated ({err}): it holds {len(ids)} captured sample(s) (such as {ids[0]!r}); "
            + _start_fresh(out_dir),
            path=path,
        ) from None


def _progress(total: int, done: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, unit="sample", desc="capture")


def _capture_chunk(
    adapter: SpeechLLM,
    chunk: list[PairedSample],
    modalities: Sequence[str],
    layers: list[int],
    post_norm: bool,
    on_error: str,
) -> Iterator[tuple[PairedSample, dict[str, Any]]]:
    """Capture a chunk of samples; on a model refusal retry one at a time to find and skip the culprit."""
    try:
        by_modality = {
            m: adapter.capture_batch(chunk, m, layers=layers, post_norm=post_norm) for m in modalities
        }
    except ModelError as err:
        if len(chunk) > 1:
            for sample in chunk:
                yield from _capture_chunk(adapter, [sample], modalities, layers, post_norm, on_error)
            return
        if on_error == "raise":
            raise
        yield chunk[0], {"error": str(err)}
        return
    for row, sample in enumerate(chunk):
        yield sample, {m: by_modality[m][row] for m in modalities}


class _ShardWriter:
    """Buffers captures and writes them as one safetensors shard, then indexes them."""

    def __init__(self, folder: Path, storage_dtype: str, index: JsonlAppender) -> None:
        self.folder = folder
        self.storage_dtype = storage_dtype
        self.index = index
        existing = [int(m.group(1)) for p in folder.iterdir() if (m := _SHARD_RE.search(p.name))]
        # never overwrite a shard from an earlier run: its samples may be indexed
        self.next_shard = max(existing, default=-1) + 1
        self._tensors: dict[str, Any] = {}
        self._records: list[dict[str, Any]] = []
        self.num_bytes = 0

    @property
    def num_samples(self) -> int:
        return len(self._records)

    def add(self, sample_id: str, entry: dict[str, Any], content_hash: str) -> None:
        import torch

        if "error" in entry:
            self._records.append({"id": sample_id, "sample_hash": content_hash, "skipped": entry["error"]})
            return
        record: dict[str, Any] = {"id": sample_id, "sample_hash": content_hash}
        store_dtype = getattr(torch, self.storage_dtype)
        for modality, cap in entry.items():
            prefix = f"{sample_id}/{modality}"
            keys = {"hidden": f"{prefix}/hidden", "input_ids": f"{prefix}/input_ids"}
            self._tensors[keys["hidden"]] = torch.from_numpy(cap.hidden).to(store_dtype).contiguous()
            self._tensors[keys["input_ids"]] = torch.from_numpy(cap.input_ids).contiguous()
            if cap.final_norm is not None:
                keys["final_norm"] = f"{prefix}/final_norm"
                self._tensors[keys["final_norm"]] = (
                    torch.from_numpy(cap.final_norm).to(store_dtype).contiguous()
                )
            self.num_bytes += sum(self._tensors[k].nbytes for k in keys.values())
            record[modality] = {
                "keys": keys,
                "layers": cap.layers,
                "span": list(cap.span),
                "num_tokens": cap.num_tokens,
                "tokens": cap.tokens,
                "frame_times": None if cap.frame_times is None else cap.frame_times.round(6).tolist(),
                "prompt": cap.prompt,
            }
        self._records.append(record)

    def flush(self) -> None:
        if not self._records:
            return
        from safetensors.torch import save_file

        shard_name = None
        if self._tensors:
            shard_name = f"shard-{self.next_shard:05d}.safetensors"
            target = self.folder / shard_name
            fd, tmp = tempfile.mkstemp(prefix=f".{shard_name}.", suffix=".tmp", dir=self.folder)
            os.close(fd)
            try:
                save_file(self._tensors, tmp, metadata={"format": "speechgap-capture"})
                os.replace(tmp, target)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            self.next_shard += 1
        for record in self._records:
            if "skipped" not in record:
                record["shard"] = f"shards/{shard_name}"
            self.index.write(record)
        self._tensors = {}
        self._records = []
        self.num_bytes = 0


class CaptureStore:
    """Read a capture folder lazily: the index is read once, tensors only when asked for.

    Example:
        >>> store = CaptureStore("captures/qwen2-audio")
        >>> cap = store.get(store.ids[0], "speech")        # Capture, hidden float32 (layers, T, d)
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "capture.json"
        index_path = self.folder / "index.jsonl"
        if not meta_path.is_file() or not index_path.is_file():
            raise DataError("not a capture folder (capture.json and index.jsonl expected)", path=self.folder)
        self.meta: dict[str, Any] = _read_meta(meta_path)
        self._records: dict[str, dict[str, Any]] = {}
        self.skipped: dict[str, str] = {}
        for line, record in read_jsonl(index_path):
            if "id" not in record:
                raise DataError("index line without 'id'", path=index_path, line=line, field="id")
            if record["id"] in self._records or record["id"] in self.skipped:
                continue  # a duplicate line (two runs at once); the first one counts, as on resume
            if "skipped" in record:
                self.skipped[record["id"]] = record["skipped"]
            else:
                self._records[record["id"]] = record

    def __len__(self) -> int:
        return len(self._records)

    @property
    def ids(self) -> list[str]:
        """Ids of the captured samples, in capture order (skipped samples are in :attr:`skipped`)."""
        return list(self._records)

    @property
    def layers(self) -> list[int]:
        return list(self.meta["settings"]["layers"])

    @property
    def modalities(self) -> list[str]:
        return list(self.meta["settings"]["modalities"])

    def get(self, sample_id: str, modality: str) -> Capture:
        """The capture of one sample and modality; ``hidden`` is float32 whatever the storage dtype.

        Raises:
            DataError: no such capture, or its shard is missing or damaged (naming the shard).
        """
        from safetensors import SafetensorError, safe_open

        record = self._records.get(sample_id)
        if record is None:
            reason = self.skipped.get(sample_id)
            extra = f" (skipped: {reason})" if reason else ""
            raise DataError(f"no capture for sample {sample_id!r}{extra}", path=self.folder)
        if modality not in record:
            raise DataError(f"sample {sample_id!r} has no {modality!r} capture", path=self.folder)
        entry = record[modality]
        shard_path = self.folder / record["shard"]
        try:
            with safe_open(shard_path, framework="pt") as shard:
                hidden = shard.get_tensor(entry["keys"]["hidden"]).float().numpy()
                input_ids = shard.get_tensor(entry["keys"]["input_ids"]).numpy()
                final = None
                if "final_norm" in entry["keys"]:
                    final = shard.get_tensor(entry["keys"]["final_norm"]).float().numpy()
        except FileNotFoundError:
            raise DataError(
                f"missing: it held the capture of sample {sample_id!r}; capture again into a new folder",
                path=shard_path,
            ) from None
        except (SafetensorError, OSError) as err:
            raise DataError(
                f"damaged or truncated ({err}), cannot read sample {sample_id!r}; capture again into a new folder",
                path=shard_path,
            ) from None
        frames = entry.get("frame_times")
        return Capture(
            sample_id=sample_id,
            modality=modality,
            hidden=hidden,
            layers=list(entry["layers"]),
            span=tuple(entry["span"]),
            input_ids=input_ids,
            tokens=entry.get("tokens"),
            frame_times=None if frames is None else np.asarray(frames, dtype=np.float64),
            final_norm=final,
            prompt=entry.get("prompt", ""),
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._records)
