"""Export a trained LLM-ASR stage as one deployable directory (LoRA merged into the LLM).

Example: python -m wenet_llm.bin.export --exp-dir exp/llm_sft2 --out exp/llm_sft2/export
The result loads with wenet_llm.load(DIR) and decodes with python -m wenet_llm.bin.decode --model DIR.
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--exp-dir", required=True, help="an LLM training dir (stage 4, 5 or 6)")
    p.add_argument("--checkpoint", default=None, help="a checkpoint dir of it (default: its final one)")
    p.add_argument("--out", required=True, help="the export directory (replaced when it exists)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    import logging

    from wenet_llm.models.llm.export import export_model
    from wenet_llm.train.llm import load_trained
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    try:
        model, cfg, tokenizer = load_trained(args.exp_dir, args.checkpoint)
    except (OSError, ValueError) as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    out = export_model(model, tokenizer, cfg, args.out, source=str(args.checkpoint or args.exp_dir))
    logging.info("exported %s to %s", args.exp_dir, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
