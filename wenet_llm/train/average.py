"""Checkpoint averaging, compatible with WeNet's ``wenet/bin/average_model.py``.

Selection reads the checkpoint yamls (``epoch_*.yaml``/``step_*.yaml``; names starting with
train or init are not checkpoints), filtered by epoch and step ranges:

- ``val_best``: the ``num`` lowest CV losses (``loss_dict.loss``), as WeNet does;
- otherwise the ``num`` most recent checkpoints by (step, epoch). WeNet takes the newest files by
  mtime from the glob ``[!init]*.pt``, which also picks up ``final.pt`` (a duplicate of the last
  epoch) and ``avg_*.pt``; ordering by the yamls avoids both.

Averaging sums every tensor, buffers included, and divides by ``num``. As in WeNet, integer
tensors (``num_batches_tracked``) become float through ``true_divide``; ``load_state_dict``
copies them back into the integer buffers. Half-precision tensors are summed in fp32 and cast
back; fp32 tensors are summed in fp32 in the order given, exactly as WeNet does.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from wenet_llm.config.train import AVERAGE_MODES
from wenet_llm.train.checkpoint import list_checkpoints, model_path, save_torch

logger = logging.getLogger(__name__)

MODES = AVERAGE_MODES


def select_checkpoints(src_path: str | Path, num: int, val_best: bool, mode: str = "hybrid",
                       min_epoch: int = 0, max_epoch: int = sys.maxsize,
                       min_step: int = 0, max_step: int = sys.maxsize) -> list[Path]:
    """The model files to average; raises ValueError unless exactly ``num`` are found."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; valid: {list(MODES)}")
    if num < 1:
        raise ValueError(f"--num must be >= 1, got {num}")
    src = Path(src_path)
    if not src.is_dir():
        raise ValueError(f"--src_path {src} is not a directory")
    infos = [c for c in list_checkpoints(src, mode)
             if min_epoch <= c.epoch <= max_epoch and min_step <= c.step <= max_step]
    if val_best:
        no_cv = [c.tag for c in infos if c.loss is None]
        if no_cv:
            logger.info("without a CV loss, not candidates for --val_best: %s", no_cv)
        chosen = sorted((c for c in infos if c.loss is not None), key=lambda c: c.loss)[:num]
    else:
        chosen = infos[-num:]
    paths = [model_path(src, c.tag) for c in chosen]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"checkpoint yaml without its model file: {missing}")
    if len(paths) != num:
        what = "with a CV loss " if val_best else ""
        limits = [f"mode {mode}"] + [f"{name} {value}" for name, value, default in (
            ("min_epoch", min_epoch, 0), ("max_epoch", max_epoch, sys.maxsize),
            ("min_step", min_step, 0), ("max_step", max_step, sys.maxsize)) if value != default]
        raise ValueError(f"found {len(paths)} checkpoint(s) {what}in {src} ({', '.join(limits)}) but --num is "
                         f"{num}; lower --num or widen the ranges")
    for c in chosen:
        logger.info("averaging %s (epoch %d, step %d, cv loss %s)", c.tag, c.epoch, c.step, c.loss)
    return paths


def average_checkpoints(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of flat state dicts, loaded one at a time."""
    if not paths:
        raise ValueError("no checkpoint to average")
    acc: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    for i, path in enumerate(paths):
        states = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if i == 0:
            for k, v in states.items():
                dtypes[k] = v.dtype
                low = v.is_floating_point() and v.element_size() < 4
                acc[k] = v.to(torch.float32) if low else v.clone()
            continue
        if set(states) != set(acc):
            diff = sorted(set(states) ^ set(acc))[:5]
            raise ValueError(f"{path} has other keys than {paths[0]}: {diff}")
        for k, v in states.items():
            acc[k] += v.to(acc[k].dtype)
    out = {}
    for k, v in acc.items():
        mean = torch.true_divide(v, len(paths))
        out[k] = mean.to(dtypes[k]) if dtypes[k].is_floating_point else mean
    return out


def average_model(dst_model: str | Path, src_path: str | Path, num: int, val_best: bool, mode: str = "hybrid",
                  min_epoch: int = 0, max_epoch: int = sys.maxsize,
                  min_step: int = 0, max_step: int = sys.maxsize) -> list[Path]:
    """Select, average and save a flat state dict (no yaml, as WeNet); returns the averaged files."""
    paths = select_checkpoints(src_path, num, val_best, mode, min_epoch, max_epoch, min_step, max_step)
    save_torch(average_checkpoints(paths), Path(dst_model))
    logger.info("saved the average of %d checkpoints to %s", len(paths), dst_model)
    return paths
