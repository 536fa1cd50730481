"""Noisy copies of a test set at fixed SNRs, and a noise-only set, mixed by the training pipeline's own code.

Input: any test set ``formats.iter_entries`` reads (a WeNet data.list, a Kaldi data dir, a lhotse
manifest) and a folder of noise files (searched recursively for *.wav / *.flac, like the training
augmentation's ``noise.noise_dir``). Output under ``out_dir``:

- ``snr<S>/`` for each SNR S (default 0, 5, 10, 20 dB; ``snr10``, ``snr-5``, ``snr2.5``): every utterance
  mixed with noise at exactly S dB by ``augment.add_noise`` (probability 1, SNR range [S, S]): a random crop
  of a random noise file, tiled when shorter than the speech, mixed by ``noise.mix_at_snr`` on mean-square
  powers, the mixture scaled down as a whole if its peak would pass 0.99. Key ``<key>-snr<S>db``.
- ``noise_only/`` (unless disabled): per utterance, a noise crop of the same length with an EMPTY
  transcript, at the level the noise would have in the copy at ``noise_only_snr_db`` (default 10 dB):
  that copy with the speech taken out. Key ``<key>-noise``.

Each folder holds a ``data.list``, the Kaldi files (``wav.scp``, ``text``, ``utt2spk``, ``utt2dur``, ...)
and ``wav/*.wav`` (16-bit PCM at ``sample_rate``). A noisy copy keeps every field of its input entry
(``lang``, ``spk``, ``hotwords``, ...) except the segment times, and adds ``duration``, ``clean_key``,
``noise`` (the noise file) and ``snr_db``; a noise-only entry has only ``key``, ``wav``, ``txt`` (""),
``duration``, ``clean_key``, ``noise`` and ``snr_db``. ``summary.json`` in ``out_dir`` counts what was
written.

Deterministic for a seed: an utterance's randomness comes from ``random.Random("<seed>:<key>")``, fresh for
each SNR, so every copy of one utterance has the same noise crop (only the level changes), and the result
does not depend on the order of the set, on the other utterances or on ``num_workers``. Speech that is all
zeros has no SNR: it is copied unchanged, marked ``"noise_skipped": "silent speech"`` and counted.
"""

from __future__ import annotations

import json
import logging
import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from wenet_llm.data.mixing import MAX_PEAK, rms
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

DEFAULT_SNRS_DB = (0.0, 5.0, 10.0, 20.0)
NOISE_ONLY = "noise_only"


def snr_name(snr_db: float) -> str:
    return f"snr{snr_db:g}"


