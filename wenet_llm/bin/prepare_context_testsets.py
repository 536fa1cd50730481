"""Prepare contextual test sets: the AISHELL-1 hotword subsets (SeACo-Paraformer) and ContextASR-Bench.

Examples:
  # AISHELL-1 + the SeACo-Paraformer repository's data/ folder -> data/aishell1_hotword_{test,dev}/
  python -m wenet_llm.bin.prepare_context_testsets --aishell1-dir /data/aishell1 \\
      --hotword-dir /data/SeACo-Paraformer/data --out data
  # ContextASR-Bench (audio archives extracted) -> data/contextasr_speech_{en,zh}/
  python -m wenet_llm.bin.prepare_context_testsets --contextasr-dir /data/ContextASR-Bench --out data

Each set is a data dir (data.list + Kaldi files) with context files for the decoder's --context and the
scorer's --context: aishell1_hotword_*/context.jsonl (and hotwords.txt, the whole list), and
contextasr_speech_*/context_{coarse,fine}.jsonl. See docs/context.md for the formats read and written.
"""

from __future__ import annotations

import json
import logging
import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--out", required=True, metavar="DIR", help="folder that receives the test set folders")
    p.add_argument("--aishell1-dir", default=None, metavar="DIR",
                   help="local AISHELL-1 (holds data_aishell/wav/ with the archives extracted); needs --hotword-dir")
    p.add_argument("--hotword-dir", default=None, metavar="DIR",
                   help="SeACo-Paraformer hotword sets: the folder holding {test,dev}/{uttid,hotword.txt} "
                        "(their repository's data/ folder, or the repository itself)")
    p.add_argument("--aishell1-parts", nargs="+", default=["test", "dev"], choices=["test", "dev"],
                   help="which AISHELL-1 hotword subsets to prepare")
    p.add_argument("--list-size", type=int, default=100,
                   help="AISHELL-1: terms per utterance list (its hotwords plus distractors from the set's list); "
                        "0: the whole list for every utterance")
    p.add_argument("--contextasr-dir", default=None, metavar="DIR",
                   help="local ContextASR-Bench root (ContextASR-Speech_{English,Mandarin}.jsonl, audio extracted)")
    p.add_argument("--contextasr-langs", nargs="+", default=["English", "Mandarin"], choices=["English", "Mandarin"],
                   help="which ContextASR-Speech subsets to prepare")
    p.add_argument("--seed", type=int, default=0, help="random seed of the AISHELL-1 distractors and list order")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    args = parser.parse_args(argv)
    if not (args.hotword_dir or args.contextasr_dir):
        parser.error("nothing to prepare: give --aishell1-dir with --hotword-dir, and/or --contextasr-dir")
    if bool(args.hotword_dir) != bool(args.aishell1_dir):
        parser.error("--hotword-dir and --aishell1-dir go together (the hotword subsets use AISHELL-1's audio)")
    from wenet_llm.data.context_testsets import prepare_aishell1_hotword, prepare_contextasr
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    reports = {}
    try:
        if args.hotword_dir:
            reports["aishell1_hotword"] = prepare_aishell1_hotword(
                args.aishell1_dir, args.hotword_dir, args.out, parts=args.aishell1_parts,
                list_size=args.list_size, seed=args.seed)
        if args.contextasr_dir:
            reports["contextasr_speech"] = prepare_contextasr(args.contextasr_dir, args.out, args.contextasr_langs)
    except (OSError, ValueError) as e:
        print(f"prepare_context_testsets: {e}", file=sys.stderr)
        return 1
    logging.info("contextual test sets written under %s:\n%s", args.out, json.dumps(reports, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
