"""Hallucination metrics, and the repetition-loop detector shared with the LLM decoder's guard.

Repetition loop (``find_repetition_loop``), for any sequence of comparable items (scoring tokens here,
LLM token ids in the decoder):

- a span ``seq[s:e]`` has period ``n`` when ``seq[i] == seq[i - n]`` for every ``s + n <= i < e``: it is
  one n-gram repeated back to back, possibly ending in a partial copy (``A B C A B C A B``);
- it is a *loop* when ``1 <= n <= max_ngram``, it holds at least ``min_repeats`` full copies
  (``e - s >= min_repeats * n``) and at least ``min_tokens`` items (``e - s >= min_tokens``);
- spans are taken maximal (they cannot be extended left or right with the same period). The detector
  returns the loop that starts first, and among those the one with the smallest period; with
  ``at_end=True`` only a loop that ends at the last item counts (what a decoder checks after each step).

With the defaults (``max_ngram=20, min_repeats=3, min_tokens=8``) ``对对对``, ``no no no no`` and
``thank you thank you thank you`` are not loops (too short), ``哈`` eight times is, and so is any phrase
of 3 to 20 tokens said three times in a row. ``trim_loop`` keeps the first copy of the n-gram and drops
the rest of the span and everything after it: what the decoder's guard keeps when it stops generation.

Metrics over a scored set (``hallucination_stats``, percentages; None when the denominator is 0):

- ``insertion_rate``: 100 I / N over the whole set (N = reference tokens);
- ``overlong_rate``: share of utterances with a non-empty reference whose hypothesis has more than
  ``overlong_ratio`` (1.5) times as many tokens as the reference;
- ``loop_rate``: share of all utterances whose hypothesis holds a repetition loop;
- on empty references (non-speech, e.g. a noise-only set): ``empty_ref_nonempty_rate``, the share with a
  non-empty hypothesis, and ``empty_ref_mean_tokens``, the mean number of tokens emitted per such utterance.

Tokens are the scorer's (Hanzi characters and words, see ``wenet_llm.score.wer``); a missing hypothesis
counts as an empty one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Hashable, Optional, Sequence

from wenet_llm.score.wer import Result, UttResult

MAX_NGRAM = 20
MIN_REPEATS = 3
MIN_TOKENS = 8
OVERLONG_RATIO = 1.5


@dataclass(frozen=True)
class Loop:
    """``seq[start:end]`` repeats ``seq[start:start + period]``; ``repeats`` full copies (a partial may follow)."""

    start: int
    period: int
    end: int

    @property
    def repeats(self) -> int:
        return (self.end - self.start) // self.period


def _check_loop_args(max_ngram: int, min_repeats: int, min_tokens: int) -> None:
    if max_ngram < 1 or min_repeats < 2 or min_tokens < 2:
        raise ValueError(f"loop detector needs max_ngram >= 1, min_repeats >= 2 and min_tokens >= 2, "
                         f"got {max_ngram}, {min_repeats}, {min_tokens}")


def find_repetition_loop(
    seq: Sequence[Hashable],
    max_ngram: int = MAX_NGRAM,
    min_repeats: int = MIN_REPEATS,
    min_tokens: int = MIN_TOKENS,
    at_end: bool = False,
) -> Optional[Loop]:
    """The first repetition loop in ``seq`` (see the module docstring), or None.

    Cost: O(len(seq) * max_ngram) in general; with ``at_end`` only the tail is inspected, O(max_ngram) when
    the sequence does not end in a repeat, so a decoder can call it after every generated token.
    """
    _check_loop_args(max_ngram, min_repeats, min_tokens)
    length = len(seq)
    best: Optional[Loop] = None
    # A period n needs min_repeats * n items, so larger periods cannot fit.
    for n in range(1, min(max_ngram, length // min_repeats) + 1):
        need = max(min_repeats * n, min_tokens)
        if at_end:
            i = length - 1
            while i >= n and seq[i] == seq[i - n]:
                i -= 1
            start = i + 1 - n  # the first item of the maximal periodic tail
            if length - start >= need and (best is None or start < best.start):
                best = Loop(start, n, length)
            continue
        run = 0  # consecutive i with seq[i] == seq[i - n]; the span is seq[i - run - n: i]
        for i in range(n, length + 1):
            if i < length and seq[i] == seq[i - n]:
                run += 1
                continue
            if run + n >= need:
                start = i - run - n
                if best is None or start < best.start:
                    best = Loop(start, n, i)
                break  # later spans of this period start later
            run = 0
    return best


def trim_loop(seq: Sequence, loop: Loop) -> list:
    """``seq`` up to and including the first copy of the loop's n-gram."""
    return list(seq[: loop.start + loop.period])


