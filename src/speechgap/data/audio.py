"""Audio handling, in one place: every waveform that enters speechgap goes through :func:`load_audio`.

Whatever the source (a file, raw bytes, an ``(array, rate)`` pair, a ``datasets`` audio dict or the decoder
object ``datasets`` 4.x/5.x hands out), the result is the same: a float32 mono waveform of shape
``(n_samples,)`` at 16 kHz, with values in [-1, 1] (up to :data:`MAX_PEAK` for float input).

Rules, in order:

1. Decode. Files and bytes go through libsndfile (``soundfile``): WAV, FLAC, OGG/Vorbis/Opus, and MP3 with
   libsndfile >= 1.1. Integer PCM is scaled to [-1, 1) (int16 / 32768, int32 / 2**31, uint8 centred at 128).
2. Downmix: multichannel audio becomes the mean of its channels.
3. Reject empty audio and audio holding NaN or infinite samples (in any channel).
4. Reject audio louder than full scale: float audio (a float WAV, an array) whose peak absolute amplitude
   exceeds :data:`MAX_PEAK` (1.5, i.e. +3.5 dBFS) is **refused, not clipped**. Full scale is 1.0; the
   tolerance leaves room for the overshoot of lossy codecs and resamplers on loud recordings, while audio
   on another scale (integer PCM stored as float, peaks in the hundreds or thousands) would reach the
   model far outside anything it was trained on. Clipping it would hide the mistake; rescale the audio to
   [-1, 1] instead.
5. Reject silence: a peak absolute amplitude below :data:`SILENCE_PEAK` (1e-4, i.e. -80 dBFS).
6. Resample to 16 kHz with soxr (quality ``"HQ"``), never by dropping or repeating samples.

Every error is a :class:`~speechgap.errors.DataError` that names the file, or the ``where`` label the caller
gave (e.g. ``"voicebench/mmsu row 17, column 'audio'"``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.types import SAMPLE_RATE
from speechgap.errors import DataError
from speechgap.io import atomic_write_bytes

SILENCE_PEAK = 1e-4
"""Peak absolute amplitude (full scale = 1.0) below which a clip counts as silent: -80 dBFS."""

MAX_PEAK = 1.5
"""Peak absolute amplitude (full scale = 1.0) above which audio is refused: +3.5 dBFS (module rule 4)."""

RESAMPLE_QUALITY = "HQ"
"""soxr quality preset used for every sample-rate conversion."""


def load_audio(source: Any, sample_rate: int | None = None, *, where: str | None = None) -> np.ndarray:
    """Decode, check and normalise audio to float32 mono at 16 kHz.

    Args:
        source: one of
            - a path (``str`` or ``Path``) to a WAV/FLAC/OGG/MP3 file;
            - raw encoded bytes of such a file;
            - ``(array, sample_rate)``;
            - a numpy array (or torch tensor), with ``sample_rate`` given;
            - a ``datasets`` audio dict: ``{"array", "sampling_rate"}`` or ``{"bytes", "path"}``;
            - a decoder object as ``datasets`` >= 4 returns for an ``Audio()`` column (anything with
              ``get_all_samples()`` returning an object with ``.data`` of shape ``(channels, samples)`` and
              ``.sample_rate``), or any object with ``.array`` and ``.sampling_rate``.
        sample_rate: Hz of a bare array; ignored for sources that carry their own rate.
        where: a label for error messages, e.g. ``"manifest.jsonl:12, field 'audio'"``.

    Returns:
        float32 array of shape ``(n_samples,)`` at :data:`~speechgap.data.types.SAMPLE_RATE` Hz.

    Raises:
        DataError: missing or undecodable file, empty, NaN/inf, louder than :data:`MAX_PEAK` or silent audio,
            or an unknown source type.

    A 2-D array is read as ``(samples, channels)`` or ``(channels, samples)``: its shorter axis is taken as
    the channel axis.
    """
    samples, rate, label = _decode(source, sample_rate, where)
    return normalize_audio(samples, rate, where=label)


def normalize_audio(samples: np.ndarray, sample_rate: int, *, where: str = "audio") -> np.ndarray:
    """Check and normalise an already decoded waveform (rules 2-5 of the module docstring).

    Args:
        samples: shape ``(n,)``, ``(n, channels)`` or ``(channels, n)``; float or integer PCM.
        sample_rate: Hz.
        where: label for error messages.

    Returns:
        float32 array of shape ``(n_samples,)`` at 16 kHz.
    """
    audio = _to_float(np.asarray(samples), where)
    if audio.ndim == 2:
        channel_axis = 0 if audio.shape[0] < audio.shape[1] else 1
        audio = audio.mean(axis=channel_axis, dtype=np.float64).astype(np.float32)
    elif audio.ndim != 1:
        raise DataError(f"expected a 1-D or 2-D waveform, got shape {audio.shape}", path=where)
    if audio.size == 0:
        raise DataError("audio is empty (0 samples)", path=where)
    if not np.all(np.isfinite(audio)):
        bad = int(np.count_nonzero(~np.isfinite(audio)))
        raise DataError(
            f"audio holds {bad} NaN or infinite samples (a broken float file?); they would make every hidden "
            "state NaN",
            path=where,
        )
    peak = float(np.max(np.abs(audio)))
    if peak > MAX_PEAK:
        hint = (
            " (it looks like 16-bit integer PCM stored as float: divide it by 32768)"
            if 100.0 < peak <= 32768.0 * 1.001
            else ""
        )
        raise DataError(
            f"audio is louder than full scale: peak amplitude {peak:.4g} exceeds {MAX_PEAK:g} (full scale is "
            f"1.0, with room for codec overshoot); refused rather than clipped. Rescale the audio to [-1, 1]"
            + hint,
            path=where,
        )
    if peak < SILENCE_PEAK:
        raise DataError(
            f"audio is silent: peak amplitude {peak:.2e} is below the threshold {SILENCE_PEAK:g} (-80 dBFS)",
            path=where,
        )
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise DataError(
            f"argument 'sample_rate' must be a positive integer in Hz, got {sample_rate!r}", path=where
        )
    return resample(audio, int(sample_rate))


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a mono float waveform with soxr (HQ preset).

    Args:
        audio: shape ``(n,)``.
        orig_sr: its rate in Hz.
        target_sr: wanted rate in Hz (16 kHz by default).

    Returns:
        float32 array of shape ``(round(n * target_sr / orig_sr),)``.
    """
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if orig_sr == target_sr:
        return audio
    import soxr

    return np.ascontiguousarray(
        soxr.resample(audio, orig_sr, target_sr, quality=RESAMPLE_QUALITY), np.float32
    )


