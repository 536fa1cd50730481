"""Stage 3: average the best AED checkpoints, decode and score the test sets, export the encoder.

Example: python -m wenet_llm.bin.finish_aed --exp-dir exp/aed --num 30 --data-dir data --test-sets dev test
Writes exp/aed/avg_<num>.pt, exp/aed/decode_<set>/<method>/{text,wer} and exp/aed/encoder/.
Every input (the training dir, its checkpoints, each test set) is checked before any work starts.
"""

from __future__ import annotations

import sys

from wenet_llm.config.decode import AED_METHODS, DECODE_DEVICES
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--exp-dir", required=True, help="the training dir of stage 2")
    p.add_argument("--num", type=int, required=True, help="checkpoints to average (best by CV loss)")
    p.add_argument("--data-dir", required=True, help="holds <set>/data.list for every test set")
    p.add_argument("--test-sets", nargs="+", required=True, metavar="SET",
                   help="test set names: <data-dir>/<set>/data.list is decoded into <exp-dir>/decode_<set>/")
    p.add_argument("--methods", nargs="+", default=list(AED_METHODS), choices=AED_METHODS, metavar="METHOD",
                   help=f"search methods, any of: {' '.join(AED_METHODS)}")
    p.add_argument("--beam-size", type=int, default=10, help="beam of CTC prefix beam search and attention search")
    p.add_argument("--ctc-weight", type=float, default=0.3, help="CTC weight in attention rescoring")
    p.add_argument("--device", default="cpu", choices=DECODE_DEVICES,
                   help="where to decode: cpu, cuda, or auto (cuda when one is visible, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    from wenet_llm.train.aed import finish_aed

    try:
        finish_aed(args.exp_dir, args.num, args.data_dir, args.test_sets, args.methods, args.beam_size,
                   args.ctc_weight, args.device)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"finish_aed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
