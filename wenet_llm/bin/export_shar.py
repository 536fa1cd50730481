"""Export a prepared split to lhotse Shar (sharded tar files) for cluster-scale training.

The training data config then reads it with ``format: shar`` and ``train: <out dir>``.

Example: python -m wenet_llm.bin.export_shar --in data/train/data.list --out data/train/shar --shard-size 1000
"""

from __future__ import annotations

import json
import logging
import sys

from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--in", dest="inp", required=True, help="data.list, Kaldi dir or lhotse manifest")
    p.add_argument("--out", required=True, help="output Shar directory")
    p.add_argument("--shard-size", type=int, default=1000, help="utterances per shard")
    p.add_argument("--audio-format", default="flac", choices=["flac", "wav"],
                   help="how the audio is stored in the tar shards (flac: lossless and about half the size)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    from wenet_llm.data.formats import export_shar, load_cuts

    try:
        shards = export_shar(load_cuts(args.inp), args.out, shard_size=args.shard_size,
                             audio_format=args.audio_format)
    except (FileNotFoundError, ValueError) as e:
        print(f"export_shar: {e}", file=sys.stderr)
        return 1
    logging.info("Shar written to %s:\n%s", args.out, json.dumps(shards, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
