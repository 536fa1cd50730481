"""Schema of the trainer shared by the AED stage and the three LLM stages.

The DeepSpeed config is generated from these fields (see ``wenet_llm.train.engine``); there is
no second JSON file that must agree with them. Defaults follow WeNet's aishell recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional


@dataclass
class ParamGroupConfig:
    """Settings of one module's parameters (e.g. the adapter, the encoder, the LoRA weights)."""

    lr: Optional[float] = None  # None: optim.lr
    weight_decay: Optional[float] = None  # None: optim.weight_decay

    def validate(self) -> None:
        if self.lr is not None and self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay is not None and self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")

# Checkpoint kinds ``python -m wenet_llm.bin.average_model --mode`` picks from (epoch_* and step_*, or one kind).
AVERAGE_MODES = ("hybrid", "epoch", "step")


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw"] = "adam"
    lr: float = 0.002
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    # Per-module settings, keyed by the model's parameter group names (the LLM-ASR model has encoder,
    # adapter, lora and llm; the AED has one group, "model"). A name the model does not have is an error.
    groups: dict[str, ParamGroupConfig] = field(default_factory=dict)
    # Norm weights, biases and embeddings get no weight decay (the usual practice for transformers).
    no_decay_norm_bias_embedding: bool = True

    def validate(self) -> None:
        if self.lr <= 0 or self.eps <= 0 or self.weight_decay < 0:
            raise ValueError(f"lr and eps must be > 0 and weight_decay >= 0, got {self}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must lie in [0, 1), got {list(self.betas)}")


@dataclass
class SchedulerConfig:
    """Learning-rate schedule, a function of the number of optimizer steps applied.

    warmuplr: WeNet's Noam-style schedule, lr * w^0.5 * min(s^-0.5, s * w^-1.5) with s = step + 1.
    cosine: linear warm-up to lr over warmup_steps, then a cosine decay to min_lr at total_steps
      (train.max_steps when 0), then min_lr.
    constant: linear warm-up over warmup_steps (none when 0), then lr.
    """

    name: Literal["warmuplr", "cosine", "constant"] = "warmuplr"
    warmup_steps: int = 25000
    min_lr: float = 0.0
    total_steps: int = 0

    def validate(self) -> None:
        if self.warmup_steps < 0 or self.total_steps < 0 or self.min_lr < 0:
            raise ValueError("warmup_steps, total_steps and min_lr must be >= 0")


@dataclass
class TrainConfig:
    max_epoch: int = 240
    max_steps: int = 0  # optimizer steps; 0 = no limit
    accum_grad: int = 4
    grad_clip: float = 5.0  # max global grad norm; 0 = no clipping (the norm is still logged)
    log_interval: int = 100  # optimizer steps between log lines
    save_interval_steps: int = 0  # also validate and save step_{S} every this many steps; 0 = per epoch only
    # An epoch whose data loader skipped more than this share of its utterances (unreadable audio, bad
    # lists) stops training with the skip report instead of saving: a few bad utterances are skipped and
    # counted, a data set that has gone missing is an error.
    max_skip_fraction: float = 0.5
    # The last keep_last checkpoints keep everything (model, yaml, training state); older ones lose their
    # training state, and their model + yaml too unless they are among the keep_best lowest CV losses
    # (the candidates of average_model --val_best). keep_last 0 keeps everything (WeNet's behaviour).
    keep_last: int = 0
    keep_best: int = 0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    engine: Literal["torch", "deepspeed"] = "torch"  # torch: one process, or DDP under torchrun (WORLD_SIZE > 1)
    deepspeed_stage: Literal[1, 2, 3] = 2
    # Extra DeepSpeed keys (e.g. zero_optimization.offload_optimizer), merged into the generated config;
    # keys that the fields above generate are refused so that there is one source of truth.
    deepspeed_extra: dict[str, Any] = field(default_factory=dict)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available
    dist_backend: Literal["auto", "nccl", "gloo"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    find_unused_parameters: bool = False  # DDP: needed when some trainable parameters get no gradient
    gradient_checkpointing: bool = False  # read by the model builders
    seed: int = 777
    save_trainable_only: bool = False  # .pt files hold trainable parameters + buffers only (LLM stages)
    # Start from another run's weights (a checkpoint file or directory, or an experiment dir, whose
    # final checkpoint is taken) with a fresh optimizer, schedule and step count. Ignored when this run's
    # own exp dir holds a checkpoint to resume.
    init_from: str = ""
    tensorboard: bool = True
    progress_bar: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

    def validate(self) -> None:
        if self.max_epoch < 1 or self.accum_grad < 1 or self.log_interval < 1:
            raise ValueError("max_epoch, accum_grad and log_interval must be >= 1")
        if min(self.max_steps, self.save_interval_steps, self.keep_last, self.keep_best) < 0:
            raise ValueError("max_steps, save_interval_steps, keep_last and keep_best must be >= 0")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0, got {self.grad_clip}")
        if not 0.0 < self.max_skip_fraction <= 1.0:
            raise ValueError(f"max_skip_fraction must be in (0, 1], got {self.max_skip_fraction}")
        if self.engine == "deepspeed" and self.precision == "fp16":
            # DeepSpeed's fp16 mode casts the module to fp16 (so every input must be fp16) and its torch
            # autocast path has no loss scaler under ZeRO; GPUs without bf16 use the torch engine.
            raise ValueError("precision fp16 is not supported with engine deepspeed; use bf16, "
                             "or engine torch (fp16 autocast with a GradScaler)")
        if self.scheduler.name == "cosine" and not (self.scheduler.total_steps or self.max_steps):
            raise ValueError("the cosine schedule needs scheduler.total_steps or max_steps (> 0)")
