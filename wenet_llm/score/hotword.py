"""Hotword (contextual biasing) metrics on top of one scored alignment: recall, precision, F1, B-WER, U-WER.

Inputs: a ``wenet_llm.score.wer.Result`` (the references, hypotheses and their alignment) and, per
utterance key, its biasing list (the ``hotwords`` of a context file, ``wenet_llm.data.context``).
A term is compared in the scorer's own tokens (``Result.options.tokens``: the same normalizer and the
same Hanzi-character / word split), so "Zorblax" matches "ZORBLAX," and "王小明" is the three tokens
王 小 明. A term matches a run of whole tokens (ZORBLAX does not match inside ZORBLAXES); occurrences of
one term are counted left to right without overlap. Terms of a list that give the same tokens count once;
a term with no tokens after normalization is ignored.

Per occurrence, for each term of the utterance's list (r occurrences in the reference, h in the hypothesis):
TP = min(r, h), FN = r - TP (the shortfall), FP = max(0, h - r) (occurrences beyond the reference count,
or of a term absent from it). Summed over the set: recall = TP / (TP + FN), precision = TP / (TP + FP),
F1 = 2 P R / (P + R), in percent.

B-WER / U-WER, from the one alignment of the scorer: a reference token inside an occurrence of a list term
in the reference is *biased*, every other reference token unbiased; each aligned pair (correct,
substitution, deletion) counts toward the class of its reference token. An insertion has no reference
token, so it counts by membership: toward B when the inserted hypothesis token lies inside an occurrence of
a list term in the hypothesis, else toward U. B-WER = (S + D + I) / N over the biased counts, U-WER the
same over the unbiased ones; N_B + N_U = N and the errors add up to the scorer's.

Distractor-only lists: among utterances whose non-empty list has no term in the reference, the share whose
hypothesis contains at least one list term (``distractor_insert_rate``): the model inserted a list term.

Seen / unseen split (``hotword_report``): every list is restricted to the terms seen in training (a
given set of terms, compared in tokens) or to the others, and the metrics above are computed again on the
restricted lists. With and without context are two hypotheses scored against the same lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

from wenet_llm.score.wer import DEL, INS, Counts, Result, TokenOptions, UttResult

Term = tuple[str, ...]


def find_occurrences(tokens: Sequence[str], term: Sequence[str]) -> list[int]:
    """Start indices of ``term`` in ``tokens``, left to right, non-overlapping."""
    n, k = len(tokens), len(term)
    out: list[int] = []
    if k == 0:
        return out
    i = 0
    first = term[0]
    while i + k <= n:
        if tokens[i] == first and tuple(tokens[i:i + k]) == tuple(term):
            out.append(i)
            i += k
        else:
            i += 1
    return out


def term_tokens(terms: Iterable[str], options: TokenOptions) -> list[Term]:
    """Distinct, non-empty token tuples of ``terms``, in first-seen order."""
    out: dict[Term, None] = {}
    for t in terms:
        tokens = tuple(options.tokens(t))
        if tokens:
            out.setdefault(tokens, None)
    return list(out)


def _covered(tokens: Sequence[str], terms: Sequence[Term]) -> list[bool]:
    mask = [False] * len(tokens)
    for term in terms:
        for s in find_occurrences(tokens, term):
            mask[s:s + len(term)] = [True] * len(term)
    return mask


@dataclass
class UttHotwords:
    """One utterance's hotword counts (terms in tokens)."""

    key: str
    terms: int
    tp: int = 0
    fp: int = 0
    fn: int = 0
    biased: Counts = field(default_factory=Counts)
    unbiased: Counts = field(default_factory=Counts)
    distractor_only: bool = False  # a non-empty list with no term in the reference

    def to_dict(self) -> dict:
        return {"terms": self.terms, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "b_errors": self.biased.errors, "b_n": self.biased.n, "distractor_only": self.distractor_only}


def utterance_hotwords(u: UttResult, terms: Sequence[Term]) -> UttHotwords:
    """Counts of one scored utterance against its list (already tokenized with ``term_tokens``)."""
    ref = [r for _, r, _ in u.alignment if r is not None]
    hyp = [h for _, _, h in u.alignment if h is not None]
    out = UttHotwords(u.key, len(terms))
    present = False
    for term in terms:
        r, h = len(find_occurrences(ref, term)), len(find_occurrences(hyp, term))
        tp = min(r, h)
        out.tp, out.fn, out.fp = out.tp + tp, out.fn + r - tp, out.fp + max(0, h - r)
        present = present or r > 0
    out.distractor_only = bool(terms) and not present
    ref_b, hyp_b = _covered(ref, terms), _covered(hyp, terms)
    i = j = 0
    for op, _, _ in u.alignment:
        if op == INS:
            (out.biased if hyp_b[j] else out.unbiased).add(op)
            j += 1
        else:
            (out.biased if ref_b[i] else out.unbiased).add(op)
            i += 1
            j += op != DEL
    return out


