"""Average checkpoints into one model file (WeNet's average_model.py flags, also with dashes).

Example (aishell: the 30 best epochs by CV loss):
    python -m wenet_llm.bin.average_model --dst_model exp/aed/avg_30.pt --src_path exp/aed --num 30 --val_best
"""

from __future__ import annotations

import sys

from wenet_llm.config.train import AVERAGE_MODES
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--dst-model", required=True, help="averaged model file to write")
    p.add_argument("--src-path", required=True, help="exp dir holding {tag}.pt and {tag}.yaml")
    p.add_argument("--num", type=int, default=5, help="number of checkpoints to average")
    p.add_argument("--val-best", action="store_true", help="the num lowest CV losses (else the num last)")
    p.add_argument("--min-epoch", type=int, default=0, help="first epoch to consider")
    p.add_argument("--max-epoch", type=int, default=sys.maxsize, help="last epoch to consider (default: no limit)")
    p.add_argument("--min-step", type=int, default=0, help="first step to consider")
    p.add_argument("--max-step", type=int, default=sys.maxsize, help="last step to consider (default: no limit)")
    p.add_argument("--mode", choices=AVERAGE_MODES, default="hybrid",
                   help="checkpoints to pick from: hybrid (epoch_* and step_*), epoch or step")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    from wenet_llm.train.average import average_model

    try:
        average_model(args.dst_model, args.src_path, args.num, args.val_best, args.mode,
                      args.min_epoch, args.max_epoch, args.min_step, args.max_step)
    except ValueError as e:
        print(f"average_model: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
