"""Non-speech signal generators: white, pink, hum, tones, silence and babble.

Used to build the noisy and non-speech parts of the synthetic demo corpus; mixing
them into speech at an SNR is :func:`wenet_llm.data.mixing.mix_at_snr`.
All waveforms are mono float32 in [-1, 1].  Every generator
takes a ``numpy.random.Generator`` so that callers get reproducible output by
seeding it (``np.random.default_rng(seed)``).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from wenet_llm.data.mixing import check_rng as _check_rng
from wenet_llm.data.mixing import check_waveform as _check_waveform
from wenet_llm.data.mixing import crop_circular as _crop_circular
from wenet_llm.data.mixing import rms

__all__ = [
    "NON_SPEECH_KINDS",
    "babble",
    "hum",
    "non_speech",
    "pink_noise",
    "silence",
    "tone_sequence",
    "white_noise",
]

NON_SPEECH_KINDS = ("silence", "white", "pink", "hum", "tones")

# Level range (RMS, log-uniform) used by non_speech() for the noise kinds:
# roughly -50 dBFS (barely audible) to -20 dBFS (loud background).
_MIN_RANDOM_RMS = 0.003
_MAX_RANDOM_RMS = 0.1

_DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
_DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)


# --------------------------------------------------------------------------
# argument checks


def _check_num_samples(num_samples) -> int:
    # bool is an int subclass; reject it so that `True` is not silently 1.
    if isinstance(num_samples, bool) or not isinstance(
        num_samples, (int, np.integer)
    ):
        raise TypeError(
            f"num_samples must be an integer, got {type(num_samples).__name__}"
        )
    if num_samples <= 0:
        raise ValueError(f"num_samples must be > 0, got {num_samples}")
    return int(num_samples)


def _check_rms(value) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"rms must be a finite value >= 0, got {value}")
    return value


def _check_sample_rate(sample_rate, minimum: int) -> int:
    if isinstance(sample_rate, bool) or not isinstance(
        sample_rate, (int, np.integer)
    ):
        raise TypeError(
            f"sample_rate must be an integer, got {type(sample_rate).__name__}"
        )
    if sample_rate < minimum:
        raise ValueError(f"sample_rate must be >= {minimum}, got {sample_rate}")
    return int(sample_rate)


def _scale_to_rms(x: np.ndarray, target: float) -> np.ndarray:
    """Scale float64 ``x`` to RMS ``target`` and return float32 in [-1, 1].

    An all-zero input (possible for degenerate lengths, e.g. one-sample pink
    noise whose only bin is DC) stays zero.  Clipping only happens for very
    loud targets; it then lowers the RMS slightly, which is preferable to
    returning samples outside [-1, 1].
    """
    current = rms(x)
    if current == 0.0 or target == 0.0:
        return np.zeros(x.shape, dtype=np.float32)
    y = x * (target / current)
    np.clip(y, -1.0, 1.0, out=y)
    return y.astype(np.float32)


# --------------------------------------------------------------------------
# generators


def white_noise(
    num_samples: int, rng: np.random.Generator, rms: float = 0.05
) -> np.ndarray:
    """Gaussian white noise scaled to exactly ``rms``."""
    n = _check_num_samples(num_samples)
    target = _check_rms(rms)
    rng = _check_rng(rng)
    return _scale_to_rms(rng.standard_normal(n), target)


def pink_noise(
    num_samples: int, rng: np.random.Generator, rms: float = 0.05
) -> np.ndarray:
    """Pink (1/f power spectrum) noise scaled to exactly ``rms``."""
    n = _check_num_samples(num_samples)
    target = _check_rms(rms)
    rng = _check_rng(rng)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    # Frequencies in cycles/sample: the 1/f shape does not depend on the
    # sample rate, only the absolute scale does, and we rescale anyway.
    freqs = np.fft.rfftfreq(n)
    # Power ∝ 1/f means amplitude ∝ 1/sqrt(f).  DC is zeroed: 1/f diverges
    # there and an offset is not noise.
    spectrum[0] = 0.0
    spectrum[1:] /= np.sqrt(freqs[1:])
    return _scale_to_rms(np.fft.irfft(spectrum, n=n), target)


def hum(
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    rms: float = 0.05,
) -> np.ndarray:
    """Mains hum: 50 or 60 Hz plus decaying harmonics and a little noise."""
    n = _check_num_samples(num_samples)
    target = _check_rms(rms)
    rng = _check_rng(rng)
    sr = _check_sample_rate(sample_rate, minimum=1000)

    f0 = 50.0 if rng.random() < 0.5 else 60.0
    num_harmonics = int(rng.integers(2, 6))  # fundamental + 1..4 overtones
    t = np.arange(n, dtype=np.float64) / sr
    signal = np.zeros(n, dtype=np.float64)
    for k in range(1, num_harmonics + 1):
        freq = k * f0
        if freq >= 0.45 * sr:  # stay clear of Nyquist to avoid aliasing
            break
        # Amplitude 1 for the fundamental; overtones are random but always
        # weaker (≤ 0.6/k), so the fundamental is the dominant peak as in
        # typical transformer/ground-loop hum.
        amp = 1.0 if k == 1 else rng.uniform(0.1, 0.6) / k
        phase = rng.uniform(0.0, 2.0 * np.pi)
        signal += amp * np.sin(2.0 * np.pi * freq * t + phase)
    # A noise floor 30 dB below the hum, so it is not a perfectly clean,
    # unrealistic set of sinusoids.
    # (The ``rms`` argument shadows the module-level helper here.)
    tonal_rms = float(np.sqrt(np.mean(signal**2)))
    noise_rms = tonal_rms * 10.0 ** (-30.0 / 20.0)
    signal += noise_rms * rng.standard_normal(n)
    return _scale_to_rms(signal, target)


def tone_sequence(
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    rms: float = 0.05,
) -> np.ndarray:
    """Beeps (single tones or DTMF pairs) separated by silent gaps.

    Each tone lasts 50-400 ms with 10 ms raised-cosine fades (no clicks);
    gaps are 50-500 ms of exact zeros.  The whole signal, gaps included, is
    scaled to ``rms``.
    """
    n = _check_num_samples(num_samples)
    target = _check_rms(rms)
    rng = _check_rng(rng)
    # Tones go up to 3 kHz, so 8 kHz is the lowest rate that represents them.
    sr = _check_sample_rate(sample_rate, minimum=8000)

    out = np.zeros(n, dtype=np.float64)
    fade_len = int(round(0.010 * sr))
    # Optional leading gap, dropped if it would leave no room for a tone, so
    # the output is never all silence.
    pos = int(rng.integers(0, int(0.2 * sr) + 1))
    if pos >= n:
        pos = 0
    while pos < n:
        duration = int(round(rng.uniform(0.050, 0.400) * sr))
        length = min(duration, n - pos)
        t = np.arange(length, dtype=np.float64) / sr
        if rng.random() < 0.5:
            freq = rng.uniform(300.0, 3000.0)
            tone = np.sin(2.0 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
        else:
            low = _DTMF_LOW[int(rng.integers(len(_DTMF_LOW)))]
            high = _DTMF_HIGH[int(rng.integers(len(_DTMF_HIGH)))]
            tone = 0.5 * (
                np.sin(2.0 * np.pi * low * t) + np.sin(2.0 * np.pi * high * t)
            )
        # Fade the part actually written, so a tone cut by the end of the
        # buffer also ends smoothly; shrink fades for very short pieces.
        fl = min(fade_len, length // 2)
        if fl > 0:
            ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fl) / fl)
            tone[:fl] *= ramp
            tone[length - fl:] *= ramp[::-1]
        out[pos:pos + length] = tone
        pos += length
        pos += int(round(rng.uniform(0.050, 0.500) * sr))
    return _scale_to_rms(out, target)


def silence(
    num_samples: int, rng: np.random.Generator, rms: float = 1e-4
) -> np.ndarray:
    """Near-digital silence: white noise at a very low ``rms``.

    The tiny noise floor keeps log-mel features finite; ``rms=0`` gives exact
    zeros.
    """
    n = _check_num_samples(num_samples)
    target = _check_rms(rms)
    rng = _check_rng(rng)
    if target == 0.0:
        return np.zeros(n, dtype=np.float32)
    return white_noise(n, rng, rms=target)


def babble(
    sources: Sequence[np.ndarray],
    num_samples: int,
    rng: np.random.Generator,
    rms: float = 0.05,
) -> np.ndarray:
    """Babble noise: several speech waveforms summed at equal level.

    Each source is tiled/cropped to ``num_samples`` from a random offset and
    normalised to unit RMS before summing; the sum is scaled to ``rms``.
    Empty or all-zero sources raise ValueError.
    """
    n = _check_num_samples(num_samples)
    target = _check_rms(rms)
    rng = _check_rng(rng)
    if sources is None or len(sources) == 0:
        raise ValueError("babble needs at least one source waveform, got none")
    checked = []
    for i, src in enumerate(sources):
        src = _check_waveform(src, f"babble source {i}")
        if not np.any(src):
            raise ValueError(f"babble source {i} is all zeros")
        checked.append(src)

    total = np.zeros(n, dtype=np.float64)
    for src in checked:
        start = int(rng.integers(src.shape[0]))
        piece = _crop_circular(src, n, start)
        level = float(np.sqrt(np.mean(piece**2)))
        # A crop that lands entirely in a silent stretch contributes nothing
        # (it cannot be normalised); the others still make babble.
        if level > 0.0:
            total += piece / level
    # If every crop is silent (only plausible for very short outputs), the
    # result stays all zeros rather than failing at random.
    return _scale_to_rms(total, target)


# --------------------------------------------------------------------------
# dispatch


def non_speech(
    kind: str,
    num_samples: int,
    rng: np.random.Generator,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Generate a non-speech clip of ``kind`` (see ``NON_SPEECH_KINDS``).

    Noise kinds get a random RMS, log-uniform in [0.003, 0.1]; silence keeps
    its default level.
    """
    if kind not in NON_SPEECH_KINDS:
        raise ValueError(
            f"unknown non-speech kind {kind!r}; valid kinds: "
            + ", ".join(NON_SPEECH_KINDS)
        )
    n = _check_num_samples(num_samples)
    rng = _check_rng(rng)
    if kind == "silence":
        return silence(n, rng)
    level = math.exp(
        rng.uniform(math.log(_MIN_RANDOM_RMS), math.log(_MAX_RANDOM_RMS))
    )
    if kind == "white":
        return white_noise(n, rng, rms=level)
    if kind == "pink":
        return pink_noise(n, rng, rms=level)
    if kind == "hum":
        return hum(n, rng, sample_rate=sample_rate, rms=level)
    return tone_sequence(n, rng, sample_rate=sample_rate, rms=level)
