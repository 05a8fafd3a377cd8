"""The built-in engine: espeak-ng through its C library, shipped by the ``espeakng-loader`` wheel.

The C API (``speak_lib.h``) is bound with ctypes. Synthesis runs in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode: the
library calls our callback with 16-bit audio blocks at 22,050 Hz and a list of events; ``espeakEVENT_WORD``
events carry the word's 1-based character offset in the text and its start in milliseconds, from which
:mod:`speechgap.synthesis.timing` derives ``word_times``.

Determinism: espeak-ng keeps synthesis state in C globals (noise generators, filter memories) that carry
over from one utterance to the next, so speaking text B between two renderings of text A changes A's
samples. Each :meth:`EspeakEngine.synthesize` therefore loads the library afresh (``dlopen``), seeds its
random generators, speaks, and unloads it (``dlclose``): the same text and voice give bit-identical audio
in any order and in any process. Loading costs about a millisecond. If the same ``libespeak-ng`` is also
loaded by other code in the process, it is not unloaded and this guarantee is lost.

The library has global state, so calls are serialized by a lock; run several processes for parallelism.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.text import check_text
from speechgap.errors import ModelError
from speechgap.synthesis.engine import TTSEngine, Utterance, Voice
from speechgap.synthesis.timing import assign_events, split_words, word_times_from_starts

ENGLISH_BASES: tuple[str, ...] = (
    "en-us",
    "en",
    "en-gb-x-rp",
    "en-029",
    "en-gb-scotland",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
)
"""espeak-ng English accents (voice file names; "en" is British English); missing ones are left out."""

DEFAULT_VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4")
"""Voice variants (``espeak-ng-data/voices/!v``) that sound like ordinary adult speakers."""

NORMAL_RATE_WPM = 175  # espeakRATE_NORMAL
NORMAL_PITCH = 50  # espeakPITCH: 0-100, 50 = the voice's own pitch

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_NOT_FOUND = 2


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h (API revision 12); 40 bytes on 64-bit platforms."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character offset in the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the output
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)

_LOCK = threading.Lock()


def _default_paths() -> tuple[str, str]:
    try:
        import espeakng_loader
    except ImportError as err:
        raise ModelError(
            "the espeak-ng engine needs the 'espeakng-loader' package: pip install espeakng-loader"
        ) from err
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


class _Library:
    """One fresh load of libespeak-ng, initialized; use as a context manager (unloads on exit)."""

    def __init__(self, library_path: str, data_path: str) -> None:
        self.library_path = library_path
        self.data_path = data_path

    def __enter__(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(self.library_path, mode=os.RTLD_LOCAL)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        self._lib = lib
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            self._unload()
            raise ModelError(f"espeak-ng could not start with its data folder {self.data_path}")
        self.sample_rate = rate
        return lib

    def __exit__(self, *exc: object) -> None:
        self._lib.espeak_Terminate()
        self._unload()

    def _unload(self) -> None:
        handle = self._lib._handle
        self._lib = None  # type: ignore[assignment]
        try:
            import _ctypes

            _ctypes.dlclose(handle)
        except (ImportError, AttributeError, OSError):
            pass  # platforms without dlclose keep the library loaded


class EspeakEngine(TTSEngine):
    """espeak-ng: fast formant synthesis, many English accents and voice variants, word timings.

    Args:
        library_path: ``libespeak-ng`` to load; default: the one shipped with ``espeakng-loader``.
        data_path: the ``espeak-ng-data`` folder; default: the one shipped with ``espeakng-loader``.
        bases: espeak language voices to offer; default :data:`ENGLISH_BASES` (those present).
        variants: voice variants to cross them with; default :data:`DEFAULT_VARIANTS` (those present).
    """

    default_rates = (0.85, 1.0, 1.15)
    default_pitches = (0.8, 1.0, 1.2)

    def __init__(
        self,
        library_path: str | Path | None = None,
        data_path: str | Path | None = None,
        *,
        bases: tuple[str, ...] | None = None,
        variants: tuple[str, ...] | None = None,
    ) -> None:
        if library_path is None or data_path is None:
            default_library, default_data = _default_paths()
            library_path = library_path or default_library
            data_path = data_path or default_data
        self.library_path = str(library_path)
        self.data_path = str(data_path)
        if not Path(self.library_path).is_file():
            raise ModelError(f"espeak-ng library not found: {self.library_path}")
        if not Path(self.data_path, "phontab").is_file():
            raise ModelError(f"not an espeak-ng data folder (no phontab): {self.data_path}")
        self.bases = tuple(bases) if bases is not None else None
        self.variants = tuple(variants) if variants is not None else None

    @property
    def name(self) -> str:
        return "espeak-ng"

    @property
    def sample_rate(self) -> int:
        return 22_050

    def available_bases(self) -> list[str]:
        """Language voices present in the data folder (``espeak-ng-data/lang/**``, names lower-case)."""
        present = {file.name.lower() for file in Path(self.data_path, "lang").rglob("*") if file.is_file()}
        wanted = self.bases if self.bases is not None else ENGLISH_BASES
        return [base for base in wanted if base.lower() in present]

    def available_variants(self) -> list[str]:
        """Voice variants present in ``espeak-ng-data/voices/!v``."""
        folder = Path(self.data_path, "voices", "!v")
        present = {file.name for file in folder.iterdir()} if folder.is_dir() else set()
        wanted = self.variants if self.variants is not None else DEFAULT_VARIANTS
        return [variant for variant in wanted if variant in present]

    def voices(self) -> list[Voice]:
        return [
            Voice(f"{base}+{variant}")
            for base in self.available_bases()
            for variant in self.available_variants()
        ]

    def synthesize(self, text: str, voice: Voice) -> Utterance:
        """Speak ``text``; returns int16-scaled float32 audio at 22,050 Hz and word timings.

        Raises:
            DataError: ``text`` holds a NUL (espeak-ng would stop there, and the words after it would get
                timings of words never spoken) or a lone surrogate.
        """
        check_text(text, path=None, field="text", controls="nul")
        blocks: list[np.ndarray] = []
        events: list[tuple[int, float]] = []

        def on_audio(wav, n_samples, event_list) -> int:  # noqa: ANN001 (ctypes pointers)
            if wav and n_samples > 0:
                blocks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
            index = 0
            while event_list[index].type != _EVENT_LIST_TERMINATED:
                event = event_list[index]
                if event.type == _EVENT_WORD:
                    events.append((event.text_position - 1, event.audio_position / 1000.0))
                index += 1
            return 0

        callback = _SynthCallback(on_audio)
        encoded = text.encode("utf-8")
        with _LOCK, _Library(self.library_path, self.data_path) as lib:
            lib.espeak_SetSynthCallback(callback)
            status = lib.espeak_SetVoiceByName(voice.name.encode("utf-8"))
            if status != 0:
                reason = "no such voice" if status == _EE_NOT_FOUND else f"error {status}"
                raise ModelError(f"espeak-ng voice '{voice.name}': {reason}")
            lib.espeak_SetParameter(
                _PARAM_RATE, int(np.clip(round(NORMAL_RATE_WPM * voice.rate), 80, 450)), 0
            )
            lib.espeak_SetParameter(_PARAM_PITCH, int(np.clip(round(NORMAL_PITCH * voice.pitch), 0, 100)), 0)
            # Fixed seeds for espeak's own noise generator and libc rand() (used by the Klatt voices).
            lib.espeak_ng_SetRandSeed(ctypes.c_long(0))
            ctypes.CDLL(None).srand(ctypes.c_uint(0))
            status = lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != 0:
                raise ModelError(f"espeak-ng failed to speak the text (error {status}): {text[:80]!r}")
        samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int16)
        audio = samples.astype(np.float32) / 32768.0
        words = split_words(text)
        starts = assign_events(words, events)
        word_times = word_times_from_starts([w.word for w in words], starts, audio, self.sample_rate)
        return Utterance(audio, self.sample_rate, word_times, {"word_events": len(events)})

    def version(self) -> str:
        """espeak-ng's version string, e.g. ``"1.52.0"``."""
        with _LOCK, _Library(self.library_path, self.data_path) as lib:
            path = ctypes.c_char_p()
            return lib.espeak_Info(ctypes.byref(path)).decode()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version(),
            "sample_rate": self.sample_rate,
            "library_path": self.library_path,
            "data_path": self.data_path,
        }
