"""Build the AED tokenizer (units.txt, and bpe.model/bpe.vocab for bpe and mixed) from a data.list.

Modes: char (AISHELL), bpe (LibriSpeech, --vocab-size 5000 there), mixed (Hanzi chars + English BPE).

Example: python -m wenet_llm.bin.make_tokenizer --data data/train/data.list --mode char --out-dir data/lang
"""

from __future__ import annotations

import json
import logging
import sys

from wenet_llm.data.tokenizer import BPE_MODEL_TYPES, MODES, TokenizerError, make_tokenizer, read_data_list_texts
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--data", required=True, help="WeNet raw data.list (JSON lines with key, wav, txt)")
    p.add_argument("--mode", required=True, choices=MODES, help="unit type: " + ", ".join(MODES))
    p.add_argument("--out-dir", required=True, help="where units.txt (and bpe.model, bpe.vocab) are written")
    p.add_argument("--vocab-size", type=int, default=5000, help="sentencepiece vocabulary size (bpe, mixed)")
    p.add_argument("--model-type", default="unigram", choices=BPE_MODEL_TYPES, help="sentencepiece model type")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        texts = read_data_list_texts(args.data)
        summary = make_tokenizer(texts, args.mode, args.out_dir, args.vocab_size, args.model_type)
    except TokenizerError as e:
        print(f"make_tokenizer: {e}", file=sys.stderr)
        return 2
    logging.info("tokenizer written to %s:\n%s", args.out_dir, json.dumps(summary, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
