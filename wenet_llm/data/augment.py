"""Waveform and feature augmentation: speed perturbation, SpecAugment, additive noise, reverberation.

Semantics follow WeNet (``wenet/dataset/processor.py``) where WeNet has the feature: speed perturbation
as sox ``speed`` + ``rate`` back to the original rate, SpecAugment masks on the raw fbank with no time warp.
Noise and reverberation are additions in the Kaldi/ESPnet style.

Every random choice goes through an explicit ``random.Random`` or ``numpy.random.Generator`` (either is
accepted), so a seeded generator gives the same augmentation every time.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from pathlib import Path
from typing import Union

import numpy as np
import torch
from scipy.signal import fftconvolve, resample_poly

from wenet_llm.config.data import NoiseAugConfig, ReverbConfig, SpecAugConfig, SpeedPerturbConfig
from wenet_llm.data.features import load_audio, resample
from wenet_llm.data.mixing import MAX_PEAK, mix_at_snr, rms

__all__ = [
    "NoiseSource",
    "RirSource",
    "add_noise",
    "add_reverb",
    "choose_speed",
    "reverberate",
    "spec_augment",
    "spec_augment_masks",
    "speed_perturb",
]

Rng = Union[random.Random, np.random.Generator]

_AUDIO_SUFFIXES = (".wav", ".flac")
_MAX_SPEED_DENOMINATOR = 100  # 0.9 -> 9/10, 1.1 -> 11/10; keeps polyphase filters short


# --------------------------------------------------------------------------
# random helpers: one code path for both generator kinds


def _check_rng(rng: Rng) -> Rng:
    if not isinstance(rng, (random.Random, np.random.Generator)):
        raise TypeError(f"rng must be a random.Random or numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _randint(rng: Rng, low: int, high: int) -> int:
    """Uniform integer in [low, high], both inclusive (like random.randint)."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    return rng.randint(low, high)


def _uniform(rng: Rng, low: float, high: float) -> float:
    return float(rng.uniform(low, high))


def _random(rng: Rng) -> float:
    return float(rng.random())


def _np_rng(rng: Rng) -> np.random.Generator:
    # mix_at_snr needs a numpy Generator; derive one deterministically from a random.Random.
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng.getrandbits(64))


# --------------------------------------------------------------------------
# speed perturbation


def speed_perturb(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play ``samples`` ``factor`` times faster (length / factor, pitch scaled by factor), like sox speed+rate.

    ``sample_rate`` is unchanged; it is accepted for symmetry with the other waveform functions.
    """
    if not factor > 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    x = np.asarray(samples, dtype=np.float32)
    if factor == 1.0:
        return x.copy()
    ratio = Fraction(factor).limit_denominator(_MAX_SPEED_DENOMINATOR)
    # Treat the audio as if recorded at sample_rate * factor and resample it to sample_rate.
    up, down = ratio.denominator, ratio.numerator
    return resample_poly(x.astype(np.float64), up, down).astype(np.float32)


def choose_speed(cfg: SpeedPerturbConfig, rng: Rng) -> float:
    """A factor drawn uniformly from ``cfg.factors`` (1.0 when disabled; the rng is then not used)."""
    _check_rng(rng)
    if not cfg.enabled:
        return 1.0
    if not cfg.factors or any(not f > 0 for f in cfg.factors):
        raise ValueError(f"speed_perturb.factors must be a non-empty list of values > 0, got {cfg.factors}")
    return float(cfg.factors[_randint(rng, 0, len(cfg.factors) - 1)])


# --------------------------------------------------------------------------
# SpecAugment


def spec_augment_masks(
    num_frames: int, num_bins: int, cfg: SpecAugConfig, rng: Rng
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The [start, end) time and frequency masks spec_augment applies, drawn as WeNet draws them."""
    _check_rng(rng)
    time_masks: list[tuple[int, int]] = []
    freq_masks: list[tuple[int, int]] = []
    if num_frames > 0 and cfg.max_t >= 1:
        for _ in range(cfg.num_t_mask):
            start = _randint(rng, 0, num_frames - 1)
            width = _randint(rng, 1, cfg.max_t)
            time_masks.append((start, min(num_frames, start + width)))
    if num_bins > 0 and cfg.max_f >= 1:
        for _ in range(cfg.num_f_mask):
            start = _randint(rng, 0, num_bins - 1)
            width = _randint(rng, 1, cfg.max_f)
            freq_masks.append((start, min(num_bins, start + width)))
    return time_masks, freq_masks


def spec_augment(feats: torch.Tensor, cfg: SpecAugConfig, rng: Rng) -> torch.Tensor:
    """Zero random time and frequency bands of raw fbank ``feats`` (T, F); returns a new tensor.

    Applied before CMVN, as in WeNet, so masked values are 0 in log-mel space, not the mean.
    With ``cfg.enabled`` false the result is an unchanged copy.
    """
    if feats.ndim != 2:
        raise ValueError(f"spec_augment expects (T, F) features, got shape {tuple(feats.shape)}")
    y = feats.detach().clone()
    if not cfg.enabled:
        return y
    time_masks, freq_masks = spec_augment_masks(y.shape[0], y.shape[1], cfg, rng)
    for start, end in time_masks:
        y[start:end, :] = 0
    for start, end in freq_masks:
        y[:, start:end] = 0
    return y


# --------------------------------------------------------------------------
# file-backed sources


def _index_audio(folder: str | Path, what: str) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _AUDIO_SUFFIXES)
    if not paths:
        raise ValueError(f"{what} folder {folder} has no *.wav or *.flac files")
    return paths


