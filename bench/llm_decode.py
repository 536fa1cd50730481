"""LLM-ASR decoding throughput: utterances per second at batch 1, 4 and 16 (greedy, KV cache).

The model is a trained or exported LLM-ASR directory (the demo's stage 5 by default); the utterances
are the first --num-utts of a test list, their features computed once beforehand, so the figures are
encoder + adapter + LLM generation only. Every batch size decodes the same utterances with the same
output cap, in alternating rounds (the 2-core machines drift from one minute to the next).
Target (issue): batch 16 at least 4x the utterances per second of batch 1.

Usage: python bench/llm_decode.py [--model examples/demo/s0/exp/llm_sft2] [--test LIST] [--num-utts 48]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "examples" / "demo" / "s0"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(DEMO / "exp" / "llm_sft2"), help="LLM training dir or export")
    p.add_argument("--test", default=str(DEMO / "data" / "test" / "data.list"), help="data.list of the utterances")
    p.add_argument("--num-utts", type=int, default=48)
    p.add_argument("--batch-sizes", default="1,4,16")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    import wenet_llm
    from wenet_llm.config.llm import GenerationConfig
    from wenet_llm.data.features import compute_fbank, load_audio
    from wenet_llm.data.formats import read_data_list

    rec = wenet_llm.load(args.model, device=args.device)
    fbank = rec.cfg.data.fbank
    entries = list(read_data_list(args.test))[: args.num_utts]
    feats = [torch.as_tensor(compute_fbank(load_audio(e["wav"], fbank.sample_rate), fbank.sample_rate, fbank, 0.0))
             for e in entries]
    seconds = sum(f.shape[0] for f in feats) * fbank.frame_shift_ms / 1000
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens)
    tok = rec.tokenizer
    prompt = rec.builder.build(None, {})

    def decode(batch_size: int) -> float:
        start = time.perf_counter()
        for i in range(0, len(feats), batch_size):
            chunk = feats[i:i + batch_size]
            lengths = torch.tensor([f.shape[0] for f in chunk])
            padded = torch.zeros(len(chunk), int(lengths.max()), chunk[0].shape[1])
            for j, f in enumerate(chunk):
                padded[j, : f.shape[0]] = f
            rec.model.generate(padded.to(args.device), lengths.to(args.device), [prompt] * len(chunk), gen,
                               [tok.eos_token_id], tok.pad_token_id)
        return time.perf_counter() - start

    sizes = [int(b) for b in args.batch_sizes.split(",")]
    decode(max(sizes))  # warm-up
    times: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(args.rounds):
        for b in sizes:
            times[b].append(decode(b))
    print(f"model: {args.model}; {len(feats)} utterances, {seconds:.1f} s of audio; max {args.max_new_tokens} new "
          f"tokens; threads {torch.get_num_threads()}; device {args.device}")
    base = None
    for b in sizes:
        t = statistics.median(times[b])
        ups = len(feats) / t
        base = base or ups
        print(f"batch {b:>3}: {ups:7.2f} utt/s  RTF {t / seconds:.4f}  ({t:.2f} s, median of {len(times[b])}; "
              f"{ups / base:.2f}x batch {sizes[0]})")


if __name__ == "__main__":
    main()
