"""Engines: the one place where single-process, DDP and DeepSpeed training differ.

The training loop only sees this interface::

    with engine.accumulate(boundary):          # DDP no_sync / DeepSpeed boundary flag
        with engine.autocast():
            out = step_fn(engine.model, batch)
        engine.backward(out["loss"])            # divided by accum_grad
    result = engine.step(bad_loss)             # clip, optimizer, scheduler, zero_grad

plus ``model_state_dict`` (a flat fp32 dict on rank 0, gathered for ZeRO-3), ``save_state`` /
``load_state`` (optimizer, scheduler, grad scaler), ``barrier``, ``all_reduce`` and rank/world_size.

DeepSpeed: the config is generated from :class:`TrainConfig` by :func:`deepspeed_config`. The
optimizer (torch Adam/AdamW) and the LambdaLR schedule are built here, as for the torch engine, and
handed to ``deepspeed.initialize``; DeepSpeed wraps the optimizer (ZeRO partitions its state) and
steps the schedule only on applied steps, so the lr is the same function of the step in both
engines. Its own checkpoint (``save_checkpoint``) holds optimizer and scheduler state and is
loaded by DeepSpeed itself (which uses ``torch.load(weights_only=False)`` internally).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from wenet_llm.config.train import OptimConfig, TrainConfig
from wenet_llm.train.scheduler import build_scheduler
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DEEPSPEED_TAG = "deepspeed"  # sub-directory of a state dir holding DeepSpeed's own checkpoint
ENGINE_STATE = "engine.pt"  # optimizer, scheduler and grad scaler of the torch engine


@dataclass
class StepResult:
    applied: bool  # False when a non-finite loss or gradient made the step skip
    grad_norm: float  # global norm before clipping (inf/nan when skipped for that reason)


def dist_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the torchrun environment; (0, 1, 0) without it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def pick_device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("train.device is cuda but no CUDA device is visible; set train.device=cpu")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_distributed(backend: str, single_process_group: bool = False) -> None:
    """Join the torchrun process group (env://); or make a 1-process group when one is required."""
    if dist.is_initialized():
        return
    _, world_size, _ = dist_env()
    if world_size > 1:
        dist.init_process_group(backend=backend)
    elif single_process_group:  # DeepSpeed needs a process group even for one process
        dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)


def shutdown_distributed() -> None:
    """Leave the process group once every rank is done (a barrier, then destroy): a process that exits with
    the group alive can abort in gloo's teardown ("terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()


def _no_decay(name: str, param: nn.Parameter) -> bool:
    # Vectors (norm weights, biases) and embedding tables are not weight-decayed.
    return param.ndim < 2 or "norm" in name.lower() or "embed" in name.lower()


def parameter_groups(module: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """Optimizer parameter groups from the model's named groups and ``cfg.groups``.

    A model may define ``parameter_groups() -> {group name: [(name, parameter), ...]}`` listing every
    group it has (frozen ones with an empty list); otherwise all parameters form the group "model".
    Each group is split into a decayed and a non-decayed part (``no_decay_norm_bias_embedding``).
    """
    groups_fn = getattr(module, "parameter_groups", None)
    if callable(groups_fn):
        named = groups_fn()
    else:
        named = {"model": list(module.named_parameters())}
    unknown = sorted(set(cfg.groups) - set(named))
    if unknown:
        raise ValueError(f"optim.groups: unknown group(s) {unknown}; this model's groups are {sorted(named)}")
    out: list[dict[str, Any]] = []
    for group, params in named.items():
        settings = cfg.groups.get(group)
        lr = settings.lr if settings is not None and settings.lr is not None else cfg.lr
        wd = settings.weight_decay if settings is not None and settings.weight_decay is not None else cfg.weight_decay
        trainable = [(n, p) for n, p in params if p.requires_grad]
        split = cfg.no_decay_norm_bias_embedding and wd > 0
        decay = [p for n, p in trainable if not (split and _no_decay(n, p))]
        no_decay = [p for n, p in trainable if split and _no_decay(n, p)]
        if decay:
            out.append({"params": decay, "lr": lr, "weight_decay": wd, "name": group})
        if no_decay:
            out.append({"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": f"{group}.no_decay"})
    return out


def build_optimizer(module: nn.Module | list[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the module's trainable parameters, grouped as :func:`parameter_groups` says."""
    classes = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if cfg.name not in classes:
        raise ValueError(f"unknown optimizer {cfg.name!r}; valid: {sorted(classes)}")
    if isinstance(module, nn.Module):
        groups: Any = parameter_groups(module, cfg)
        if not groups:
            raise ValueError("the model has no trainable parameter; check the stage's trainable/frozen settings")
    else:
        groups = module
    return classes[cfg.name](groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay)


