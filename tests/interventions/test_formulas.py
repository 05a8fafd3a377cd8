"""The intervention formulas on hand-made tensors: angle, length, critical tokens, calibration, redundancy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError
from speechgap.interventions import (
    CalibrationStats,
    RunningMoments,
    angle_projection,
    calibrate,
    check_disjoint,
    critical_tokens,
    critical_tokens_from_similarity,
    length_normalization,
    repeat_words,
    repeat_words_dataset,
    split_for_calibration,
)
from speechgap.interventions.redundancy import parse_repeats


def test_angle_projection_takes_text_direction_and_keeps_speech_norm():
    speech = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0]])
    text = torch.tensor([[0.0, 10.0, 0.0], [1.0, 1.0, 0.0]])
    out = angle_projection(speech, text)
    # by hand: norm 5 along (0, 1, 0); norm 2 along (1, 1, 0) / sqrt(2)
    expected = torch.tensor([[0.0, 5.0, 0.0], [2**0.5, 2**0.5, 0.0]])
    torch.testing.assert_close(out, expected)


def test_angle_and_length_properties_on_random_rows():
    generator = torch.Generator().manual_seed(0)
    speech = torch.randn(7, 16, generator=generator, dtype=torch.float64) * 3
    text = torch.randn(7, 16, generator=generator, dtype=torch.float64) * 0.5
    angle = angle_projection(speech, text)
    torch.testing.assert_close(angle.norm(dim=1), speech.norm(dim=1))
    cos = torch.nn.functional.cosine_similarity(angle, text, dim=1)
    torch.testing.assert_close(cos, torch.ones(7, dtype=torch.float64))
    length = length_normalization(speech, text)
    torch.testing.assert_close(length.norm(dim=1), text.norm(dim=1))
    cos = torch.nn.functional.cosine_similarity(length, speech, dim=1)
    torch.testing.assert_close(cos, torch.ones(7, dtype=torch.float64))


def test_length_normalization_by_hand_and_zero_rows_left_alone():
    speech = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    text = torch.tensor([[0.0, 10.0], [1.0, 0.0]])
    out = length_normalization(speech, text)
    torch.testing.assert_close(out, torch.tensor([[6.0, 8.0], [0.0, 0.0]]))
    # a zero text row has no direction: angle projection leaves the speech row as it was
    out = angle_projection(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0]]))


def test_formulas_keep_dtype_and_refuse_mismatched_shapes():
    speech = torch.randn(3, 8).to(torch.bfloat16)
    assert angle_projection(speech, torch.randn(3, 8)).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="same shape"):
        length_normalization(torch.randn(3, 8), torch.randn(2, 8))


def _brute_force_critical(sim: np.ndarray, k: int | None) -> list[tuple[int, int]]:
    """Argmax path, best token per frame, k lowest scores: written as plain loops."""
    best: dict[int, tuple[float, int]] = {}
    for j in range(sim.shape[1]):
        i = int(np.argmax(sim[:, j]))
        score = float(sim[i, j])
        if i not in best or score > best[i][0] or (score == best[i][0] and j < best[i][1]):
            best[i] = (score, j)
    frames = sorted(best, key=lambda i: (best[i][0], i))
    if k is not None:
        frames = frames[:k]
    return sorted((i, best[i][1]) for i in frames)


def test_bottom_k_on_a_constructed_similarity_matrix():
    # 6 frames x 5 tokens; column maxima: token0 -> frame1 (0.9), token1 -> frame3 (0.2),
    # token2 -> frame3 (0.6), token3 -> frame5 (0.4), token4 -> frame0 (0.3)
    sim = np.full((6, 5), -0.5)
    sim[1, 0], sim[3, 1], sim[3, 2], sim[5, 3], sim[0, 4] = 0.9, 0.2, 0.6, 0.4, 0.3
    chosen = critical_tokens_from_similarity(sim, path="argmax", critical="bottom-k", k=3)
    # frame 3 is paired with tokens 1 and 2: it keeps the better one (token 2, 0.6)
    # frame scores: 0 -> 0.3, 1 -> 0.9, 3 -> 0.6, 5 -> 0.4; the 3 lowest: frames 0, 5, 3
    assert chosen.frames.tolist() == [0, 3, 5]
    assert chosen.tokens.tolist() == [4, 2, 3]
    np.testing.assert_allclose(chosen.scores, [0.3, 0.6, 0.4])
    every = critical_tokens_from_similarity(sim, path="argmax", critical="all")
    assert every.frames.tolist() == [0, 1, 3, 5]
    assert every.tokens.tolist() == [4, 0, 2, 3]


@pytest.mark.parametrize("k", [1, 2, 3, 10, None])
def test_critical_tokens_equal_brute_force_on_random_states(k):
    rng = np.random.default_rng(k or 0)
    speech, text = rng.standard_normal((9, 6)), rng.standard_normal((7, 6))
    chosen = critical_tokens(speech, text, critical="all" if k is None else "bottom-k", k=k or 3)
    unit_s = speech / np.linalg.norm(speech, axis=1, keepdims=True)
    unit_t = text / np.linalg.norm(text, axis=1, keepdims=True)
    expected = _brute_force_critical(unit_s @ unit_t.T, k)
    assert list(zip(chosen.frames.tolist(), chosen.tokens.tolist(), strict=True)) == expected


def test_dtw_critical_frames_lie_on_the_dtw_path():
    from speechgap.metrics import dtw_path

    rng = np.random.default_rng(3)
    sim = rng.uniform(-1, 1, size=(8, 4))
    chosen = critical_tokens_from_similarity(sim, path="dtw", critical="all")
    on_path = {(i, j) for i, j in dtw_path(sim).tolist()}
    frames_on_path = sorted({i for i, _ in on_path})
    assert chosen.frames.tolist() == frames_on_path  # every frame of the path, once
    for frame, token, score in zip(chosen.frames, chosen.tokens, chosen.scores, strict=True):
        candidates = [sim[i, j] for i, j in on_path if i == frame]
        assert (frame, token) in on_path and score == max(candidates)


def test_critical_settings_are_validated():
    with pytest.raises(ConfigError, match="argument 'critical' must be one of .*, got 'top'"):
        critical_tokens_from_similarity(np.eye(3), critical="top")
    with pytest.raises(ConfigError, match="argument 'path' must be one of .*, got 'viterbi'"):
        critical_tokens_from_similarity(np.eye(3), path="viterbi")
    with pytest.raises(ConfigError, match="argument 'k' must be >= 1"):
        critical_tokens_from_similarity(np.eye(3), k=0)


def _stats(speech: np.ndarray, text: np.ndarray, layer: int = 0) -> CalibrationStats:
    return CalibrationStats(
        layer=layer,
        speech_mean=speech.mean(0),
        speech_std=speech.std(0),
        text_mean=text.mean(0),
        text_std=text.std(0),
        speech_count=len(speech),
        text_count=len(text),
        sample_ids=["a", "b"],
    )


def test_calibrated_speech_has_the_text_mean_and_std_per_dimension():
    rng = np.random.default_rng(1)
    speech = rng.normal(3.0, 5.0, size=(200, 6)) * np.arange(1, 7)
    text = rng.normal(-1.0, 0.2, size=(50, 6))
    stats = _stats(speech, text)
    out = calibrate(torch.from_numpy(speech), stats, eps=0.0).numpy()
    np.testing.assert_allclose(out.mean(0), text.mean(0), atol=1e-10)
    np.testing.assert_allclose(out.std(0), text.std(0), rtol=1e-10)
    # the formula itself, element by element, with eps
    x = torch.from_numpy(speech[:3]).float()
    got = calibrate(x, stats, eps=0.5).double().numpy()
    want = (speech[:3] - speech.mean(0)) / (speech.std(0) + 0.5) * text.std(0) + text.mean(0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert calibrate(x, stats).dtype == torch.float32


def test_streaming_moments_equal_one_shot_numpy():
    rng = np.random.default_rng(2)
    blocks = [rng.normal(1e3, 1.0, size=(n, 5)).astype(np.float32) for n in (1, 7, 0, 30, 2)]
    moments = RunningMoments(5)
    for block in blocks:
        moments.update(block)
    everything = np.concatenate(blocks).astype(np.float64)
    assert moments.count == len(everything)
    np.testing.assert_allclose(moments.mean, everything.mean(0), rtol=1e-14)
    np.testing.assert_allclose(moments.std, everything.std(0), rtol=1e-10)
    with pytest.raises(ConfigError, match="no rows"):
        _ = RunningMoments(3).std


def test_calibration_stats_roundtrip_through_safetensors(tmp_path):
    rng = np.random.default_rng(4)
    stats = _stats(rng.standard_normal((10, 4)), rng.standard_normal((6, 4)), layer=3)
    path = stats.save(tmp_path / "stats.safetensors")
    loaded = CalibrationStats.load(path)
    assert loaded.layer == 3 and loaded.sample_ids == ["a", "b"]
    assert (loaded.speech_count, loaded.text_count) == (10, 6)
    for name in ("speech_mean", "speech_std", "text_mean", "text_std"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stats, name))
    assert loaded.fingerprint() == stats.fingerprint()
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(DataError, match="bad.safetensors"):
        CalibrationStats.load(tmp_path / "bad.safetensors")


def _memory_dataset(n: int) -> PairedDataset:
    samples = [
        PairedSample(id=f"x{i}", text=f"word{i} two", audio=np.zeros(160, np.float32)) for i in range(n)
    ]
    return PairedDataset.from_samples(samples, {"loader": "memory"})


def test_calibration_split_is_disjoint_seeded_and_overlap_is_refused():
    data = _memory_dataset(10)
    calibration, evaluation = split_for_calibration(data, 0.3, seed=5)
    assert len(calibration) == 3 and len(evaluation) == 7
    assert set(calibration.ids).isdisjoint(evaluation.ids)
    assert sorted(calibration.ids + evaluation.ids) == sorted(data.ids)
    again, _ = split_for_calibration(data, 0.3, seed=5)
    assert again.ids == calibration.ids
    other, _ = split_for_calibration(data, 0.3, seed=6)
    assert other.ids != calibration.ids
    assert evaluation.source["split_part"] == "evaluation"
    with pytest.raises(ConfigError, match=r"share 2 sample id\(s\).*'x1'"):
        check_disjoint(["x1", "x4", "zz"], ["x4", "x1", "x2"])
    with pytest.raises(ConfigError, match=r"argument 'fraction' must be in \(0, 1\), got 1.0"):
        split_for_calibration(data, 1.0)


def test_repeat_words_repeats_each_word_and_keeps_lines():
    text = "What colour is the fox?\nA. red\nB.  blue"
    assert repeat_words(text, 1) == "What colour is the fox?\nA. red\nB. blue"
    doubled = repeat_words(text, 2)
    assert doubled == "What What colour colour is is the the fox? fox?\nA. A. red red\nB. B. blue blue"
    for r in (1, 2, 4, 8):
        out = repeat_words(text, r)
        assert out.count("\n") == text.count("\n")
        assert len(out.split()) == r * len(text.split())
    with pytest.raises(ConfigError, match="argument 'r'"):
        repeat_words(text, 0)


def test_repeat_words_dataset_rewrites_text_only_and_leaves_the_original():
    data = _memory_dataset(3)
    repeated = repeat_words_dataset(data, 4)
    assert repeated.ids == data.ids
    assert repeated[1].text == "word1 word1 word1 word1 two two two two"
    assert data[1].text == "word1 two"  # the in-memory original is not modified
    assert repeated.source["repeats"] == 4 and repeated.source["transform"] == "repeat_words"
    assert parse_repeats("8,2") == (1, 2, 8)
    with pytest.raises(ConfigError, match="argument 'repeats' must be comma-separated integers, got '1,x'"):
        parse_repeats("1,x")