def _noise_only_level(noise: np.ndarray, speech: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` scaled to ``snr_db`` below ``speech`` (mean-square powers), peak at most 0.99."""
    y = noise.astype(np.float64)
    speech_rms, noise_rms = rms(speech), rms(y)
    if speech_rms > 0.0 and noise_rms > 0.0:
        y *= speech_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > MAX_PEAK:
        y *= MAX_PEAK / peak
    return y.astype(np.float32)


def _process(job: tuple) -> list[tuple[str, dict]]:
    """All outputs of one utterance: [(set name, entry)], wavs written."""
    import soundfile as sf

    from wenet_llm.config.data import NoiseAugConfig
    from wenet_llm.data.augment import add_noise
    from wenet_llm.data.features import load_audio

    entry, source, out_dir, snrs, noise_only_snr, seed, sample_rate = job
    key = entry["key"]
    try:
        speech = load_audio(entry["wav"], sample_rate, entry.get("start"), entry.get("end"))
    except Exception as e:
        raise RuntimeError(f"utterance {key}: cannot read {entry['wav']}: {e}; check the set with "
                           "python -m wenet_llm.bin.validate") from e
    if speech.size == 0:
        raise RuntimeError(f"utterance {key}: {entry['wav']} has no samples in the given segment")
    base = {k: v for k, v in entry.items() if k not in ("key", "wav", "start", "end", "duration")}
    duration = round(speech.shape[0] / sample_rate, 4)
    out = []
    for snr in snrs:
        name = snr_name(snr)
        new_key = f"{key}-{name}db"
        cfg = NoiseAugConfig(enabled=True, noise_dir=str(source.folder), prob=1.0, min_snr_db=snr, max_snr_db=snr)
        mixed, info = add_noise(speech, source, cfg, random.Random(f"{seed}:{key}"))
        wav = out_dir / name / "wav" / f"{new_key}.wav"
        sf.write(str(wav), np.clip(mixed, -1.0, 1.0), sample_rate, subtype="PCM_16")
        e = {"key": new_key, "wav": str(wav), **base, "duration": duration, "clean_key": key, "snr_db": snr}
        if "noise" in info:
            e["noise"] = info["noise"]
        if "snr_db" not in info:
            e["noise_skipped"] = info.get("skipped", "silent speech")
        out.append((name, e))
    if noise_only_snr is not None:
        rng = random.Random(f"{seed}:{key}:{NOISE_ONLY}")
        # The same crop-or-tile draw add_noise makes, keeping the file name for the entry.
        path, noise = source._sample_with_path(speech.shape[0], sample_rate, rng)
        new_key = f"{key}-noise"
        wav = out_dir / NOISE_ONLY / "wav" / f"{new_key}.wav"
        sf.write(str(wav), _noise_only_level(noise, speech, noise_only_snr), sample_rate, subtype="PCM_16")
        out.append((NOISE_ONLY, {"key": new_key, "wav": str(wav), "txt": "", "duration": duration,
                                 "clean_key": key, "noise": path, "snr_db": noise_only_snr}))
    return out


def make_noisy_sets(
    test_set: str | Path,
    noise_dir: str | Path,
    out_dir: str | Path,
    snrs_db: Sequence[float] = DEFAULT_SNRS_DB,
    noise_only: bool = True,
    noise_only_snr_db: float = 10.0,
    seed: int = 0,
    sample_rate: int = 16000,
    num_workers: int = 1,
) -> dict:
    """Write the noisy copies and the noise-only set (see the module docstring); returns the summary."""
    from wenet_llm.data import formats
    from wenet_llm.data.augment import NoiseSource

    snrs = [float(s) for s in snrs_db]
    if not snrs and not noise_only:
        raise ValueError("nothing to make: give at least one SNR or keep the noise-only set")
    bad = [s for s in snrs + ([noise_only_snr_db] if noise_only else []) if not math.isfinite(s)]
    if bad or len(set(snrs)) != len(snrs):
        raise ValueError(f"SNRs must be finite and distinct, got {snrs} (noise-only: {noise_only_snr_db})")
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    source = NoiseSource(noise_dir, sample_rate)
    entries = list(formats.iter_entries(test_set))
    if not entries:
        raise ValueError(f"{test_set}: the test set has no utterances")
    keys = [e["key"] for e in entries]
    if len(set(keys)) != len(keys):
        dups = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise ValueError(f"{test_set}: duplicate keys {dups}; check the set with python -m wenet_llm.bin.validate")
    out_dir = Path(out_dir).resolve()
    names = [snr_name(s) for s in snrs] + ([NOISE_ONLY] if noise_only else [])
    for name in names:
        (out_dir / name / "wav").mkdir(parents=True, exist_ok=True)
    jobs = [(e, source, out_dir, snrs, noise_only_snr_db if noise_only else None, seed, sample_rate) for e in entries]
    logger.info("%s: %d utterances x %d sets on %d thread(s)", test_set, len(jobs), len(names), num_workers)
    if num_workers == 1:
        results = [_process(j) for j in jobs]
    else:
        # Threads: the work is file I/O and numpy/scipy calls that release the GIL, and no process start-up.
        with ThreadPoolExecutor(num_workers) as pool:
            results = list(pool.map(_process, jobs))
    by_set: dict[str, list[dict]] = {name: [] for name in names}
    for outputs in results:
        for name, entry in outputs:
            by_set[name].append(entry)
    summary = {"input": str(test_set), "noise_dir": str(noise_dir), "noise_files": len(source), "seed": seed,
               "sample_rate": sample_rate, "sets": {}}
    for name, items in by_set.items():
        items.sort(key=lambda e: e["key"])
        formats.write_data_list(items, out_dir / name / "data.list")
        formats.write_kaldi_dir(items, out_dir / name)
        skipped = sum("noise_skipped" in e for e in items)
        if skipped:
            logger.warning("%s: %d utterance(s) copied without noise (silent speech)", name, skipped)
        summary["sets"][name] = {"dir": str(out_dir / name), "utts": len(items),
                                 "hours": round(sum(e["duration"] for e in items) / 3600, 4),
                                 "snr_db": noise_only_snr_db if name == NOISE_ONLY else snrs[names.index(name)],
                                 "noise_skipped": skipped}
    with atomic_open(out_dir / "summary.json") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return summary
