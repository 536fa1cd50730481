"""Learning-rate schedules as multipliers of the base lr, a function of the optimizer step.

``step`` is the number of optimizer steps already applied, so the first update uses step 0
(WeNet's WarmupLR uses ``s = last_epoch + 1`` with ``last_epoch`` starting at 0).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from wenet_llm.config.train import SchedulerConfig


def warmuplr_factor(step: int, warmup_steps: int) -> float:
    """WeNet's warmuplr: ``w^0.5 * min(s^-0.5, s * w^-1.5)``, s = step + 1."""
    s = step + 1
    if warmup_steps == 0:
        return s ** -0.5
    return warmup_steps ** 0.5 * min(s ** -0.5, s * warmup_steps ** -1.5)


def cosine_factor(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def constant_factor(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / warmup_steps) if warmup_steps else 1.0


def lr_factor_fn(cfg: SchedulerConfig, base_lr: float, max_steps: int = 0) -> Callable[[int], float]:
    if cfg.name == "warmuplr":
        return lambda step: warmuplr_factor(step, cfg.warmup_steps)
    if cfg.name == "cosine":
        total = cfg.total_steps or max_steps
        min_ratio = cfg.min_lr / base_lr
        return lambda step: cosine_factor(step, cfg.warmup_steps, total, min_ratio)
    if cfg.name == "constant":
        return lambda step: constant_factor(step, cfg.warmup_steps)
    raise ValueError(f"unknown scheduler {cfg.name!r}; valid: warmuplr, cosine, constant")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, max_steps: int = 0,
                    base_lr: float | None = None):
    """A LambdaLR scaling every parameter group by the same factor of the step.

    ``base_lr`` is the reference rate that ``min_lr`` refers to (optim.lr); a group with its own rate
    decays to the same fraction of it. The state_dict holds only numbers (loads with weights_only=True).
    """
    if base_lr is None:
        base_lr = optimizer.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor_fn(cfg, base_lr, max_steps))