def _pct(num: float, den: float) -> Optional[float]:
    return 100.0 * num / den if den else None


@dataclass
class HotwordStats:
    """Set-level hotword metrics; rates in percent, None when undefined (nothing to count)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    biased: Counts = field(default_factory=Counts)
    unbiased: Counts = field(default_factory=Counts)
    list_utts: int = 0  # utterances with a non-empty list
    distractor_utts: int = 0
    distractor_insert_utts: int = 0

    @property
    def recall(self) -> Optional[float]:
        return _pct(self.tp, self.tp + self.fn)

    @property
    def precision(self) -> Optional[float]:
        return _pct(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> Optional[float]:
        p, r = self.precision, self.recall
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def bwer(self) -> Optional[float]:
        return self.biased.wer if self.biased.n else None

    @property
    def uwer(self) -> Optional[float]:
        return self.unbiased.wer if self.unbiased.n else None

    @property
    def distractor_insert_rate(self) -> Optional[float]:
        return _pct(self.distractor_insert_utts, self.distractor_utts)

    def add(self, u: UttHotwords) -> None:
        self.tp += u.tp
        self.fp += u.fp
        self.fn += u.fn
        self.biased += u.biased
        self.unbiased += u.unbiased
        self.list_utts += u.terms > 0
        self.distractor_utts += u.distractor_only
        self.distractor_insert_utts += u.distractor_only and u.fp > 0

    def to_dict(self) -> dict:
        def counts(c: Counts) -> dict:
            return {"n": c.n, "c": c.c, "s": c.s, "d": c.d, "i": c.i}

        return {"recall": self.recall, "precision": self.precision, "f1": self.f1, "tp": self.tp, "fp": self.fp,
                "fn": self.fn, "bwer": self.bwer, "uwer": self.uwer, "biased": counts(self.biased),
                "unbiased": counts(self.unbiased), "list_utts": self.list_utts,
                "distractor_utts": self.distractor_utts, "distractor_insert_utts": self.distractor_insert_utts,
                "distractor_insert_rate": self.distractor_insert_rate}


def hotword_stats(result: Result, hotwords: Mapping[str, Sequence[str]],
                  keep: Optional[set[Term]] = None, exclude: Optional[set[Term]] = None
                  ) -> tuple[HotwordStats, list[UttHotwords]]:
    """Set-level and per-utterance metrics of ``result`` against ``hotwords`` (key -> list of terms).

    Utterances without an entry have an empty list. ``keep`` / ``exclude`` restrict every list to the
    terms (token tuples) in / not in the given set (the seen / unseen split).
    """
    stats, per_utt = HotwordStats(), []
    for u in result.utts:
        terms = term_tokens(hotwords.get(u.key, ()), result.options)
        if keep is not None:
            terms = [t for t in terms if t in keep]
        if exclude is not None:
            terms = [t for t in terms if t not in exclude]
        h = utterance_hotwords(u, terms)
        stats.add(h)
        per_utt.append(h)
    return stats, per_utt


@dataclass
class HotwordReport:
    all: HotwordStats
    utts: list[UttHotwords]
    seen: Optional[HotwordStats] = None  # lists restricted to terms seen in training (None: no seen set given)
    unseen: Optional[HotwordStats] = None

    def to_dict(self) -> dict:
        out = self.all.to_dict()
        if self.seen is not None and self.unseen is not None:
            out["seen"] = self.seen.to_dict()
            out["unseen"] = self.unseen.to_dict()
        return out


def hotword_report(result: Result, hotwords: Mapping[str, Sequence[str]],
                   seen_terms: Optional[Iterable[str]] = None) -> HotwordReport:
    """All metrics, and with ``seen_terms`` (e.g. the names of the training transcripts) the seen / unseen split."""
    stats, utts = hotword_stats(result, hotwords)
    report = HotwordReport(stats, utts)
    if seen_terms is not None:
        seen = set(term_tokens(seen_terms, result.options))
        report.seen = hotword_stats(result, hotwords, keep=seen)[0]
        report.unseen = hotword_stats(result, hotwords, exclude=seen)[0]
    return report
