"""Exported AED encoder: what the LLM stages start from (Index-ASR: the AED encoder initialises the system).

``exp/aed/encoder/`` holds
- ``model.safetensors``: ``encoder.*`` (global CMVN included) and ``ctc.*`` weights. The CTC layer travels
  with the encoder because the LLM decoder uses it as a hallucination guard;
- ``encoder.yaml``: the AED model config it was trained with, the feature settings it expects (fbank
  options; CMVN is inside the weights; the subsampling is in the model config), the source checkpoint
  and the unit files, so a consumer reproduces the features without the AED's config;
- ``units.txt`` (and ``bpe.model`` when the tokenizer has one): the CTC output units.
No decoder weights are exported, and loading needs none.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from wenet_llm.config import from_dict, to_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.config.data import FbankConfig
from wenet_llm.models.aed.asr_model import ASRModel
from wenet_llm.models.aed.cmvn import GlobalCMVN
from wenet_llm.models.aed.conformer_encoder import ConformerEncoder
from wenet_llm.models.aed.ctc import CTC
from wenet_llm.utils.fileio import atomic_open

WEIGHTS = "model.safetensors"
CONFIG = "encoder.yaml"
EXPORTED_PREFIXES = ("encoder.", "ctc.")


@dataclass
class EncoderOutput:
    """encoder_out (B, T', D), encoder_mask (B, 1, T') True = valid, ctc_log_probs (B, T', V)."""

    encoder_out: torch.Tensor
    encoder_mask: torch.Tensor
    ctc_log_probs: torch.Tensor


class ExportedEncoder(nn.Module):
    """Conformer encoder + CTC layer, with the keys of the AED model they came from."""

    def __init__(self, cfg: AEDModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ConformerEncoder(cfg.input_dim, cfg.encoder_conf, _cmvn_placeholder(cfg))
        self.ctc = CTC(cfg.vocab_size, cfg.encoder_conf.output_size, cfg.blank_id)

    @property
    def output_size(self) -> int:
        return self.cfg.encoder_conf.output_size

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor) -> EncoderOutput:
        """feats (B, T, F) zero-padded, feats_lengths (B,)."""
        encoder_out, encoder_mask = self.encoder(feats, feats_lengths)
        return EncoderOutput(encoder_out, encoder_mask, self.ctc.log_softmax(encoder_out))


def _cmvn_placeholder(cfg: AEDModelConfig) -> Optional[GlobalCMVN]:
    if not cfg.global_cmvn:
        return None
    return GlobalCMVN(torch.zeros(cfg.input_dim), torch.ones(cfg.input_dim))  # values come from the weights


def export_encoder(model: ASRModel, out_dir: str | Path, units: str | Path, bpe_model: Optional[str | Path] = None,
                   source: str = "", fbank: Optional[FbankConfig] = None) -> Path:
    """Write the encoder + CTC of ``model`` (its config, feature settings, units and tokenizer model) to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k.startswith(EXPORTED_PREFIXES)}
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(state, str(tmp), metadata={"source": source})
    tmp.replace(out / WEIGHTS)  # atomic: a kill never leaves a half-written model
    with atomic_open(out / CONFIG) as f:
        yaml.safe_dump({"model": to_dict(model.cfg), "fbank": to_dict(fbank) if fbank is not None else None,
                        "source_checkpoint": source, "units": "units.txt",
                        "bpe_model": "bpe.model" if bpe_model else None},
                       f, allow_unicode=True, sort_keys=False)
    shutil.copyfile(units, out / "units.txt")
    if bpe_model:
        shutil.copyfile(bpe_model, out / "bpe.model")
    return out


def load_encoder(export_dir: str | Path) -> ExportedEncoder:
    """The exported encoder in eval mode; a missing or extra weight is an error naming it."""
    export_dir = Path(export_dir)
    if not (export_dir / WEIGHTS).is_file() or not (export_dir / CONFIG).is_file():
        raise FileNotFoundError(f"{export_dir} is not an exported encoder (needs {WEIGHTS} and {CONFIG}); "
                                "export one with stage 3 of a recipe")
    meta = yaml.safe_load((export_dir / CONFIG).read_text(encoding="utf-8"))
    cfg = from_dict(AEDModelConfig, meta["model"], str(export_dir / CONFIG))
    model = ExportedEncoder(cfg)
    state = load_file(str(export_dir / WEIGHTS))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{export_dir / WEIGHTS} does not match {CONFIG}: missing {missing}, unexpected {unexpected}")
    return model.eval()


def load_encoder_meta(export_dir: str | Path) -> dict:
    """The export's ``encoder.yaml``: model config, fbank settings (None for exports made before they
    were recorded), source checkpoint and unit files (paths made absolute)."""
    export_dir = Path(export_dir)
    path = export_dir / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{export_dir} is not an exported encoder (no {CONFIG}); export one with stage 3")
    meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    fbank = meta.get("fbank")
    meta["fbank"] = from_dict(FbankConfig, fbank, f"{path}: fbank") if fbank is not None else None
    meta["units"] = str(export_dir / meta.get("units", "units.txt"))
    meta["bpe_model"] = str(export_dir / meta["bpe_model"]) if meta.get("bpe_model") else None
    return meta


def save_encoder(encoder: ExportedEncoder, out_dir: str | Path, meta_from: str | Path, source: str = "") -> Path:
    """Write a (possibly further trained) :class:`ExportedEncoder` in the export layout, taking the config,
    feature settings and unit files from the export ``meta_from`` it started as."""
    out, src = Path(out_dir), Path(meta_from)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in encoder.state_dict().items()}
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(state, str(tmp), metadata={"source": source})
    tmp.replace(out / WEIGHTS)
    meta = yaml.safe_load((src / CONFIG).read_text(encoding="utf-8"))
    meta["source_checkpoint"] = source or meta.get("source_checkpoint", "")
    with atomic_open(out / CONFIG) as f:
        yaml.safe_dump(meta, f, allow_unicode=True, sort_keys=False)
    for name in ("units.txt", "bpe.model"):
        if (src / name).is_file() and (src / name).resolve() != (out / name).resolve():
            shutil.copyfile(src / name, out / name)
    return out