def write_wav(path: str | Path, audio: np.ndarray, sr: int = SAMPLE_RATE, *, subtype: str = "PCM_16") -> Path:
    """Write a mono waveform to a WAV file atomically (a reader never sees half a file).

    Args:
        path: destination; parent folders are created.
        audio: float waveform of shape ``(n,)`` with values in [-1, 1] (PCM subtypes clip outside).
        sr: sample rate in Hz.
        subtype: libsndfile subtype: ``"PCM_16"`` (default), ``"PCM_24"`` or ``"FLOAT"``.

    Returns:
        the path written.
    """
    import soundfile as sf

    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise DataError(f"write_wav expects a non-empty 1-D waveform, got shape {audio.shape}", path=path)
    if not np.all(np.isfinite(audio)):
        raise DataError("refusing to write audio holding NaN or infinite samples", path=path)
    if subtype.startswith("PCM"):
        audio = np.clip(audio, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, audio, int(sr), format="WAV", subtype=subtype)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _decode(source: Any, sample_rate: int | None, where: str | None) -> tuple[np.ndarray, int, str]:
    """Turn any supported source into ``(samples, rate, label)`` without normalising."""
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), where)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = where or "audio bytes"
        return (*_read_bytes(bytes(source), label), label)
    if isinstance(source, tuple) and len(source) == 2:
        array, rate = source
        return _as_array(array, where), _rate(rate, where), where or "audio array"
    if isinstance(source, Mapping):
        return _decode_dict(source, sample_rate, where)
    if hasattr(source, "get_all_samples"):
        label = where or "audio decoder"
        try:
            decoded = source.get_all_samples()
        except Exception as err:  # the decoder's own errors vary by backend
            raise DataError(f"the audio decoder failed: {err}", path=label) from err
        data = _as_array(getattr(decoded, "data", None), label)
        return data, _rate(getattr(decoded, "sample_rate", None), label), label
    if hasattr(source, "array") and hasattr(source, "sampling_rate"):
        label = where or "audio object"
        return _as_array(source.array, label), _rate(source.sampling_rate, label), label
    if isinstance(source, np.ndarray) or hasattr(source, "numpy"):
        label = where or "audio array"
        if sample_rate is None:
            raise DataError("a bare array needs argument 'sample_rate' (Hz)", path=label)
        return _as_array(source, label), _rate(sample_rate, label), label
    raise DataError(
        f"cannot read audio from a {type(source).__name__}; give a path, bytes, (array, sr), "
        "a datasets audio dict or decoder",
        path=where,
    )