def _cpu_copy(t: torch.Tensor) -> torch.Tensor:
    # A compact copy: saving a view would write its whole storage (e.g. a ZeRO flat buffer).
    return torch.empty_like(t, device="cpu").copy_(t.detach())


class Engine:
    """Common part: device, process group, precision, collectives."""

    def __init__(self, module: nn.Module, cfg: TrainConfig):
        self.cfg = cfg
        self.module = module  # the bare model; ``self.model`` is what forward goes through
        self.rank, self.world_size, self.local_rank = dist_env()
        self.device = pick_device(cfg, self.local_rank)
        self.backend = cfg.dist_backend if cfg.dist_backend != "auto" else (
            "nccl" if self.device.type == "cuda" else "gloo")
        self.dtype = _DTYPES[cfg.precision]
        if cfg.precision == "bf16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("train.precision bf16 needs a GPU with bf16 support (Ampere or newer); use fp16 or fp32")
        self.trainable = [p for p in module.parameters() if p.requires_grad]
        if not self.trainable:
            raise ValueError("the model has no trainable parameter; check the stage's trainable/frozen settings")
        self.model: nn.Module = module

    # -- interface used by the trainer -------------------------------------------------------
    def accumulate(self, boundary: bool) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.cfg.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        raise NotImplementedError

    def step(self, bad_loss: torch.Tensor) -> StepResult:
        raise NotImplementedError

    def lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def named_lrs(self) -> dict[str, float]:
        """The learning rate of each named parameter group (decayed and non-decayed parts share one)."""
        out: dict[str, float] = {}
        for i, g in enumerate(self.optimizer.param_groups):
            out.setdefault(str(g.get("name", f"group{i}")).removesuffix(".no_decay"), float(g["lr"]))
        return out

    def model_state_dict(self, trainable_only: bool = False) -> dict[str, torch.Tensor] | None:
        """Flat state dict on CPU on rank 0 (None elsewhere). Collective: every rank must call it."""
        raise NotImplementedError

    def save_state(self, state_dir: Path) -> None:
        """Optimizer/scheduler/scaler state into ``state_dir``. Collective."""
        raise NotImplementedError

    def load_state(self, state_dir: Path, load_weights: Callable[[], dict[str, torch.Tensor]]) -> None:
        """Restore weights (``load_weights()`` reads the checkpoint's model file) and optimizer state."""
        raise NotImplementedError

    # -- collectives (no-ops in one process) ---------------------------------------------------
    @property
    def distributed(self) -> bool:
        return self.world_size > 1 and dist.is_initialized()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """All-reduce a small tensor (sum, max or min); returns the result on the tensor's device."""
        if not self.distributed:
            return tensor
        ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        comm_device = self.device if self.backend == "nccl" else torch.device("cpu")
        t = tensor.detach().to(comm_device, copy=True)
        dist.all_reduce(t, op=ops[op])
        return t.to(tensor.device)

    def all_gather_object(self, obj: Any) -> list[Any]:
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    @property
    def collective_forward(self) -> bool:
        """True when forward itself communicates (ZeRO-3 gathers parameters), so ranks go in lockstep."""
        return False

    def memory(self) -> tuple[str, float]:
        """(label, GiB): CUDA peak allocated on GPU, resident set size on CPU."""
        if self.device.type == "cuda":
            return "max_alloc", torch.cuda.max_memory_allocated(self.device) / 2**30
        try:
            import psutil

            return "rss", psutil.Process().memory_info().rss / 2**30
        except ImportError:  # psutil comes with deepspeed; ru_maxrss (KiB on Linux) is the fallback
            import resource

            return "max_rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    def _trainable_keys(self) -> set[str]:
        return {n for n, p in self.module.named_parameters(remove_duplicate=False) if p.requires_grad}


