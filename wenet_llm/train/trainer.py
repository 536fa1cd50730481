"""The one training loop of the AED and LLM stages: train_one_epoch, validate, save, resume.

The model interface is ``step_fn(model, batch) -> dict[str, Tensor]`` with a ``"loss"`` entry
(other entries are logged); ``model`` is the engine's wrapper, so ``step_fn`` only calls it.
Batches are moved to the device before ``step_fn`` sees them; they need ``len(batch)`` (utterances)
and ``batch.audio_seconds``.

Determinism: before every micro-batch the torch RNG is re-seeded from (seed, micro-batch index,
rank), so dropout does not depend on what else drew random numbers (e.g. DataLoader start-up) and
a resumed run draws exactly what an uninterrupted one does.

Uneven data across ranks: dynamic batches give ranks different batch counts, so every fetch is
agreed on with a one-element all-reduce and the epoch ends for all ranks when one runs out.
The last batch of an epoch closes a possibly shorter accumulation window (known by a one-batch
look-ahead), so no gradient is carried across an epoch end or a checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import random
import shutil
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
import yaml
from torch import nn

from wenet_llm.config import to_dict
from wenet_llm.config.train import TrainConfig
from wenet_llm.train import checkpoint as ckpt
from wenet_llm.train.engine import Engine, build_engine, dist_env
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

StepFn = Callable[[nn.Module, Any], Mapping[str, Any]]


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; call before building the model so its init is reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def to_device(obj: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (dataclass, dict, list or tuple, nested) to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: to_device(getattr(obj, f.name), device)
                                           for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def _numel(p: torch.Tensor) -> int:
    return int(getattr(p, "ds_numel", 0) or p.numel())  # ZeRO-3 partitions keep the full size in ds_numel


def parameter_table(model: nn.Module) -> str:
    """Trainable / frozen parameter counts per module (the report's Table 1).

    Modules are the top-level children, or what the model's ``module_of(parameter name)`` says (the
    LLM-ASR model lists its LoRA weights apart from the LLM they sit in).
    """
    module_of = getattr(model, "module_of", None)
    rows: dict[str, list[int]] = {}
    for name, p in model.named_parameters():  # shared parameters are counted once
        top = module_of(name) if callable(module_of) else (name.split(".", 1)[0] if "." in name else "(root)")
        row = rows.setdefault(top, [0, 0])
        row[0 if p.requires_grad else 1] += _numel(p)
    total = [sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())]
    width = max([len(n) for n in rows] + [6])
    lines = [f"{'module':<{width}} {'trainable':>15} {'frozen':>15} {'total':>15}"]
    for name, (t, f) in list(rows.items()) + [("total", total)]:
        lines.append(f"{name:<{width}} {t:>15,} {f:>15,} {t + f:>15,}")
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines)


class _Meter:
    """Utterance-weighted sums of the step_fn outputs, kept on the device (no sync per batch).

    Batches with a non-finite loss get weight 0, so a skipped step does not turn the log into nan.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.utts: torch.Tensor | float = 0.0
        self.audio_seconds = 0.0
        self.tokens = 0.0
        self.start = time.perf_counter()

    def add(self, out: Mapping[str, Any], utts: int, audio_seconds: float, finite: torch.Tensor,
            tokens: float = 0.0) -> None:
        weight = finite.double() * utts
        for k, v in out.items():
            v = torch.nan_to_num(torch.as_tensor(v).detach().double()) * weight
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.utts = self.utts + weight
        self.audio_seconds += audio_seconds
        self.tokens += tokens


