"""Tests for wenet_llm.data.features: fbank against kaldi_native_fbank, framing, dither, resampling."""

import kaldi_native_fbank as knf
import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import lfilter

from wenet_llm.config.data import FbankConfig
from wenet_llm.data.features import compute_fbank, load_audio, num_frames, resample

SR = 16000


def _speech_like(n, seed):
    """Glottal pulse train at ~120 Hz through a resonant filter, syllable-rate envelope, breath noise."""
    rng = np.random.default_rng(seed)
    src = np.zeros(n)
    src[:: SR // 120] = 1.0
    src += 0.05 * rng.standard_normal(n)
    y = lfilter([1.0], [1.0, -1.3, 0.8], src)
    y *= 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * np.arange(n) / SR)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def _tone(n, seed):
    # A -80 dBFS noise floor, as in any recording: a mathematically pure tone leaves bins ~30 log units
    # below the peak, beyond float32 FFT precision, where any two implementations disagree.
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.5 * np.sin(2 * np.pi * 440.0 * t) + 1e-4 * rng.standard_normal(n)).astype(np.float32)


def _noise(n, seed):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


SIGNALS = {"speech_like": _speech_like, "tone": _tone, "noise": _noise}


def _knf_fbank(samples):
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SR
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.round_to_power_of_two = True
    opts.mel_opts.num_bins = 80
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0
    opts.energy_floor = 0.0
    opts.use_energy = False
    opts.use_power = True
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(SR, (samples.astype(np.float32) * 32768.0).tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_matches_kaldi_native_fbank(kind):
    x = SIGNALS[kind](2 * SR + 123, seed=1)
    ours = compute_fbank(x, SR, FbankConfig(), dither=0.0)
    ref = _knf_fbank(x)
    assert ours.dtype == torch.float32
    assert tuple(ours.shape) == ref.shape == (num_frames(x.shape[0], FbankConfig()), 80)
    assert np.max(np.abs(ours.numpy() - ref)) < 1e-2


def test_int16_scaling():
    # Unscaled samples would give log-mel values ~2*log(32768) ≈ 20.8 lower.
    x = _speech_like(SR, seed=2)
    ours = compute_fbank(x, SR, FbankConfig(), dither=0.0).numpy()
    unscaled = _knf_fbank(x / 32768.0)
    assert np.mean(ours - unscaled) == pytest.approx(2 * np.log(32768.0), abs=0.05)


@pytest.mark.parametrize("n,expected", [(0, 0), (399, 0), (400, 1), (559, 1), (560, 2), (16000, 98), (32000, 198)])
def test_num_frames_formula(n, expected):
    cfg = FbankConfig()
    assert num_frames(n, cfg) == expected
    feats = compute_fbank(np.zeros(n, dtype=np.float32), SR, cfg, dither=0.0)
    assert tuple(feats.shape) == (expected, 80)


def test_num_mel_bins_from_config():
    feats = compute_fbank(_noise(SR, 0), SR, FbankConfig(num_mel_bins=40), dither=0.0)
    assert feats.shape[1] == 40


def test_dither_zero_is_deterministic():
    x = _speech_like(SR, seed=3)
    a = compute_fbank(x, SR, FbankConfig(), dither=0.0)
    torch.manual_seed(123)  # global torch state must not matter without dither
    b = compute_fbank(x, SR, FbankConfig(), dither=0.0)
    assert torch.equal(a, b)


def test_dither_with_seed_is_reproducible_and_changes_features():
    # Digital silence makes dither dominant: without it every bin sits at the float-eps floor.
    x = np.zeros(SR, dtype=np.float32)
    plain = compute_fbank(x, SR, FbankConfig(), dither=0.0)
    a = compute_fbank(x, SR, FbankConfig(), dither=1.0, seed=7)
    b = compute_fbank(x, SR, FbankConfig(), dither=1.0, seed=7)
    c = compute_fbank(x, SR, FbankConfig(), dither=1.0, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert (a - plain).abs().min() > 1.0


def test_dither_small_on_speech():
    x = _speech_like(SR, seed=4)
    plain = compute_fbank(x, SR, FbankConfig(), dither=0.0)
    dith = compute_fbank(x, SR, FbankConfig(), dither=0.1, seed=0)
    assert not torch.equal(plain, dith)
    assert (plain - dith).abs().max() < 0.5  # 0.1 int16 units is tiny next to speech


@pytest.mark.parametrize(
    "bad,msg",
    [
        (np.zeros((2, SR), dtype=np.float32), "mono"),
        (np.zeros(SR, dtype=np.int16), "float"),
        (np.full(SR, 1000.0, dtype=np.float32), "int16"),
        (np.full(SR, np.nan, dtype=np.float32), "NaN"),
    ],
)
def test_rejects_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        compute_fbank(bad, SR, FbankConfig(), dither=0.0)


def test_rejects_wrong_rate():
    with pytest.raises(ValueError, match="resample"):
        compute_fbank(np.zeros(8000, dtype=np.float32), 8000, FbankConfig(), dither=0.0)


def test_resample_length_and_tone():
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    y = resample(x, 48000, 16000)
    assert y.dtype == np.float32 and y.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 1000  # 1 s at 16 kHz: bin k is k Hz
    z = resample(x[:44100], 44100, 16000)
    assert z.shape == (16000,)
    assert np.array_equal(resample(x, 16000, 16000), x)


def test_load_audio_mono_segment_and_rate(tmp_path):
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((8000 * 2, 2))).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(path, stereo, 8000, subtype="FLOAT")
    full = load_audio(str(path), 8000)
    np.testing.assert_allclose(full, stereo.mean(axis=1), atol=1e-7)
    seg = load_audio(str(path), 8000, start=0.5, end=1.0)
    np.testing.assert_allclose(seg, stereo[4000:8000].mean(axis=1), atol=1e-7)
    up = load_audio(str(path), 16000)
    assert up.shape == (32000,)