class TorchEngine(Engine):
    """One process (CPU or one GPU) or DDP when launched by torchrun with WORLD_SIZE > 1."""

    def __init__(self, module: nn.Module, cfg: TrainConfig):
        super().__init__(module, cfg)
        init_distributed(self.backend)
        module.to(self.device)
        self.optimizer = build_optimizer(module, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, cfg.max_steps, cfg.optim.lr)
        self.scaler = torch.amp.GradScaler(self.device.type) if cfg.precision == "fp16" else None
        if self.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                module, device_ids=[self.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)

    def accumulate(self, boundary: bool) -> contextlib.AbstractContextManager:
        # Gradients are all-reduced only on the last micro-batch of a step.
        if self.distributed and not boundary:
            return self.model.no_sync()
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss = loss / self.cfg.accum_grad
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, bad_loss: torch.Tensor) -> StepResult:
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
        # The norm is the same on every rank (reduced grads) but a bad loss may be local: reduce the flag.
        bad = torch.stack([bad_loss.float().to(norm.device), (~torch.isfinite(norm)).float()]).max()
        skip = bool(self.all_reduce(bad, "max").item())
        if skip:
            if self.scaler:
                self.scaler.update()  # backs the fp16 scale off when the gradients overflowed
        elif self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        if not skip:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepResult(applied=not skip, grad_norm=float(norm))

    def model_state_dict(self, trainable_only: bool = False) -> dict[str, torch.Tensor] | None:
        if self.rank != 0:
            return None
        sd = self.module.state_dict()
        if trainable_only:
            keep = self._trainable_keys() | {n for n, _ in self.module.named_buffers(remove_duplicate=False)}
            sd = {k: v for k, v in sd.items() if k in keep}
        return {k: _cpu_copy(v) for k, v in sd.items()}

    def save_state(self, state_dir: Path) -> None:
        if self.rank == 0:
            state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                     "scaler": self.scaler.state_dict() if self.scaler else {}}
            with atomic_open(state_dir / ENGINE_STATE, "wb") as f:
                torch.save(state, f)

    def load_state(self, state_dir: Path, load_weights_fn: Callable[[], dict[str, torch.Tensor]]) -> None:
        load_weights(self.module, load_weights_fn(), strict=not self.cfg.save_trainable_only)
        state = torch.load(state_dir / ENGINE_STATE, map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], strict: bool) -> None:
    """Load a flat state dict; with strict=False only the trainable parameters must all be present."""
    missing, unexpected = module.load_state_dict(weights, strict=strict)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    lost = sorted(trainable & set(missing))
    if lost or unexpected:
        raise RuntimeError(f"checkpoint does not match the model: missing trainable {lost[:5]}..., "
                           f"unexpected {sorted(unexpected)[:5]}")


def _merge_strict(base: dict, extra: dict, where: str = "deepspeed_extra") -> None:
    for key, value in extra.items():
        if key in base and isinstance(base[key], dict) and isinstance(value, dict):
            _merge_strict(base[key], value, f"{where}.{key}")
        elif key in base:
            raise ValueError(f"{where}.{key} is generated from the train config (value {base[key]!r}); "
                             f"set the train field instead of overriding it")
        else:
            base[key] = value


def deepspeed_config(cfg: TrainConfig) -> dict[str, Any]:
    """The DeepSpeed config, generated from the train config (one source of truth)."""
    ds: dict[str, Any] = {
        # Batches are dynamic (by total duration), so one "sample" is one batch; DeepSpeed only uses
        # the micro batch size for its sample counters.
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": cfg.accum_grad,
        "gradient_clipping": cfg.grad_clip,
        "steps_per_print": 2**31 - 1,  # the trainer logs
        "wall_clock_breakdown": False,
        "zero_allow_untested_optimizer": True,  # torch Adam/AdamW, partitioned by ZeRO
        "zero_optimization": {"stage": cfg.deepspeed_stage},
        # bf16 through torch autocast, not DeepSpeed's "bf16" section: that section casts the whole module
        # to bf16 (inputs must then be bf16) and DeepSpeed disables an outer torch.autocast inside its
        # forward on CUDA. With torch_autocast the module keeps the dtypes it was built with (fp32
        # trainable weights), as in the torch engine. fp16 is refused by TrainConfig.validate.
        "torch_autocast": {"enabled": cfg.precision == "bf16", "dtype": "bfloat16"},
    }
    if cfg.deepspeed_stage == 3:
        ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = False  # we gather fp32 ourselves
    _merge_strict(ds, cfg.deepspeed_extra)
    return ds


