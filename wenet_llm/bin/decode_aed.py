"""Stage 3: decode test sets with a trained AED and score them (WeNet's four search methods).

Example: python -m wenet_llm.bin.decode_aed --exp-dir exp/aed --checkpoint exp/aed/avg_5.pt \\
           --test data/test/data.list --out exp/aed/decode_test
"""

from __future__ import annotations

import sys

from wenet_llm.config.decode import AED_METHODS, DECODE_DEVICES
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--exp-dir", required=True, help="the training dir (its train.yaml is read)")
    p.add_argument("--checkpoint", required=True, help="a .pt of that dir, e.g. avg_5.pt")
    p.add_argument("--test", required=True, help="data.list / Kaldi dir of the test set")
    p.add_argument("--out", required=True, help="output dir: <method>/text and <method>/wer")
    p.add_argument("--methods", nargs="+", default=list(AED_METHODS), choices=AED_METHODS, metavar="METHOD",
                   help=f"search methods, any of: {' '.join(AED_METHODS)}")
    p.add_argument("--beam-size", type=int, default=10, help="beam of CTC prefix beam search and attention search")
    p.add_argument("--ctc-weight", type=float, default=0.3, help="CTC weight in attention rescoring")
    p.add_argument("--max-duration", type=float, default=120.0, help="seconds of audio per batch")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", choices=DECODE_DEVICES,
                   help="where to decode: cpu, cuda, or auto (cuda when one is visible, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    from wenet_llm.train.aed import decode_trained

    try:
        decode_trained(args.exp_dir, args.checkpoint, args.test, args.out, args.methods, args.beam_size,
                       args.ctc_weight, args.max_duration, args.num_threads, args.device)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"decode_aed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
