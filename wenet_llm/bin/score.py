"""Score decoding output: MER / CER / WER, hallucination metrics and, with a context file, hotword metrics.

Examples:
  python -m wenet_llm.bin.score --ref data/test/text --hyp exp/llm/decode_test/text --out exp/llm/decode_test
  python -m wenet_llm.bin.score --ref data/test_hotword/text --context data/test_hotword/context.jsonl \\
      --seen data/lang/seen_names.txt --hyp without=exp/llm_ctx/decode_noctx/text \\
      --hyp with=exp/llm_ctx/decode_ctx/text --out exp/llm_ctx/score_test_hotword

--ref is a Kaldi text file, a Kaldi data dir or a data.list; each --hyp a Kaldi text file, as NAME=PATH
when there are several (scored side by side). Written under --out: wer (WeNet compute-wer's report),
details.jsonl, score.json and score.md; with several hypotheses wer and details.jsonl go to --out/NAME/.
The context file holds JSON lines {"key": ..., "hotwords": [...], "summary": ...}; --seen lists the terms
seen in training, one per line. See docs/scoring.md.
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    from wenet_llm.score.hallucination import MAX_NGRAM, MIN_REPEATS, MIN_TOKENS, OVERLONG_RATIO
    from wenet_llm.score.wer import NORMALIZE_CHOICES

    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--ref", required=True, help="references: Kaldi text file, Kaldi data dir or data.list")
    p.add_argument("--hyp", required=True, action="append", metavar="[NAME=]PATH",
                   help="hypothesis Kaldi text file; repeat as NAME=PATH to score several side by side")
    p.add_argument("--context", default=None, metavar="CONTEXT_JSONL",
                   help="per-utterance biasing lists (JSON lines keyed by utterance id, or a data.list with "
                        "a context field): enables the hotword metrics")
    p.add_argument("--seen", default=None, metavar="FILE",
                   help="terms seen in training, one per line: hotword metrics also split seen / unseen")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--normalize", choices=NORMALIZE_CHOICES, default="auto",
                   help="text normalizer for both sides (auto: zh when a Hanzi is present, else en; "
                        "none: WeNet's raw compute-wer numbers)")
    p.add_argument("--overlong-ratio", type=float, default=OVERLONG_RATIO,
                   help="a hypothesis longer than this many times its reference counts as overlong")
    p.add_argument("--loop-max-ngram", type=int, default=MAX_NGRAM, help="repetition loop: longest repeated n-gram")
    p.add_argument("--loop-min-repeats", type=int, default=MIN_REPEATS,
                   help="repetition loop: fewest back-to-back copies")
    p.add_argument("--loop-min-tokens", type=int, default=MIN_TOKENS, help="repetition loop: fewest tokens spanned")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from wenet_llm.score.report import score_files

    try:
        summary = score_files(args.ref, args.hyp, args.out, context=args.context, seen=args.seen,
                              normalize=args.normalize, overlong_ratio=args.overlong_ratio,
                              max_ngram=args.loop_max_ngram, min_repeats=args.loop_min_repeats,
                              min_tokens=args.loop_min_tokens)
    except (OSError, ValueError) as e:
        print(f"score: {e}", file=sys.stderr)
        return 1
    for name in summary["order"]:
        system = summary["systems"][name]
        print(f"{name}: {system['summary']}")
        if system["missing_hyps"] or system["extra_hyps"]:
            print(f"score: warning: {name}: {system['missing_hyps']} reference utterance(s) without a "
                  f"hypothesis (scored as deletions), {system['extra_hyps']} hypothesis line(s) without a "
                  "reference (ignored)", file=sys.stderr)
    print(f"reports written to {args.out}: score.json, score.md, wer, details.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
