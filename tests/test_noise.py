"""Tests for the noise generators (wenet_llm.synth.noise) and SNR mixing (wenet_llm.data.mixing)."""

import numpy as np
import pytest
from scipy.signal import welch

from wenet_llm.data.mixing import mix_at_snr, rms
from wenet_llm.synth import noise
from wenet_llm.synth.noise import (
    NON_SPEECH_KINDS,
    babble,
    hum,
    non_speech,
    pink_noise,
    silence,
    tone_sequence,
    white_noise,
)

SR = 16000


def _fake_speech(num_samples, seed, level=0.1):
    """Speech-like test signal: amplitude-modulated harmonics plus pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / SR
    f0 = rng.uniform(100, 220)
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + rng.uniform(0, 6)), 0, None)
    x = x * envelope
    return (x / np.sqrt(np.mean(x**2)) * level).astype(np.float32)


# Generators that take (num_samples, rng, rms=...) after binding extras.
GENERATORS = {
    "white": lambda n, rng, r=0.05: white_noise(n, rng, rms=r),
    "pink": lambda n, rng, r=0.05: pink_noise(n, rng, rms=r),
    "hum": lambda n, rng, r=0.05: hum(n, rng, sample_rate=SR, rms=r),
    "tones": lambda n, rng, r=0.05: tone_sequence(n, rng, sample_rate=SR, rms=r),
    "silence": lambda n, rng, r=1e-4: silence(n, rng, rms=r),
    "babble": lambda n, rng, r=0.05: babble(
        [_fake_speech(12000, 1), _fake_speech(20000, 2), _fake_speech(7000, 3)],
        n,
        rng,
        rms=r,
    ),
}


def _loglog_slope(x, lo=50.0, hi=5000.0):
    freqs, psd = welch(x.astype(np.float64), fs=SR, nperseg=4096)
    band = (freqs >= lo) & (freqs <= hi)
    slope, _ = np.polyfit(np.log10(freqs[band]), np.log10(psd[band]), 1)
    return slope


# ---------------------------------------------------------------- basics


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("num_samples", [1, 7, 1600, 32000])
def test_shape_dtype_finite_range(name, num_samples):
    x = GENERATORS[name](num_samples, np.random.default_rng(0))
    assert isinstance(x, np.ndarray)
    assert x.shape == (num_samples,)
    assert x.dtype == np.float32
    assert np.all(np.isfinite(x))
    assert np.max(np.abs(x)) <= 1.0


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_rms_matches_request(name):
    target = 1e-4 if name == "silence" else 0.07
    x = GENERATORS[name](2 * SR, np.random.default_rng(3), target)
    assert rms(x) == pytest.approx(target, rel=0.01)


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_deterministic_given_seed(name):
    gen = GENERATORS[name]
    a = gen(SR, np.random.default_rng(123))
    b = gen(SR, np.random.default_rng(123))
    c = gen(SR, np.random.default_rng(124))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("bad", [0, -5])
def test_non_positive_num_samples_rejected(name, bad):
    with pytest.raises(ValueError, match="num_samples"):
        GENERATORS[name](bad, np.random.default_rng(0))


def test_negative_rms_rejected():
    with pytest.raises(ValueError, match="rms"):
        white_noise(100, np.random.default_rng(0), rms=-0.1)


def test_rms_helper():
    assert rms(np.array([3.0, -3.0, 3.0, -3.0])) == pytest.approx(3.0)
    assert rms(np.zeros(10)) == 0.0
    assert isinstance(rms(np.ones(3, dtype=np.float32)), float)


# ---------------------------------------------------------------- spectra


def test_pink_noise_slope_is_minus_one():
    x = pink_noise(10 * SR, np.random.default_rng(7))
    assert _loglog_slope(x) == pytest.approx(-1.0, abs=0.2)


def test_pink_noise_has_no_dc():
    x = pink_noise(SR, np.random.default_rng(7))
    assert abs(float(np.mean(x.astype(np.float64)))) < 1e-6


def test_white_noise_slope_is_flat():
    x = white_noise(10 * SR, np.random.default_rng(7))
    assert _loglog_slope(x) == pytest.approx(0.0, abs=0.2)


def test_hum_peak_at_mains_frequency():
    seen = set()
    for seed in range(20):
        x = hum(SR, np.random.default_rng(seed), sample_rate=SR)
        # 1 s of signal -> 1 Hz bins, so the argmax is exactly 50 or 60.
        spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
        freqs = np.fft.rfftfreq(x.shape[0], d=1.0 / SR)
        peak = freqs[int(np.argmax(spectrum))]
        assert peak in (50.0, 60.0), f"seed {seed}: peak at {peak} Hz"
        seen.add(peak)
    assert seen == {50.0, 60.0}, "rng should choose both 50 and 60 Hz"


def test_hum_has_harmonics_and_noise_floor():
    x = hum(SR, np.random.default_rng(5), sample_rate=SR).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x))
    f0 = 50 if spectrum[50] > spectrum[60] else 60
    # Second harmonic is clearly above the noise floor ...
    floor = np.median(spectrum)
    assert spectrum[2 * f0] > 10 * floor
    # ... and the floor is not zero (a little white noise is added).
    assert floor > 0


# ---------------------------------------------------------------- tones


def test_tone_sequence_has_gaps_and_tones():
    x = tone_sequence(3 * SR, np.random.default_rng(11), sample_rate=SR)
    frame = SR // 100  # 10 ms
    frames = x[: (x.shape[0] // frame) * frame].reshape(-1, frame)
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = energy > 0.1 * energy.max()
    silent = energy == 0.0
    # Gaps are at least 50 ms, so at least several fully silent frames and
    # at least two separate tones (on/off transitions).
    assert silent.sum() >= 5
    assert loud.sum() >= 5
    onsets = np.sum(loud[1:] & ~loud[:-1])
    assert onsets >= 2


def test_tone_sequence_energy_in_tone_band():
    x = tone_sequence(3 * SR, np.random.default_rng(12), sample_rate=SR)
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.shape[0], d=1.0 / SR)
    band = (freqs >= 250) & (freqs <= 3100)
    assert power[band].sum() / power.sum() > 0.95


def test_tone_sequence_starts_and_ends_smoothly_inside_buffer():
    # A tone cut by the end of the buffer must still fade out (no click).
    x = tone_sequence(SR // 10, np.random.default_rng(0), sample_rate=SR)
    assert abs(float(x[-1])) < 0.05 * np.max(np.abs(x))


# ---------------------------------------------------------------- silence


def test_silence_zero_rms_is_exact_zeros():
    x = silence(100, np.random.default_rng(0), rms=0.0)
    assert x.dtype == np.float32
    assert not np.any(x)


def test_silence_default_is_quiet_but_nonzero():
    x = silence(SR, np.random.default_rng(0))
    assert 0 < rms(x) < 1e-3
    assert np.all(x != 0)


# ---------------------------------------------------------------- babble


def test_babble_empty_sources_rejected():
    with pytest.raises(ValueError, match="at least one source"):
        babble([], 100, np.random.default_rng(0))


def test_babble_empty_source_rejected():
    with pytest.raises(ValueError, match="source 1 is empty"):
        babble(
            [_fake_speech(1000, 0), np.zeros(0, dtype=np.float32)],
            100,
            np.random.default_rng(0),
        )


def test_babble_all_zero_source_rejected():
    with pytest.raises(ValueError, match="source 0 is all zeros"):
        babble([np.zeros(50, np.float32)], 100, np.random.default_rng(0))


def test_babble_equalises_sources():
    # A 1000x quieter source must contribute as much as the loud one.
    loud = _fake_speech(SR, 1, level=0.5)
    quiet = _fake_speech(SR, 2, level=0.0005)
    rng = np.random.default_rng(0)
    out = babble([loud, quiet], SR, rng, rms=0.05).astype(np.float64)
    # Reproduce the offsets with the same seed to find each component.
    rng = np.random.default_rng(0)
    off_loud = int(rng.integers(SR))
    off_quiet = int(rng.integers(SR))
    a = np.roll(loud.astype(np.float64), -off_loud)
    b = np.roll(quiet.astype(np.float64), -off_quiet)
    coeffs, *_ = np.linalg.lstsq(np.stack([a / rms(a), b / rms(b)], 1), out)
    assert coeffs[0] == pytest.approx(coeffs[1], rel=1e-3)


# ---------------------------------------------------------------- mixing


def _measured_snr(mixture, speech, noise_crop):
    """SNR of ``mixture = a*speech + b*noise_crop`` found by least squares.

    Works whether or not the mixture was peak-normalised, because both parts
    are recovered with their actual gains.
    """
    basis = np.stack([speech, noise_crop], axis=1).astype(np.float64)
    (a, b), *_ = np.linalg.lstsq(basis, mixture.astype(np.float64), rcond=None)
    resid = mixture - (a * basis[:, 0] + b * basis[:, 1])
    assert np.max(np.abs(resid)) < 1e-5, "mixture is not speech + noise"
    p_s = np.mean((a * basis[:, 0]) ** 2)
    p_n = np.mean((b * basis[:, 1]) ** 2)
    return 10 * np.log10(p_s / p_n), a


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0])
def test_mix_at_snr_without_peak_scaling(snr_db):
    speech = _fake_speech(SR, 0, level=0.05)
    noise_in = white_noise(SR // 3, np.random.default_rng(1))  # gets tiled
    mixture = mix_at_snr(speech, noise_in, snr_db, np.random.default_rng(2))
    assert mixture.shape == speech.shape and mixture.dtype == np.float32
    assert np.max(np.abs(mixture)) <= 0.99
    added = mixture.astype(np.float64) - speech.astype(np.float64)
    measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2)
                             / np.mean(added**2))
    assert measured == pytest.approx(snr_db, abs=0.01)


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0])
def test_mix_at_snr_with_peak_scaling(snr_db):
    # Loud speech (peak well above 1 after adding noise) forces the peak
    # normalisation; the SNR must still be exact.
    speech = _fake_speech(SR, 0, level=0.6)
    noise_in = white_noise(SR, np.random.default_rng(1), rms=0.1)
    mixture = mix_at_snr(speech, noise_in, snr_db, np.random.default_rng(2))
    assert np.max(np.abs(mixture)) == pytest.approx(0.99, abs=1e-6)
    # Same length noise -> the crop is the whole noise array.
    measured, speech_gain = _measured_snr(mixture, speech, noise_in)
    assert speech_gain < 0.99, "peak normalisation should have kicked in"
    assert measured == pytest.approx(snr_db, abs=0.01)


def test_mix_at_snr_no_scaling_keeps_speech_gain_one():
    speech = _fake_speech(SR, 0, level=0.05)
    noise_in = pink_noise(SR, np.random.default_rng(4))
    mixture = mix_at_snr(speech, noise_in, 20.0, np.random.default_rng(2))
    measured, speech_gain = _measured_snr(mixture, speech, noise_in)
    assert speech_gain == pytest.approx(1.0, abs=1e-4)
    assert measured == pytest.approx(20.0, abs=0.01)


def test_mix_at_snr_random_crop_of_long_noise():
    speech = _fake_speech(1000, 0)
    noise_in = white_noise(50000, np.random.default_rng(1))
    m1 = mix_at_snr(speech, noise_in, 5.0, np.random.default_rng(10))
    m2 = mix_at_snr(speech, noise_in, 5.0, np.random.default_rng(10))
    m3 = mix_at_snr(speech, noise_in, 5.0, np.random.default_rng(11))
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(m1, m3)


def test_mix_at_snr_rejects_silent_speech():
    with pytest.raises(ValueError, match="speech has zero power"):
        mix_at_snr(np.zeros(100, np.float32), np.ones(100, np.float32), 5.0,
                   np.random.default_rng(0))


def test_mix_at_snr_rejects_silent_noise():
    with pytest.raises(ValueError, match="noise"):
        mix_at_snr(_fake_speech(100, 0), np.zeros(100, np.float32), 5.0,
                   np.random.default_rng(0))


# ---------------------------------------------------------------- dispatch


@pytest.mark.parametrize("kind", NON_SPEECH_KINDS)
def test_non_speech_all_kinds(kind):
    x = non_speech(kind, SR, np.random.default_rng(0), sample_rate=SR)
    assert x.shape == (SR,) and x.dtype == np.float32
    assert np.all(np.isfinite(x))
    level = rms(x)
    if kind == "silence":
        assert level == pytest.approx(1e-4, rel=0.01)
    else:
        assert 0.003 * 0.99 <= level <= 0.1 * 1.01


def test_non_speech_levels_vary():
    levels = [rms(non_speech("white", 1000, np.random.default_rng(s)))
              for s in range(50)]
    assert min(levels) < 0.01 and max(levels) > 0.03


def test_non_speech_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError) as excinfo:
        non_speech("music", 100, np.random.default_rng(0))
    message = str(excinfo.value)
    assert "music" in message
    for kind in NON_SPEECH_KINDS:
        assert kind in message


def test_non_speech_kinds_constant():
    assert noise.NON_SPEECH_KINDS == ("silence", "white", "pink", "hum", "tones")