def has_repetition_loop(seq: Sequence[Hashable], **kwargs) -> bool:
    return find_repetition_loop(seq, **kwargs) is not None


# ----------------------------------------------------------------------------- metrics


def _tokens(u: UttResult) -> tuple[list[str], list[str]]:
    ref = [r for _, r, _ in u.alignment if r is not None]
    hyp = [h for _, _, h in u.alignment if h is not None]
    return ref, hyp


@dataclass
class UttFlags:
    """Per-utterance hallucination flags; ``overlong`` is None for an empty reference."""

    ref_tokens: int
    hyp_tokens: int
    overlong: Optional[bool]
    loop: Optional[Loop]


def utterance_flags(u: UttResult, overlong_ratio: float = OVERLONG_RATIO, **loop_kwargs) -> UttFlags:
    ref, hyp = _tokens(u)
    overlong = len(hyp) > overlong_ratio * len(ref) if ref else None
    return UttFlags(len(ref), len(hyp), overlong, find_repetition_loop(hyp, **loop_kwargs))


def _pct(num: float, den: float) -> Optional[float]:
    return 100.0 * num / den if den else None


@dataclass
class HallucinationStats:
    utts: int
    insertions: int
    ref_tokens: int
    insertion_rate: Optional[float]
    overlong_ratio: float
    overlong_utts: int
    overlong_rate: Optional[float]
    loop_utts: int
    loop_rate: Optional[float]
    empty_ref_utts: int
    empty_ref_nonempty_utts: int
    empty_ref_nonempty_rate: Optional[float]
    empty_ref_mean_tokens: Optional[float]

    def to_dict(self) -> dict:
        return asdict(self)


def hallucination_stats(result: Result, overlong_ratio: float = OVERLONG_RATIO,
                        flags: Optional[Sequence[UttFlags]] = None, **loop_kwargs) -> HallucinationStats:
    """Set-level hallucination metrics of a scored set (see the module docstring).

    ``loop_kwargs`` are ``find_repetition_loop``'s ``max_ngram``, ``min_repeats``, ``min_tokens``;
    ``flags``, if given, are ``utterance_flags`` of ``result.utts`` computed with the same settings.
    """
    if not overlong_ratio > 0:
        raise ValueError(f"overlong_ratio must be > 0, got {overlong_ratio}")
    if flags is None:
        flags = [utterance_flags(u, overlong_ratio, **loop_kwargs) for u in result.utts]
    elif len(flags) != len(result.utts):
        raise ValueError(f"got {len(flags)} utterance flags for {len(result.utts)} utterances")
    speech = [f for f in flags if f.ref_tokens]
    empty = [f for f in flags if not f.ref_tokens]
    overlong = sum(bool(f.overlong) for f in speech)
    loops = sum(f.loop is not None for f in flags)
    nonempty = sum(f.hyp_tokens > 0 for f in empty)
    return HallucinationStats(
        utts=len(flags),
        insertions=result.total.i,
        ref_tokens=result.total.n,
        insertion_rate=_pct(result.total.i, result.total.n),
        overlong_ratio=overlong_ratio,
        overlong_utts=overlong,
        overlong_rate=_pct(overlong, len(speech)),
        loop_utts=loops,
        loop_rate=_pct(loops, len(flags)),
        empty_ref_utts=len(empty),
        empty_ref_nonempty_utts=nonempty,
        empty_ref_nonempty_rate=_pct(nonempty, len(empty)),
        empty_ref_mean_tokens=sum(f.hyp_tokens for f in empty) / len(empty) if empty else None,
    )
