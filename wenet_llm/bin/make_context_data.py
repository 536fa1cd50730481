"""Build contextual training data: per-utterance hotword lists (targets + distractors) and group summaries.

Examples:
  python -m wenet_llm.bin.make_context_data --in data/train/data.list --out data/train_ctx \\
      --config conf/context_data.yaml
  # the demo: targets are the names each utterance carries, distractors also come from a name pool
  python -m wenet_llm.bin.make_context_data --in data/train/data.list --out data/train_ctx \\
      --config conf/context_data.yaml --extra-pool data/corpus/distractor_names.json
  # LLM extraction through an OpenAI-compatible endpoint (a local vLLM server, or a hosted model)
  OPENAI_API_KEY=... python -m wenet_llm.bin.make_context_data --in data/train --out data/train_ctx \\
      --override hotwords.extractor=llm --override llm.base_url=http://localhost:8000/v1 --override llm.model=NAME

--in takes a data.list, a Kaldi data dir or a lhotse manifest. Writes OUT/data.list (the input entries with
`hotwords` and/or `summary`), OUT/context.jsonl, OUT/context_report.json and the resolved config
OUT/context_data.yaml. Deterministic for a seed. See docs/context.md.
"""

from __future__ import annotations

import json
import logging
import sys

from wenet_llm.config import ConfigError, load_config, save_config
from wenet_llm.config.context_data import ContextDataConfig
from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--in", dest="inp", required=True, metavar="DATA",
                   help="training list: data.list, Kaldi data dir or lhotse manifest")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: data.list, context.jsonl, context_report.json, context_data.yaml")
    p.add_argument("--config", default=None, help="YAML instance of ContextDataConfig (defaults when omitted)")
    p.add_argument("--extra-pool", action="append", default=[], metavar="FILE",
                   help="distractor terms (txt: one per line; json/jsonl: strings or {text, lang}); repeatable, "
                        "added to hotwords.pool_files")
    p.add_argument("--seed", type=int, default=None,
                   help=f"random seed (default: seed of --config, {ContextDataConfig.seed} without one)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set one config value, e.g. hotwords.max_list_len=20; repeatable")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    overrides: list = list(args.override)
    if args.seed is not None:
        overrides.append((f"seed={args.seed}", f"--seed {args.seed}"))
    try:
        cfg = load_config(ContextDataConfig, args.config, overrides)
    except ConfigError as e:
        print(f"make_context_data: {e}", file=sys.stderr)
        return 2
    from wenet_llm.data.chat_client import EndpointError
    from wenet_llm.data.context_builder import build_context_data

    try:
        report = build_context_data(args.inp, args.out, cfg, extra_pool_files=args.extra_pool)
    except (OSError, ValueError, EndpointError) as e:
        print(f"make_context_data: {e}", file=sys.stderr)
        return 1
    save_config(cfg, f"{args.out}/context_data.yaml")
    logging.info("contextual list written to %s:\n%s", report["output"], json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
