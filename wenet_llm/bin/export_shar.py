"""Export a prepared split to lhotse Shar (sharded tar files) for cluster-scale training.

The training data config then reads it with ``format: shar`` and ``train: <out dir>``.

Example: python -m wenet_llm.bin.export_shar --in data/train/data.list --out data/train/shar --shard-size 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from wenet_llm.data.formats import export_shar, load_cuts
from wenet_llm.utils.logging import setup_logging


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--in", dest="inp", required=True, help="data.list, Kaldi dir or lhotse manifest")
    p.add_argument("--out", required=True, help="output Shar directory")
    p.add_argument("--shard-size", type=int, default=1000, help="utterances per shard")
    p.add_argument("--audio-format", default="flac", choices=["flac", "wav"])
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    shards = export_shar(load_cuts(args.inp), args.out, shard_size=args.shard_size, audio_format=args.audio_format)
    logging.info("Shar written to %s:\n%s", args.out, json.dumps(shards, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