class Trainer:
    """Trains ``model`` with ``step_fn`` on batch streams; checkpoints into ``exp_dir``.

    ``config`` is the stage's whole resolved config (a dataclass or a plain dict): written to
    train.yaml and merged into every checkpoint yaml (WeNet's convention). Default ``{"train": cfg}``.
    """

    def __init__(self, model: nn.Module, step_fn: StepFn, cfg: TrainConfig, exp_dir: str | Path,
                 config: Any = None, weights_format: ckpt.WeightsFormat = ckpt.TORCH_WEIGHTS):
        self.cfg = cfg
        self.step_fn = step_fn
        self.exp_dir = Path(exp_dir)
        self.weights_format = weights_format
        if config is None:
            config = {"train": cfg}
        self.config = to_dict(config)  # plain data (dataclasses and tuples become dicts and lists)
        if dist_env()[0] == 0:
            logger.info("parameters of %s:\n%s", type(model).__name__, parameter_table(model))
        # init_from applies to a run that starts afresh, and before the engine wraps (ZeRO-3 partitions).
        if cfg.init_from and ckpt.latest_complete(self.exp_dir, weights_format) is None:
            init_weights(model, cfg.init_from, weights_format)
        self.engine: Engine = build_engine(model, cfg)
        self.rank, self.world_size = self.engine.rank, self.engine.world_size
        self.step = 0  # optimizer steps applied
        self.epoch = 0
        self.batches = 0  # micro-batches trained on this rank, all epochs
        self.skipped_steps = 0  # steps skipped for a non-finite loss or gradient norm
        self._epoch_utts = 0  # utterances this rank trained on in this epoch (against the skip report)
        self.last_tag: str | None = None
        self.cv_history: list[dict] = []
        self._data_pos: dict | None = None  # train stream position after the last trained batch
        self._pending_data: dict | None = None  # stream state restored by resume()
        self._writer = None

    # -- public API -------------------------------------------------------------------------
    def fit(self, train_stream, dev_stream=None) -> None:
        """Resume if ``exp_dir`` holds a checkpoint, else save init; train to max_epoch/max_steps."""
        cfg = self.cfg
        if self.rank == 0:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_stale_temporaries(self.exp_dir)
        self.engine.barrier()
        if not self.resume():
            self.save("init", {}, epoch_done=False, with_state=False)
        if self.rank == 0:
            save_config_dict(self.config, self.exp_dir / "train.yaml")
        try:
            while self.epoch < cfg.max_epoch and not self._steps_done():
                if self._pending_data is not None:
                    train_stream.load_state_dict(self._pending_data)
                    self._pending_data = None
                train_stream.set_epoch(self.epoch)  # a new epoch resets the position; a resumed one keeps it
                if not self.train_one_epoch(train_stream, dev_stream):
                    break  # max_steps reached mid-epoch; saved as step_{S}
                self._data_pos = copy.deepcopy(train_stream.state_dict())
                loss_dict = self.validate(dev_stream) if dev_stream is not None else {}
                skip_report, skipped = self._gather_skips(train_stream)  # collective: every rank's skips, once
                if self.rank == 0:
                    logger.info("epoch %d done at step %d; cv %s; skipped steps %d; data: %s", self.epoch,
                                self.step, _fmt(loss_dict), self.skipped_steps, skip_report)
                self._check_skips(skipped, skip_report)
                self.save(f"epoch_{self.epoch}", loss_dict, epoch_done=True)
                self.epoch += 1
            if self.rank == 0 and self.last_tag not in (None, "init"):
                ckpt.link_final(self.exp_dir, self.last_tag, self.weights_format)
        finally:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self.engine.barrier()

    def train_one_epoch(self, stream: Iterable, dev_stream=None) -> bool:
        """Train from the stream's current position; False when max_steps stopped it mid-epoch."""
        cfg, eng = self.cfg, self.engine
        eng.model.train()
        meter = _Meter()
        window = 0
        bad_loss = torch.zeros((), dtype=torch.bool, device=eng.device)
        finished = True
        with contextlib.ExitStack() as stack:
            bar = stack.enter_context(self._progress_bar())
            if not bar.disable:
                from tqdm.contrib.logging import logging_redirect_tqdm

                stack.enter_context(logging_redirect_tqdm())
            for batch, is_last, pos in self._lockstep(stream):
                window += 1
                boundary = window == cfg.accum_grad or is_last
                torch.manual_seed(self._micro_seed())
                self.batches += 1
                utts, audio_seconds = len(batch), float(getattr(batch, "audio_seconds", 0.0))
                self._epoch_utts += utts
                tokens = float(getattr(batch, "num_tokens", 0) or 0)  # LLM batches: positions the LLM runs on
                batch = to_device(batch, eng.device)
                with eng.accumulate(boundary):
                    with eng.autocast():
                        out = self._call_step_fn(eng.model, batch)
                    loss = out["loss"]
                    finite = torch.isfinite(loss.detach())
                    bad_loss = bad_loss | ~finite
                    eng.backward(loss)
                meter.add(out, utts, audio_seconds, finite, tokens)
                bar.update(1)
                if not boundary:
                    continue
                window = 0
                result = eng.step(bad_loss)
                bad_loss = torch.zeros_like(bad_loss)
                self._data_pos = pos
                if result.applied:
                    self.step += 1
                else:
                    self.skipped_steps += 1
                    if self.rank == 0:
                        logger.warning("epoch %d: step skipped (non-finite loss or grad norm %.4g); weights "
                                       "unchanged; %d skipped so far", self.epoch, result.grad_norm,
                                       self.skipped_steps)
                    continue
                if self.step % cfg.log_interval == 0:
                    self._log_train(meter, result.grad_norm, bar)
                    meter.reset()
                stop = bool(cfg.max_steps) and self.step >= cfg.max_steps
                periodic = bool(cfg.save_interval_steps) and self.step % cfg.save_interval_steps == 0
                if not is_last and (stop or periodic):
                    loss_dict = self.validate(dev_stream) if dev_stream is not None else {}
                    self.save(f"step_{self.step}", loss_dict, epoch_done=False)
                if stop:
                    finished = is_last
                    break
        return finished

    @torch.no_grad()
    def validate(self, stream) -> dict[str, float]:
        """Mean of every step_fn output over the stream, weighted by utterances, across ranks."""
        eng = self.engine
        eng.model.eval()
        stream.set_epoch(-1)  # an epoch change rewinds the stream to its start
        stream.set_epoch(0)
        sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), dtype=torch.float64))
        utts = 0
        try:
            for batch, counted in self._eval_batches(stream):
                n = len(batch)
                with eng.autocast():
                    out = self._call_step_fn(eng.model, to_device(batch, eng.device))
                if counted:
                    for k, v in out.items():
                        sums[k] = sums[k] + torch.as_tensor(v).detach().double().cpu() * n
                    utts += n
        finally:
            eng.model.train()
        keys = sorted(set().union(*eng.all_gather_object(sorted(sums))))
        totals = eng.all_reduce(torch.stack([sums[k] for k in keys] + [torch.tensor(float(utts), dtype=torch.float64)]))
        if totals[-1] <= 0:
            logger.warning("validation saw no utterance")
            return {}
        return {k: float(totals[i] / totals[-1]) for i, k in enumerate(keys)}

    def save(self, tag: str, loss_dict: dict[str, float], epoch_done: bool, with_state: bool = True) -> None:
        """Write {tag}.state/ (training state), {tag}.pt and {tag}.yaml; collective."""
        eng, exp = self.engine, self.exp_dir
        eng.barrier()
        if with_state:
            tmp, final = ckpt.tmp_state_dir(exp, tag), ckpt.state_dir(exp, tag)
            if self.rank == 0:
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
            eng.barrier()
            eng.save_state(tmp)
            ckpt.save_torch(self._trainer_state(epoch_done), tmp / ckpt.rank_state_name(self.rank))
            eng.barrier()
            if self.rank == 0:
                if final.exists():  # the same tag saved again (e.g. a re-run); replace it
                    ckpt.info_path(exp, tag).unlink(missing_ok=True)
                    shutil.rmtree(final)
                tmp.rename(final)
        weights = eng.model_state_dict(self.cfg.save_trainable_only)  # collective (ZeRO-3 gathers)
        fmt = self.weights_format
        if self.rank == 0:
            fmt.save(weights, fmt.path(exp, tag))
            info = ckpt.make_info(tag, self.epoch, self.step, eng.lrs(), loss_dict,
                                  skipped_steps=self.skipped_steps)
            ckpt.save_info(ckpt.info_path(exp, tag), info, self.config)  # last: marks the checkpoint complete
            removed = ckpt.prune(exp, self.cfg.keep_last, self.cfg.keep_best, fmt)
            logger.info("saved %s (step %d)%s", fmt.path(exp, tag), self.step,
                        f"; pruned {removed}" if removed else "")
            if loss_dict:
                self.cv_history.append({"tag": tag, "step": self.step, **loss_dict})
                self._scalars("cv", loss_dict)
        self.last_tag = tag
        eng.barrier()

    def resume(self, exp_dir: str | Path | None = None) -> bool:
        """Restore the latest complete checkpoint of ``exp_dir``; False when there is none."""
        exp = Path(exp_dir) if exp_dir is not None else self.exp_dir
        info = ckpt.latest_complete(exp, self.weights_format)
        if info is None:
            return False
        sdir = ckpt.state_dir(exp, info.tag)
        rank_file = sdir / ckpt.rank_state_name(self.rank)
        if not rank_file.is_file():
            raise RuntimeError(f"{rank_file} is missing: {info.tag} was saved by another number of processes; "
                               f"resume with the same world size or start a new exp dir")
        state = torch.load(rank_file, map_location="cpu", weights_only=True)
        if state["world_size"] != self.world_size:
            raise RuntimeError(f"{info.tag} was saved with {state['world_size']} processes, this run has "
                               f"{self.world_size}; resume with the same world size")
        fmt = self.weights_format
        self.engine.load_state(sdir, lambda: fmt.load(fmt.path(exp, info.tag)))
        self.step, self.batches = int(state["step"]), int(state["batches"])
        self.skipped_steps = int(state["skipped_steps"])
        self.epoch = int(state["epoch"]) + (1 if state["epoch_done"] else 0)
        self._pending_data = state["data"] or None
        self._data_pos = copy.deepcopy(self._pending_data)
        ckpt.set_rng_state(state["rng"])
        self.last_tag = info.tag
        if self.rank == 0:
            logger.info("resumed from %s: epoch %d, step %d, next epoch %d", sdir, state["epoch"], self.step, self.epoch)
        return True

    # -- internals --------------------------------------------------------------------------
    def _trainer_state(self, epoch_done: bool) -> dict:
        return {"step": self.step, "epoch": self.epoch, "epoch_done": epoch_done, "batches": self.batches,
                "skipped_steps": self.skipped_steps, "world_size": self.world_size,
                "data": self._data_pos or {}, "rng": ckpt.rng_state()}

    def _steps_done(self) -> bool:
        return bool(self.cfg.max_steps) and self.step >= self.cfg.max_steps

    def _micro_seed(self) -> int:
        return ((self.cfg.seed * 1_000_003 + self.batches) * 1_009 + self.rank) % 2**63

    def _call_step_fn(self, model: nn.Module, batch: Any) -> Mapping[str, Any]:
        out = self.step_fn(model, batch)
        if "loss" not in out:
            raise KeyError(f"step_fn must return a dict with a 'loss' entry, got keys {sorted(out)}")
        return out

    def _has(self, present: bool) -> bool:
        """True while every rank still has a batch (one all-reduce per fetch)."""
        flag = torch.tensor(1.0 if present else 0.0)
        return bool(self.engine.all_reduce(flag, "min").item())

    def _lockstep(self, stream: Iterable) -> Iterator[tuple[Any, bool, dict | None]]:
        """Yield (batch, is_last, stream position after it), ending on all ranks when one runs out."""
        it = iter(stream)
        state_fn = getattr(stream, "state_dict", None)

        def fetch():
            batch = next(it, None)
            pos = copy.deepcopy(state_fn()) if (batch is not None and state_fn) else None
            return (batch, pos) if self._has(batch is not None) else (None, None)

        current = fetch()
        while current[0] is not None:
            following = fetch()
            yield current[0], following[0] is None, current[1]
            current = following

    def _eval_batches(self, stream: Iterable) -> Iterator[tuple[Any, bool]]:
        """Dev batches; when forward is collective (ZeRO-3), a rank that ran out repeats its last
        batch uncounted until every rank is done."""
        if not self.engine.collective_forward:
            for batch in stream:
                yield batch, True
            return
        it, last = iter(stream), None
        while True:
            batch = next(it, None)
            if not self._has_any(batch is not None):
                return
            if batch is None:
                if last is None:
                    raise RuntimeError(f"rank {self.rank} has no dev batch; ZeRO-3 validation needs one per rank")
                yield last, False
            else:
                last = batch
                yield batch, True

    def _gather_skips(self, stream) -> tuple[str, int]:
        """This epoch's skipped utterances of all ranks (each rank counts only the batches it loaded):
        the report and how many."""
        skips = getattr(stream, "skips", None)
        states = self.engine.all_gather_object(skips.state_dict() if skips is not None else None)
        if skips is None:
            return "no skip report", 0
        merged = type(skips)()
        for state in states:
            if state is not None:
                merged.merge_state_dict(state)
        return merged.summary(), merged.total()

    def _check_skips(self, skipped: int, report: str) -> None:
        """Stop, without saving the epoch, when more than max_skip_fraction of its utterances were skipped."""
        trained = int(self.engine.all_reduce(torch.tensor(float(self._epoch_utts), dtype=torch.float64)).item())
        self._epoch_utts = 0
        seen = trained + skipped
        if seen and skipped > self.cfg.max_skip_fraction * seen:
            raise RuntimeError(
                f"epoch {self.epoch}: {skipped} of {seen} utterances were skipped (more than "
                f"train.max_skip_fraction {self.cfg.max_skip_fraction}): {report}. The data is broken, not one "
                f"utterance; fix it and rerun: training resumes from the last saved checkpoint")

    def _has_any(self, present: bool) -> bool:
        return bool(self.engine.all_reduce(torch.tensor(1.0 if present else 0.0), "max").item())

    def _progress_bar(self):
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (log files)
        return tqdm(desc=f"epoch {self.epoch}", unit="batch", dynamic_ncols=True, leave=False,
                    disable=True if (self.rank != 0 or not self.cfg.progress_bar) else None)

    def _log_train(self, meter: _Meter, grad_norm: float, bar) -> None:
        # Collective: every rank reaches the same log steps.
        keys = sorted(meter.sums)
        local = torch.stack([meter.sums[k].cpu() for k in keys]
                            + [torch.as_tensor(meter.utts, dtype=torch.float64).cpu(),
                               torch.tensor(meter.tokens, dtype=torch.float64),
                               torch.tensor(meter.audio_seconds, dtype=torch.float64)])
        total = self.engine.all_reduce(local)
        if self.rank != 0:
            return
        utts = max(float(total[-3]), 1.0)
        parts = {k: float(total[i]) / utts for i, k in enumerate(keys)}
        elapsed = max(time.perf_counter() - meter.start, 1e-9)
        speed, token_speed = float(total[-1]) / elapsed, float(total[-2]) / elapsed
        mem_label, mem = self.engine.memory()
        lrs = self.engine.named_lrs()
        lr = self.engine.lrs()[0]
        lr_text = " ".join(f"{k} {v:.3e}" for k, v in lrs.items()) if len(lrs) > 1 else f"{lr:.4e}"
        msg = (f"epoch {self.epoch} step {self.step} | {_fmt(parts)} | lr {lr_text} | grad_norm {grad_norm:.4f} | "
               f"{speed:.1f} audio-s/s" + (f" | {token_speed:.0f} tokens/s" if token_speed else "")
               + f" | {mem_label} {mem:.2f} GiB")
        if self.skipped_steps:
            msg += f" | skipped {self.skipped_steps}"
        bar.set_postfix_str(f"loss {parts.get('loss', float('nan')):.4f}", refresh=False)
        logger.info(msg)
        scalars = {**parts, "lr": lr, "grad_norm": grad_norm, "audio_seconds_per_second": speed,
                   f"memory_{mem_label}_gib": mem}
        if token_speed:
            scalars["tokens_per_second"] = token_speed
        if len(lrs) > 1:
            scalars.update({f"lr_{k}": v for k, v in lrs.items()})
        self._scalars("train", scalars)

    def _scalars(self, prefix: str, values: Mapping[str, float]) -> None:
        if self.rank != 0 or not self.cfg.tensorboard:
            return
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.exp_dir / "tensorboard"))
        for k, v in values.items():
            self._writer.add_scalar(f"{prefix}/{k}", v, self.step)
        self._writer.flush()


