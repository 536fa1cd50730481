"""Stage 3: average the best AED checkpoints, decode and score the test sets, export the encoder.

Example: python -m wenet_llm.bin.finish_aed --exp-dir exp/aed --num 30 --data-dir data --test-sets dev test
Writes exp/aed/avg_<num>.pt, exp/aed/decode_<set>/<method>/{text,wer} and exp/aed/encoder/.
"""

from __future__ import annotations

import argparse
import sys

from wenet_llm.decode.aed_decode import DEVICES, METHODS
from wenet_llm.train.aed import finish_aed
from wenet_llm.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="the training dir of stage 2")
    p.add_argument("--num", type=int, required=True, help="checkpoints to average (best by CV loss)")
    p.add_argument("--data-dir", required=True, help="holds <set>/data.list for every test set")
    p.add_argument("--test-sets", nargs="+", required=True)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--beam-size", type=int, default=10)
    p.add_argument("--ctc-weight", type=float, default=0.3, help="CTC weight in attention rescoring")
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="where to decode: cpu, cuda, or auto (cuda when one is visible, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    finish_aed(args.exp_dir, args.num, args.data_dir, args.test_sets, args.methods, args.beam_size, args.ctc_weight,
               args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