class DeepSpeedEngine(Engine):
    """DeepSpeed ZeRO stage 1, 2 or 3; one process per device under torchrun or deepspeed."""

    def __init__(self, module: nn.Module, cfg: TrainConfig):
        super().__init__(module, cfg)
        import deepspeed
        from deepspeed.accelerator import get_accelerator, set_accelerator

        if self.device.type == "cpu" and get_accelerator().device_name() != "cpu":
            from deepspeed.accelerator.cpu_accelerator import CPU_Accelerator

            set_accelerator(CPU_Accelerator())
        elif self.device.type == "cuda" and get_accelerator().device_name() == "cpu":
            raise RuntimeError("DeepSpeed runs with its CPU accelerator (DS_ACCELERATOR=cpu?) but train.device is cuda")
        init_distributed(self.backend, single_process_group=True)
        for key, value in (("RANK", self.rank), ("WORLD_SIZE", self.world_size), ("LOCAL_RANK", self.local_rank)):
            os.environ.setdefault(key, str(value))  # DeepSpeed asserts on them even without a launcher
        deepspeed.init_distributed(dist_backend=self.backend, verbose=False)
        self.optimizer = build_optimizer(module, cfg.optim)
        scheduler = build_scheduler(self.optimizer, cfg.scheduler, cfg.max_steps, cfg.optim.lr)
        self.ds_config = deepspeed_config(cfg)
        self.model, _, _, self.scheduler = deepspeed.initialize(
            model=module, optimizer=self.optimizer, lr_scheduler=scheduler, config=self.ds_config,
            dist_init_required=False)
        self.module = self.model.module

    @property
    def collective_forward(self) -> bool:
        return self.cfg.deepspeed_stage == 3

    @contextlib.contextmanager
    def accumulate(self, boundary: bool) -> Iterator[None]:
        # The trainer owns the boundary (the last batch of an epoch closes a short window).
        self.model.set_gradient_accumulation_boundary(boundary)
        yield

    def backward(self, loss: torch.Tensor) -> None:
        self.model.backward(loss)  # DeepSpeed divides by gradient_accumulation_steps

    def step(self, bad_loss: torch.Tensor) -> StepResult:
        # DeepSpeed skips the update itself when the gradient norm is not finite (all stages, fp32/bf16/fp16).
        self.model.step()
        applied = bool(self.model.was_step_applied())
        norm = self.model.get_global_grad_norm()
        norm = float(norm) if norm is not None else float("nan")
        if applied and bool(self.all_reduce(bad_loss.float().cpu(), "max").item()):
            logger.warning("DeepSpeed applied a step whose loss was not finite (its gradients were finite)")
        return StepResult(applied=applied, grad_norm=norm)

    def model_state_dict(self, trainable_only: bool = False) -> dict[str, torch.Tensor] | None:
        """Trainable parameters from DeepSpeed's fp32 master weights; the rest as the module holds them."""
        import deepspeed
        from deepspeed.utils import safe_get_full_fp32_param

        stage3 = self.cfg.deepspeed_stage == 3
        out: dict[str, torch.Tensor] = {}
        done: dict[int, torch.Tensor | None] = {}
        # keep_vars gives the Parameter objects; the loop order is the same on every rank (collectives).
        for key, value in self.module.state_dict(keep_vars=True).items():
            if not isinstance(value, nn.Parameter):
                if self.rank == 0:
                    out[key] = _cpu_copy(value)
                continue
            if id(value) not in done:
                tensor: torch.Tensor | None
                if value.requires_grad:
                    full = safe_get_full_fp32_param(value)  # fp32 master weights; gathers under ZeRO-3
                    tensor = _cpu_copy(full if full is not None else value) if self.rank == 0 else None
                elif trainable_only:
                    tensor = None
                elif stage3:
                    with deepspeed.zero.GatheredParameters([value], modifier_rank=None):
                        tensor = _cpu_copy(value.data) if self.rank == 0 else None
                else:
                    tensor = _cpu_copy(value) if self.rank == 0 else None
                done[id(value)] = tensor
            if done[id(value)] is not None:
                out[key] = done[id(value)]
        return out if self.rank == 0 else None

    def save_state(self, state_dir: Path) -> None:
        # Frozen weights come from the model builder on resume, as with the torch engine.
        self.model.save_checkpoint(str(state_dir), tag=DEEPSPEED_TAG, save_latest=False,
                                   exclude_frozen_parameters=True)

    def load_state(self, state_dir: Path, load_weights_fn: Callable[[], dict[str, torch.Tensor]]) -> None:
        # DeepSpeed's own checkpoint holds the trainable weights; frozen ones come from the model builder.
        path, _ = self.model.load_checkpoint(str(state_dir), tag=DEEPSPEED_TAG, load_module_strict=False,
                                             load_optimizer_states=True, load_lr_scheduler_states=True)
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load its checkpoint from {state_dir}/{DEEPSPEED_TAG}")


ENGINES = {"torch": TorchEngine, "deepspeed": DeepSpeedEngine}


def build_engine(module: nn.Module, cfg: TrainConfig) -> Engine:
    if cfg.engine not in ENGINES:
        raise ValueError(f"unknown engine {cfg.engine!r}; valid: {sorted(ENGINES)}")
    return ENGINES[cfg.engine](module, cfg)