def resolve_init_from(source: str | Path, fmt: ckpt.WeightsFormat = ckpt.TORCH_WEIGHTS) -> Path:
    """The model file/dir that ``init_from`` names: a checkpoint itself, or an exp dir's final one."""
    path = Path(source)
    if fmt.exists(path):
        return path
    if path.is_dir():
        final = fmt.path(path, "final")
        if fmt.exists(final):
            return final
        info = ckpt.latest_complete(path, fmt)
        if info is not None:
            return fmt.path(path, info.tag)
    raise FileNotFoundError(f"train.init_from {source}: neither a checkpoint nor an experiment dir with a "
                            f"final checkpoint; train that stage first (or fix the path)")


def init_weights(model: nn.Module, source: str | Path, fmt: ckpt.WeightsFormat = ckpt.TORCH_WEIGHTS) -> list[str]:
    """Load another run's weights into ``model`` (weights only). Every loaded key must exist in the model
    with the same shape; model keys the source lacks keep their values. Returns the loaded keys."""
    path = resolve_init_from(source, fmt)
    weights = fmt.load(path)
    own = model.state_dict()
    unexpected = sorted(k for k in weights if k not in own)
    if unexpected:
        raise RuntimeError(f"init_from {path}: {len(unexpected)} weight(s) the model does not have, e.g. "
                           f"{unexpected[:5]}; is it a checkpoint of the same kind of model?")
    bad = [f"{k}: {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in weights
           if tuple(weights[k].shape) != tuple(own[k].shape)]
    if bad:
        raise RuntimeError(f"init_from {path}: shape mismatch: {bad[:5]}")
    model.load_state_dict(weights, strict=False)
    if dist_env()[0] == 0:
        tops = sorted({k.split(".", 1)[0] for k in weights})
        logger.info("initialised %d weights (%s) from %s", len(weights), ", ".join(tops), path)
    return sorted(weights)


def save_config_dict(config: dict, path: Path) -> None:
    """Write a plain config dict as YAML, atomically."""
    with atomic_open(path) as f:
        yaml.safe_dump(config, f, allow_unicode=True, sort_keys=False)


def _fmt(values: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in values.items()) if values else "-"
