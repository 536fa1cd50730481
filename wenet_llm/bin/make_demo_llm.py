"""Demo stage 1: build the demo's base LLM (a small Qwen3 with the trimmed Qwen tokenizer) and pre-train it
on text from the demo grammar. The result, <exp-dir>/model, is what stage 4 reads as --llm_path.

Example: python -m wenet_llm.bin.make_demo_llm --config conf/demo_llm.yaml --data-dir data --exp-dir exp/demo_llm
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--config", required=True, help="YAML instance of DemoLLMConfig")
    p.add_argument("--data-dir", required=True, help="the demo data dir of stage 0 (<dir>/{train,dev,...}, corpus/)")
    p.add_argument("--exp-dir", required=True, help="training dir; the model lands in <exp-dir>/model")
    p.add_argument("--num-jobs", type=int, default=1, help="processes for the sentence generation")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. num_sentences=1000 (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from wenet_llm.config import ConfigError, load_config
    from wenet_llm.config.demo_llm import DemoLLMConfig
    from wenet_llm.train.demo_lm import build_demo_llm
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    try:
        cfg = load_config(DemoLLMConfig, args.config, args.override)
    except ConfigError as e:
        print(f"make_demo_llm: {e}", file=sys.stderr)
        return 2
    out = build_demo_llm(cfg, args.data_dir, args.exp_dir, args.num_jobs)
    print(f"make_demo_llm: the demo LLM is in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
