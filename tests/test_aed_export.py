"""Encoder export: the exported encoder gives the training encoder's outputs exactly, without a decoder."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from wenet_llm.config import from_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.models.aed import ASRModel
from wenet_llm.models.aed.export import load_encoder, export_encoder


def tiny_model() -> ASRModel:
    cfg = from_dict(AEDModelConfig, {
        "vocab_size": 12, "input_dim": 20,
        "encoder_conf": {"output_size": 16, "attention_heads": 2, "linear_units": 32, "num_blocks": 2,
                         "cnn_module_kernel": 5, "conv_mask_after_glu": True},
        "decoder_conf": {"attention_heads": 2, "linear_units": 32, "num_blocks": 1},
    })
    torch.manual_seed(0)
    model = ASRModel(cfg, torch.randn(20), torch.rand(20) + 0.5)
    with torch.no_grad():  # BatchNorm running stats away from their defaults
        for layer in model.encoder.encoders:
            layer.conv_module.norm.running_mean.normal_()
            layer.conv_module.norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_exported_encoder_equals_training_encoder(tmp_path):
    model = tiny_model()
    units = tmp_path / "units.txt"
    units.write_text("".join(f"u{i} {i}\n" for i in range(12)), encoding="utf-8")
    out = export_encoder(model, tmp_path / "encoder", units, source="exp/aed/avg_5.pt")
    assert (out / "units.txt").read_text() == units.read_text()
    keys = load_file(str(out / "model.safetensors")).keys()
    assert keys and all(k.startswith(("encoder.", "ctc.")) for k in keys)
    assert "encoder.global_cmvn.mean" in keys and "ctc.ctc_lo.weight" in keys
    exported = load_encoder(out)
    feats = torch.randn(3, 90, 20) * (torch.arange(90)[None, :, None] < torch.tensor([90, 61, 30])[:, None, None])
    lens = torch.tensor([90, 61, 30])
    with torch.no_grad():
        enc, mask = model.encoder(feats, lens)
        result = exported(feats, lens)
    assert torch.equal(result.encoder_out, enc) and torch.equal(result.encoder_mask, mask)
    assert torch.equal(result.ctc_log_probs, model.ctc_log_probs(enc))
    assert not exported.training and exported.output_size == 16


def test_mismatched_export_is_an_error(tmp_path):
    model = tiny_model()
    units = tmp_path / "units.txt"
    units.write_text("a 0\n", encoding="utf-8")
    out = export_encoder(model, tmp_path / "encoder", units)
    text = (out / "encoder.yaml").read_text().replace("num_blocks: 2", "num_blocks: 3")
    (out / "encoder.yaml").write_text(text)
    with pytest.raises(ValueError, match="missing"):
        load_encoder(out)
    with pytest.raises(FileNotFoundError, match="not an exported encoder"):
        load_encoder(tmp_path)
