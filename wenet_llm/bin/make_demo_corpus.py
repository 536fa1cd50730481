"""Generate the bilingual espeak-ng demo corpus (stage 0 of the demo recipe).

Example: python -m wenet_llm.bin.make_demo_corpus --out data/corpus --num-utts 200 --seed 0
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from wenet_llm.config import ConfigError, load_config
from wenet_llm.config.demo_corpus import DemoCorpusConfig
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--out", required=True, help="output directory (Kaldi data dirs, data.list, wav/)")
    p.add_argument("--config", default=None, help="YAML instance of DemoCorpusConfig (defaults when omitted)")
    p.add_argument("--num-utts", type=int, default=None,
                   help=f"speech utterances (default: num_utts of --config, {DemoCorpusConfig.num_utts} without one)")
    p.add_argument("--seed", type=int, default=None,
                   help=f"random seed (default: seed of --config, {DemoCorpusConfig.seed} without one)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set one config value; repeatable")
    p.add_argument("--num-jobs", type=int, default=os.cpu_count() or 1, help="parallel synthesis processes")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    overrides: list = list(args.override)
    # Each value keeps the option it came from, so that an error names it.
    if args.num_utts is not None:
        overrides.append((f"num_utts={args.num_utts}", f"--num-utts {args.num_utts}"))
    if args.seed is not None:
        overrides.append((f"seed={args.seed}", f"--seed {args.seed}"))
    try:
        cfg = load_config(DemoCorpusConfig, args.config, overrides)
    except ConfigError as e:
        print(f"make_demo_corpus: {e}", file=sys.stderr)
        return 2
    from wenet_llm.synth.demo_corpus import generate

    start = time.time()
    summary = generate(cfg, args.out, num_jobs=max(1, args.num_jobs))
    logging.info("demo corpus written to %s in %.1f s:\n%s", args.out, time.time() - start, json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
