"""Validate a corpus and write its clean WeNet data.list plus a JSON report of what was dropped and why.

Example:
    python -m wenet_llm.bin.validate --in data/train --out data/train/clean.list \\
        --report data/train/validate.json --units data/lang/units.txt

--in takes a WeNet data.list, a Kaldi data dir or a lhotse manifest (see wenet_llm.data.formats);
relative wav paths are resolved against the folder of the list (or of wav.scp).
Exit status: 0 when entries were kept; 1 when the input holds no entry or none passed; 2 on a bad
input path or config.
"""

from __future__ import annotations

import logging
import os
import sys

from wenet_llm.config import ConfigError, load_config
from wenet_llm.config.data import ValidateConfig
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--in", dest="inp", required=True, help="data.list, Kaldi data dir or lhotse manifest")
    p.add_argument("--out", required=True, help="clean WeNet data.list to write")
    p.add_argument("--report", required=True, help="JSON report to write")
    p.add_argument("--config", default=None, help="YAML instance of ValidateConfig (defaults when omitted)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set one ValidateConfig value; repeatable")
    p.add_argument("--units", default=None, help="units.txt; report characters outside it as oov_chars")
    p.add_argument("--allow-empty-text", action="store_true", help="keep empty transcripts (non-speech sets)")
    p.add_argument("--num-workers", type=int, default=min(8, os.cpu_count() or 1), help="audio-probing threads")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    overrides: list = list(args.override)
    if args.allow_empty_text:
        overrides.append(("allow_empty_text=true", "--allow-empty-text"))
    from wenet_llm.data.validate import format_summary, run_validate

    try:
        cfg = load_config(ValidateConfig, args.config, overrides)
        report = run_validate(args.inp, args.out, args.report, cfg, units=args.units, num_workers=args.num_workers)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"validate: {e}", file=sys.stderr)
        return 2
    print(format_summary(report))
    logging.info("clean list: %s; report: %s", args.out, args.report)
    if not report["totals"]["entries"]:
        print(f"validate: {args.inp} holds no entries; {args.out} is empty", file=sys.stderr)
        return 1
    if not report["totals"]["kept"]:
        print(f"validate: no entry of {args.inp} passed; see {args.report}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
