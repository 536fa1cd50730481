"""Tests for wenet_llm.data.augment."""

import random

import numpy as np
import pytest
import soundfile as sf
import torch

from wenet_llm.config.data import NoiseAugConfig, ReverbConfig, SpecAugConfig, SpeedPerturbConfig
from wenet_llm.data.augment import (
    NoiseSource,
    RirSource,
    add_noise,
    add_reverb,
    choose_speed,
    reverberate,
    spec_augment,
    spec_augment_masks,
    speed_perturb,
)

SR = 16000


def _tone(freq, n, level=0.3):
    return (level * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def _peak_freq(x):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * SR / len(x)


def _speech_like(n, seed, level=0.1):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = sum(np.sin(2 * np.pi * k * 130.0 * t) / k for k in range(1, 6))
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t)) + 0.05 * rng.standard_normal(n)
    return (x / np.sqrt(np.mean(x**2)) * level).astype(np.float32)


# --------------------------------------------------------------------------
# speed perturbation


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1, 0.95, 1.25])
def test_speed_changes_length_and_pitch(factor):
    n = 32000
    y = speed_perturb(_tone(500.0, n), SR, factor)
    assert y.dtype == np.float32
    assert abs(len(y) - n / factor) <= 1
    assert _peak_freq(y) == pytest.approx(500.0 * factor, abs=2.0)


def test_speed_one_is_identity_copy():
    x = _tone(300.0, 1000)
    y = speed_perturb(x, SR, 1.0)
    assert np.array_equal(x, y) and y is not x


def test_speed_rejects_bad_factor():
    with pytest.raises(ValueError):
        speed_perturb(_tone(300.0, 1000), SR, 0.0)


def test_choose_speed():
    cfg = SpeedPerturbConfig(enabled=True, factors=[0.9, 1.0, 1.1])
    picks = [choose_speed(cfg, random.Random(s)) for s in range(300)]
    assert set(picks) == {0.9, 1.0, 1.1}
    assert all(picks.count(f) > 60 for f in (0.9, 1.0, 1.1))
    assert choose_speed(cfg, random.Random(5)) == choose_speed(cfg, random.Random(5))
    assert choose_speed(cfg, np.random.default_rng(5)) in (0.9, 1.0, 1.1)
    assert choose_speed(SpeedPerturbConfig(enabled=False), random.Random(0)) == 1.0


# --------------------------------------------------------------------------
# SpecAugment


def test_spec_augment_masks_bounds():
    cfg = SpecAugConfig(num_t_mask=3, num_f_mask=2, max_t=20, max_f=7)
    for seed in range(200):
        tm, fm = spec_augment_masks(60, 80, cfg, random.Random(seed))
        assert len(tm) == 3 and len(fm) == 2
        for s, e in tm:
            assert 0 <= s < 60 and s < e <= 60 and e - s <= 20
        for s, e in fm:
            assert 0 <= s < 80 and s < e <= 80 and e - s <= 7
    # widths are clipped at T: a mask may start at the last frame
    starts = {spec_augment_masks(10, 80, cfg, random.Random(s))[0][0][0] for s in range(200)}
    assert starts == set(range(10))


def test_spec_augment_zeros_exactly_the_masked_rows_and_cols():
    cfg = SpecAugConfig(num_t_mask=2, num_f_mask=2, max_t=50, max_f=10)
    feats = torch.rand(120, 80) + 1.0  # strictly positive, so only masks make zeros
    orig = feats.clone()
    y = spec_augment(feats, cfg, random.Random(3))
    tm, fm = spec_augment_masks(120, 80, cfg, random.Random(3))
    expected = torch.ones(120, 80, dtype=torch.bool)  # True = kept
    for s, e in tm:
        expected[s:e, :] = False
    for s, e in fm:
        expected[:, s:e] = False
    assert torch.equal(y != 0, expected)
    assert torch.equal(y[expected], orig[expected])
    assert torch.equal(feats, orig)  # input untouched
    assert (~expected).any()


def test_spec_augment_deterministic_and_seed_dependent():
    cfg = SpecAugConfig()
    feats = torch.rand(200, 80) + 1.0
    a = spec_augment(feats, cfg, random.Random(11))
    b = spec_augment(feats, cfg, random.Random(11))
    c = spec_augment(feats, cfg, random.Random(12))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_spec_augment_disabled_and_empty():
    feats = torch.rand(50, 80) + 1.0
    y = spec_augment(feats, SpecAugConfig(enabled=False), random.Random(0))
    assert torch.equal(y, feats) and y.data_ptr() != feats.data_ptr()
    assert spec_augment(torch.zeros(0, 80), SpecAugConfig(), random.Random(0)).shape == (0, 80)


# --------------------------------------------------------------------------
# noise


