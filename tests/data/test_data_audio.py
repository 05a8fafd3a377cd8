"""Audio normalisation: formats, resampling (checked by signal properties), downmix, PCM scaling, errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_samples import pcm16_reference, tone, wav_bytes

from speechgap.data.audio import SILENCE_PEAK, load_audio, write_wav
from speechgap.data.types import SAMPLE_RATE
from speechgap.errors import DataError


def dominant_hz(audio: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sr)[np.argmax(spectrum)])


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def test_wav_16k_mono_is_read_unchanged(tmp_path: Path):
    original = tone(440, 16000)
    sf.write(tmp_path / "a.wav", original, 16000, subtype="PCM_16")
    audio = load_audio(tmp_path / "a.wav")
    assert audio.dtype == np.float32 and audio.shape == original.shape
    np.testing.assert_array_equal(audio, pcm16_reference(tmp_path / "a.wav"))


@pytest.mark.parametrize(
    ("fmt", "subtype", "sr", "freq"),
    [
        ("FLAC", "PCM_16", 44100, 1000.0),
        ("OGG", "VORBIS", 22050, 660.0),
        ("MP3", "MPEG_LAYER_III", 24000, 500.0),
    ],
)
def test_resampled_formats_keep_length_frequency_and_energy(tmp_path: Path, fmt, subtype, sr, freq):
    original = tone(freq, sr, seconds=0.5)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, original, sr, format=fmt, subtype=subtype)
    audio = load_audio(path)
    expected_len = len(sf.read(path)[0]) * SAMPLE_RATE / sr
    assert abs(len(audio) - expected_len) <= 1
    bin_hz = SAMPLE_RATE / len(audio)
    assert abs(dominant_hz(audio) - freq) <= bin_hz
    # Away from the edges, a band-limited sine keeps its RMS through resampling (lossy codecs: 10%).
    middle = slice(len(audio) // 4, 3 * len(audio) // 4)
    tolerance = 0.02 if fmt == "FLAC" else 0.1
    assert rms(audio[middle]) == pytest.approx(0.3 / np.sqrt(2), rel=tolerance)


def test_stereo_is_downmixed_by_channel_mean(tmp_path: Path):
    left, right = tone(440, 16000), tone(880, 16000, amplitude=0.1)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    audio = load_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(audio, (left + right) / 2, atol=1e-7)


def test_resampling_attenuates_content_above_the_new_nyquist(tmp_path: Path):
    # 12 kHz cannot exist at 16 kHz: a proper resampler removes it instead of aliasing it to 4 kHz.
    mix = tone(1000, 48000, seconds=0.5) + tone(12000, 48000, seconds=0.5)
    audio = load_audio((mix, 48000))
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    alias = spectrum[np.abs(freqs - 4000) < 50].max()
    kept = spectrum[np.abs(freqs - 1000) < 50].max()
    assert alias < 1e-3 * kept


def test_bytes_path_tuple_and_dicts_agree(tmp_path: Path):
    original = tone(523, 22050)
    data = wav_bytes(original, 22050, subtype="FLOAT")
    (tmp_path / "x.wav").write_bytes(data)
    from_path = load_audio(tmp_path / "x.wav")
    for source in (
        data,
        (original, 22050),
        {"array": original, "sampling_rate": 22050},
        {"bytes": data, "path": "x.wav"},
        {"bytes": None, "path": str(tmp_path / "x.wav")},
    ):
        np.testing.assert_allclose(load_audio(source), from_path, atol=1e-6)
    np.testing.assert_allclose(load_audio(original, 22050), from_path, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_integer_pcm_is_scaled_to_unit_range(dtype):
    info = np.iinfo(dtype)
    floats = tone(440, 16000, amplitude=0.5)
    if info.min < 0:
        ints = np.round(floats * (info.max + 1)).astype(dtype)
        expected = ints.astype(np.float64) / (info.max + 1)
    else:
        half = (info.max + 1) // 2
        ints = np.round(floats * half + half).astype(dtype)
        expected = (ints.astype(np.float64) - half) / half
    audio = load_audio((ints, 16000))
    np.testing.assert_allclose(audio, expected, atol=1e-7)
    assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=2 / (info.max + 1))


class FakeSamples:
    def __init__(self, data, sample_rate):
        self.data, self.sample_rate = data, sample_rate


class FakeDecoder:
    """The shape of torchcodec's AudioDecoder as datasets >= 4 returns it: get_all_samples() -> .data
    (a torch tensor, channels x samples) and .sample_rate."""

    def __init__(self, data, sample_rate):
        self._samples = FakeSamples(data, sample_rate)

    def get_all_samples(self):
        return self._samples


def test_decoder_objects_are_duck_typed():
    import torch

    stereo = np.stack([tone(700, 22050), tone(700, 22050, amplitude=0.2)])
    audio = load_audio(FakeDecoder(torch.from_numpy(stereo), 22050))
    np.testing.assert_allclose(audio, load_audio((stereo.mean(axis=0), 22050)), atol=1e-7)
    assert abs(len(audio) - stereo.shape[1] * 16000 / 22050) <= 1


def test_missing_and_corrupt_files_name_the_file(tmp_path: Path):
    with pytest.raises(DataError, match="nope.wav.*not found"):
        load_audio(tmp_path / "nope.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really a wav file at all")
    with pytest.raises(DataError, match="bad.wav.*cannot decode"):
        load_audio(tmp_path / "bad.wav")
    with pytest.raises(DataError, match="row 3.*cannot decode"):
        load_audio({"bytes": b"garbage", "path": "x.wav"}, where="row 3")


def test_empty_nan_inf_and_silent_audio_are_rejected_with_the_label():
    label = "voicebench/mmsu row 17, column 'audio'"
    with pytest.raises(DataError, match="empty"):
        load_audio((np.zeros(0, np.float32), 16000), where=label)
    bad = tone(440, 16000)
    bad[10] = np.nan
    with pytest.raises(DataError, match=r"row 17.*1 NaN or infinite"):
        load_audio((bad, 16000), where=label)
    bad[10] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        load_audio((bad, 16000), where=label)
    quiet = tone(440, 16000, amplitude=SILENCE_PEAK * 0.5)
    with pytest.raises(DataError, match=r"row 17.*silent"):
        load_audio((quiet, 16000), where=label)
    # Just above the threshold is kept: quiet speech is not silence.
    assert load_audio((tone(440, 16000, amplitude=SILENCE_PEAK * 3), 16000)).size == 4000


def test_silent_empty_file_names_the_file(tmp_path: Path):
    sf.write(tmp_path / "zero.wav", np.zeros(1600, np.float32), 16000)
    with pytest.raises(DataError, match="zero.wav.*silent"):
        load_audio(tmp_path / "zero.wav")


def test_unsupported_sources_and_missing_rate():
    with pytest.raises(DataError, match="cannot read audio from a int"):
        load_audio(5)
    with pytest.raises(DataError, match="needs argument 'sample_rate'"):
        load_audio(tone(440, 16000))
    with pytest.raises(DataError, match="sample rate"):
        load_audio((tone(440, 16000), -3))
    with pytest.raises(DataError, match="no 'sampling_rate'"):
        load_audio({"array": tone(440, 16000)})


def test_write_wav_round_trips_and_is_atomic(tmp_path: Path):
    path = tmp_path / "out" / "x.wav"
    original = tone(440, 16000)
    write_wav(path, original)
    np.testing.assert_array_equal(load_audio(path), pcm16_reference(path))
    np.testing.assert_allclose(load_audio(path), original, atol=1 / 32767)
    before = path.read_bytes()
    with pytest.raises(DataError, match="NaN"):
        write_wav(path, np.full(100, np.nan, np.float32))
    assert path.read_bytes() == before  # nothing already written is lost
    assert os.listdir(path.parent) == ["x.wav"]  # no temporary files left behind
    write_wav(path, original, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), original, atol=1e-7)
