"""Conformer AED step time: forward + backward of the aishell-size model, and encoder-only inference.

The model is WeNet's aishell configuration (d=256, 12 blocks, 2048 units, kernel 15, 6-layer decoder,
4233 units: 46.2M parameters) on a batch of 8 x 10 s (1000 fbank frames, 30 tokens each). Reports the
median of --repeats timed runs after one warm-up. Target (issue): no slower than WeNet's own
implementation on the same machine (about 4.2 s per train step and 0.9 s encoder-only, 2 CPU threads).

Usage: python bench/aed_step.py [--threads 2] [--sdpa] [--device cpu|cuda] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

from wenet_llm.config import from_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.models.aed import ASRModel


def timed(fn, repeats: int, sync) -> list[float]:
    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> str:
    # The spread is printed because shared 2-core machines vary by 10-20 % from minute to minute.
    return f"{statistics.median(times):.3f} s  (median of {len(times)}; min {min(times):.3f}, max {max(times):.3f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sdpa", action="store_true", help="scaled_dot_product_attention path (same math)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cfg = from_dict(AEDModelConfig, {"vocab_size": 4233, "encoder_conf": {"use_sdpa": args.sdpa},
                                     "decoder_conf": {"use_sdpa": args.sdpa}})
    model = ASRModel(cfg).to(device)
    frames = int(args.seconds * 100)
    feats = torch.randn(args.batch, frames, 80, device=device)
    feats_lengths = torch.full((args.batch,), frames, device=device)
    text = torch.randint(3, 4232, (args.batch, 30), device=device)
    text_lengths = torch.full((args.batch,), 30, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16"
                else contextlib.nullcontext())

    def train_step() -> None:
        model.train()
        model.zero_grad(set_to_none=True)
        with autocast:
            loss = model(feats, feats_lengths, text, text_lengths).loss
        loss.backward()

    def encoder_only() -> None:
        model.eval()
        with torch.no_grad(), autocast:
            model.encoder(feats, feats_lengths)

    params = sum(p.numel() for p in model.parameters())
    step = timed(train_step, args.repeats, sync)
    enc = timed(encoder_only, args.repeats, sync)
    print(f"model: {params / 1e6:.1f}M params; batch {args.batch} x {args.seconds:g} s; device {device}; "
          f"threads {torch.get_num_threads()}; sdpa {args.sdpa}; {args.precision}")
    print(f"train step (forward + backward): {summary(step)}")
    print(f"encoder-only forward:            {summary(enc)}")


if __name__ == "__main__":
    main()
