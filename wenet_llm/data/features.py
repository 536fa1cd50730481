"""Kaldi fbank with WeNet's settings, computed with lhotse, and resampling.

WeNet (``wenet/dataset/processor.py: compute_fbank``) scales the waveform to the int16 range and calls
``torchaudio.compliance.kaldi.fbank`` with a povey window, 25/10 ms framing, snip_edges, low_freq 20,
high_freq 0 (Nyquist), preemphasis 0.97, DC removal, a 512-point FFT, power spectrum, log mel and
energy_floor 0. We reproduce that with lhotse's Kaldi layers (no torchaudio) and check it against
kaldi_native_fbank in the tests.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch
from scipy.signal import resample_poly

from wenet_llm.config.data import FbankConfig

__all__ = ["compute_fbank", "load_audio", "num_frames", "resample"]

_INT16_SCALE = 32768.0  # WeNet multiplies float [-1, 1] audio by 1 << 15 before fbank


def _frame_sizes(cfg: FbankConfig) -> tuple[int, int]:
    """Window length and shift in samples, truncated exactly as lhotse's Wav2Win does (and Kaldi)."""
    length = int(math.floor(float(cfg.frame_length_ms) / 1000.0 * cfg.sample_rate))
    shift = int(math.floor(float(cfg.frame_shift_ms) / 1000.0 * cfg.sample_rate))
    return length, shift


def num_frames(num_samples: int, cfg: FbankConfig) -> int:
    """Frames produced by ``compute_fbank`` for ``num_samples`` (snip_edges: whole windows only)."""
    length, shift = _frame_sizes(cfg)
    if num_samples < length:
        return 0
    return 1 + (num_samples - length) // shift


MEL_LOW_HZ = 20.0  # the mel filterbank's lower edge (Kaldi's default); the upper one is Nyquist


@functools.lru_cache(maxsize=8)
def _extractor(sample_rate: int, num_mel_bins: int, frame_length_ms: float, frame_shift_ms: float):
    # Imported lazily: lhotse is heavy and only the feature path needs it.
    from lhotse.features.kaldi.layers import Wav2LogFilterBank

    with warnings.catch_warnings():
        # lhotse warns that snip_edges breaks its duration->frames maths; we count frames ourselves.
        warnings.simplefilter("ignore")
        module = Wav2LogFilterBank(
            sampling_rate=sample_rate,
            frame_length=frame_length_ms / 1000.0,
            frame_shift=frame_shift_ms / 1000.0,
            round_to_power_of_two=True,
            remove_dc_offset=True,
            preemph_coeff=0.97,
            window_type="povey",
            dither=0.0,  # added by us, with a seedable generator
            snip_edges=True,
            energy_floor=0.0,
            raw_energy=True,
            use_energy=False,
            use_fft_mag=False,  # power spectrum
            low_freq=MEL_LOW_HZ,
            high_freq=0.0,  # 0 = Nyquist, as in Kaldi/torchaudio
            num_filters=num_mel_bins,
            torchaudio_compatible_mel_scale=True,
        )
    return module.eval()


def _check_samples(samples: np.ndarray, sample_rate: int, cfg: FbankConfig) -> np.ndarray:
    if sample_rate != cfg.sample_rate:
        raise ValueError(
            f"compute_fbank expects audio at {cfg.sample_rate} Hz (fbank.sample_rate), got {sample_rate} Hz; "
            "resample first with wenet_llm.data.features.resample"
        )
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"compute_fbank expects mono 1-D samples, got shape {x.shape}; average the channels first")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"compute_fbank expects float samples in [-1, 1], got dtype {x.dtype}")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("compute_fbank: samples contain NaN or inf")
    # A little slack over 1.0: resampling and mixing can overshoot by a hair.
    if x.size and float(np.max(np.abs(x))) > 1.5:
        raise ValueError(
            f"compute_fbank expects float samples in [-1, 1], got peak {float(np.max(np.abs(x))):.1f}; "
            "are these int16 values? divide by 32768"
        )
    return x


def compute_fbank(
    samples: np.ndarray,
    sample_rate: int,
    cfg: FbankConfig,
    dither: float,
    seed: int | None = None,
) -> torch.Tensor:
    """Log-mel fbank (T, num_mel_bins) float32 of mono float ``samples`` in [-1, 1].

    ``dither`` is in int16 units, as in Kaldi/WeNet (0.1 for training, 0 for evaluation and CMVN stats).
    With ``seed`` the dither noise is reproducible; without it, it comes from torch's global generator
    (seeded per data-loader worker).
    """
    x = _check_samples(samples, sample_rate, cfg)
    if dither < 0:
        raise ValueError(f"dither must be >= 0, got {dither}")
    if num_frames(x.shape[0], cfg) == 0:
        return torch.zeros((0, cfg.num_mel_bins), dtype=torch.float32)

    wave = torch.from_numpy(x.astype(np.float32) * np.float32(_INT16_SCALE))
    if dither > 0:
        gen = None
        if seed is not None:
            gen = torch.Generator().manual_seed(int(seed))
        wave = wave + dither * torch.randn(wave.shape, generator=gen)
    module = _extractor(cfg.sample_rate, cfg.num_mel_bins, float(cfg.frame_length_ms), float(cfg.frame_shift_ms))
    with torch.no_grad():
        feats = module(wave.unsqueeze(0))[0]
    return feats.to(torch.float32).contiguous()


def resample(samples: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Polyphase resampling by the exact rational ratio ``new_sr / orig_sr`` (float32 out)."""
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be > 0, got {orig_sr} -> {new_sr}")
    x = np.asarray(samples)
    if orig_sr == new_sr:
        return x.astype(np.float32, copy=False)
    g = math.gcd(int(orig_sr), int(new_sr))
    up, down = int(new_sr) // g, int(orig_sr) // g
    return resample_poly(x.astype(np.float64), up, down, axis=0).astype(np.float32)


def load_audio(
    path: str,
    sample_rate: int,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """Read ``path`` with soundfile as mono float32 in [-1, 1] at ``sample_rate``.

    ``start``/``end`` are seconds in the file (WeNet data.list segments). Channels are averaged;
    other rates are resampled. soundfile's errors propagate: callers decide whether to skip.
    """
    import soundfile as sf

    info = sf.info(path)
    sr = int(info.samplerate)
    first = 0 if start is None else int(round(float(start) * sr))
    last = None if end is None else int(round(float(end) * sr))
    if first < 0 or (last is not None and last < first):
        raise ValueError(f"{path}: bad segment start={start} end={end}")
    audio, _ = sf.read(path, start=first, stop=last, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    return resample(mono, sr, sample_rate)
