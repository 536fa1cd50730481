"""Stage 0 data preparation: a local corpus -> validated data/<split>/{data.list, Kaldi dir, report}.

Corpora: demo (the generated corpus), aishell2, aishell (AISHELL-1), librispeech.
A split that ends up with no utterance is an error (exit 1), after its report is written.

Example: python -m wenet_llm.bin.prepare_corpus --corpus aishell2 --corpus-dir /data/AISHELL-2-root --out data
"""

from __future__ import annotations

import json
import logging
import sys

from wenet_llm.config import ConfigError, load_config
from wenet_llm.config.data import ValidateConfig
from wenet_llm.data.prepare import CORPORA, EmptySplitError, UnknownNameError, prepare_corpus, prepare_demo
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging

CORPUS_CHOICES = ["demo", *sorted(CORPORA)]


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--corpus", required=True, choices=CORPUS_CHOICES, help="corpus: " + ", ".join(CORPUS_CHOICES))
    p.add_argument("--corpus-dir", required=True, help="local copy of the corpus (nothing is downloaded)")
    p.add_argument("--out", required=True, help="output data dir; one sub-folder per part")
    p.add_argument("--parts", nargs="*", default=None, help="corpus parts (default: all standard parts)")
    p.add_argument("--config", default=None, help="YAML instance of ValidateConfig (defaults when omitted)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set one ValidateConfig value; repeatable")
    p.add_argument("--num-jobs", type=int, default=1, help="parallel processes of lhotse's corpus scan")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(ValidateConfig, args.config, args.override)
    except ConfigError as e:
        print(f"prepare_corpus: {e}", file=sys.stderr)
        return 2
    try:
        if args.corpus == "demo":
            summary = prepare_demo(args.corpus_dir, args.out, cfg)
        else:
            summary = prepare_corpus(args.corpus, args.corpus_dir, args.out, args.parts, cfg, args.num_jobs)
    except (FileNotFoundError, UnknownNameError) as e:  # a missing folder, an unknown part
        print(f"prepare_corpus: {e}", file=sys.stderr)
        return 2
    except EmptySplitError as e:
        print(f"prepare_corpus: {e}", file=sys.stderr)
        return 1
    totals = {part: report["totals"] for part, report in summary.items()}
    logging.info("prepared %s into %s:\n%s", args.corpus, args.out, json.dumps(totals, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
