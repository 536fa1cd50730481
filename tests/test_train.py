"""Trainer, engines and checkpoints on CPU: a tiny Linear model on random features.

Multi-process tests (DDP, DeepSpeed ZeRO) spawn 2 processes with the gloo backend.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

from dist_helpers import dist_setup, dist_teardown, free_port
from wenet_llm.config import ConfigError, from_dict, load_config, to_dict
from wenet_llm.config.train import TrainConfig
from wenet_llm.data.dataset import SkipReport
from wenet_llm.train import checkpoint as ckpt
from wenet_llm.train.engine import deepspeed_config
from wenet_llm.train.scheduler import build_scheduler, warmuplr_factor
from wenet_llm.train.trainer import Trainer, parameter_table


# -- tiny model and data ----------------------------------------------------------------------
@dataclass
class FakeBatch:
    feats: torch.Tensor  # (B, 4)
    target: torch.Tensor  # (B, 2)
    poison: bool = False  # add a nan constant to the loss: the loss is nan, the gradients finite
    audio_seconds: float = 0.0

    def __len__(self) -> int:
        return self.feats.shape[0]


class FakeStream:
    """DataStream-like: deterministic batches per (seed, rank, epoch, index), exact position."""

    def __init__(self, num_batches: int, seed: int = 0, rank: int = 0, batch_size: int = 3,
                 nan_at: tuple = (), poison_at: tuple = (), drop: tuple = ()):
        self.num_batches, self.seed, self.rank, self.batch_size = num_batches, seed, rank, batch_size
        self.nan_at, self.poison_at, self.drop = set(nan_at), set(poison_at), set(drop)  # (epoch, index)
        self.epoch, self.batches_done = 0, 0
        self.skips = SkipReport()

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.batches_done = epoch, 0

    def make(self, epoch: int, i: int) -> FakeBatch:
        g = torch.Generator().manual_seed(((self.seed * 31 + self.rank) * 1000 + epoch) * 1000 + i)
        bs = self.batch_size + (i % 2)
        x = torch.randn(bs, 4, generator=g)
        y = torch.stack([x[:, 0] * 2 - x[:, 1], x[:, 2] * x[:, 3]], dim=1)
        if (epoch, i) in self.nan_at:
            y = torch.full_like(y, float("nan"))  # nan loss and nan gradients
        return FakeBatch(x, y, poison=(epoch, i) in self.poison_at, audio_seconds=1.5 * bs)

    def __iter__(self):
        for i in range(self.batches_done, self.num_batches):
            self.batches_done = i + 1
            if (self.epoch, i) in self.drop:
                continue
            yield self.make(self.epoch, i)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])


class TinyModel(nn.Module):
    def __init__(self, dropout: float = 0.1, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout))
        self.head = nn.Linear(16, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.frozen(self.head(self.encoder(feats)))


def step_fn(model: nn.Module, batch: FakeBatch) -> dict[str, torch.Tensor]:
    pred = model(batch.feats).float()
    loss = F.mse_loss(pred, batch.target)
    if batch.poison:
        loss = loss + torch.tensor(float("nan"))
    return {"loss": loss, "mae": (pred - batch.target).abs().mean().detach()}


def make_cfg(**over) -> TrainConfig:
    base = {"max_epoch": 2, "accum_grad": 1, "grad_clip": 1.0, "log_interval": 1, "device": "cpu",
            "tensorboard": False, "progress_bar": False, "seed": 3,
            "optim": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
            "scheduler": {"name": "warmuplr", "warmup_steps": 4}}
    for key, value in over.items():
        if isinstance(value, dict):
            base[key] = {**base.get(key, {}), **value}
        else:
            base[key] = value
    return from_dict(TrainConfig, base, "<test>")


def params_of(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.engine.module.state_dict().items()}


def assert_equal_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs: max diff {(a[k].float() - b[k].float()).abs().max()}"


# -- configuration and schedules -----------------------------------------------------------------
def test_train_config_strict(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("accum_grad: 4\noptim:\n  lr: 0.004\n  betas: [0.9, 0.98]\nscheduler:\n  warmup_steps: 100\n")
    cfg = load_config(TrainConfig, path, ["deepspeed_stage=3", "precision=bf16"])
    assert (cfg.accum_grad, cfg.optim.lr, cfg.optim.betas, cfg.deepspeed_stage) == (4, 0.004, (0.9, 0.98), 3)
    with pytest.raises(ConfigError, match="valid keys"):
        load_config(TrainConfig, None, ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="not one of"):
        load_config(TrainConfig, None, ["deepspeed_stage=4"])
    with pytest.raises(ConfigError, match="cosine"):
        load_config(TrainConfig, None, ["scheduler.name=cosine"])


def test_warmuplr_matches_wenet_formula():
    base_lr, w = 0.002, 25
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = build_scheduler(opt, make_cfg(scheduler={"name": "warmuplr", "warmup_steps": w}).scheduler)
    for step in range(80):  # the lr used by update number `step`
        s = step + 1
        expected = base_lr * w ** 0.5 * min(s ** -0.5, s * w ** -1.5)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected, rel=1e-12)
        opt.step()
        sched.step()
    assert max(warmuplr_factor(k, w) for k in range(200)) == pytest.approx(1.0)  # peak = base lr at s = w
    assert warmuplr_factor(w - 1, w) == pytest.approx(1.0)


def test_cosine_and_constant_schedules():
    opt = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    cfg = make_cfg(max_steps=20, scheduler={"name": "cosine", "warmup_steps": 4, "min_lr": 0.1})
    sched = build_scheduler(opt, cfg.scheduler, cfg.max_steps)
    lrs = []
    for _ in range(25):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[12] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 8 / 16)))
    assert lrs[20:] == pytest.approx([0.1] * 5)
    opt2 = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1.0)
    build_scheduler(opt2, make_cfg(scheduler={"name": "constant", "warmup_steps": 0}).scheduler)
    assert opt2.param_groups[0]["lr"] == 1.0


def test_deepspeed_config_is_generated_from_train_config():
    cfg = make_cfg(engine="deepspeed", accum_grad=4, grad_clip=5.0, precision="bf16", deepspeed_stage=3,
                   deepspeed_extra={"zero_optimization": {"reduce_bucket_size": 1000}})
    ds = deepspeed_config(cfg)
    assert ds["train_micro_batch_size_per_gpu"] == 1
    assert ds["gradient_accumulation_steps"] == 4 and ds["gradient_clipping"] == 5.0
    assert ds["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"} and "bf16" not in ds
    assert deepspeed_config(make_cfg(engine="deepspeed"))["torch_autocast"]["enabled"] is False
    with pytest.raises(ConfigError, match="fp16 is not supported with engine deepspeed"):
        make_cfg(engine="deepspeed", precision="fp16")
    assert ds["zero_optimization"]["stage"] == 3 and ds["zero_optimization"]["reduce_bucket_size"] == 1000
    with pytest.raises(ValueError, match="generated from the train config"):
        deepspeed_config(make_cfg(deepspeed_extra={"gradient_accumulation_steps": 8}))
    with pytest.raises(ValueError, match="zero_optimization.stage"):
        deepspeed_config(make_cfg(deepspeed_extra={"zero_optimization": {"stage": 1}}))


def test_parameter_table_counts_trainable_and_frozen():
    table = parameter_table(TinyModel())
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:] if not line.startswith("-")}
    assert rows["encoder"] == ["80", "0", "80"]
    assert rows["head"] == ["34", "0", "34"]
    assert rows["frozen"] == ["0", "6", "6"]
    assert rows["total"] == ["114", "6", "120"]


# -- exact resume ------------------------------------------------------------------------------
@pytest.mark.parametrize("accum_grad,num_batches,first_steps", [
    (1, 4, 3),  # mid-epoch
    (2, 5, 2),  # mid-epoch with accumulation; the resumed epoch ends with a 1-batch window
    (3, 7, 3),  # at an epoch end
])
def test_resume_is_exact(tmp_path, accum_grad, num_batches, first_steps):
    def run(exp, max_steps, model_seed):
        cfg = make_cfg(accum_grad=accum_grad, max_steps=max_steps, max_epoch=10)
        trainer = Trainer(TinyModel(seed=model_seed), step_fn, cfg, exp)
        trainer.fit(FakeStream(num_batches), FakeStream(2, seed=9))
        return trainer

    straight = run(tmp_path / "a", 6, 0)
    first = run(tmp_path / "b", first_steps, 0)
    assert first.step == first_steps
    resumed = run(tmp_path / "b", 6, 123)  # another init: resume must overwrite it
    assert resumed.step == straight.step == 6
    assert_equal_states(params_of(resumed), params_of(straight))
    assert resumed.engine.optimizer.state_dict()["state"][0]["exp_avg"].equal(
        straight.engine.optimizer.state_dict()["state"][0]["exp_avg"])
    final_a = torch.load(tmp_path / "a" / "final.pt", weights_only=True)
    final_b = torch.load(tmp_path / "b" / "final.pt", weights_only=True)
    assert_equal_states(final_a, final_b)


def test_rerun_of_finished_training_changes_nothing(tmp_path):
    cfg = make_cfg(max_epoch=1)
    first = Trainer(TinyModel(), step_fn, cfg, tmp_path)
    first.fit(FakeStream(3))
    mtime = (tmp_path / "epoch_0.pt").stat().st_mtime_ns
    again = Trainer(TinyModel(seed=5), step_fn, cfg, tmp_path)
    again.fit(FakeStream(3))
    assert again.step == first.step == 3
    assert (tmp_path / "epoch_0.pt").stat().st_mtime_ns == mtime
    assert_equal_states(params_of(again), params_of(first))


# -- non-finite losses ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["nan_at", "poison_at"])  # nan gradients / finite gradients
def test_nonfinite_loss_skips_the_step(tmp_path, caplog, kind):
    cfg = make_cfg(max_epoch=1, accum_grad=2)
    with_nan = Trainer(TinyModel(dropout=0.0), step_fn, cfg, tmp_path / "nan")
    # batches 2 and 3 form the second window; batch 2 is bad, so that whole step is skipped
    with caplog.at_level(logging.WARNING, logger="wenet_llm.train.trainer"):
        with_nan.fit(FakeStream(6, **{kind: [(0, 2)]}))
    without = Trainer(TinyModel(dropout=0.0), step_fn, cfg, tmp_path / "ref")
    without.fit(FakeStream(6, drop=[(0, 2), (0, 3)]))
    assert (with_nan.step, with_nan.skipped_steps) == (2, 1)
    assert (without.step, without.skipped_steps) == (2, 0)
    assert "step skipped" in caplog.text
    # the skipped step left weights, optimizer state and lr untouched
    assert_equal_states(params_of(with_nan), params_of(without))
    assert with_nan.engine.lrs() == without.engine.lrs()
    info = yaml.safe_load((tmp_path / "nan" / "epoch_0.yaml").read_text())
    assert info["skipped_steps"] == 1


def test_step_fn_without_loss_is_a_clear_error(tmp_path):
    trainer = Trainer(TinyModel(), lambda m, b: {"mae": m(b.feats).sum()}, make_cfg(max_epoch=1), tmp_path)
    with pytest.raises(KeyError, match="'loss' entry"):
        trainer.fit(FakeStream(2))


# -- checkpoint files ------------------------------------------------------------------------------
def test_checkpoint_files_yaml_and_keep_last(tmp_path):
    cfg = make_cfg(max_epoch=3, save_interval_steps=1, keep_last=2, keep_best=1, tensorboard=True)
    config = {"model": {"hidden": 16}, "train": cfg}  # the stage's whole config; dataclasses allowed
    trainer = Trainer(TinyModel(), step_fn, cfg, tmp_path, config=config)
    trainer.fit(FakeStream(2), FakeStream(2, seed=9))
    # step_1, epoch_0 (step 2), step_3, epoch_1, step_5, epoch_2: the last two keep everything
    cv = {c["tag"]: c["loss"] for c in trainer.cv_history}
    assert sorted(cv) == ["epoch_0", "epoch_1", "epoch_2", "step_1", "step_3", "step_5"]
    best = min(cv, key=cv.get)
    kept = {"step_5", "epoch_2", best}
    assert {p.stem for p in tmp_path.glob("*.yaml")} == kept | {"init", "train"}
    assert {p.stem for p in tmp_path.glob("*.pt")} == kept | {"init", "final"}
    assert {p.name for p in tmp_path.glob("*.state")} == {"step_5.state", "epoch_2.state"}
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert os.readlink(tmp_path / "final.pt") == "epoch_2.pt"
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))

    info = yaml.safe_load((tmp_path / "epoch_2.yaml").read_text())
    assert (info["epoch"], info["step"], info["tag"]) == (2, 6, "epoch_2")
    assert info["loss_dict"].keys() == {"loss", "mae"} and info["loss_dict"]["loss"] == pytest.approx(cv["epoch_2"])
    assert info["lrs"] == pytest.approx(trainer.engine.lrs()) and isinstance(info["lrs"], list)
    datetime.datetime.strptime(info["save_time"], "%d/%m/%Y %H:%M:%S")
    assert info["model"] == {"hidden": 16} and info["train"] == to_dict(cfg)  # the config is merged in
    assert yaml.safe_load((tmp_path / "train.yaml").read_text()) == {"model": {"hidden": 16}, "train": to_dict(cfg)}
    assert yaml.safe_load((tmp_path / "init.yaml").read_text())["tag"] == "init"

    weights = torch.load(tmp_path / "final.pt", weights_only=True)
    assert_equal_states(weights, params_of(trainer))
    assert weights["calls"].dtype == torch.long  # buffers included, dtype kept
    state = torch.load(tmp_path / "epoch_2.state" / "trainer.rank0.pt", weights_only=True)
    assert (state["step"], state["epoch"], state["epoch_done"], state["data"]["batches_done"]) == (6, 2, True, 2)
    engine_state = torch.load(tmp_path / "epoch_2.state" / "engine.pt", weights_only=True)
    assert engine_state["scheduler"]["last_epoch"] == 6


def test_save_trainable_only(tmp_path):
    trainer = Trainer(TinyModel(), step_fn, make_cfg(max_epoch=1, save_trainable_only=True), tmp_path)
    trainer.fit(FakeStream(2))
    weights = torch.load(tmp_path / "epoch_0.pt", weights_only=True)
    assert set(weights) == {"encoder.0.weight", "encoder.0.bias", "head.weight", "head.bias", "calls"}
    resumed = Trainer(TinyModel(seed=4), step_fn, make_cfg(max_epoch=2, save_trainable_only=True), tmp_path)
    resumed.fit(FakeStream(2))
    assert resumed.step == 4


def test_crash_during_save_leaves_previous_checkpoint_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = make_cfg(max_epoch=2)
    straight = Trainer(TinyModel(), step_fn, cfg, tmp_path / "a")
    straight.fit(FakeStream(3))

    real_open = ckpt.atomic_open

    @contextlib.contextmanager
    def failing_open(path, *args, **kwargs):  # the disk fills up while epoch_1.pt is written
        with real_open(path, *args, **kwargs) as f:
            if Path(path).name == "epoch_1.pt":
                f.write(b"half a checkpoint")
                raise OSError("disk full")
            yield f

    monkeypatch.setattr(ckpt, "atomic_open", failing_open)
    crashed = Trainer(TinyModel(), step_fn, cfg, tmp_path / "b")
    with pytest.raises(OSError, match="disk full"):
        crashed.fit(FakeStream(3))
    monkeypatch.setattr(ckpt, "atomic_open", real_open)
    exp = tmp_path / "b"
    assert not (exp / "epoch_1.pt").exists() and not (exp / "epoch_1.yaml").exists()
    assert not list(exp.glob(".epoch_1.pt*"))  # the partial file was removed
    assert ckpt.latest_complete(exp).tag == "epoch_0"  # epoch_1.state without its yaml is ignored

    resumed = Trainer(TinyModel(seed=8), step_fn, cfg, exp)
    resumed.fit(FakeStream(3))
    assert_equal_states(params_of(resumed), params_of(straight))
    assert os.readlink(exp / "final.pt") == "epoch_1.pt"


# -- multi-process: DDP and DeepSpeed with gloo -------------------------------------------------------
def _spawn(fn, args: tuple, nprocs: int = 2, timeout: float = 300) -> None:
    import torch.multiprocessing as mp

    ctx = mp.start_processes(fn, args=args, nprocs=nprocs, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"{fn.__name__} did not finish in {timeout} s (hang in a collective?)")


def _ddp_worker(rank: int, port: int, out: str) -> None:
    dist_setup(rank, 2, port)
    # rank 1 has one batch more: the epoch ends for both when rank 0 runs out
    cfg = make_cfg(max_epoch=2, accum_grad=2)
    trainer = Trainer(TinyModel(dropout=0.0), step_fn, cfg, Path(out) / "exp")
    trainer.fit(FakeStream(5 + rank, rank=rank), FakeStream(2, seed=9, rank=rank))
    cv = trainer.validate(FakeStream(2 + rank, seed=9, rank=rank))
    torch.save({"params": params_of(trainer), "cv": cv, "step": trainer.step}, Path(out) / f"rank{rank}.pt")
    dist_teardown()


def test_ddp_gloo_two_processes(tmp_path):
    _spawn(_ddp_worker, (free_port(), str(tmp_path)))
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_equal_states(r0["params"], r1["params"])
    assert r0["cv"] == r1["cv"] and r0["step"] == r1["step"] == 6  # 3 windows (2, 2, 1) per epoch
    assert_equal_states(torch.load(tmp_path / "exp" / "final.pt", weights_only=True), r0["params"])

    # DDP averages gradients: the same as one process on both ranks' batches joined (same sizes)
    class Joined(FakeStream):
        def make(self, epoch, i):
            a, b = (FakeStream(0, rank=r).make(epoch, i) for r in (0, 1))
            return FakeBatch(torch.cat([a.feats, b.feats]), torch.cat([a.target, b.target]))

    single = Trainer(TinyModel(dropout=0.0), step_fn, make_cfg(max_epoch=2, accum_grad=2), tmp_path / "single")
    single.fit(Joined(5))
    for k, v in params_of(single).items():
        torch.testing.assert_close(r0["params"][k], v, rtol=1e-5, atol=1e-6)
    # utterance-weighted CV mean over both ranks' dev batches (rank 1 has 3, rank 0 has 2)
    dev = [FakeStream(0, seed=9, rank=r).make(0, i) for r in (0, 1) for i in range(2 + r)]
    single.engine.module.load_state_dict(r0["params"])
    with torch.no_grad():
        mse = sum(F.mse_loss(single.engine.module(b.feats), b.target).item() * len(b) for b in dev)
    assert r0["cv"]["loss"] == pytest.approx(mse / sum(len(b) for b in dev), rel=1e-6)


DS_SCENARIOS = [(2, "fp32"), (3, "fp32"), (2, "bf16"), (3, "bf16")]


def _deepspeed_worker(rank: int, port: int, out: str) -> None:
    dist_setup(rank, 2, port)
    results = {}

    def run(name, stage, precision, max_steps=0, engine="deepspeed", **stream_kw):
        cfg = make_cfg(engine=engine, deepspeed_stage=stage, precision=precision, accum_grad=2, max_epoch=2,
                       max_steps=max_steps)
        trainer = Trainer(TinyModel(dropout=0.1), step_fn, cfg, Path(out) / name)
        trainer.fit(FakeStream(5, rank=rank, **stream_kw), FakeStream(2, seed=9, rank=rank))
        fp32 = trainer.engine.model_state_dict()  # collective; full fp32 weights on rank 0
        results[name] = {"step": trainer.step, "skipped": trainer.skipped_steps,
                         "cv": trainer.validate(FakeStream(2, seed=9, rank=rank)),
                         "local": {k: v.detach().float().cpu().clone() for k, v in trainer.engine.module.state_dict().items()
                                   if v.numel() > 0}}  # ZeRO-3 keeps only partitions locally
        if rank == 0:
            results[name]["fp32"] = fp32

    run("ddp", 2, "fp32", engine="torch")
    for stage, precision in DS_SCENARIOS:
        run(f"z{stage}_{precision}", stage, precision)
    run("z2_resume", 2, "fp32", max_steps=2)  # stops mid-epoch 0 and saves step_2
    run("z2_resume", 2, "fp32")  # resumes from step_2
    run("z2_nan", 2, "fp32", nan_at=[(0, 2)])
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist_teardown()


def test_deepspeed_zero_gloo_two_processes(tmp_path):
    """ZeRO-2/3 (fp32) and ZeRO-2 bf16 on CPU: ranks agree, fp32 weights match DDP, exact resume, nan skip.

    The first DeepSpeed use on a machine JIT-compiles its CPU shared-memory comm op (~1 min, cached
    under ~/.cache/torch_extensions).
    """
    pytest.importorskip("deepspeed")
    _spawn(_deepspeed_worker, (free_port(), str(tmp_path)), timeout=480)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    ddp = r0["ddp"]["fp32"]
    for stage, precision in DS_SCENARIOS:
        name = f"z{stage}_{precision}"
        a, b = r0[name], r1[name]
        assert a["step"] == b["step"] == 6 and a["cv"] == b["cv"]
        if stage < 3:
            assert_equal_states(a["local"], b["local"])  # replicated parameters agree across ranks
        weights = torch.load(tmp_path / name / "final.pt", weights_only=True)
        assert weights.keys() == ddp.keys()
        assert all(w.dtype == ddp[k].dtype for k, w in weights.items())  # fp32 master weights, not bf16
        assert_equal_states(weights, a["fp32"])
        tol = dict(rtol=1e-5, atol=1e-6) if precision == "fp32" else dict(rtol=0.05, atol=0.02)
        for k in ddp:
            torch.testing.assert_close(weights[k].float(), ddp[k].float(), **tol, msg=f"{name} {k}")
    # resume: 2 steps, new trainer resumes, 4 more == 6 uninterrupted steps (ZeRO-2, fp32)
    assert r0["z2_resume"]["step"] == 6
    assert_equal_states(r0["z2_resume"]["fp32"], r0["z2_fp32"]["fp32"])
    # a nan loss makes DeepSpeed skip the step on every rank
    assert r0["z2_nan"]["skipped"] == r1["z2_nan"]["skipped"] == 1
    assert r0["z2_nan"]["step"] == 5
    assert all(torch.isfinite(v).all() for v in r0["z2_nan"]["fp32"].values())


# -- GPU ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("engine", ["torch", "deepspeed"])
def test_bf16_autocast_on_gpu(tmp_path, monkeypatch, engine):
    if engine == "deepspeed":
        pytest.importorskip("deepspeed")
        monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
        monkeypatch.setenv("MASTER_PORT", str(free_port()))
    dtypes = []

    def recording_step_fn(model, batch):
        assert batch.feats.is_cuda
        pred = model(batch.feats)
        dtypes.append(pred.dtype)
        loss = F.mse_loss(pred.float(), batch.target)
        return {"loss": loss}

    cfg = make_cfg(engine=engine, device="cuda", precision="bf16", accum_grad=2, deepspeed_stage=2)
    trainer = Trainer(TinyModel(), recording_step_fn, cfg, tmp_path)
    trainer.fit(FakeStream(5), FakeStream(2, seed=9))
    assert trainer.step == 6 and trainer.skipped_steps == 0
    assert set(dtypes) == {torch.bfloat16}  # forward ran under bf16 autocast
    weights = torch.load(tmp_path / "final.pt", weights_only=True)
    assert weights["head.weight"].dtype == torch.float32 and weights["head.weight"].device.type == "cpu"
    assert all(torch.isfinite(v.float()).all() for v in weights.values())
    assert torch.cuda.max_memory_allocated() > 0


# -- parameter groups, init_from, skip reports ------------------------------------------------------
class GroupedModel(TinyModel):
    """TinyModel naming its parameter groups, as the LLM-ASR model does."""

    def parameter_groups(self):
        groups = {"encoder": [], "head": [], "frozen": []}
        for name, p in self.named_parameters():
            groups[name.split(".")[0]].append((name, p))
        return groups


def test_parameter_groups_lr_decay_and_schedule():
    from wenet_llm.train.engine import build_optimizer

    cfg = make_cfg(optim={"groups": {"head": {"lr": 0.1}, "encoder": {"weight_decay": 0.0}}},
                   scheduler={"name": "cosine", "warmup_steps": 2, "min_lr": 0.001, "total_steps": 10})
    model = GroupedModel()
    opt = build_optimizer(model, cfg.optim)
    by_name = {g["name"]: g for g in opt.param_groups}
    # head: its own lr, weights decayed, the bias not; encoder: no decay asked; the frozen layer: nowhere.
    assert set(by_name) == {"head", "head.no_decay", "encoder"}
    assert by_name["head"]["lr"] == by_name["head.no_decay"]["lr"] == 0.1
    assert by_name["head"]["weight_decay"] == 0.01 and by_name["head.no_decay"]["weight_decay"] == 0.0
    assert [p.shape for p in by_name["head.no_decay"]["params"]] == [torch.Size([2])]
    assert by_name["encoder"]["weight_decay"] == 0.0 and by_name["encoder"]["lr"] == 0.01
    sched = build_scheduler(opt, cfg.scheduler, cfg.max_steps, cfg.optim.lr)
    for _ in range(10):
        opt.step()
        sched.step()
    # min_lr refers to optim.lr; a group with its own rate decays to the same fraction of it.
    assert by_name["encoder"]["lr"] == pytest.approx(0.001)
    assert by_name["head"]["lr"] == pytest.approx(0.01)
    with pytest.raises(ValueError, match=r"unknown group\(s\) \['adapter'\]"):
        build_optimizer(model, make_cfg(optim={"groups": {"adapter": {"lr": 1.0}}}).optim)


def test_init_from_loads_weights_only(tmp_path):
    first = Trainer(TinyModel(seed=1), step_fn, make_cfg(max_epoch=1), tmp_path / "a")
    first.fit(FakeStream(3))
    trained = torch.load(tmp_path / "a" / "final.pt", weights_only=True)
    cfg = make_cfg(max_epoch=1, init_from=str(tmp_path / "a"))
    second = Trainer(TinyModel(seed=2), step_fn, cfg, tmp_path / "b")
    assert_equal_states(params_of(second), trained)  # weights from the other run...
    assert second.step == 0 and not second.engine.optimizer.state  # ...with a fresh optimizer and step count
    second.fit(FakeStream(3))
    assert second.step == 3
    # A run that already holds checkpoints resumes them instead (init_from is for a fresh start).
    third = Trainer(TinyModel(seed=3), step_fn, make_cfg(max_epoch=2, init_from=str(tmp_path / "a")), tmp_path / "b")
    third.fit(FakeStream(3))
    assert third.step == 6
    with pytest.raises(FileNotFoundError, match="neither a checkpoint nor an experiment dir"):
        Trainer(TinyModel(), step_fn, make_cfg(init_from=str(tmp_path / "nothing")), tmp_path / "c")

    class Other(nn.Module):
        def __init__(self):
            super().__init__()
            self.elsewhere = nn.Linear(4, 2)

    with pytest.raises(RuntimeError, match="weight\\(s\\) the model does not have"):
        Trainer(Other(), step_fn, make_cfg(init_from=str(tmp_path / "a")), tmp_path / "d")


def test_skip_reports_merge_across_ranks():
    a, b = SkipReport(max_examples=2), SkipReport(max_examples=2)
    a.add("u1", "too_long", "30s")
    b.add("u2", "too_long", "31s")
    b.add("u3", "too_long", "32s")
    b.add("u4", "augment:noise_file_unreadable", "bad.wav")
    merged = SkipReport(max_examples=2)
    for report in (a, b):
        merged.merge_state_dict(report.state_dict())
    assert merged.total() == 3  # augmentation failures keep their utterance
    text = merged.summary()
    assert "3 utterance(s) skipped" in text and "too_long: 3, e.g. u1 (30s); u2 (31s)" in text
    assert "augmentation failures" in text and "noise_file_unreadable: 1" in text


def test_an_epoch_that_skips_most_of_its_data_stops_training(tmp_path):
    # A few unreadable utterances are skipped and counted; an epoch that could load almost nothing (the
    # audio went missing) must not be saved as a trained epoch and marked done.
    class Vanishing(FakeStream):
        def __iter__(self):
            for i in range(self.batches_done, self.num_batches):
                self.batches_done = i + 1
                if self.epoch == 1 and i > 0:
                    for j in range(self.batch_size):
                        self.skips.add(f"e1-b{i}-u{j}", "load_error", "No such file")
                    continue
                yield self.make(self.epoch, i)

        def set_epoch(self, epoch: int) -> None:
            if epoch != self.epoch:
                self.skips = SkipReport()
            super().set_epoch(epoch)

    trainer = Trainer(TinyModel(dropout=0.0), step_fn, make_cfg(max_epoch=3, accum_grad=1), tmp_path)
    with pytest.raises(RuntimeError, match=r"epoch 1: 12 of 1[56] utterances were skipped .*max_skip_fraction 0.5"):
        trainer.fit(Vanishing(5))
    assert (tmp_path / "epoch_0.pt").is_file() and not (tmp_path / "epoch_1.pt").exists()
    # The same share of skips below the bound only reports them.
    ok = Trainer(TinyModel(dropout=0.0), step_fn, make_cfg(max_epoch=2, accum_grad=1, max_skip_fraction=0.9),
                 tmp_path / "ok")
    ok.fit(Vanishing(5))
    assert (tmp_path / "ok" / "epoch_1.pt").is_file()