def _noise_dir(tmp_path, rates=(16000,)):
    d = tmp_path / "noise"
    (d / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, sr in enumerate(rates):
        sf.write(d / "sub" / f"n{i}.wav", (0.05 * rng.standard_normal(sr)).astype(np.float32), sr, subtype="FLOAT")
    (d / "readme.txt").write_text("not audio")
    return d


def test_noise_source_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does_not_exist"):
        NoiseSource(tmp_path / "does_not_exist", SR)
    (tmp_path / "empty" / "deep").mkdir(parents=True)
    (tmp_path / "empty" / "x.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        NoiseSource(tmp_path / "empty", SR)


def test_noise_source_index_and_sample(tmp_path):
    d = _noise_dir(tmp_path, rates=(16000, 8000))
    src = NoiseSource(d, SR)
    assert [p.name for p in src.paths] == ["n0.wav", "n1.wav"]  # recursive, sorted, audio only
    for seed in range(6):
        for n in (4000, 40000):  # crop and tile, both rates
            x = src.sample(n, SR, np.random.default_rng(seed))
            assert x.shape == (n,) and x.dtype == np.float32 and np.any(x)
    a = src.sample(5000, SR, random.Random(1))
    b = src.sample(5000, SR, random.Random(1))
    assert np.array_equal(a, b)


def test_add_noise_hits_snr(tmp_path):
    src = NoiseSource(_noise_dir(tmp_path), SR)
    speech = _speech_like(24000, 0, level=0.05)
    cfg = NoiseAugConfig(enabled=True, noise_dir=str(tmp_path), prob=1.0, min_snr_db=3.0, max_snr_db=15.0)
    snrs = []
    for seed in range(5):
        out, info = add_noise(speech, src, cfg, np.random.default_rng(seed))
        assert out.shape == speech.shape and info["noise"].endswith("n0.wav")
        noise = out.astype(np.float64) - speech
        measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(info["snr_db"], abs=0.05)
        assert 3.0 <= info["snr_db"] <= 15.0
        snrs.append(info["snr_db"])
    assert len(set(snrs)) == 5


def test_add_noise_prob_zero_and_silence(tmp_path):
    src = NoiseSource(_noise_dir(tmp_path), SR)
    speech = _speech_like(8000, 1)
    never = NoiseAugConfig(enabled=True, noise_dir="x", prob=0.0)
    for seed in range(20):
        out, info = add_noise(speech, src, never, random.Random(seed))
        assert np.array_equal(out, speech) and info == {}
    silent = np.zeros(8000, dtype=np.float32)
    out, info = add_noise(silent, src, NoiseAugConfig(enabled=True, noise_dir="x", prob=1.0), random.Random(0))
    assert np.array_equal(out, silent) and info == {}


def test_add_noise_deterministic(tmp_path):
    src = NoiseSource(_noise_dir(tmp_path), SR)
    speech = _speech_like(8000, 2)
    cfg = NoiseAugConfig(enabled=True, noise_dir="x", prob=1.0)
    a, ia = add_noise(speech, src, cfg, random.Random(4))
    b, ib = add_noise(speech, src, cfg, random.Random(4))
    assert np.array_equal(a, b) and ia == ib


# --------------------------------------------------------------------------
# reverberation


def _autocorr_spread(x, max_lag=4800):
    """Energy of the normalised autocorrelation at lags 1..max_lag: ~max_lag/len(x) for white noise."""
    x = x.astype(np.float64) - x.mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(x, 2 * len(x))) ** 2)[: max_lag + 1]
    return float(np.sum((ac[1:] / ac[0]) ** 2))


def _decaying_rir(rng, seconds=0.3, t60=0.35, direct_at=20):
    t = np.arange(int(seconds * SR))
    rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / (t60 * SR))  # -60 dB after t60
    rir[:direct_at] = 0.0
    rir[direct_at] = 3.0  # direct path, the largest tap
    return rir


def test_reverberate_unit_impulse_is_identity():
    x = _speech_like(8000, 3)
    for delay in (0, 37):
        rir = np.zeros(200)
        rir[delay] = 0.5  # any gain: level is restored
        y = reverberate(x, rir)
        assert y.shape == x.shape and y.dtype == np.float32
        np.testing.assert_allclose(y, x, atol=1e-6)


def test_reverberate_spreads_energy_and_keeps_length_and_level():
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(3 * SR)).astype(np.float32)  # white: autocorrelation is a spike
    rir = _decaying_rir(rng)
    y = reverberate(x, rir)
    assert y.shape == x.shape and y.dtype == np.float32
    level = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    assert np.sqrt(np.mean(y.astype(np.float64) ** 2)) == pytest.approx(level, rel=1e-5)
    assert _autocorr_spread(y) > 3 * _autocorr_spread(x)
    # aligned on the direct path: the output correlates best with the input at lag 0, not lag 20
    xc = np.correlate(y[:4000], x[:4000], mode="full")
    assert np.argmax(xc) - 3999 == 0


def test_reverberate_smears_a_click():
    click = np.zeros(SR, dtype=np.float32)
    click[8000] = 0.5
    y = reverberate(click, _decaying_rir(np.random.default_rng(1))).astype(np.float64)
    assert np.argmax(np.abs(y)) == 8000  # not delayed
    near = np.sum(y[8000 - 32:8000 + 33] ** 2) / np.sum(y**2)  # energy within 2 ms of the click
    assert near < 0.5


def test_reverberate_silence_and_bad_rir():
    z = np.zeros(100, dtype=np.float32)
    assert np.array_equal(reverberate(z, np.ones(5)), z)
    with pytest.raises(ValueError, match="RIR"):
        reverberate(_speech_like(100, 0), np.zeros(5))


def test_rir_source_and_add_reverb(tmp_path):
    with pytest.raises(FileNotFoundError):
        RirSource(tmp_path / "nope", SR)
    d = tmp_path / "rirs"
    d.mkdir()
    rir = np.zeros((800, 2), dtype=np.float32)
    rir[10, 0] = 1.0
    rir[50, 1] = 1.0  # channel 1 is ignored
    sf.write(d / "r.flac", rir, 8000)
    src = RirSource(d, SR)
    h = src.sample(SR, random.Random(0))
    assert h.shape == (1600,) and abs(int(np.argmax(np.abs(h))) - 20) <= 1
    x = _speech_like(8000, 5)
    never, info = add_reverb(x, src, ReverbConfig(enabled=True, rir_dir=str(d), prob=0.0), random.Random(0))
    assert np.array_equal(never, x) and info == {}
    y, info = add_reverb(x, src, ReverbConfig(enabled=True, rir_dir=str(d), prob=1.0), random.Random(0))
    assert info["rir"].endswith("r.flac") and y.shape == x.shape and not np.array_equal(y, x)
