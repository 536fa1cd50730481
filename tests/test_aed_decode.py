"""Batched AED decoding equals one-by-one decoding (exact padding invariance of the shipped configs)."""

from __future__ import annotations

import pytest
import torch

from wenet_llm.config import from_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.decode.aed_decode import METHODS, decode_batch, decode_device
from wenet_llm.models.aed import ASRModel


def tiny_model(seed: int) -> ASRModel:
    cfg = from_dict(AEDModelConfig, {
        "vocab_size": 9, "input_dim": 20,
        "encoder_conf": {"output_size": 16, "attention_heads": 2, "linear_units": 32, "num_blocks": 2,
                         "cnn_module_kernel": 5, "conv_mask_after_glu": True},
        "decoder_conf": {"attention_heads": 2, "linear_units": 32, "num_blocks": 1},
    })
    torch.manual_seed(seed)
    model = ASRModel(cfg, torch.randn(20), torch.rand(20) + 0.5)
    with torch.no_grad():  # sharpen the random outputs so that hypotheses are not all empty
        model.ctc.ctc_lo.weight.mul_(8)
        model.decoder.output_layer.weight.mul_(8)
    return model.eval()


@pytest.mark.parametrize("seed", [0, 1])
def test_batched_equals_one_by_one(seed):
    model = tiny_model(seed)
    lens = torch.tensor([97, 64, 40])
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(3, 97, 20, generator=g) * (torch.arange(97)[None, :, None] < lens[:, None, None])
    batched = decode_batch(model, feats, lens, METHODS, beam_size=3, ctc_weight=0.3)
    assert any(batched["ctc_greedy_search"]), "degenerate test: every hypothesis is empty"
    for i in range(3):
        single = decode_batch(model, feats[i : i + 1, : lens[i]], lens[i : i + 1], METHODS, beam_size=3, ctc_weight=0.3)
        for method in METHODS:
            assert single[method][0] == batched[method][i], (method, i)


@pytest.mark.parametrize("seed", [0, 1, 2, 4])
def test_batched_search_equals_the_per_utterance_reference(seed):
    from test_aed_search import reference_attention_rescoring, reference_ctc_prefix_beam_search

    model = tiny_model(seed)
    lens = torch.tensor([120, 101, 77, 64, 40])
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(5, 120, 20, generator=g) * (torch.arange(120)[None, :, None] < lens[:, None, None])
    methods = ["ctc_prefix_beam_search", "attention_rescoring"]
    batched = decode_batch(model, feats, lens, methods, beam_size=4, ctc_weight=0.3)
    with torch.no_grad():
        enc, mask = model.encoder(feats, lens)
        log_probs = model.ctc_log_probs(enc)
    for b, frames in enumerate(mask.squeeze(1).sum(1).tolist()):
        nbest = reference_ctc_prefix_beam_search(log_probs[b, :frames], 4, model.blank_id)
        assert batched["ctc_prefix_beam_search"][b] == list(nbest[0][0])
        best, _ = reference_attention_rescoring(model.decoder, enc[b : b + 1], mask[b : b + 1], nbest,
                                                model.sos, model.eos, 0.3)
        assert batched["attention_rescoring"][b] == best
    # Not degenerate: rescoring moves away from the CTC best on some utterance.
    assert batched["attention_rescoring"] != batched["ctc_prefix_beam_search"]


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown decoding method"):
        decode_batch(tiny_model(0), torch.zeros(1, 50, 20), torch.tensor([50]), ["beam"], 3, 0.3)


def test_decode_device():
    assert decode_device("cpu") == torch.device("cpu")
    assert decode_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="valid devices"):
        decode_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="pass --device cpu"):
            decode_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_decoding_equals_cpu():
    model = tiny_model(0)
    lens = torch.tensor([97, 64, 40])
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(3, 97, 20, generator=g) * (torch.arange(97)[None, :, None] < lens[:, None, None])
    cpu = decode_batch(model, feats, lens, METHODS, beam_size=3, ctc_weight=0.3)
    cuda = decode_batch(model.to("cuda"), feats, lens, METHODS, beam_size=3, ctc_weight=0.3)  # feats stay on CPU
    assert cuda == cpu
