"""``synthesize``: text items in, a paired speech/text manifest out.

Output folder layout::

    DIR/manifest.jsonl    one line per kept item, in input order (schema in docs/synthesis.md)
    DIR/audio/<id>.wav    16 kHz mono 16-bit PCM, written atomically (temporary file + rename)
    DIR/synthesis.json    provenance: engine, speakers, seed, settings, counts
    DIR/progress.jsonl    the resume log: one line per finished item (kept or dropped)
    DIR/dropped.jsonl     items the quality filter dropped, with its info (only with a filter)

Resume: an item is finished once its line is in ``progress.jsonl`` (its audio is written before that
line). A rerun skips finished items and synthesizes the rest; ``manifest.jsonl`` is rebuilt from the log at
the end, so a run killed at any point and rerun gives every id exactly once. A run holds its folder
(:class:`speechgap.io.RunLock`): a second run into the same folder at the same time is refused. Worker
processes end with the run, even when it is killed.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from hashlib import sha1
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.manifest import _answer_problem
from speechgap.data.text import check_nested_text, check_text
from speechgap.data.types import SAMPLE_RATE
from speechgap.errors import ConfigError, DataError, ModelError, SpeechgapError
from speechgap.io import (
    JsonlAppender,
    RunLock,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    dumps_record,
    prepare_out_dir,
    read_jsonl,
    remove_stale_temp_files,
)
from speechgap.provenance import provenance
from speechgap.synthesis.engine import TTSEngine, Utterance, Voice
from speechgap.synthesis.quality import QualityFilter
from speechgap.synthesis.render import option_letter, render_item, split_options
from speechgap.synthesis.timing import split_words
from speechgap.synthesis.voices import VoiceBank

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,150}$")
_RESERVED_FIELDS = ("id", "text", "choices", "answer", "subset")
_MIN_ITEMS_FOR_POOL = 64  # below this, starting worker processes (~1 s) costs more than it saves


@dataclass
class TextItem:
    """One input item: a question to be spoken.

    Attributes:
        id: unique within the input.
        text: the question as written (options may already be listed in it; see ``render.py``).
        choices: option texts in letter order, for multiple choice.
        answer: the reference answer: an option letter for multiple choice (an integer index in the
            input is turned into its letter).
        subset: benchmark subset, carried into the manifest.
        meta: every other input field (an input ``meta`` object merged in), carried into the manifest's
            ``meta``.
        where: ``"file:line"`` of the item, for messages.
    """

    id: str
    text: str
    choices: list[str] | None = None
    answer: str | None = None
    subset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    where: str = ""


def audio_filename(item_id: str) -> str:
    """The WAV file name of an item: the id itself when it is a safe file name.

    Ids with other characters (``/``, spaces, ...) or longer than 151 characters are escaped: unsafe
    characters become ``_`` and a short hash of the id is appended, so two ids never share a file.
    """
    if _SAFE_ID.match(item_id) and item_id not in (".", ".."):
        return f"{item_id}.wav"
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)[:100].lstrip(".") or "item"
    return f"{stem}-{sha1(item_id.encode('utf-8')).hexdigest()[:10]}.wav"


def _parse_item(record: dict[str, Any], *, path: str, line: int) -> TextItem:
    for name in ("id", "text"):
        if name not in record:
            raise DataError(f"missing required field '{name}'", path=path, line=line, field=name)
    item_id = record["id"]
    if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or str(item_id).strip() == "":
        raise DataError(f"id must be a non-empty string, got {item_id!r}", path=path, line=line, field="id")
    check_text(str(item_id), path=path, line=line, field="id")
    text = record["text"]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"text must be a non-empty string, got {text!r}", path=path, line=line, field="text")
    # a NUL would end the text for the engine (a C library) and cut the clip short; refused, not stripped
    check_text(text, path=path, line=line, field="text")
    if not split_words(text):
        raise DataError(
            f"item {str(item_id)!r}: text {text!r} has no word to speak (only punctuation or symbols); the "
            "engine would give a silent clip",
            path=path,
            line=line,
            field="text",
        )
    choices = record.get("choices")
    if choices is not None and (
        not isinstance(choices, list)
        or not 2 <= len(choices) <= 26
        or not all(isinstance(c, str) and c.strip() for c in choices)
    ):
        raise DataError(
            "choices must be a list of 2 to 26 non-empty strings", path=path, line=line, field="choices"
        )
    for index, choice in enumerate(choices or []):
        check_text(choice, path=path, line=line, field=f"choices[{index}]")
    # the options the item is read with: its choices, or the options its text already lists
    listed = split_options(text) if not choices else None
    n_options = len(choices) if choices else (len(listed[1]) if listed is not None else None)
    answer = record.get("answer")
    if isinstance(answer, int) and not isinstance(answer, bool):
        if not n_options or not 0 <= answer < n_options:
            raise DataError(
                f"answer index {answer} does not name one of the choices",
                path=path,
                line=line,
                field="answer",
            )
        answer = option_letter(answer)
    elif answer is not None and not isinstance(answer, str):
        raise DataError(
            f"answer must be a string or an option index, got {answer!r}",
            path=path,
            line=line,
            field="answer",
        )
    elif answer is not None:
        check_text(answer, path=path, line=line, field="answer")
        problem = _answer_problem(answer, n_options) if n_options else None
        if problem is not None:
            raise DataError(problem, path=path, line=line, field="answer")
    subset = record.get("subset")
    if subset is not None and not isinstance(subset, str):
        raise DataError(f"subset must be a string, got {subset!r}", path=path, line=line, field="subset")
    if subset is not None:
        check_text(subset, path=path, line=line, field="subset")
    # An input "meta" object is merged (not nested); every other extra field is carried as is.
    meta = dict(record["meta"]) if isinstance(record.get("meta"), dict) else {}
    meta.update({key: value for key, value in record.items() if key not in (*_RESERVED_FIELDS, "meta")})
    check_nested_text(meta, path=path, line=line, field="meta")
    return TextItem(str(item_id), text, choices, answer, subset, meta, f"{path}:{line}")


def read_items(source: str | Path | Iterable[Mapping[str, Any]]) -> list[TextItem]:
    """Validate and load input items from a JSONL file or from dicts, checking every item first.

    Raises:
        DataError: the file is missing or empty; a line is not a JSON object; a line lacks ``id`` or
            ``text`` or has a bad field (a control character other than tab and line breaks, or a lone
            surrogate, in a text field; a text with no word to speak; an answer that names none of the
            options); two items share an id (both lines named). The file, line and field are named.
    """
    items: list[TextItem] = []
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DataError("input file not found", path=path)
        for line, record in read_jsonl(path, skip_torn_tail=False):
            items.append(_parse_item(record, path=str(path), line=line))
        if not items:
            raise DataError("the input file has no items (expected one JSON object per line)", path=path)
    else:
        for index, record in enumerate(source, start=1):
            if not isinstance(record, Mapping):
                raise DataError(f"expected a dict, got {type(record).__name__}", path="<items>", line=index)
            items.append(_parse_item(dict(record), path="<items>", line=index))
        if not items:
            raise DataError("no items to synthesize", path="<items>")
    seen: dict[str, TextItem] = {}
    files: dict[str, TextItem] = {}
    for item in items:
        if item.id in seen:
            raise DataError(
                f"duplicate id {item.id!r} (first at {seen[item.id].where})", path=item.where, field="id"
            )
        seen[item.id] = item
        name = audio_filename(item.id).lower()  # case-insensitive file systems
        if name in files:
            raise DataError(
                f"ids {item.id!r} and {files[name].id!r} differ only in case and would share an audio file",
                path=item.where,
                field="id",
            )
        files[name] = item
    return items


@dataclass(frozen=True)
class _Task:
    item_id: str
    spoken: str
    voice: Voice


def _render(engine: TTSEngine, task: _Task) -> Utterance:
    """Speak one item and bring it to 16 kHz mono float32."""
    import soxr

    try:
        utterance = engine.synthesize(task.spoken, task.voice)
    except SpeechgapError:
        raise
    except Exception as err:
        raise ModelError(
            f"engine {engine.name} failed on item {task.item_id!r}: {type(err).__name__}: {err}"
        ) from err
    audio = np.asarray(utterance.audio, dtype=np.float32).reshape(-1)
    if not np.any(audio):
        raise ModelError(
            f"engine {engine.name} gave a silent clip ({len(audio) / utterance.sample_rate:.3f} s) for item "
            f"{task.item_id!r}: {task.spoken[:80]!r}"
        )
    if utterance.sample_rate != SAMPLE_RATE:
        audio = soxr.resample(audio, utterance.sample_rate, SAMPLE_RATE).astype(np.float32)
    duration = len(audio) / SAMPLE_RATE
    # 0.1 ms resolution, rounded down so that no time passes the end of the resampled clip.
    word_times = [
        (w, math.floor(min(float(s), duration) * 1e4) / 1e4, math.floor(min(float(e), duration) * 1e4) / 1e4)
        for w, s, e in utterance.word_times
    ]
    return Utterance(audio, SAMPLE_RATE, word_times, dict(utterance.info))


_WORKER_ENGINE: TTSEngine | None = None
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent_pid: int) -> None:
    """End this worker process when the run that started it ends, even by SIGKILL (no cleanup runs there).

    On Linux the kernel sends SIGKILL to the worker when its parent dies (``prctl(PR_SET_PDEATHSIG)``);
    elsewhere a daemon thread checks the parent pid twice a second. A parent that died before this ran is
    caught by comparing the pid.
    """
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if not armed:

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, name="speechgap-parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(engine: TTSEngine, parent_pid: int | None = None) -> None:
    global _WORKER_ENGINE
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    _WORKER_ENGINE = engine


def _render_in_worker(task: _Task) -> Utterance:
    assert _WORKER_ENGINE is not None
    return _render(_WORKER_ENGINE, task)


def _wav_bytes(audio: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1.0, 32767 / 32768), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _filter_settings(quality_filter: QualityFilter | None) -> dict[str, Any] | None:
    if quality_filter is None:
        return None
    return getattr(quality_filter, "settings", None) or {
        "name": getattr(quality_filter, "__qualname__", repr(quality_filter))
    }


def _resolve_workers(workers: int | None, pending: int) -> int:
    if workers is None:
        return 1 if pending < _MIN_ITEMS_FOR_POOL else max(1, min(os.cpu_count() or 1, 8))
    if workers < 0:
        raise ConfigError(f"argument 'workers' must be >= 0, got {workers}")
    return max(1, workers)


def synthesize(
    items_or_path: str | Path | Iterable[Mapping[str, Any]],
    out_dir: str | Path,
    *,
    voices: VoiceBank | int | None = None,
    seed: int = 0,
    engine: TTSEngine | None = None,
    workers: int | None = None,
    quality_filter: QualityFilter | None = None,
    progress: bool = True,
) -> Path:
    """Speak every item with a speaker from the bank; write WAVs and a manifest ``speechgap.data`` loads.

    Args:
        items_or_path: a JSONL file of items (``id``, ``text``, optional ``choices``, ``answer``,
            ``subset``, anything else goes to ``meta``) or the items as dicts.
        out_dir: the output folder (created; an earlier run there is resumed).
        voices: the speakers: a :class:`VoiceBank`, an int ``N`` (N speakers of the engine's full bank,
            chosen by ``seed``), or None (the full bank).
        seed: chooses speakers: item -> speaker is ``hash(seed, item id)``, independent of item order.
        engine: the TTS engine; default :class:`speechgap.synthesis.espeak.EspeakEngine`.
        workers: processes; None = one per core (max 8) when there are >= 64 items to do, else 1.
            Engines must be picklable to run in worker processes.
        quality_filter: ``filter(audio, sample_rate, spoken_text) -> (keep, info)``, e.g.
            :func:`speechgap.synthesis.quality.asr_wer_filter`; off by default.
        progress: show a tqdm progress bar.

    Returns:
        the path of ``manifest.jsonl``.

    Raises:
        DataError: bad input (nothing is written). ConfigError: ``out_dir`` holds a run made with other
        settings. ModelError: the engine failed (finished items stay done; rerun to resume).
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ConfigError(f"argument 'workers' must be a whole number >= 0, got {workers!r}")
    items = read_items(items_or_path)
    if engine is None:
        from speechgap.synthesis.espeak import EspeakEngine

        engine = EspeakEngine()
    if voices is None or isinstance(voices, int):
        bank = VoiceBank.from_engine(engine)
        if isinstance(voices, int):
            if not 1 <= voices <= len(bank):
                raise ConfigError(
                    f"argument 'voices' must be between 1 and {len(bank)} (the bank's size), got {voices}"
                )
            bank = bank.sample(voices, seed)
    else:
        bank = voices
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="synthesize"):
        for folder in (out_dir, out_dir / "audio"):
            remove_stale_temp_files(folder)
        settings = {
            "engine": engine.name,
            "seed": seed,
            "sample_rate": SAMPLE_RATE,
            "speakers": bank.ids,
            "voice_bank": bank.describe(),
            "quality_filter": _filter_settings(quality_filter),
        }
        _check_same_settings(out_dir / "synthesis.json", settings)
        source = str(items_or_path) if isinstance(items_or_path, (str, Path)) else "<items>"
        engine_info = engine.describe()
        atomic_write_json(
            out_dir / "synthesis.json",
            {
                **provenance(
                    model=engine_info, data={"input": source, "num_items": len(items)}, settings=settings
                ),
                "status": "running",
            },
        )

        renderings = {item.id: render_item(item.text, item.choices) for item in items}
        with JsonlAppender(out_dir / "progress.jsonl", key=lambda record: record["id"]) as log:
            _check_unchanged(out_dir / "progress.jsonl", renderings, bank, seed)
            pending = [item for item in items if not log.done(item.id)]
            resumed = len(items) - len(pending)
            tasks = [
                _Task(item.id, renderings[item.id].spoken, bank.assign(item.id, seed)) for item in pending
            ]
            n_workers = _resolve_workers(workers, len(tasks))
            bar = tqdm(
                total=len(items), initial=resumed, desc="synthesize", unit="item", disable=not progress
            )
            rendered = _render_all(engine, tasks, n_workers)
            try:
                for item, task, utterance in zip(pending, tasks, rendered, strict=False):
                    log.write(
                        _finish_item(
                            out_dir,
                            item,
                            task,
                            renderings[item.id].written,
                            utterance,
                            quality_filter,
                            engine,
                        )
                    )
                    bar.update(1)
            finally:
                rendered.close()  # stops the worker processes at once if the loop ended early
                bar.close()

        return _finalize(
            out_dir, items, engine_info, source, settings, resumed, len(tasks), n_workers, started
        )