def _tile(x: np.ndarray, length: int, start: int) -> np.ndarray:
    return x[(start + np.arange(length)) % x.shape[0]]


class NoiseSource:
    """Noise files under a folder (recursive *.wav / *.flac), indexed once in sorted order.

    ``sample_rate`` is the rate ``add_noise`` asks for: pass the pipeline rate, ``fbank.sample_rate``.
    """

    def __init__(self, folder: str | Path, sample_rate: int = 16000):
        self.folder = Path(folder)
        self.sample_rate = int(sample_rate)
        self.paths = _index_audio(self.folder, "noise")

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, num_samples: int, sample_rate: int, rng: Rng) -> np.ndarray:
        """``num_samples`` of a random noise file at ``sample_rate``, mono: a random crop, or tiled if shorter."""
        return self._sample_with_path(num_samples, sample_rate, rng)[1]

    def _sample_with_path(self, num_samples: int, sample_rate: int, rng: Rng) -> tuple[str, np.ndarray]:
        import soundfile as sf

        _check_rng(rng)
        if num_samples <= 0:
            raise ValueError(f"num_samples must be > 0, got {num_samples}")
        path = self.paths[_randint(rng, 0, len(self.paths) - 1)]
        try:
            info = sf.info(str(path))
            if int(info.samplerate) == sample_rate and info.frames >= num_samples:
                # Read only the crop: MUSAN music/noise files can be minutes long.
                start = _randint(rng, 0, info.frames - num_samples)
                audio, _ = sf.read(str(path), start=start, stop=start + num_samples, dtype="float32", always_2d=True)
                audio = audio.mean(axis=1)
            else:
                audio = load_audio(str(path), sample_rate)
                if audio.shape[0] >= num_samples:
                    start = _randint(rng, 0, audio.shape[0] - num_samples)
                    audio = audio[start:start + num_samples]
                elif audio.size:
                    audio = _tile(audio, num_samples, _randint(rng, 0, audio.shape[0] - 1))
        except Exception as e:
            raise RuntimeError(f"cannot read noise file {path}: {e}") from e
        if audio.shape[0] != num_samples:
            raise RuntimeError(f"noise file {path} is empty")
        return str(path), audio.astype(np.float32, copy=False)


