"""Compute WER/CER of a hypothesis text file against a reference, WeNet compute-wer.py style.

Example: python -m wenet_llm.bin.compute_wer --char 1 --v 1 data/test/text exp/aed/decode_test/text > wer
(WeNet's spellings --char=1 --v=1 --cs=1 --ig=FILE work too.)

Both files hold `key text` lines. Unlike WeNet, a reference utterance with no hypothesis line is not
skipped: it is scored as all deletions and reported ("Missing hyps: ..."; keys listed with --v 1).
A hypothesis with no reference is reported ("Extra hyps: ...") and ignored.
"""

from __future__ import annotations

import sys

from wenet_llm.score.wer import NORMALIZE_CHOICES, read_kaldi_text, read_word_list, score
from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("ref", help="reference text file (key text)")
    p.add_argument("hyp", help="hypothesis text file (key text)")
    p.add_argument("--char", type=int, choices=(0, 1), default=0,
                   help="1: Hanzi as single tokens, WeNet's char scan (CER); 0: split on whitespace")
    p.add_argument("--v", type=int, choices=(0, 1), default=1,
                   help="1: per-utterance alignments and per-cluster lines; 0: the Overall line only")
    p.add_argument("--cs", type=int, choices=(0, 1), default=0, help="1: case-sensitive (no upper-casing)")
    p.add_argument("--ignore", "--ig", dest="ignore", default=None, metavar="FILE",
                   help="words to drop from both sides, one per line")
    p.add_argument("--normalize", choices=NORMALIZE_CHOICES, default="none",
                   help="text normalisation applied to ref and hyp before tokenising (auto: zh if any Hanzi)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        refs, hyps = read_kaldi_text(args.ref), read_kaldi_text(args.hyp)
        ignore = read_word_list(args.ignore) if args.ignore else ()
    except (OSError, ValueError) as e:
        print(f"compute_wer: {e}", file=sys.stderr)
        return 1
    result = score(refs, hyps, char_mode=bool(args.char), case_sensitive=bool(args.cs),
                   ignore_words=ignore, normalize=args.normalize)
    sys.stdout.write(result.report(verbose=bool(args.v)))
    for line in result.problems():
        print(f"compute_wer: warning: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
