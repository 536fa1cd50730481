"""WeNet-compatible Conformer AED: key layout, hand-checked math, checkpoint loading, masks and options.

The reference below (``ref_*``) is an independent functional implementation of WeNet's Conformer
math with plain tensor ops on the state dict; it shares no code with ``wenet_llm.models.aed``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

from wenet_llm.config import ConfigError, from_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.models.aed import ASRModel, WenetCompatError, add_sos_eos, load_wenet
from wenet_llm.utils.cmvn_stats import load_cmvn

ATOL = 1e-5
F_DIM, VOCAB = 20, 11

# A tiny model in WeNet's train.yaml terms (the sections load_wenet reads, plus some it must skip).
TINY_YAML = {
    "input_dim": F_DIM,
    "output_dim": VOCAB,
    "vocab_size": VOCAB,
    "encoder": "conformer",
    "encoder_conf": {
        "output_size": 8, "attention_heads": 2, "linear_units": 12, "num_blocks": 2, "dropout_rate": 0.1,
        "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.0, "input_layer": "conv2d",
        "normalize_before": True, "cnn_module_kernel": 5, "use_cnn_module": True, "activation_type": "swish",
        "pos_enc_layer_type": "rel_pos", "selfattention_layer_type": "rel_selfattn",
    },
    "decoder": "transformer",
    "decoder_conf": {
        "attention_heads": 2, "linear_units": 12, "num_blocks": 2, "dropout_rate": 0.1,
        "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.0, "src_attention_dropout_rate": 0.0,
    },
    "model": "asr_model",
    "model_conf": {"ctc_weight": 0.3, "lsm_weight": 0.1, "length_normalized_loss": False},
    "ctc": "ctc",
    "ctc_conf": {"ctc_blank_id": 0},
    "cmvn": "global_cmvn",
    "cmvn_conf": {"cmvn_file": "data/train/global_cmvn", "is_json_cmvn": True},
    "tokenizer": "char",
    "tokenizer_conf": {"symbol_table_path": "data/dict/lang_char.txt", "split_with_space": False},
    "dataset": "asr",
    "dataset_conf": {"filter_conf": {"max_length": 40960}, "batch_conf": {"batch_size": 16}},
    "optim": "adam",
    "optim_conf": {"lr": 0.002},
    "grad_clip": 5,
    "accum_grad": 4,
    "max_epoch": 240,
}


def tiny_cfg(**enc) -> AEDModelConfig:
    d = copy.deepcopy(TINY_YAML)
    d["encoder_conf"].update(enc)
    cfg = {k: d[k] for k in ("input_dim", "vocab_size", "encoder_conf", "decoder_conf", "model_conf")}
    return from_dict(AEDModelConfig, cfg)


def cmvn_json(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = 1000
    x = torch.randn(n, F_DIM, generator=g, dtype=torch.float64) * 3 + 5
    return {"mean_stat": x.sum(0).tolist(), "var_stat": (x * x).sum(0).tolist(), "frame_num": n}


def expected_cmvn(d: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Facts §3, in numpy float64 then float32."""
    mean = np.asarray(d["mean_stat"]) / d["frame_num"]
    var = np.maximum(np.asarray(d["var_stat"]) / d["frame_num"] - mean ** 2, 1e-20)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy((1 / np.sqrt(var)).astype(np.float32))


