"""Scoring speed: the compiled aligner (kaldialign) against the plain-Python one, on a synthetic test set.

The set mixes Mandarin (10-40 Hanzi), English (5-25 words) and code-switched utterances; each hypothesis
is its reference with about 5 % substitutions, 5 % deletions and 3 % insertions. Both aligners score the
whole set through wenet_llm.score.wer.score (tokenisation and counting included), and the results are
checked to be identical. With --long-form, a few long utterances (thousands of tokens, as from long-form
decoding) are added, where the quadratic alignment dominates.

Usage:
  python bench/score_speed.py                       # 10,000 utterances
  python bench/score_speed.py --num-utts 1000 --long-form 3 --repeats 3
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from wenet_llm.score.hallucination import hallucination_stats
from wenet_llm.score.wer import align, align_python, score

_HANZI = [chr(0x4E00 + 37 * k) for k in range(600)]
_WORDS = [w.upper() for w in (
    "the a of and to in is you that it he was for on are as with his they at be this have from or one had by "
    "word but not what all were we when your can said there use an each which she do how their if will up "
    "other about out many then them these so some her would make like him into time has look two more write "
    "go see number no way could people my than first water been call who oil its now find long down day did "
    "get come made may part zorblax quintor index").split()]


def _utterance(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return "".join(rng.choice(_HANZI) for _ in range(rng.randint(10, 40)))
    if kind < 0.9:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 25)))
    parts = []
    for _ in range(rng.randint(2, 5)):
        parts.append("".join(rng.choice(_HANZI) for _ in range(rng.randint(2, 8))))
        parts.append(" ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3))))
    return " ".join(parts)


def _corrupt(tokens: list[str], rng: random.Random) -> list[str]:
    out = []
    for t in tokens:
        x = rng.random()
        if x < 0.05:
            continue  # deletion
        out.append(rng.choice(_HANZI + _WORDS) if x < 0.10 else t)
        if rng.random() < 0.03:
            out.append(rng.choice(_HANZI + _WORDS))  # insertion
    return out


def make_set(num_utts: int, long_form: int, long_tokens: int, seed: int) -> tuple[dict[str, str], dict[str, str]]:
    """Synthetic refs and hyps, space-separated tokens (the scorer's char mode splits Hanzi anyway)."""
    rng = random.Random(seed)
    refs, hyps = {}, {}
    for i in range(num_utts):
        ref = _utterance(rng)
        tokens = [t for w in ref.split() for t in ([w] if w.isascii() else list(w))]
        refs[f"utt{i:06d}"] = ref
        hyps[f"utt{i:06d}"] = " ".join(_corrupt(tokens, rng))
    for i in range(long_form):
        tokens = [rng.choice(_HANZI + _WORDS) for _ in range(long_tokens)]
        refs[f"long{i:03d}"] = " ".join(tokens)
        hyps[f"long{i:03d}"] = " ".join(_corrupt(tokens, rng))
    return refs, hyps


def _time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-utts", type=int, default=10000, help="synthetic utterances")
    p.add_argument("--long-form", type=int, default=0, help="extra long utterances")
    p.add_argument("--long-tokens", type=int, default=3000, help="tokens per long utterance")
    p.add_argument("--repeats", type=int, default=1, help="runs per aligner (the median is printed)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    refs, hyps = make_set(args.num_utts, args.long_form, args.long_tokens, args.seed)
    n_tokens = sum(len(t) for t in refs.values())
    print(f"set: {len(refs)} utterances ({args.long_form} long-form of {args.long_tokens} tokens), "
          f"{n_tokens} reference characters")
    t_py, r_py = _time(lambda: score(refs, hyps, aligner=align_python), args.repeats)
    t_ka, r_ka = _time(lambda: score(refs, hyps, aligner=align), args.repeats)
    if r_py.report(verbose=True) != r_ka.report(verbose=True):
        raise SystemExit("the two aligners disagree: compare align and align_python on this set")
    t_hall, _ = _time(lambda: hallucination_stats(r_ka), args.repeats)
    print(f"result (identical for both): {r_ka.summary_line()}")
    print(f"python aligner (old): {t_py:.3f} s, median of {args.repeats}")
    print(f"kaldialign (new): {t_ka:.3f} s, median of {args.repeats}")
    print(f"speed-up: {t_py / max(t_ka, 1e-9):.1f}x")
    print(f"hallucination metrics on top: {t_hall:.3f} s, median of {args.repeats}")


if __name__ == "__main__":
    main()
