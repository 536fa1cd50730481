"""LLM-ASR train-step time at the demo size: SFT 1 (adapter) and SFT 2 (encoder + adapter + LoRA).

Builds the demo's stage configs (examples/demo/s0/conf/llm_sft{1,2}.yaml) on a random encoder of the demo
AED's size and a random Qwen3 of the demo LLM's size (conf/demo_aed / demo_llm.yaml), so nothing needs
to be trained first, and times forward + backward + optimizer step on a batch of --batch utterances of
--seconds each with --tokens transcript tokens. Prints the median step time and the audio seconds per
second of each stage.

Usage: python bench/llm_step.py [--batch 24] [--seconds 5] [--tokens 16] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "examples" / "demo" / "s0" / "conf"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=4096, help="LLM vocabulary (the demo's trimmed one is about 4k)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from wenet_llm.config import load_config
    from wenet_llm.config.demo_llm import DemoLLMConfig
    from wenet_llm.config.experiment import AEDExperimentConfig
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.models.aed.export import ExportedEncoder
    from wenet_llm.models.llm.decoder import llm_from_config
    from wenet_llm.models.llm.llm_asr import LLMASRModel
    from wenet_llm.models.llm.tiny_qwen import qwen3_config
    from wenet_llm.train.engine import build_optimizer

    aed = load_config(AEDExperimentConfig, CONF / "aed_conformer.yaml")
    lm = load_config(DemoLLMConfig, CONF / "demo_llm.yaml")

    class Tok:
        eos_token_id, pad_token_id = 1, 0

    frames = int(args.seconds * 100)
    feats = torch.randn(args.batch, frames, 80)
    lengths = torch.full((args.batch,), frames)
    for stage in ("sft1", "sft2"):
        cfg = load_config(LLMExperimentConfig, CONF / f"llm_{stage}.yaml")
        encoder = ExportedEncoder(dataclasses.replace(aed.model, vocab_size=700))
        llm = llm_from_config(qwen3_config(args.vocab, Tok, lm.size), cfg.model.llm)
        model = LLMASRModel(encoder, llm, cfg.model).train()
        n = model.speech_length(frames)  # an estimate: a ctc_compress adapter gives what the CTC layer hears
        prefix = torch.randint(2, args.vocab, (args.batch, 8))
        suffix = torch.randint(2, args.vocab, (args.batch, 14))
        target = torch.randint(2, args.vocab, (args.batch, args.tokens))
        length = prefix.shape[1] + n + suffix.shape[1] + args.tokens

        def lengths_of(x: torch.Tensor) -> torch.Tensor:
            return torch.full((args.batch,), x.shape[1])

        ctc = torch.randint(1, 699, (args.batch, args.tokens * 3))
        ctc_len = torch.full((args.batch,), args.tokens * 3)
        opt = build_optimizer(model, cfg.train.optim)

        def step() -> None:
            out = model(feats, lengths, prefix, lengths_of(prefix), suffix, lengths_of(suffix), target,
                        lengths_of(target), ctc, ctc_len)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        step()  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        t = statistics.median(times)
        trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
        print(f"{stage}: trainable {trainable / 1e6:.2f}M of {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M; "
              f"batch {args.batch} x {args.seconds:g} s (about {length} positions); step {t:.3f} s (median of {len(times)}; "
              f"min {min(times):.3f}, max {max(times):.3f}); {args.batch * args.seconds / t:.1f} audio-s/s")


if __name__ == "__main__":
    main()
