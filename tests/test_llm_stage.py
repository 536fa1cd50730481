"""LLM-ASR stages on the shared trainer: exact resume, init_from chains, trainable-only checkpoints in
safetensors / PEFT format, decoding and export entry points, ZeRO-2 in two gloo processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dist_helpers import dist_setup, dist_teardown, free_port
from wenet_llm.config import from_dict
from wenet_llm.config.llm import LLMExperimentConfig

REPO = Path(__file__).resolve().parents[1]


def stage_cfg(small_corpus, encoder_dir, llm_dir, **train) -> LLMExperimentConfig:
    spec = {
        "model": {"encoder_dir": str(encoder_dir), "llm": {"path": str(llm_dir), "dtype": "fp32"},
                  "adapter": {"hidden_size": 24}, "trainable": ["adapter"]},
        "prompt": {"english_case": "lower"},
        "data": {"train": str(small_corpus / "train" / "data.list"), "dev": str(small_corpus / "dev" / "data.list"),
                 "sampler": {"max_duration": 40, "max_tokens": 3000, "num_buckets": 2}, "num_workers": 0,
                 "spec_aug": {"enabled": False}},
        "train": {"max_epoch": 3, "accum_grad": 1, "log_interval": 1, "progress_bar": False, "tensorboard": False,
                  "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.01}, "scheduler": {"name": "constant",
                                                                                           "warmup_steps": 0},
                  **train},
        "decode": {"max_new_tokens": 6},
    }
    return from_dict(LLMExperimentConfig, spec)


def with_model(cfg: LLMExperimentConfig, **model) -> LLMExperimentConfig:
    import dataclasses

    return dataclasses.replace(cfg, model=from_dict(type(cfg.model), {**_plain(cfg.model), **model}))


def _plain(obj):
    from wenet_llm.config import to_dict

    return to_dict(obj)


def weights_of(exp: Path, tag: str) -> dict[str, torch.Tensor]:
    out = {}
    for f in sorted((exp / tag).glob("*.safetensors")):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    lora = exp / tag / "lora" / "adapter_model.safetensors"
    if lora.is_file():
        out.update({f"lora.{k}": v for k, v in load_file(str(lora)).items()})
    return out


def test_resume_is_exact_and_checkpoints_hold_trainable_weights(small_corpus, tiny_encoder_dir, tiny_llm_dir,
                                                                tmp_path):
    from wenet_llm.train.llm import train_llm

    base = stage_cfg(small_corpus, tiny_encoder_dir, tiny_llm_dir, max_steps=6)
    cfg = with_model(base, trainable=["encoder", "adapter", "lora"], lora={"enabled": True, "r": 2, "alpha": 4},
                     ctc_weight=0.2)
    train_llm(cfg, tmp_path / "straight")
    import dataclasses

    three = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=3))
    train_llm(three, tmp_path / "resumed")
    train_llm(cfg, tmp_path / "resumed")  # continues from step_3
    a, b = weights_of(tmp_path / "straight", "final"), weights_of(tmp_path / "resumed", "final")
    assert a.keys() == b.keys() and any(k.startswith("lora.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    final = tmp_path / "straight" / "final"
    assert json.loads((final / "weights.json").read_text())["modules"] == ["adapter", "encoder", "lora"]
    peft_cfg = json.loads((final / "lora" / "adapter_config.json").read_text())
    assert peft_cfg["r"] == 2 and peft_cfg["peft_type"] == "LORA"
    assert not (final / "llm.safetensors").exists()  # the frozen LLM is not copied into checkpoints
    info = yaml.safe_load((tmp_path / "straight" / "step_6.yaml").read_text())
    assert info["step"] == 6 and "loss_llm" in info["loss_dict"] and "loss_ctc" in info["loss_dict"]


def test_stage_chain_init_from_and_loading(small_corpus, tiny_encoder_dir, tiny_llm_dir, tmp_path):
    """SFT 1 (adapter + the whole LLM, as the demo trains it) -> SFT 2 (encoder + adapter + LoRA, init_from
    SFT 1): loading SFT 2 gives every module from the stage that last trained it, the LLM's weights under
    the LoRA wrapper included; decoding and export run from the entry points."""
    import dataclasses

    from wenet_llm.train.llm import load_trained, plain_llm_key, set_paths, train_llm

    sft1 = with_model(stage_cfg(small_corpus, tiny_encoder_dir, tiny_llm_dir, max_steps=2),
                      trainable=["adapter", "llm"])
    train_llm(sft1, tmp_path / "sft1")
    sft1_adapter = load_file(str(tmp_path / "sft1" / "final" / "adapter.safetensors"))
    sft1_llm = load_file(str(tmp_path / "sft1" / "final" / "llm.safetensors"))

    sft2 = with_model(sft1, trainable=["encoder", "adapter", "lora"], lora={"enabled": True, "r": 2, "alpha": 4})
    sft2 = set_paths(sft2, init_from=tmp_path / "sft1")
    sft2 = dataclasses.replace(sft2, train=dataclasses.replace(sft2.train, max_steps=2,
                                                               optim=dataclasses.replace(sft2.train.optim, lr=1e-9)))
    train_llm(sft2, tmp_path / "sft2")
    # With a negligible lr, SFT 2's first steps keep SFT 1's adapter: the init came through.
    sft2_adapter = load_file(str(tmp_path / "sft2" / "init" / "adapter.safetensors"))
    for k in sft1_adapter:
        assert torch.equal(sft1_adapter[k], sft2_adapter[k])
    model, cfg, tok = load_trained(tmp_path / "sft2")
    assert cfg.train.init_from == str((tmp_path / "sft1").resolve())
    final = weights_of(tmp_path / "sft2", "final")
    for k, v in model.adapter.state_dict().items():
        assert torch.equal(v, final[f"adapter.{k}"])
    base = {plain_llm_key(k): v for k, v in model.llm.state_dict().items() if "lora_" not in k}
    assert set(sft1_llm) <= set(base)
    for k, v in sft1_llm.items():  # SFT 2 trained no base weight: they are SFT 1's
        assert torch.equal(v, base[k]), k

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "wenet_llm.bin.decode", "--model", str(tmp_path / "sft2"),
                          "--test", str(small_corpus / "test" / "data.list"), "--out", str(tmp_path / "dec"),
                          "--hotwords", "zorvath,kavanok"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "dec" / "summary.json").read_text())
    keys = [json.loads(line)["key"] for line in (small_corpus / "test" / "data.list").read_text().splitlines()]
    rows = [json.loads(line) for line in (tmp_path / "dec" / "results.jsonl").read_text().splitlines()]
    assert summary["utterances"] == len(keys) == len(rows) and summary["rtf"] > 0
    assert all(r["num_tokens"] <= 6 and r["context"] == {"hotwords": ["zorvath", "kavanok"]} for r in rows)
    assert "Overall ->" in (tmp_path / "dec" / "wer").read_text()
    assert len((tmp_path / "dec" / "text").read_text().splitlines()) == len(keys)

    out = subprocess.run([sys.executable, "-m", "wenet_llm.bin.export", "--exp-dir", str(tmp_path / "sft2"),
                          "--out", str(tmp_path / "export")], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    import wenet_llm

    wavs = [json.loads(line)["wav"] for line in (small_corpus / "test" / "data.list").read_text().splitlines()[:3]]
    via_api = wenet_llm.transcribe(tmp_path / "export", wavs)
    trained = wenet_llm.load(tmp_path / "sft2").transcribe(wavs)
    assert via_api == trained and len(via_api) == 3


def test_stage_errors_name_what_to_fix(small_corpus, tiny_encoder_dir, tiny_llm_dir, tmp_path):
    from wenet_llm.train.llm import resolve_features, set_paths

    cfg = stage_cfg(small_corpus, tiny_encoder_dir, tiny_llm_dir)
    with pytest.raises(FileNotFoundError, match="train the previous stage first"):
        set_paths(cfg, init_from=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not an exported encoder"):
        set_paths(cfg, encoder_dir=tmp_path)
    import dataclasses

    wrong = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, fbank=dataclasses.replace(cfg.data.fbank, num_mel_bins=40)))
    with pytest.raises(ValueError, match="num_mel_bins is 40 but the encoder"):
        resolve_features(wrong)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "wenet_llm.bin.decode", "--model", str(tmp_path), "--test", "x",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "neither an exported" in out.stderr


# -- ZeRO-2 in two gloo processes ------------------------------------------------------------------

def _zero2_worker(rank: int, port: int, cfg_path: str, exp: str) -> None:
    dist_setup(rank, 2, port)
    from wenet_llm.config import load_config
    from wenet_llm.train.llm import train_llm

    train_llm(load_config(LLMExperimentConfig, cfg_path), exp)
    dist_teardown()


def test_zero2_two_gloo_processes(small_corpus, tiny_encoder_dir, tiny_llm_dir, tmp_path):
    pytest.importorskip("deepspeed")
    import torch.multiprocessing as mp

    from wenet_llm.config import save_config
    from wenet_llm.train.llm import load_trained

    cfg = with_model(stage_cfg(small_corpus, tiny_encoder_dir, tiny_llm_dir, engine="deepspeed", deepspeed_stage=2,
                               max_epoch=3, save_interval_steps=0),
                     trainable=["adapter", "lora"], lora={"enabled": True, "r": 2, "alpha": 4})
    save_config(cfg, tmp_path / "cfg.yaml")
    ctx = mp.start_processes(_zero2_worker, args=(free_port(), str(tmp_path / "cfg.yaml"), str(tmp_path / "exp")),
                             nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 600
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("ZeRO-2 LLM-ASR training did not finish in 600 s")
    cv = [yaml.safe_load((tmp_path / "exp" / f"epoch_{e}.yaml").read_text())["loss_dict"]["loss"] for e in range(3)]
    assert cv[-1] < cv[0]  # the loss falls
    model, _, _ = load_trained(tmp_path / "exp")  # the checkpoint reloads
    final = weights_of(tmp_path / "exp", "final")
    for k, v in model.adapter.state_dict().items():
        assert torch.equal(v, final[f"adapter.{k}"])