def _render_all(engine: TTSEngine, tasks: list[_Task], workers: int) -> Iterator[Utterance]:
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield _render(engine, task)
        return
    executor = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)),
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(engine, os.getpid()),
    )
    finished = False
    try:
        chunksize = max(1, min(16, len(tasks) // (workers * 4)))
        yield from executor.map(_render_in_worker, tasks, chunksize=chunksize)
        finished = True
    except BrokenProcessPool as err:
        raise ModelError(
            f"worker processes for engine {engine.name} failed ({err}); an engine must be picklable to run "
            "in workers: set argument 'workers' to 1 otherwise"
        ) from err
    finally:
        if not finished:
            # an error, Ctrl-C or a consumer that stopped early: do not wait for the queued work
            _stop_workers(executor)
        executor.shutdown(wait=True, cancel_futures=True)


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()


def _finish_item(
    out_dir: Path,
    item: TextItem,
    task: _Task,
    written: str,
    utterance: Utterance,
    quality_filter: QualityFilter | None,
    engine: TTSEngine,
) -> dict[str, Any]:
    """Filter, write the WAV atomically, and return the progress record (the manifest line + status)."""
    keep, quality = True, None
    if quality_filter is not None:
        keep, quality = quality_filter(utterance.audio, utterance.sample_rate, task.spoken)
        quality = dict(quality)
    audio_rel = f"audio/{audio_filename(item.id)}"
    record: dict[str, Any] = {"id": item.id, "text": written, "audio": audio_rel}
    for name in ("answer", "choices", "subset"):
        if getattr(item, name) is not None:
            record[name] = getattr(item, name)
    record["speaker"] = task.voice.id
    record["word_times"] = [[w, s, e] for w, s, e in utterance.word_times]
    meta = dict(item.meta)
    meta.update(
        {"spoken_text": task.spoken, "duration_s": round(utterance.duration_s, 4), "tts_engine": engine.name}
    )
    if quality is not None:
        meta["quality"] = quality
    record["meta"] = meta
    if keep:
        atomic_write_bytes(out_dir / audio_rel, _wav_bytes(utterance.audio))
    record["status"] = "kept" if keep else "dropped"
    return record


def _check_same_settings(path: Path, settings: dict[str, Any]) -> None:
    if not path.exists():
        return
    import json

    try:
        earlier = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return  # unreadable: the per-item checks below still protect the log
    changed = [key for key in settings if earlier.get(key) != settings[key]]
    if changed:
        raise ConfigError(
            f"{path.parent} holds a run with other settings ({', '.join(changed)} differ); "
            "resume with the same settings or give another folder as argument 'out_dir'"
        )


def _check_unchanged(log_path: Path, renderings: Mapping[str, Any], bank: VoiceBank, seed: int) -> None:
    """An item finished earlier must have the same spoken text and speaker now."""
    for line, record in read_jsonl(log_path, skip_torn_tail=False):
        rendering = renderings.get(record.get("id"))
        if rendering is None:
            continue
        if record.get("meta", {}).get("spoken_text") != rendering.spoken:
            raise DataError(
                f"item {record['id']!r} changed since it was synthesized in this folder; "
                "give another folder as argument 'out_dir' or delete its line from the log",
                path=log_path,
                line=line,
            )
        if record.get("speaker") != bank.assign(record["id"], seed).id:
            raise ConfigError(
                f"item {record['id']!r} was spoken by another speaker in {log_path} (line {line})"
            )


def _finalize(
    out_dir: Path,
    items: list[TextItem],
    engine_info: dict[str, Any],
    source: str,
    settings: dict[str, Any],
    resumed: int,
    synthesized: int,
    workers: int,
    started: float,
) -> Path:
    """Write manifest.jsonl (kept items, input order), dropped.jsonl and the final synthesis.json."""
    records = {
        record["id"]: record for _, record in read_jsonl(out_dir / "progress.jsonl", skip_torn_tail=False)
    }
    kept, dropped = [], []
    for item in items:
        record = dict(records[item.id])
        status = record.pop("status")
        if status == "kept":
            kept.append(record)
        else:
            quality = record.get("meta", {}).get("quality") or {}
            dropped.append(
                {
                    "id": item.id,
                    "speaker": record.get("speaker"),
                    "spoken_text": record["meta"]["spoken_text"],
                    **quality,
                }
            )
    manifest = out_dir / "manifest.jsonl"
    atomic_write_text(manifest, "".join(dumps_record(record) + "\n" for record in kept))
    if settings["quality_filter"] is not None:
        atomic_write_text(
            out_dir / "dropped.jsonl", "".join(dumps_record(record) + "\n" for record in dropped)
        )
    audio_s = sum(record["meta"]["duration_s"] for record in kept)
    counts = {
        "items": len(items),
        "kept": len(kept),
        "dropped": len(dropped),
        "synthesized_this_run": synthesized,
        "resumed": resumed,
        "audio_seconds": round(audio_s, 2),
        "workers": workers,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    atomic_write_json(
        out_dir / "synthesis.json",
        {
            **provenance(
                model=engine_info, data={"input": source, "num_items": len(items)}, settings=settings
            ),
            "status": "complete",
            "counts": counts,
        },
    )
    return manifest
