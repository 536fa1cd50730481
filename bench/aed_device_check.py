"""Check that the Conformer AED computes the same on an accelerator as on the CPU, and in bf16 roughly so.

Builds the aishell-size model with random weights, runs encoder, CTC and decoder on the CPU (fp32, the
reference) and on --device (fp32 plain, fp32 SDPA, bf16 autocast), and prints the largest absolute
differences and the loss values. Used on the lent GPU machines, where the test suite does not run.

Usage: python bench/aed_device_check.py --device cuda
"""

from __future__ import annotations

import argparse

import torch

from wenet_llm.config import from_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.models.aed import ASRModel, add_sos_eos


def run(model: ASRModel, feats, lens, text, text_lens, device, sdpa: bool, bf16: bool):
    for module in model.modules():
        if hasattr(module, "use_sdpa"):
            module.use_sdpa = sdpa
    model = model.to(device).eval()
    args = [t.to(device) for t in (feats, lens, text, text_lens)]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.no_grad(), autocast:
        enc, mask = model.encoder(args[0], args[1])
        logp = model.ctc_log_probs(enc)
        ys_in, _ = add_sos_eos(args[2], args[3], model.sos, model.eos)
        logits = model.decoder(enc, mask, ys_in, args[3] + 1)
        loss = model(*args).loss
    return [t.float().cpu() for t in (enc, logp, logits, loss)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    torch.manual_seed(0)
    cfg = from_dict(AEDModelConfig, {"vocab_size": 4233, "encoder_conf": {"conv_mask_after_glu": True}})
    model = ASRModel(cfg, torch.randn(80), torch.rand(80) + 0.5)
    lens = torch.tensor([1000, 800, 613, 350])
    feats = torch.randn(4, 1000, 80) * (torch.arange(1000)[None, :, None] < lens[:, None, None])
    text_lens = torch.tensor([30, 25, 20, 9])
    text = torch.randint(3, 4232, (4, 30)).masked_fill(torch.arange(30)[None] >= text_lens[:, None], -1)
    ref = run(model, feats, lens, text, text_lens, torch.device("cpu"), sdpa=False, bf16=False)
    device = torch.device(args.device)
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else device}; torch {torch.__version__}")
    for name, sdpa, bf16 in (("fp32", False, False), ("fp32 sdpa", True, False), ("bf16 sdpa", True, True)):
        got = run(model, feats, lens, text, text_lens, device, sdpa, bf16)
        diffs = [float((a - b).abs().max()) for a, b in zip(got[:3], ref[:3])]
        print(f"{name:10s} max|diff| vs CPU fp32: encoder {diffs[0]:.2e}  ctc log-probs {diffs[1]:.2e}  "
              f"decoder logits {diffs[2]:.2e}  | loss {float(got[3]):.4f} (CPU {float(ref[3]):.4f})")


if __name__ == "__main__":
    main()