def _decode_dict(source: Mapping, sample_rate: int | None, where: str | None) -> tuple[np.ndarray, int, str]:
    if source.get("array") is not None:
        label = where or "audio dict"
        rate = source.get("sampling_rate", sample_rate)
        if rate is None:
            raise DataError("audio dict has 'array' but no 'sampling_rate'", path=label)
        return _as_array(source["array"], label), _rate(rate, label), label
    if source.get("bytes") is not None:
        label = where or (f"audio bytes of {source['path']}" if source.get("path") else "audio bytes")
        return (*_read_bytes(bytes(source["bytes"]), label), label)
    if source.get("path") is not None:
        return _read_file(Path(source["path"]), where)
    raise DataError(
        "audio dict has none of 'array', 'bytes' or 'path' (or all are empty)", path=where or "audio dict"
    )


def _read_file(path: Path, where: str | None) -> tuple[np.ndarray, int, str]:
    import soundfile as sf

    label = where or str(path)
    if not path.is_file():
        raise DataError("audio file not found", path=label)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise DataError(f"cannot decode audio file: {err}", path=label) from None
    return _downmix_frames(samples), int(rate), label


def _read_bytes(data: bytes, label: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    if not data:
        raise DataError("audio bytes are empty", path=label)
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise DataError(f"cannot decode audio bytes: {err}", path=label) from None
    return _downmix_frames(samples), int(rate)


def _downmix_frames(samples: np.ndarray) -> np.ndarray:
    """soundfile's ``(frames, channels)`` to mono ``(frames,)`` by the channel mean."""
    if samples.shape[1] == 1:
        return samples[:, 0]
    return samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def _as_array(array: Any, label: str | None) -> np.ndarray:
    if array is None:
        raise DataError("no audio samples given", path=label)
    if hasattr(array, "detach"):  # torch tensor
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except (TypeError, ValueError) as err:
        raise DataError(f"audio samples are not numeric: {err}", path=label) from None


def _rate(rate: Any, label: str | None) -> int:
    try:
        value = int(rate)
    except (TypeError, ValueError):
        raise DataError(f"sample rate must be a positive integer in Hz, got {rate!r}", path=label) from None
    if value <= 0 or value != rate:
        raise DataError(f"sample rate must be a positive integer in Hz, got {rate!r}", path=label)
    return value


def _to_float(samples: np.ndarray, where: str) -> np.ndarray:
    """Integer PCM to float in [-1, 1); float input to float32 unchanged."""
    if samples.dtype.kind == "f":
        return samples.astype(np.float32, copy=False)
    if samples.dtype.kind == "i":
        scale = float(2 ** (8 * samples.dtype.itemsize - 1))
        return (samples.astype(np.float64) / scale).astype(np.float32)
    if samples.dtype.kind == "u":
        offset = float(2 ** (8 * samples.dtype.itemsize - 1))
        return ((samples.astype(np.float64) - offset) / offset).astype(np.float32)
    if samples.dtype.kind == "b":
        raise DataError("audio samples are booleans, not a waveform", path=where)
    raise DataError(f"audio samples have unsupported dtype {samples.dtype}", path=where)
