"""Stage 3: decode test sets with a trained AED and score them (WeNet's four search methods).

Example: python -m wenet_llm.bin.decode_aed --exp-dir exp/aed --checkpoint exp/aed/avg_5.pt \
           --test data/test/data.list --out exp/aed/decode_test
"""

from __future__ import annotations

import argparse
import sys

import torch

from wenet_llm.data.tokenizer import load_tokenizer
from wenet_llm.decode.aed_decode import DEVICES, METHODS, decode_aed
from wenet_llm.train.aed import load_trained
from wenet_llm.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="the training dir (its train.yaml is read)")
    p.add_argument("--checkpoint", required=True, help="a .pt of that dir, e.g. avg_5.pt")
    p.add_argument("--test", required=True, help="data.list / Kaldi dir of the test set")
    p.add_argument("--out", required=True, help="output dir: <method>/text and <method>/wer")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--beam-size", type=int, default=10)
    p.add_argument("--ctc-weight", type=float, default=0.3, help="CTC weight in attention rescoring")
    p.add_argument("--max-duration", type=float, default=120.0, help="seconds of audio per batch")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="where to decode: cpu, cuda, or auto (cuda when one is visible, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    model, cfg = load_trained(args.exp_dir, args.checkpoint)
    tokenizer = load_tokenizer(cfg.tokenizer.units, cfg.tokenizer.bpe_model)
    decode_aed(model, tokenizer, args.test, cfg.data, args.out, args.methods, args.beam_size, args.ctc_weight,
               args.max_duration, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
