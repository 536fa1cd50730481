"""Adding noise to speech at a given SNR: the level arithmetic shared by the training pipeline's noise
augmentation (:mod:`wenet_llm.data.augment`) and the demo corpus's noisy test set
(:mod:`wenet_llm.synth.demo_corpus`). Waveforms are mono float arrays in [-1, 1].
"""

from __future__ import annotations

import math

import numpy as np

# Peak level mix_at_snr() keeps the mixture under, leaving a little headroom
# so that later float->int16 conversion never wraps.
MAX_PEAK = 0.99


def rms(x: np.ndarray) -> float:
    """Root mean square of ``x`` (computed in float64)."""
    x = np.asarray(x)
    if x.size == 0:
        raise ValueError("rms of an empty array is undefined")
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def check_rng(rng) -> np.random.Generator:
    """``rng`` itself, or TypeError when it is not a numpy Generator."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            "rng must be a numpy.random.Generator "
            "(e.g. numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def check_waveform(x, name: str) -> np.ndarray:
    """``x`` as float64, or ValueError naming ``name`` when it is not a finite, non-empty 1-D waveform."""
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D waveform, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    return x.astype(np.float64, copy=False)


def crop_circular(x: np.ndarray, length: int, start: int) -> np.ndarray:
    """``length`` samples of ``x`` from ``start``, wrapping around (tiling)."""
    idx = (start + np.arange(length)) % x.shape[0]
    return x[idx]


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Add ``noise`` to ``speech`` at exactly ``snr_db`` (mean-square powers).

    Noise shorter than the speech is tiled; a random (circular) crop of the
    speech length is used.  If the mixture's peak exceeds 0.99 the whole
    mixture is scaled down to peak 0.99.  Speech and noise are scaled by the
    same factor, so the SNR is unchanged; only the absolute level drops.
    """
    s = check_waveform(speech, "speech")
    v = check_waveform(noise, "noise")
    rng = check_rng(rng)
    snr_db = float(snr_db)
    if not math.isfinite(snr_db):
        raise ValueError(f"snr_db must be finite, got {snr_db}")

    p_speech = float(np.mean(s**2))
    if p_speech == 0.0:
        raise ValueError("speech has zero power; SNR is undefined")

    n = s.shape[0]
    if v.shape[0] >= n:
        start = int(rng.integers(0, v.shape[0] - n + 1))
        crop = v[start:start + n]
    else:
        # Circular crop == tiling the noise and cropping at a random phase.
        crop = crop_circular(v, n, int(rng.integers(v.shape[0])))
    p_noise = float(np.mean(crop**2))
    if p_noise == 0.0:
        raise ValueError("noise has zero power over the crop; cannot reach SNR")

    gain = math.sqrt(p_speech / (p_noise * 10.0 ** (snr_db / 10.0)))
    mixture = s + gain * crop
    peak = float(np.max(np.abs(mixture)))
    if peak > MAX_PEAK:
        mixture *= MAX_PEAK / peak
    return mixture.astype(np.float32)
