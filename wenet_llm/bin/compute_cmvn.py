"""Compute WeNet JSON global CMVN stats over a data.list (fbank with dither 0).

Example: python -m wenet_llm.bin.compute_cmvn --data data/train/data.list --out data/train/global_cmvn --num-workers 2
"""

from __future__ import annotations

import logging
import os
import sys
import time

from wenet_llm.config import ConfigError, load_config
from wenet_llm.config.data import FbankConfig
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--data", required=True, help="WeNet raw data.list (JSON lines with key, wav, txt)")
    p.add_argument("--out", required=True, help="output JSON global_cmvn")
    p.add_argument("--config", default=None, help="YAML instance of FbankConfig (defaults when omitted)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set one FbankConfig value; repeatable")
    p.add_argument("--num-workers", type=int, default=min(8, os.cpu_count() or 1), help="parallel processes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(FbankConfig, args.config, args.override)
    except ConfigError as e:
        print(f"compute_cmvn: {e}", file=sys.stderr)
        return 2
    from wenet_llm.data.cmvn import compute_cmvn_from_list, save_cmvn_json

    start = time.time()
    try:
        stats = compute_cmvn_from_list(args.data, cfg, num_workers=max(1, args.num_workers))
    except (FileNotFoundError, ValueError) as e:
        print(f"compute_cmvn: {e}", file=sys.stderr)
        return 1
    save_cmvn_json(stats, args.out)
    logging.info("wrote %s (%d frames) in %.1f s", args.out, stats.frame_num, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
