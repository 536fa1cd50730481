"""Average checkpoints into one model file (WeNet-compatible flags).

Example (aishell: the 30 best epochs by CV loss):
    python -m wenet_llm.bin.average_model --dst_model exp/aed/avg_30.pt --src_path exp/aed --num 30 --val_best
"""

from __future__ import annotations

import argparse
import sys

from wenet_llm.train.average import MODES, average_model
from wenet_llm.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dst_model", required=True, help="averaged model file to write")
    p.add_argument("--src_path", required=True, help="exp dir holding {tag}.pt and {tag}.yaml")
    p.add_argument("--num", type=int, default=5, help="number of checkpoints to average")
    p.add_argument("--val_best", action="store_true", help="the num lowest CV losses (else the num last)")
    p.add_argument("--min_epoch", type=int, default=0)
    p.add_argument("--max_epoch", type=int, default=sys.maxsize)
    p.add_argument("--min_step", type=int, default=0)
    p.add_argument("--max_step", type=int, default=sys.maxsize)
    p.add_argument("--mode", choices=MODES, default="hybrid", help="hybrid: epoch_* and step_*; epoch; step")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        average_model(args.dst_model, args.src_path, args.num, args.val_best, args.mode,
                      args.min_epoch, args.max_epoch, args.min_step, args.max_step)
    except ValueError as e:
        print(f"average_model: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
