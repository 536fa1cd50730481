"""Global CMVN statistics in WeNet's formats (``wenet/utils/cmvn.py``, ``tools/compute_cmvn_stats.py``).

Stats are Σx and Σx² per fbank bin plus the frame count, written as WeNet's JSON
``{"mean_stat": [...], "var_stat": [...], "frame_num": N}``. The loader also reads Kaldi's text
``compute-cmvn-stats --binary=false`` output and turns either into (mean, istd) exactly as WeNet does.
Stats are computed with dither 0, as WeNet does.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import numpy as np
import torch

from wenet_llm.config.data import FbankConfig
from wenet_llm.data.features import compute_fbank, load_audio
from wenet_llm.data.formats import read_data_list
from wenet_llm.utils.cmvn_stats import load_cmvn, mean_istd_from_stats
from wenet_llm.utils.fileio import atomic_open

__all__ = [
    "CmvnStats",
    "compute_cmvn_from_list",
    "load_cmvn",
    "save_cmvn_json",
]

logger = logging.getLogger(__name__)

_CHUNK_UTTS = 64  # fixed chunk size: the merged result does not depend on num_workers
_MAX_KEYS_REPORTED = 5


@dataclass
class CmvnStats:
    """Accumulator of Σx, Σx² (float64) and frame count; merge() combines partial stats."""

    dim: Optional[int] = None
    sum: Optional[np.ndarray] = None
    sum_sq: Optional[np.ndarray] = None
    frame_num: int = 0
    num_utts: int = 0  # bookkeeping only; not part of the WeNet file

    def _init(self, dim: int) -> None:
        self.dim = dim
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_sq = np.zeros(dim, dtype=np.float64)

    def add(self, feats: torch.Tensor) -> None:
        """Add one utterance's features (T, F)."""
        if feats.ndim != 2:
            raise ValueError(f"CmvnStats.add expects (T, F) features, got shape {tuple(feats.shape)}")
        x = feats.detach().to("cpu", torch.float64).numpy()
        if self.dim is None:
            self._init(x.shape[1])
        elif x.shape[1] != self.dim:
            raise ValueError(f"feature dim {x.shape[1]} does not match the accumulated dim {self.dim}")
        self.sum += x.sum(axis=0)
        self.sum_sq += np.square(x).sum(axis=0)
        self.frame_num += x.shape[0]
        self.num_utts += 1

    def merge(self, other: "CmvnStats") -> "CmvnStats":
        """Add ``other``'s stats into this one (in place) and return self."""
        if other.dim is None:
            return self
        if self.dim is None:
            self._init(other.dim)
        elif other.dim != self.dim:
            raise ValueError(f"cannot merge CMVN stats of dim {other.dim} into dim {self.dim}")
        self.sum += other.sum
        self.sum_sq += other.sum_sq
        self.frame_num += other.frame_num
        self.num_utts += other.num_utts
        return self

    def to_json_dict(self) -> dict:
        if self.dim is None or self.frame_num == 0:
            raise ValueError("no frames accumulated; CMVN stats are undefined")
        return {
            "mean_stat": [float(v) for v in self.sum],
            "var_stat": [float(v) for v in self.sum_sq],
            "frame_num": int(self.frame_num),
        }

    @classmethod
    def from_json_dict(cls, d: dict) -> "CmvnStats":
        stats = cls()
        stats._init(len(d["mean_stat"]))
        stats.sum[:] = d["mean_stat"]
        stats.sum_sq[:] = d["var_stat"]
        stats.frame_num = int(d["frame_num"])
        return stats

    def mean_istd(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.to_json_dict()
        return mean_istd_from_stats(np.asarray(d["mean_stat"]), np.asarray(d["var_stat"]), float(d["frame_num"]))


def save_cmvn_json(stats: CmvnStats, path: str | os.PathLike) -> None:
    """Write WeNet's JSON global_cmvn atomically (no half-written file on a kill)."""
    d = stats.to_json_dict()
    with atomic_open(path, "w") as f:
        json.dump(d, f)
        f.write("\n")


# --------------------------------------------------------------------------
# stats over a data.list


@dataclass
class _Item:
    key: str
    wav: str
    start: Optional[float] = None
    end: Optional[float] = None


@dataclass
class _ChunkResult:
    stats: CmvnStats
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (key, reason)


def _stats_for_chunk(args: tuple[list[_Item], FbankConfig]) -> _ChunkResult:
    items, cfg = args
    result = _ChunkResult(CmvnStats())
    for it in items:
        try:
            audio = load_audio(it.wav, cfg.sample_rate, it.start, it.end)
            feats = compute_fbank(audio, cfg.sample_rate, cfg, dither=0.0)
        except Exception as e:  # one bad file must not kill the run: count it and go on
            result.skipped.append((it.key, f"{type(e).__name__}: {e}"))
            continue
        if feats.shape[0] == 0:
            result.skipped.append((it.key, "shorter than one frame"))
            continue
        result.stats.add(feats)
    return result


def _worker_init() -> None:
    torch.set_num_threads(1)  # one process per core; intra-op threads would oversubscribe


def compute_cmvn_from_list(list_path: str | os.PathLike, fbank_cfg: FbankConfig, num_workers: int = 1) -> CmvnStats:
    """Global CMVN stats of every utterance in a WeNet data.list (fbank with dither 0).

    Unreadable or too-short audio is skipped, counted and reported in one warning at the end.
    The result is the same for any ``num_workers``: chunks are fixed-size and merged in order.
    """
    if not Path(list_path).is_file():
        raise FileNotFoundError(f"missing data list {list_path}; prepare the data first (stage 0 of run.sh)")
    items = [_Item(o["key"], o["wav"], o.get("start"), o.get("end")) for o in read_data_list(list_path)]
    if not items:
        raise ValueError(f"data list {list_path} has no utterances")
    chunks = [(items[i:i + _CHUNK_UTTS], fbank_cfg) for i in range(0, len(items), _CHUNK_UTTS)]
    total = CmvnStats()
    skipped: list[tuple[str, str]] = []

    def collect(results: Iterable[_ChunkResult]) -> None:
        for r in results:  # in chunk order, so float sums do not depend on scheduling
            total.merge(r.stats)
            skipped.extend(r.skipped)

    if num_workers <= 1 or len(chunks) == 1:
        collect(map(_stats_for_chunk, chunks))
    else:
        # spawn: forking a process that already ran torch/OpenMP code can hang the children.
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(num_workers, len(chunks)), initializer=_worker_init) as pool:
            collect(pool.imap(_stats_for_chunk, chunks))
    if skipped:
        shown = "; ".join(f"{k} ({why})" for k, why in skipped[:_MAX_KEYS_REPORTED])
        logger.warning(
            "CMVN: skipped %d of %d utterances in %s; first: %s",
            len(skipped), len(items), list_path, shown,
        )
    if total.frame_num == 0:
        raise ValueError(f"no usable audio in {list_path} ({len(skipped)} utterances skipped); cannot compute CMVN")
    logger.info(
        "CMVN: %d utterances, %d frames, dim %d from %s", total.num_utts, total.frame_num, total.dim, list_path
    )
    return total
