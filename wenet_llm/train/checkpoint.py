"""WeNet-compatible checkpoint files, plus the training state for an exact resume.

Layout of ``exp_dir`` (tag = ``epoch_{N}``, ``step_{S}`` or ``init``)::

    train.yaml            the resolved config
    {tag}.pt              torch.save(flat model state_dict), fp32, no optimizer (WeNet's format)
    {tag}.yaml            epoch, step, tag, lrs, loss_dict (CV), save_time + the whole config merged in
    {tag}.state/          trainer.rank{R}.pt (step, epoch, data position, RNG) per rank, and
                          engine.pt (torch optimizer/scheduler/scaler) or deepspeed/ (DeepSpeed's checkpoint)
    final.pt -> epoch_{N}.pt

Write order: state dir (built under a hidden temporary name, then renamed), ``.pt``, and the
``.yaml`` last, each file through a temporary name and a rename. A checkpoint is complete when its
yaml, pt and state dir all exist, so a kill at any point leaves the previous one as the latest.
Everything we write loads with ``torch.load(weights_only=True)``: tensors, numbers, strings and
lists/tuples/dicts of them (numpy's RNG keys are stored as a tensor).

The model file is WeNet's ``{tag}.pt`` by default (:data:`TORCH_WEIGHTS`). A stage whose weights have
another natural format (the LLM stages: safetensors per module and LoRA in PEFT's adapter format)
passes a :class:`DirectoryWeights`, which writes a ``{tag}/`` directory through a hidden temporary
directory and a rename, so the completeness rule above holds unchanged (``final`` then links to it).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import Callable

import numpy as np
import torch
import yaml

from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

SAVE_TIME_FORMAT = "%d/%m/%Y %H:%M:%S"  # WeNet's


class WeightsFormat:
    """How a checkpoint's model weights are stored; the default is WeNet's ``{tag}.pt``."""

    suffix = ".pt"

    def path(self, exp_dir: Path, tag: str) -> Path:
        return Path(exp_dir) / f"{tag}{self.suffix}"

    def exists(self, path: Path) -> bool:
        return Path(path).is_file()

    def save(self, weights: dict[str, torch.Tensor], path: Path) -> None:
        save_torch(weights, path)

    def load(self, path: Path) -> dict[str, torch.Tensor]:
        return torch.load(path, map_location="cpu", weights_only=True)

    def remove(self, path: Path) -> None:
        Path(path).unlink(missing_ok=True)


class DirectoryWeights(WeightsFormat):
    """Weights in a ``{tag}/`` directory, written by ``writer(weights, dir)`` and read by ``reader(dir)``."""

    suffix = ""

    def __init__(self, writer: Callable[[dict, Path], None], reader: Callable[[Path], dict],
                 marker: str = "weights.json"):
        self.writer, self.reader, self.marker = writer, reader, marker

    def exists(self, path: Path) -> bool:
        return (Path(path) / self.marker).is_file()

    def save(self, weights: dict[str, torch.Tensor], path: Path) -> None:
        path = Path(path)
        tmp = path.parent / f".{path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.writer(weights, tmp)
        if not (tmp / self.marker).is_file():
            raise RuntimeError(f"the weights writer did not write {self.marker} into {tmp}")
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
        tmp.rename(path)

    def load(self, path: Path) -> dict[str, torch.Tensor]:
        if not self.exists(path):
            raise FileNotFoundError(f"{path} is not a complete checkpoint directory (no {self.marker})")
        return self.reader(Path(path))

    def remove(self, path: Path) -> None:
        if Path(path).is_symlink():
            Path(path).unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


TORCH_WEIGHTS = WeightsFormat()


def model_path(exp_dir: Path, tag: str, fmt: WeightsFormat = TORCH_WEIGHTS) -> Path:
    return fmt.path(exp_dir, tag)


def info_path(exp_dir: Path, tag: str) -> Path:
    return Path(exp_dir) / f"{tag}.yaml"


def state_dir(exp_dir: Path, tag: str) -> Path:
    return Path(exp_dir) / f"{tag}.state"


def tmp_state_dir(exp_dir: Path, tag: str) -> Path:
    return Path(exp_dir) / f".{tag}.state.tmp"


def rank_state_name(rank: int) -> str:
    return f"trainer.rank{rank}.pt"


def save_torch(obj: Any, path: Path) -> None:
    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


def save_info(path: Path, info: dict, config: dict) -> None:
    """WeNet's checkpoint yaml: the config with the checkpoint's info merged over it."""
    with atomic_open(path) as f:
        yaml.safe_dump({**config, **info}, f, allow_unicode=True, sort_keys=False)


def make_info(tag: str, epoch: int, step: int, lrs: list[float], loss_dict: dict[str, float], **extra: Any) -> dict:
    return {"epoch": epoch, "step": step, "tag": tag, "lrs": [float(x) for x in lrs],
            "loss_dict": {k: float(v) for k, v in loss_dict.items()},
            "save_time": time.strftime(SAVE_TIME_FORMAT), **extra}


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class CheckpointInfo:
    tag: str
    epoch: int
    step: int
    loss: float | None  # loss_dict.loss, the CV loss; None when no CV ran

    @property
    def order(self) -> tuple[int, int, int]:
        # An epoch checkpoint saved at the same step as a step checkpoint comes after it (CV + epoch end).
        return (self.step, self.epoch, 1 if self.tag.startswith("epoch_") else 0)


def read_info(path: Path) -> CheckpointInfo | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        logger.warning("unreadable checkpoint yaml %s: %s", path, e)
        return None
    if not isinstance(data, dict):
        return None
    loss = (data.get("loss_dict") or {}).get("loss")
    return CheckpointInfo(tag=str(data.get("tag", path.stem)), epoch=int(data.get("epoch", -1)),
                          step=int(data.get("step", -1)), loss=None if loss is None else float(loss))


def list_checkpoints(exp_dir: Path, mode: str = "hybrid") -> list[CheckpointInfo]:
    """Checkpoints described by yamls (not train*/init*), oldest first. mode: hybrid, epoch or step."""
    out = []
    for path in sorted(Path(exp_dir).glob("*.yaml")):
        name = path.name
        if name.startswith(("train", "init")) or (mode != "hybrid" and not name.startswith(f"{mode}_")):
            continue
        info = read_info(path)
        if info is not None:
            out.append(info)
    return sorted(out, key=lambda c: c.order)


def latest_complete(exp_dir: Path, fmt: WeightsFormat = TORCH_WEIGHTS) -> CheckpointInfo | None:
    """The newest checkpoint with its yaml, model file and training state all present."""
    for info in reversed(list_checkpoints(exp_dir)):
        if fmt.exists(fmt.path(exp_dir, info.tag)) and state_dir(exp_dir, info.tag).is_dir():
            return info
    return None


def remove_stale_temporaries(exp_dir: Path) -> None:
    """Remove what a killed save left under temporary names (never a complete checkpoint)."""
    for path in Path(exp_dir).glob(".*.tmp"):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def link_final(exp_dir: Path, tag: str, fmt: WeightsFormat = TORCH_WEIGHTS) -> None:
    """final.pt -> {tag}.pt (or final -> {tag} for directory weights), a relative symlink replaced atomically."""
    final = fmt.path(exp_dir, "final")
    tmp = Path(exp_dir) / f".{final.name}.link.tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(fmt.path(exp_dir, tag).name, tmp)
    os.replace(tmp, final)


def prune(exp_dir: Path, keep_last: int, keep_best: int, fmt: WeightsFormat = TORCH_WEIGHTS) -> list[str]:
    """Apply keep_last/keep_best (see TrainConfig); returns the tags whose model files were removed."""
    if keep_last <= 0:
        return []
    ckpts = list_checkpoints(exp_dir)
    old = ckpts[:-keep_last]
    with_loss = sorted((c for c in ckpts if c.loss is not None), key=lambda c: c.loss)
    best = {c.tag for c in with_loss[:keep_best]}
    removed = []
    for c in old:
        shutil.rmtree(state_dir(exp_dir, c.tag), ignore_errors=True)
        if c.tag not in best:
            # yaml first: without it the model file is no longer listed as a checkpoint
            info_path(exp_dir, c.tag).unlink(missing_ok=True)
            fmt.remove(fmt.path(exp_dir, c.tag))
            removed.append(c.tag)
    return removed
