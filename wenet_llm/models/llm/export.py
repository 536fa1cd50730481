"""A deployable LLM-ASR model directory: LoRA merged into the LLM, encoder, adapter, tokenizer, CMVN, config.

Layout of ``python -m wenet_llm.bin.export``'s output::

    config.yaml            the stage's LLMExperimentConfig, with model.encoder_dir = encoder,
                           model.llm.path = llm, LoRA off (merged) and nothing trainable
    llm/                   a plain Hugging Face causal-LM directory (config.json, model.safetensors,
                           tokenizer files with the chat template); the LoRA weights merged in
    encoder/               the (trained) encoder in the export layout: weights with CMVN inside, the
                           CTC layer, encoder.yaml (model config, fbank settings), units.txt
    adapter.safetensors    the adapter

:func:`load_exported` gives back the model, config and tokenizer; its outputs equal the unmerged
model's up to floating-point rounding of the merge (tested).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Callable, Optional

from wenet_llm.config import load_config, save_config
from wenet_llm.config.llm import LLMExperimentConfig
from wenet_llm.models.aed.export import load_encoder, save_encoder
from wenet_llm.models.llm.decoder import is_peft, load_llm, load_tokenizer
from wenet_llm.models.llm.llm_asr import LLMASRModel
from wenet_llm.models.llm.prompt import PromptBuilder, ctc_hypothesis_ids

CONFIG = "config.yaml"
ADAPTER = "adapter.safetensors"
ENCODER = "encoder"


def export_model(model: LLMASRModel, tokenizer, cfg: LLMExperimentConfig, out_dir: str | Path,
                 source: str = "") -> Path:
    """Write ``model`` to ``out_dir``. The LoRA is merged into the LLM in place (``model`` keeps working,
    without a separate LoRA)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    tmp = out.parent / f".{out.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    llm = model.llm
    if is_peft(llm):
        llm = llm.merge_and_unload()
        model.llm = llm
    llm.save_pretrained(str(tmp / "llm"))
    tokenizer.save_pretrained(str(tmp / "llm"))
    vocab_map = Path(cfg.model.llm.path) / "vocab_map.json"
    if vocab_map.is_file():
        shutil.copyfile(vocab_map, tmp / "llm" / "vocab_map.json")
    save_encoder(model.encoder, tmp / ENCODER, cfg.model.encoder_dir, source=source)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.adapter.state_dict().items()}, str(tmp / ADAPTER))
    model_cfg = dataclasses.replace(
        cfg.model, encoder_dir=ENCODER, llm=dataclasses.replace(cfg.model.llm, path="llm"),
        lora=dataclasses.replace(cfg.model.lora, enabled=False), trainable=["adapter"], ctc_weight=0.0)
    train_cfg = dataclasses.replace(cfg.train, init_from="")
    save_config(dataclasses.replace(cfg, model=model_cfg, train=train_cfg), tmp / CONFIG)
    tmp.rename(out)
    return out


def load_exported(model_dir: str | Path, device: str = "cpu",
                  ctc_decode: Optional[Callable[[list[int]], str]] = None):
    """(model in eval mode, config with absolute paths, tokenizer) of an export directory.

    A model whose prompt carries the CTC hypothesis (``prompt.ctc_hypothesis``) needs ``ctc_decode``, the
    decode of the CTC units tokenizer of ``<model_dir>/encoder`` (``wenet_llm.load`` passes it)."""
    import torch
    from safetensors.torch import load_file

    root = Path(model_dir)
    if not (root / CONFIG).is_file() or not (root / ADAPTER).is_file():
        raise FileNotFoundError(f"{root} is not an exported LLM-ASR model (needs {CONFIG} and {ADAPTER}); "
                                f"make one with: python -m wenet_llm.bin.export --exp-dir exp/llm_sft2 --out DIR")
    cfg = load_config(LLMExperimentConfig, root / CONFIG)
    model_cfg = dataclasses.replace(cfg.model, encoder_dir=str(root / cfg.model.encoder_dir),
                                    llm=dataclasses.replace(cfg.model.llm, path=str(root / cfg.model.llm.path)))
    cfg = dataclasses.replace(cfg, model=model_cfg)
    tokenizer = load_tokenizer(model_cfg.llm.path)
    hypothesis_ids = None
    if cfg.prompt.ctc_hypothesis:
        if ctc_decode is None:
            raise ValueError(f"{root} puts the CTC hypothesis in its prompt: load it with wenet_llm.load, or pass "
                             f"ctc_decode (the CTC units tokenizer of {model_cfg.encoder_dir})")
        hypothesis_ids = ctc_hypothesis_ids(PromptBuilder(tokenizer, cfg.prompt), ctc_decode)
    model = LLMASRModel(load_encoder(model_cfg.encoder_dir), load_llm(model_cfg.llm), model_cfg, tokenizer,
                        hypothesis_ids=hypothesis_ids)
    missing, unexpected = model.adapter.load_state_dict(load_file(str(root / ADAPTER)), strict=True)
    model.to(torch.device(device))
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval(), cfg, tokenizer