class RirSource:
    """Room impulse responses under a folder (recursive *.wav / *.flac); multi-channel files use channel 0.

    ``sample_rate`` is the rate ``add_reverb`` asks for: pass the pipeline rate, ``fbank.sample_rate``.
    """

    def __init__(self, folder: str | Path, sample_rate: int = 16000):
        self.folder = Path(folder)
        self.sample_rate = int(sample_rate)
        self.paths = _index_audio(self.folder, "RIR")

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, sample_rate: int, rng: Rng) -> np.ndarray:
        return self._sample_with_path(sample_rate, rng)[1]

    def _sample_with_path(self, sample_rate: int, rng: Rng) -> tuple[str, np.ndarray]:
        import soundfile as sf

        _check_rng(rng)
        path = self.paths[_randint(rng, 0, len(self.paths) - 1)]
        try:
            audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as e:
            raise RuntimeError(f"cannot read RIR file {path}: {e}") from e
        # Channel 0, not the mean: mics at different distances would smear the direct path.
        return str(path), resample(audio[:, 0], int(sr), sample_rate)


# --------------------------------------------------------------------------
# additive noise


def add_noise(samples: np.ndarray, source: NoiseSource, cfg: NoiseAugConfig, rng: Rng) -> tuple[np.ndarray, dict]:
    """With probability ``cfg.prob`` mix a random noise at SNR ~ U[min_snr_db, max_snr_db].

    Returns the audio and what was done (``{}`` when nothing was). Silent speech is left unchanged:
    its SNR is undefined.
    """
    _check_rng(rng)
    x = np.asarray(samples, dtype=np.float32)
    if _random(rng) >= cfg.prob or x.size == 0 or rms(x) == 0.0:
        return x, {}
    snr_db = _uniform(rng, cfg.min_snr_db, cfg.max_snr_db)
    path, noise = source._sample_with_path(x.shape[0], source.sample_rate, rng)
    if rms(noise) == 0.0:
        return x, {"noise": path, "skipped": "silent noise"}
    return mix_at_snr(x, noise, snr_db, _np_rng(rng)), {"noise": path, "snr_db": snr_db}


# --------------------------------------------------------------------------
# reverberation


def reverberate(samples: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve ``samples`` with ``rir``, aligned on the direct-path peak, same length and RMS as the input.

    The output is shifted so the RIR's largest tap (the direct path) lands at lag 0: transcripts and
    any frame-level alignment stay in place. It is then scaled back to the input RMS, so reverberation
    changes the sound but not the level (the level is randomised elsewhere, e.g. by the SNR); if that
    would push a peak above 0.99 the whole output is scaled down instead of clipped.
    """
    x = np.asarray(samples, dtype=np.float64)
    h = np.asarray(rir, dtype=np.float64)
    if x.ndim != 1 or h.ndim != 1:
        raise ValueError(f"reverberate expects 1-D samples and RIR, got {x.shape} and {h.shape}")
    if h.size == 0 or not np.any(h):
        raise ValueError("RIR is empty or all zeros")
    if x.size == 0:
        return x.astype(np.float32)
    level = rms(x)
    if level == 0.0:
        return x.astype(np.float32)
    h = h / math.sqrt(float(np.sum(h * h)))  # unit energy keeps the intermediate sums well scaled
    delay = int(np.argmax(np.abs(h)))
    y = fftconvolve(x, h)[delay:delay + x.shape[0]]
    out_level = rms(y)
    if out_level > 0.0:
        y *= level / out_level
    peak = float(np.max(np.abs(y)))
    if peak > MAX_PEAK:
        y *= MAX_PEAK / peak
    return y.astype(np.float32)


def add_reverb(samples: np.ndarray, source: RirSource, cfg: ReverbConfig, rng: Rng) -> tuple[np.ndarray, dict]:
    """With probability ``cfg.prob`` convolve with a random RIR; returns the audio and ``{"rir": path}`` or ``{}``."""
    _check_rng(rng)
    x = np.asarray(samples, dtype=np.float32)
    if _random(rng) >= cfg.prob or x.size == 0:
        return x, {}
    path, rir = source._sample_with_path(source.sample_rate, rng)
    return reverberate(x, rir), {"rir": path}