def randomize(model: ASRModel, seed: int = 0) -> ASRModel:
    """Every parameter and BN statistic random, so no term of the math can hide behind an init value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0  # LayerNorm/BN scales near 1
            p.copy_(base + 0.3 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
            elif name.endswith("num_batches_tracked"):
                b.fill_(17)
    return model


def tiny_model(seed: int = 0, cfg: AEDModelConfig | None = None) -> ASRModel:
    mean, istd = expected_cmvn(cmvn_json())
    return randomize(ASRModel(cfg or tiny_cfg(), mean, istd), seed).eval()


def batch(lengths=(57, 40, 23), text_lengths=(5, 3, 1), seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    lens = torch.tensor(lengths)
    feats = torch.randn(len(lengths), max(lengths), F_DIM, generator=g) * 3 + 5
    feats = feats * (torch.arange(max(lengths))[None, :, None] < lens[:, None, None])  # pad with 0 as WeNet
    tl = torch.tensor(text_lengths)
    text = torch.randint(1, VOCAB - 1, (len(lengths), max(text_lengths)), generator=g)
    text = text.masked_fill(torch.arange(max(text_lengths))[None] >= tl[:, None], -1)
    return feats, lens, text, tl


# ----------------------------------------------------------------------------------------------
# Independent reference (facts §2)


def ref_lin(x, sd, p, bias=True):
    y = x @ sd[p + ".weight"].T
    return y + sd[p + ".bias"] if bias else y


def ref_ln(x, sd, p):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + 1e-5) * sd[p + ".weight"] + sd[p + ".bias"]


def ref_pe(n, d):
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    ang = pos * torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    pe = torch.stack([torch.sin(ang), torch.cos(ang)], dim=-1).reshape(n, d)  # interleave sin/cos
    return pe[None]


def ref_attention(q, k, v, key_ok, h, bd=None):
    """q (B,Lq,D), k/v (B,Lk,D) already projected; key_ok (B,Lq|1,Lk) bool; bd (B,h,Lq,Lk) or None."""
    b, lq, d = q.shape
    dk = d // h
    qh, kh, vh = (t.reshape(b, -1, h, dk) for t in (q, k, v))
    s = torch.einsum("bihd,bjhd->bhij", qh, kh)
    if bd is not None:
        s = s + bd
    s = s / math.sqrt(dk)
    ok = key_ok[:, None]
    s = s.masked_fill(~ok, float("-inf"))
    pr = torch.softmax(s, dim=-1).masked_fill(~ok, 0.0)
    return torch.einsum("bhij,bjhd->bihd", pr, vh).reshape(b, lq, d)


def ref_encoder(sd, feats, lens, h, kernel):
    p = "encoder."
    b, t, _ = feats.shape
    ok = torch.arange(t)[None] < lens[:, None]
    x = (feats - sd[p + "global_cmvn.mean"]) * sd[p + "global_cmvn.istd"]
    x = F.relu(F.conv2d(x[:, None], sd[p + "embed.conv.0.weight"], sd[p + "embed.conv.0.bias"], stride=2))
    x = F.relu(F.conv2d(x, sd[p + "embed.conv.2.weight"], sd[p + "embed.conv.2.bias"], stride=2))
    _, d, t2, f2 = x.shape
    x = ref_lin(x.permute(0, 2, 1, 3).reshape(b, t2, d * f2), sd, p + "embed.out.0")
    ok = ok[:, 2::2][:, 2::2]  # (B, T')
    x = x * math.sqrt(d)
    pos = sd[p + "embed.pos_enc.pe"][:, :t2]
    i = 0
    while f"{p}encoders.{i}.norm_ff.weight" in sd:
        q = f"{p}encoders.{i}."
        ffn = lambda y, m: ref_lin(F.silu(ref_lin(y, sd, m + ".w_1")), sd, m + ".w_2")  # noqa: E731
        x = x + 0.5 * ffn(ref_ln(x, sd, q + "norm_ff_macaron"), q + "feed_forward_macaron")
        # rel-pos MHSA, no rel_shift
        y = ref_ln(x, sd, q + "norm_mha")
        a = q + "self_attn."
        qq, kk, vv = (ref_lin(y, sd, a + n) for n in ("linear_q", "linear_k", "linear_v"))
        dk = d // h
        pp = ref_lin(pos, sd, a + "linear_pos", bias=False).reshape(t2, h, dk)
        q_u = qq.reshape(b, t2, h, dk) + sd[a + "pos_bias_u"]
        q_v = qq.reshape(b, t2, h, dk) + sd[a + "pos_bias_v"]
        bd = torch.einsum("bihd,jhd->bhij", q_v, pp)
        att = ref_attention(q_u.reshape(b, t2, d), kk, vv, ok[:, None, :], h, bd)
        x = x + ref_lin(att, sd, a + "linear_out")
        # convolution module
        c = q + "conv_module."
        y = ref_ln(x, sd, q + "norm_conv").masked_fill(~ok[..., None], 0.0)  # (B, T', C)
        y = y @ sd[c + "pointwise_conv1.weight"][:, :, 0].T + sd[c + "pointwise_conv1.bias"]
        y = y[..., :d] * torch.sigmoid(y[..., d:])
        w = sd[c + "depthwise_conv.weight"][:, 0]  # (C, K)
        yp = F.pad(y, (0, 0, kernel // 2, kernel // 2))
        y = sum(yp[:, j:j + t2] * w[:, j] for j in range(kernel)) + sd[c + "depthwise_conv.bias"]
        y = (y - sd[c + "norm.running_mean"]) / torch.sqrt(sd[c + "norm.running_var"] + 1e-5)
        y = y * sd[c + "norm.weight"] + sd[c + "norm.bias"]
        y = y * torch.sigmoid(y)
        y = y @ sd[c + "pointwise_conv2.weight"][:, :, 0].T + sd[c + "pointwise_conv2.bias"]
        x = x + y.masked_fill(~ok[..., None], 0.0)
        x = x + 0.5 * ffn(ref_ln(x, sd, q + "norm_ff"), q + "feed_forward")
        x = ref_ln(x, sd, q + "norm_final")
        i += 1
    return ref_ln(x, sd, p + "after_norm"), ok


def ref_decoder(sd, memory, mem_ok, ys_in, ys_in_lens, h):
    p = "decoder."
    emb = sd[p + "embed.0.weight"]
    d = emb.shape[1]
    length = ys_in.shape[1]
    x = emb[ys_in] * math.sqrt(d) + sd[p + "embed.1.pe"][0, :length]
    tgt_ok = (torch.arange(length)[None, None, :] < ys_in_lens[:, None, None]) & torch.ones(
        length, length, dtype=torch.bool).tril()
    j = 0
    while f"{p}decoders.{j}.norm1.weight" in sd:
        q = f"{p}decoders.{j}."
        y = ref_ln(x, sd, q + "norm1")
        s = q + "self_attn."
        att = ref_attention(ref_lin(y, sd, s + "linear_q"), ref_lin(y, sd, s + "linear_k"),
                            ref_lin(y, sd, s + "linear_v"), tgt_ok, h)
        x = x + ref_lin(att, sd, s + "linear_out")
        y = ref_ln(x, sd, q + "norm2")
        s = q + "src_attn."
        att = ref_attention(ref_lin(y, sd, s + "linear_q"), ref_lin(memory, sd, s + "linear_k"),
                            ref_lin(memory, sd, s + "linear_v"), mem_ok[:, None, :], h)
        x = x + ref_lin(att, sd, s + "linear_out")
        y = ref_ln(x, sd, q + "norm3")
        x = x + ref_lin(F.relu(ref_lin(y, sd, q + "feed_forward.w_1")), sd, q + "feed_forward.w_2")
        j += 1
    return ref_lin(ref_ln(x, sd, p + "after_norm"), sd, p + "output_layer")


def ref_losses(sd, feats, lens, text, text_lens, h, kernel, sos, eos, eps=0.1, ctc_weight=0.3):
    enc, ok = ref_encoder(sd, feats, lens, h, kernel)
    b = feats.shape[0]
    ys = [text[i, : text_lens[i]].tolist() for i in range(b)]
    length = max(len(y) for y in ys) + 1
    ys_in = torch.tensor([[sos] + y + [eos] * (length - 1 - len(y)) for y in ys])
    ys_out = [y + [eos] for y in ys]
    logits = ref_decoder(sd, enc, ok, ys_in, torch.tensor([len(y) + 1 for y in ys]), h)
    logq = torch.log_softmax(logits, dim=-1)
    v = logits.shape[-1]
    kl, correct, total = 0.0, 0, 0
    for i, y in enumerate(ys_out):
        for t, c in enumerate(y):
            ptrue = torch.full((v,), eps / (v - 1))
            ptrue[c] = 1 - eps
            kl = kl + (ptrue * (torch.log(ptrue) - logq[i, t])).sum()
            correct += int(logits[i, t].argmax() == c)
            total += 1
    loss_att = kl / b
    logp = torch.log_softmax(ref_lin(enc, sd, "ctc.ctc_lo"), dim=-1)
    loss_ctc = 0.0
    for i, y in enumerate(ys):  # one utterance at a time: no batching shared with the model
        n = int(ok[i].sum())
        loss_ctc = loss_ctc + F.ctc_loss(logp[i, :n, None], torch.tensor([y]), torch.tensor([n]),
                                         torch.tensor([len(y)]), blank=0, reduction="sum", zero_infinity=True)
    loss_ctc = loss_ctc / b
    return ctc_weight * loss_ctc + (1 - ctc_weight) * loss_att, loss_att, loss_ctc, correct / total


# ----------------------------------------------------------------------------------------------
# Key layout of the aishell model (facts §1)


def facts_keys() -> list[tuple[str, tuple]]:
    d, ff, v = 256, 2048, 4233
    keys = [("encoder.global_cmvn.mean", (80,)), ("encoder.global_cmvn.istd", (80,)),
            ("encoder.embed.conv.0.weight", (d, 1, 3, 3)), ("encoder.embed.conv.0.bias", (d,)),
            ("encoder.embed.conv.2.weight", (d, d, 3, 3)), ("encoder.embed.conv.2.bias", (d,)),
            ("encoder.embed.out.0.weight", (d, 4864)), ("encoder.embed.out.0.bias", (d,)),
            ("encoder.embed.pos_enc.pe", (1, 5000, d)),
            ("encoder.after_norm.weight", (d,)), ("encoder.after_norm.bias", (d,))]

    def ffn(p):
        return [(p + ".w_1.weight", (ff, d)), (p + ".w_1.bias", (ff,)), (p + ".w_2.weight", (d, ff)),
                (p + ".w_2.bias", (d,))]

    def mha(p):
        out = []
        for n in ("linear_q", "linear_k", "linear_v", "linear_out"):
            out += [(f"{p}.{n}.weight", (d, d)), (f"{p}.{n}.bias", (d,))]
        return out

    for i in range(12):
        p = f"encoder.encoders.{i}."
        keys += [(p + "self_attn.pos_bias_u", (4, 64)), (p + "self_attn.pos_bias_v", (4, 64))]
        keys += mha(p + "self_attn") + [(p + "self_attn.linear_pos.weight", (d, d))]
        keys += ffn(p + "feed_forward") + ffn(p + "feed_forward_macaron")
        c = p + "conv_module."
        keys += [(c + "pointwise_conv1.weight", (2 * d, d, 1)), (c + "pointwise_conv1.bias", (2 * d,)),
                 (c + "depthwise_conv.weight", (d, 1, 15)), (c + "depthwise_conv.bias", (d,))]
        keys += [(c + "norm." + n, (d,)) for n in ("weight", "bias", "running_mean", "running_var")]
        keys += [(c + "norm.num_batches_tracked", ()), (c + "pointwise_conv2.weight", (d, d, 1)),
                 (c + "pointwise_conv2.bias", (d,))]
        for n in ("norm_ff", "norm_mha", "norm_ff_macaron", "norm_conv", "norm_final"):
            keys += [(f"{p}{n}.weight", (d,)), (f"{p}{n}.bias", (d,))]
    keys += [("decoder.embed.0.weight", (v, d)), ("decoder.embed.1.pe", (1, 5000, d)),
             ("decoder.after_norm.weight", (d,)), ("decoder.after_norm.bias", (d,)),
             ("decoder.output_layer.weight", (v, d)), ("decoder.output_layer.bias", (v,))]
    for j in range(6):
        p = f"decoder.decoders.{j}."
        keys += mha(p + "self_attn") + mha(p + "src_attn") + ffn(p + "feed_forward")
        for n in ("norm1", "norm2", "norm3"):
            keys += [(f"{p}{n}.weight", (d,)), (f"{p}{n}.bias", (d,))]
    keys += [("ctc.ctc_lo.weight", (v, d)), ("ctc.ctc_lo.bias", (v,))]
    return keys


def test_aishell_state_dict_matches_facts():
    with torch.device("meta"):
        model = ASRModel(AEDModelConfig(vocab_size=4233))
    sd = model.state_dict()
    expected = facts_keys()
    assert len(expected) == 655
    assert [(k, tuple(t.shape)) for k, t in sd.items()] == expected  # names, shapes and order
    params = dict(model.named_parameters())
    assert len(params) == 615 and len(sd) - len(params) == 40
    assert all(sd[k].dtype == torch.int64 for k in sd if k.endswith("num_batches_tracked"))
    assert all(t.dtype == torch.float32 for k, t in sd.items() if not k.endswith("num_batches_tracked"))

    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(model) == 46_197_266
    assert count(model.encoder) == 33_464_832
    assert count(model.encoder.embed) == 1_838_080
    assert {count(b) for b in model.encoder.encoders} == {2_635_520}
    assert count(model.decoder) == 11_644_553
    assert count(model.decoder.embed) == 1_083_648
    assert count(model.decoder.output_layer) == 1_087_881
    assert {count(b) for b in model.decoder.decoders} == {1_578_752}
    # The facts list ctc as 2,175,762, which contradicts their own total (46,197,266 - encoder - decoder)
    # and the shapes [4233,256] + [4233]; the shapes win.
    assert count(model.ctc) == 1_087_881


def test_config_validation_names_the_problem():
    with pytest.raises(ConfigError, match="not divisible by attention_heads"):
        from_dict(AEDModelConfig, {"vocab_size": 10, "encoder_conf": {"output_size": 250}})
    with pytest.raises(ConfigError, match="cnn_module_kernel must be odd"):
        from_dict(AEDModelConfig, {"vocab_size": 10, "encoder_conf": {"cnn_module_kernel": 14}})
    with pytest.raises(ConfigError, match="input_layer"):
        from_dict(AEDModelConfig, {"vocab_size": 10, "encoder_conf": {"input_layer": "conv2d2"}})
    with pytest.raises(ConfigError, match="eos_id 10 is outside"):
        from_dict(AEDModelConfig, {"vocab_size": 10, "eos_id": 10})
    cfg = from_dict(AEDModelConfig, {"vocab_size": 10})
    assert cfg.sos == cfg.eos == 9 and cfg.blank_id == 0


# ----------------------------------------------------------------------------------------------
# Hand-checked math


def test_add_sos_eos_and_pe_table():
    ys_in, ys_out = add_sos_eos(torch.tensor([[5, 6, 7], [8, -1, -1]]), torch.tensor([3, 1]), 10, 9)
    assert ys_in.tolist() == [[10, 5, 6, 7], [10, 8, 9, 9]]
    assert ys_out.tolist() == [[5, 6, 7, 9], [8, 9, -1, -1]]
    model = tiny_model()
    assert torch.equal(model.encoder.embed.pos_enc.pe, ref_pe(5000, 8))
    assert torch.equal(model.decoder.embed[1].pe, ref_pe(5000, 8))


def test_matches_independent_reference():
    model = tiny_model()
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    feats, lens, text, tl = batch()
    with torch.no_grad():
        enc, mask = model.encoder(feats, lens)
        ref_enc, ref_ok = ref_encoder(sd, feats, lens, h=2, kernel=5)
        assert torch.equal(mask[:, 0], ref_ok)
        torch.testing.assert_close(enc, ref_enc, atol=ATOL, rtol=0)  # padded frames too
        torch.testing.assert_close(model.ctc_log_probs(enc), torch.log_softmax(ref_lin(ref_enc, sd, "ctc.ctc_lo"), -1),
                                   atol=ATOL, rtol=0)
        ys_in, _ = add_sos_eos(text, tl, model.sos, model.eos)
        logits = model.decoder(enc, mask, ys_in, tl + 1)
        ref_logits = ref_decoder(sd, ref_enc, ref_ok, ys_in, tl + 1, h=2)
        torch.testing.assert_close(logits, ref_logits, atol=ATOL, rtol=0)
        out = model(feats, lens, text, tl)
        loss, loss_att, loss_ctc, acc = ref_losses(sd, feats, lens, text, tl, 2, 5, model.sos, model.eos)
    for got, want in ((out.loss, loss), (out.loss_att, loss_att), (out.loss_ctc, loss_ctc)):
        torch.testing.assert_close(got, torch.as_tensor(want, dtype=torch.float32), atol=ATOL, rtol=1e-6)
    assert out.acc.item() == pytest.approx(acc)
    # WeNet's smoothing is not torch's: the torch form gives a different value.
    torch_ce = F.cross_entropy(logits.reshape(-1, VOCAB), add_sos_eos(text, tl, model.sos, model.eos)[1].reshape(-1),
                               ignore_index=-1, label_smoothing=0.1, reduction="sum") / 3
    assert abs(torch_ce.item() - out.loss_att.item()) > 1e-3


def test_length_normalized_loss_divides_by_tokens():
    cfg = tiny_cfg()
    cfg.model_conf.length_normalized_loss = True
    a, b = tiny_model(cfg=tiny_cfg()), tiny_model(cfg=cfg)
    feats, lens, text, tl = batch()
    with torch.no_grad():
        la, lb = a(feats, lens, text, tl).loss_att, b(feats, lens, text, tl).loss_att
    ntok = int((tl + 1).sum())  # eos included
    torch.testing.assert_close(lb * ntok, la * 3, rtol=1e-5, atol=0)


# ----------------------------------------------------------------------------------------------
# Masks, lengths and padding


@pytest.mark.parametrize("input_layer, rule", [
    ("conv2d", lambda n: ((n - 1) // 2 - 1) // 2),
    ("conv2d6", lambda n: ((n - 1) // 2 - 2) // 3),
    ("conv2d8", lambda n: (((n - 1) // 2 - 1) // 2 - 1) // 2),
])
def test_masks_and_output_lengths(input_layer, rule):
    model = tiny_model(cfg=tiny_cfg(input_layer=input_layer))
    lengths = [101, 100, 61, 40, 23, 16, 15]
    feats = torch.randn(len(lengths), 101, F_DIM)
    with torch.no_grad():
        out, mask = model.encoder(feats, torch.tensor(lengths))
    assert mask.dtype == torch.bool and mask.shape == (len(lengths), 1, rule(101))
    assert out.shape == (len(lengths), rule(101), 8)
    assert mask[:, 0].sum(1).tolist() == [rule(n) for n in lengths]
    assert all(m[: rule(n)].all() and not m[rule(n):].any() for m, n in zip(mask[:, 0], lengths))
    if input_layer == "conv2d":
        assert rule(150) == 36 and rule(200) == 49 and rule(1000) == 249  # facts §2.1.3
    else:
        assert "embed.linear.weight" in dict(model.encoder.named_parameters())


@pytest.mark.parametrize("input_layer", ["conv2d", "conv2d6", "conv2d8"])
def test_inference_convolutions_equal_training_ones(input_layer):
    # Without autograd the front end runs channels-last convolutions on CPU (faster); same math.
    model = tiny_model(cfg=tiny_cfg(input_layer=input_layer))
    feats, lens, _, _ = batch()
    with torch.no_grad():
        fast, fast_mask = model.encoder(feats, lens)
    slow, slow_mask = model.encoder(feats, lens)
    assert slow.requires_grad and not fast.requires_grad
    torch.testing.assert_close(fast, slow.detach(), atol=ATOL, rtol=0)
    assert torch.equal(fast_mask, slow_mask)


@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm"])
def test_conv_module_matches_conv1d_computation(norm):
    # WeNet's layout, written with Conv1d ops: (B, C, T) through pointwise, GLU, depthwise, norm, pointwise.
    from wenet_llm.models.aed.modules import ConvolutionModule
    torch.manual_seed(0)
    conv = ConvolutionModule(8, 5, torch.nn.SiLU(), norm=norm)
    for p in conv.parameters():
        torch.nn.init.normal_(p)
    if norm == "batch_norm":
        conv.norm.running_mean.normal_()
        conv.norm.running_var.uniform_(0.5, 2.0)
    conv.eval()
    x = torch.randn(2, 11, 8)
    ok = (torch.arange(11)[None] < torch.tensor([11, 7])[:, None])[:, None]  # (B, 1, T)
    y = F.conv1d(x.transpose(1, 2).masked_fill(~ok, 0.0), conv.pointwise_conv1.weight, conv.pointwise_conv1.bias)
    y = F.glu(y, dim=1)
    y = F.conv1d(y, conv.depthwise_conv.weight, conv.depthwise_conv.bias, padding=2, groups=8)
    y = conv.norm(y) if norm == "batch_norm" else conv.norm(y.transpose(1, 2)).transpose(1, 2)
    y = F.conv1d(F.silu(y), conv.pointwise_conv2.weight, conv.pointwise_conv2.bias)
    expected = y.masked_fill(~ok, 0.0).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(conv(x, ok), expected, atol=ATOL, rtol=1e-5)


def test_fully_masked_attention_row_is_zero():
    # A query whose keys are all masked gets zero attention (no NaN), in both attention paths.
    attn = tiny_model().decoder.decoders[0].self_attn
    x = torch.randn(2, 4, 8)
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])[:, None, :]
    for use_sdpa in (False, True):
        attn.use_sdpa = use_sdpa
        with torch.no_grad():
            out = attn(x, x, x, mask)
        assert torch.isfinite(out).all()
        # All keys masked: the output is linear_out's bias alone.
        torch.testing.assert_close(out[1], attn.linear_out.bias.expand(4, 8), atol=ATOL, rtol=0)


def test_padding_invariance():
    """Each utterance alone == the same utterance in a padded batch (eval mode, valid frames).

    Needs ``conv_mask_after_glu`` (on in wenet_llm's own configs): WeNet zeroes padded frames only
    *before* the biased pointwise_conv1, so GLU(bias) of padded frames reaches the last (K-1)/2 valid
    frames through the depthwise conv (pinned by the next test).
    """
    model = tiny_model(cfg=tiny_cfg(conv_mask_after_glu=True))
    assert all(layer.conv_module.pointwise_conv1.bias.abs().sum() > 0 for layer in model.encoder.encoders)
    feats, lens, text, tl = batch()
    ys_in, _ = add_sos_eos(text, tl, model.sos, model.eos)
    with torch.no_grad():
        enc, mask = model.encoder(feats, lens)
        logp = model.ctc_log_probs(enc)
        logits = model.decoder(enc, mask, ys_in, tl + 1)
        for i in range(len(lens)):
            n, m = int(lens[i]), int(tl[i]) + 1
            e1, m1 = model.encoder(feats[i:i + 1, :n], lens[i:i + 1])
            t1 = int(m1.sum())
            assert t1 == int(mask[i].sum())
            torch.testing.assert_close(enc[i, :t1], e1[0], atol=ATOL, rtol=0)
            torch.testing.assert_close(logp[i, :t1], model.ctc_log_probs(e1)[0], atol=ATOL, rtol=0)
            l1 = model.decoder(e1, m1, ys_in[i:i + 1, :m], tl[i:i + 1] + 1)
            torch.testing.assert_close(logits[i, :m], l1[0], atol=ATOL, rtol=0)


def test_conv_module_padding_leak_is_wenet_behaviour():
    conv = tiny_model().encoder.encoders[0].conv_module
    x = torch.randn(1, 12, 8)
    ok = torch.arange(12)[None, None] < 9  # 9 valid frames, 3 padded
    with torch.no_grad():
        batched = conv(x, ok)[0, :9]
        alone = conv(x[:, :9], ok[:, :, :9])[0]
        half = (5 - 1) // 2
        torch.testing.assert_close(batched[: 9 - half], alone[: 9 - half], atol=ATOL, rtol=0)
        # GLU(bias) of the padded frames leaks into each of the last (K-1)/2 valid frames.
        assert ((batched[9 - half:] - alone[9 - half:]).abs().amax(dim=1) > 1e-4).all()
        assert conv(x, ok)[0, 9:].abs().max() == 0  # padded outputs zeroed


@pytest.mark.parametrize("normalize_before", [True, False])
def test_forward_one_step_matches_full_decoder(normalize_before):
    cfg = tiny_cfg()
    decoder_conf = dataclasses.replace(cfg.decoder_conf, normalize_before=normalize_before)
    cfg = dataclasses.replace(cfg, decoder_conf=decoder_conf)
    model = tiny_model(cfg=cfg)
    feats, lens, text, tl = batch(lengths=(57, 40), text_lengths=(4, 4))
    ys_in, _ = add_sos_eos(text, tl, model.sos, model.eos)
    with torch.no_grad():
        enc, mask = model.encoder(feats, lens)
        full = torch.log_softmax(model.decoder(enc, mask, ys_in, tl + 1), dim=-1)
        memory_kv = model.decoder.project_memory(enc)
        cache = None
        for i in range(1, ys_in.size(1) + 1):
            step, cache = model.decoder.forward_one_step(memory_kv, mask, ys_in[:, :i], cache)
            nocache, _ = model.decoder.forward_one_step(memory_kv, mask, ys_in[:, :i])
            torch.testing.assert_close(step, full[:, i - 1], atol=ATOL, rtol=0)
            torch.testing.assert_close(nocache, full[:, i - 1], atol=ATOL, rtol=0)
            assert len(cache) == 2 * len(model.decoder.decoders) and cache[0].shape == (2, 2, i, 4)  # (B, H, L, d_k)
        # Three prefixes per utterance (rows grouped by utterance) share the utterance's memory.
        ys3 = torch.stack([ys_in, ys_in.flip(1), ys_in.roll(1, 1)], dim=1).view(6, -1)  # (B*3, L)
        ys3[:, 0] = model.sos
        full3 = torch.log_softmax(model.decoder(enc.repeat_interleave(3, 0), mask.repeat_interleave(3, 0), ys3,
                                                torch.full((6,), ys3.size(1))), dim=-1)
        cache = None
        for i in range(1, ys3.size(1) + 1):
            step, cache = model.decoder.forward_one_step(memory_kv, mask, ys3[:, :i], cache)
            torch.testing.assert_close(step, full3[:, i - 1], atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------------------------
# Options: SDPA and gradient checkpointing


def test_sdpa_equals_plain_path():
    plain = tiny_model()
    cfg = tiny_cfg(use_sdpa=True)
    cfg.decoder_conf.use_sdpa = True
    sdpa = ASRModel(cfg).eval()
    sdpa.load_state_dict(plain.state_dict())
    feats, lens, text, tl = batch()
    ys_in, _ = add_sos_eos(text, tl, plain.sos, plain.eos)
    with torch.no_grad():
        e1, m1 = plain.encoder(feats, lens)
        e2, m2 = sdpa.encoder(feats, lens)
        torch.testing.assert_close(e2, e1, atol=ATOL, rtol=0)
        torch.testing.assert_close(sdpa.decoder(e2, m2, ys_in, tl + 1), plain.decoder(e1, m1, ys_in, tl + 1),
                                   atol=ATOL, rtol=0)
        torch.testing.assert_close(sdpa(feats, lens, text, tl).loss, plain(feats, lens, text, tl).loss,
                                   atol=ATOL, rtol=1e-6)


def test_gradient_checkpointing_gives_same_gradients():
    cfg = tiny_cfg(gradient_checkpointing=True)
    cfg.decoder_conf.gradient_checkpointing = True
    ref, ckpt = tiny_model(), ASRModel(cfg)
    ckpt.load_state_dict(ref.state_dict())
    feats, lens, text, tl = batch()
    grads = []
    for model in (ref, ckpt):
        model.train()  # dropout 0.1 on: checkpointing must replay the same masks
        torch.manual_seed(3)
        model(feats, lens, text, tl).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads[1].values())
    for n, g in grads[0].items():
        torch.testing.assert_close(grads[1][n], g, atol=1e-5, rtol=1e-4, msg=n)
    # The recomputation in backward must not update BatchNorm's running stats a second time.
    bn_ref, bn_ckpt = (m.encoder.encoders[0].conv_module.norm for m in (ref, ckpt))
    assert bn_ckpt.num_batches_tracked.item() == bn_ref.num_batches_tracked.item() == 18
    torch.testing.assert_close(bn_ckpt.running_mean, bn_ref.running_mean, atol=1e-6, rtol=0)
    assert bn_ckpt.track_running_stats


# ----------------------------------------------------------------------------------------------
# Loading WeNet model directories


def write_wenet_dir(tmp_path, sd, yaml_edit=None, cmvn=True):
    """A WeNet recipe layout: data/train/global_cmvn and exp/tiny/{train.yaml,final.pt}."""
    if cmvn:
        (tmp_path / "data/train").mkdir(parents=True)
        (tmp_path / "data/train/global_cmvn").write_text(json.dumps(cmvn_json()))
    exp = tmp_path / "exp/tiny"
    exp.mkdir(parents=True)
    conf = copy.deepcopy(TINY_YAML)
    if yaml_edit:
        yaml_edit(conf)
    (exp / "train.yaml").write_text(yaml.safe_dump(conf, allow_unicode=True))
    torch.save(sd, exp / "final.pt")
    return exp / "train.yaml", exp / "final.pt"


def outputs(model, data):
    feats, lens, text, tl = data
    with torch.no_grad():
        enc, mask = model.encoder(feats, lens)
        out = model(feats, lens, text, tl)
        ys_in, _ = add_sos_eos(text, tl, model.sos, model.eos)
        return enc, model.ctc_log_probs(enc), model.decoder(enc, mask, ys_in, tl + 1), out.loss


def _no_pe(sd):
    for k in ("encoder.embed.pos_enc.pe", "decoder.embed.1.pe"):
        del sd[k]


def _concat_linear(sd):
    for i in range(2):
        sd[f"encoder.encoders.{i}.concat_linear.weight"] = torch.randn(8, 16)
        sd[f"encoder.encoders.{i}.concat_linear.bias"] = torch.randn(8)
        for n in (1, 2):
            sd[f"decoder.decoders.{i}.concat_linear{n}.weight"] = torch.randn(8, 16)
            sd[f"decoder.decoders.{i}.concat_linear{n}.bias"] = torch.randn(8)


def _float_nbt(sd):
    for k in list(sd):
        if k.endswith("num_batches_tracked"):
            sd[k] = sd[k].float() / 1.0


def _no_cmvn(sd):
    del sd["encoder.global_cmvn.mean"], sd["encoder.global_cmvn.istd"]


@pytest.mark.parametrize("variant, edit, report_field, count", [
    ("current", None, None, 0),
    ("no_pe", _no_pe, "recomputed", 2),
    ("concat_linear", _concat_linear, "ignored_legacy", 12),
    ("float_num_batches_tracked", _float_nbt, "converted", 2),
    ("cmvn_from_file", _no_cmvn, None, 0),
])
def test_load_wenet_variants(tmp_path, variant, edit, report_field, count):
    src = tiny_model()
    sd = {k: v.clone() for k, v in src.state_dict().items()}
    assert all(v.dtype == torch.int64 for k, v in sd.items() if k.endswith("num_batches_tracked"))
    if edit:
        edit(sd)
    train_yaml, ckpt = write_wenet_dir(tmp_path, sd)
    model = load_wenet(train_yaml, ckpt)
    assert not model.training
    rep = model.load_report
    assert rep.missing == [] and rep.unexpected == []
    if report_field:
        assert len(getattr(rep, report_field)) == count
    assert rep.cmvn_source == (str(tmp_path / "data/train/global_cmvn") if variant == "cmvn_from_file"
                               else "checkpoint")
    assert model.encoder.encoders[0].conv_module.norm.num_batches_tracked.dtype == torch.int64
    data = batch()
    for got, want in zip(outputs(model, data), outputs(src, data)):
        torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_checkpoint_cmvn_is_authoritative(tmp_path):
    src = tiny_model()
    sd = src.state_dict()
    sd["encoder.global_cmvn.mean"] = sd["encoder.global_cmvn.mean"] + 1.0  # differs from the JSON file
    model = load_wenet(*write_wenet_dir(tmp_path, sd))
    assert torch.equal(model.encoder.global_cmvn.mean, sd["encoder.global_cmvn.mean"])


def test_cmvn_file_math_matches_facts(tmp_path):
    path = tmp_path / "global_cmvn"
    stats = cmvn_json(5)
    stats["var_stat"][0] = stats["mean_stat"][0] ** 2 / stats["frame_num"]  # variance 0: floored at 1e-20
    path.write_text(json.dumps(stats))
    mean, istd = load_cmvn(path)
    want_mean, want_istd = expected_cmvn(stats)
    assert torch.equal(mean, want_mean) and torch.equal(istd, want_istd) and istd[0] == pytest.approx(1e10)
    kaldi = tmp_path / "cmvn.ark"
    kaldi.write_text("[ " + " ".join(map(str, stats["mean_stat"] + [stats["frame_num"]])) + "\n"
                     + " ".join(map(str, stats["var_stat"] + [0])) + " ]\n")
    for got, want in zip(load_cmvn(kaldi), (mean, istd)):
        torch.testing.assert_close(got, want, atol=0, rtol=1e-6)


@pytest.mark.parametrize("special, sos", [(None, VOCAB - 1), ({"<blank>": 0, "<unk>": 1, "<sos>": 2, "<eos>": 2}, 2)])
def test_sos_eos_from_special_tokens_else_last(tmp_path, special, sos):
    src = tiny_model()

    def edit(conf):
        if special:
            conf["tokenizer_conf"]["special_tokens"] = special

    model = load_wenet(*write_wenet_dir(tmp_path, src.state_dict(), edit))
    assert model.sos == model.eos == sos
    data = batch()
    loss = outputs(model, data)[3]
    expect = ref_losses(src.state_dict(), *data, 2, 5, sos, sos)[0]
    torch.testing.assert_close(loss, torch.as_tensor(expect, dtype=torch.float32), atol=ATOL, rtol=1e-6)


def test_missing_and_unexpected_keys_are_reported(tmp_path, caplog):
    sd = tiny_model().state_dict()
    del sd["ctc.ctc_lo.bias"]
    sd["encoder.something_new.weight"] = torch.zeros(3)
    train_yaml, ckpt = write_wenet_dir(tmp_path, sd)
    with caplog.at_level(logging.WARNING):
        model = load_wenet(train_yaml, ckpt)
    assert model.load_report.missing == ["ctc.ctc_lo.bias"]
    assert model.load_report.unexpected == ["encoder.something_new.weight"]
    assert "ctc.ctc_lo.bias" in caplog.text and "encoder.something_new.weight" in caplog.text
    with pytest.raises(WenetCompatError, match="missing \\[ctc.ctc_lo.bias\\]"):
        load_wenet(train_yaml, ckpt, strict=True)


def _set(section, key, value):
    def edit(conf):
        if section:
            conf[section][key] = value
        else:
            conf[key] = value
    return edit


@pytest.mark.parametrize("edit, needle", [
    (_set(None, "decoder", "bitransformer"), "decoder: 'bitransformer' is not supported"),
    (_set(None, "encoder", "squeezeformer"), "encoder: 'squeezeformer' is not supported"),
    (_set("encoder_conf", "causal", True), "causal"),
    (_set("encoder_conf", "use_dynamic_chunk", True), "use_dynamic_chunk"),
    (_set("encoder_conf", "n_expert", 8), "n_expert"),
    (_set("encoder_conf", "pos_enc_layer_type", "abs_pos"), "pos_enc_layer_type"),
    (_set("model_conf", "reverse_weight", 0.3), "reverse_weight"),
])
def test_unsupported_config_is_an_error_naming_the_key(tmp_path, edit, needle):
    train_yaml, ckpt = write_wenet_dir(tmp_path, tiny_model().state_dict(), edit)
    with pytest.raises(WenetCompatError) as err:
        load_wenet(train_yaml, ckpt)
    assert needle in str(err.value) and str(train_yaml) in str(err.value)


def test_shape_mismatch_names_the_key(tmp_path):
    train_yaml, ckpt = write_wenet_dir(tmp_path, tiny_model().state_dict(),
                                       _set("encoder_conf", "cnn_module_kernel", 7))
    with pytest.raises(WenetCompatError, match=r"encoder\.encoders\.0\.conv_module\.depthwise_conv\.weight "
                                               r"has shape \[8, 1, 5\].*expects \[8, 1, 7\]"):
        load_wenet(train_yaml, ckpt)


def test_missing_cmvn_everywhere_is_an_error(tmp_path):
    sd = tiny_model().state_dict()
    _no_cmvn(sd)
    train_yaml, ckpt = write_wenet_dir(tmp_path, sd, cmvn=False)
    with pytest.raises(WenetCompatError, match="global_cmvn"):
        load_wenet(train_yaml, ckpt)


def test_decoder_learns_sequences_quickly():
    # The embedding starts at N(0, 1/d) (x sqrt(d) in the positional encoding: unit scale); torch's
    # N(0, 1) kept the demo's decoder near a bigram model for hundreds of steps (see the decoder's comment).
    # The decoder must then memorise a few sequences from teacher forcing within 120 steps.
    from wenet_llm.models.aed.transformer_decoder import TransformerDecoder
    torch.manual_seed(0)
    cfg = tiny_cfg().decoder_conf
    cfg.num_blocks, cfg.linear_units, cfg.dropout_rate = 2, 128, 0.0
    vocab, d = 30, 64
    dec = TransformerDecoder(vocab, d, cfg)
    assert abs(dec.embed[0].weight.std().item() - d ** -0.5) < 0.1 * d ** -0.5
    text = torch.randint(1, vocab - 1, (6, 16))
    tl = torch.full((6,), 16)
    ys_in, ys_out = add_sos_eos(text, tl, vocab - 1, vocab - 1)
    memory, memory_mask = torch.zeros(6, 4, d), torch.ones(6, 1, 4, dtype=torch.bool)
    opt = torch.optim.Adam(dec.parameters(), lr=2e-3)
    for _ in range(120):
        logits = dec(memory, memory_mask, ys_in, tl + 1)
        loss = F.cross_entropy(logits.reshape(-1, vocab), ys_out.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (dec(memory, memory_mask, ys_in, tl + 1).argmax(-1) == ys_out).float().mean().item()
    assert acc > 0.9, acc
