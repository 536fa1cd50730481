"""Stage 3: export the encoder + CTC layer (+ CMVN, units, config) of a trained AED for the LLM stages.

Example: python -m wenet_llm.bin.export_encoder --exp-dir exp/aed --checkpoint exp/aed/avg_5.pt --out exp/aed/encoder
"""

from __future__ import annotations

import logging
import sys

from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--exp-dir", required=True, help="the training dir (its train.yaml is read)")
    p.add_argument("--checkpoint", required=True, help="a .pt of that dir, e.g. avg_5.pt")
    p.add_argument("--out", required=True, help="output dir, e.g. exp/aed/encoder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    from wenet_llm.train.aed import export_trained

    try:
        out = export_trained(args.exp_dir, args.checkpoint, args.out)
    except (FileNotFoundError, ValueError) as e:
        print(f"export_encoder: {e}", file=sys.stderr)
        return 1
    logging.info("exported the encoder of %s to %s", args.checkpoint, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
