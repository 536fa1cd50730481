"""Word / character / mixed error rate, compatible with WeNet's ``tools/compute-wer.py``.

Tokenisation (``char_mode=True``, WeNet ``--char=1``), applied to the text after the key:

- characters in WeNet's punctuation list (``! , ? 、 。 ！ ， ； ？ ： 「 」 ︰ 『 』 《 》``), Unicode Zs and Cn
  characters, space, tab, CR and LF are skipped;
- a character of category Lo (Hanzi, kana, Hangul, ...) is a token by itself;
- any other character starts a word that runs until whitespace or a non-ASCII character; a word that starts
  with ``<`` also ends at (and includes) the next ``>``, so ``<unk><noise>`` is two tokens;
- e.g. ``你好WORLD ok`` -> ``你 好 WORLD OK``. As in WeNet, punctuation is skipped only where a token would
  start: ``ok?`` stays one token ``OK?``, and ``café`` splits at the non-ASCII ``é`` (use ``normalize``).

Without ``char_mode`` the text is split on whitespace. Then, per token and in WeNet's order: upper-case unless
``case_sensitive``; drop it if it is in ``ignore_words``; strip ``<...>`` tags (``remove_tags``, on by default,
so ``<unk>`` disappears); drop it if empty. An optional ``normalize`` ("zh", "en" or "auto", see
``wenet_llm.data.text_norm``) runs first on both texts; "auto" picks zh when the ref or the hyp holds a Hanzi.

Alignment is Levenshtein with unit costs. Among equally cheap edits a cell prefers deletion, then insertion,
then substitution/correct (backtracking from the end), as WeNet's compute-wer does; this changes only the
S/D/I split, never the total. N = C + S + D, WER = 100 (S + D + I) / N, with N taken as 1 when it is 0 so an
empty reference never divides by zero.

``align`` runs the alignment in compiled code (kaldialign, Kaldi's ``LevenshteinAlignment``) with the
hypothesis as Kaldi's first sequence and the reference as its second. Kaldi's backtrace keeps a match or
substitution only when it is strictly cheaper, and prefers its "deletion" (a step in the first sequence)
over its "insertion" on a tie; with the roles swapped that is exactly WeNet's order above (our deletion on
a tie with insertion, an insertion or deletion on a tie with substitution), so the alignment, and with it
the S/D/I split, the Overall line and every per-utterance line, is the same as WeNet's. ``align_python``
is the plain-Python dynamic programme with WeNet's tie order, kept as the reference: the tests check that
both agree pair for pair (a kaldialign release that changed its tie order would fail them), and
``bench/score_speed.py`` times both. Called the other way round (reference first), kaldialign prefers
insertion on a deletion/insertion tie: the totals (S + D + I, N) would be the same, the split not.

Deliberate difference from WeNet: WeNet silently skips a reference utterance that has no hypothesis line,
which flatters the WER whenever decoding lost utterances. Here such an utterance is scored as all deletions
and listed in ``Result.missing_hyps``; a hypothesis without a reference cannot be scored, so it is ignored and
listed in ``Result.extra_hyps``. Both are printed in the report. (An empty hypothesis line is not missing.)

Clusters (``Mandarin``, ``English``, ``Number``, ``Other``): each aligned pair is attributed to the cluster of
its reference token; an insertion has none, so it goes to the cluster of the inserted hypothesis token. The
cluster counts therefore add up to the overall counts.

Error rates of mixed Mandarin-English text (``Result.error_rates``). In char mode a token is a Hanzi
character or a word, so the Overall rate is the mixed error rate, MER. CER is the rate of the Mandarin
cluster (Hanzi tokens) and WER that of the English cluster (words of ASCII letters and apostrophes), both
from the same alignment; numbers and other tokens count only in MER. On pure English text in char mode the
tokens are the words, so MER is the WER; with a normalizer (``normalize="auto"``, the shared
``wenet_llm.data.text_norm``) punctuation and case no longer count as errors.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import kaldialign

from wenet_llm.data.text_norm import has_hanzi, is_hanzi
from wenet_llm.data.text_norm import normalize as normalize_text

PUNCTUATION = frozenset("!,?、。！，；？：「」︰『』《》")
_SPACES = frozenset(" \t\r\n")
_TAG_RE = re.compile(r"<[^>]*>?")  # an unclosed "<" swallows the rest of the token, as in WeNet
NORMALIZE_CHOICES = ("none", "zh", "en", "auto")

CLUSTERS = ("Mandarin", "English", "Number", "Other")
_ENGLISH_RE = re.compile(r"[A-Za-z']*[A-Za-z][A-Za-z']*")
_NUMBER_RE = re.compile(r"[0-9]+")

# Edit operations; the tie order below is DEL, INS, then SUB/COR.
COR, SUB, DEL, INS = "C", "S", "D", "I"


# ----------------------------------------------------------------------------- tokenisation


# The rest of a word: ASCII other than whitespace (and, inside a tag, other than ">").
_WORD_REST_RE = re.compile(r"[^\x80-\U0010ffff \t\r\n]*")
_TAG_REST_RE = re.compile(r"[^\x80-\U0010ffff \t\r\n>]*")


def split_chars(text: str) -> list[str]:
    """WeNet's ``--char=1`` scan of ``text`` (no case folding, tags kept)."""
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in PUNCTUATION or ch in _SPACES:
            i += 1
            continue
        cat = unicodedata.category(ch)
        if cat == "Zs" or cat == "Cn":
            i += 1
            continue
        if cat == "Lo":
            tokens.append(ch)
            i += 1
            continue
        is_tag = ch == "<"
        j = (_TAG_REST_RE if is_tag else _WORD_REST_RE).match(text, i + 1).end()
        if is_tag and j < n and text[j] == ">":
            j += 1
        tokens.append(text[i:j])
        i = j
    return tokens


def strip_tags(token: str) -> str:
    return _TAG_RE.sub("", token)


def tokenize(
    text: str,
    char_mode: bool = True,
    case_sensitive: bool = False,
    remove_tags: bool = True,
    ignore_words: Iterable[str] = (),
) -> list[str]:
    """Scoring tokens of one transcript (key already removed); see the module docstring."""
    ignore = ignore_words if isinstance(ignore_words, (set, frozenset)) else set(ignore_words)
    out = []
    for tok in split_chars(text) if char_mode else text.split():
        if not case_sensitive:
            tok = tok.upper()
        if tok in ignore:
            continue
        if remove_tags and "<" in tok:
            tok = strip_tags(tok)
        if tok:
            out.append(tok)
    return out


@functools.lru_cache(maxsize=1 << 16)
def token_cluster(token: str) -> str:
    """Mandarin (all Hanzi), English (ASCII letters, apostrophes), Number (ASCII digits) or Other."""
    if all(is_hanzi(c) for c in token):
        return "Mandarin"
    if _ENGLISH_RE.fullmatch(token):
        return "English"
    if _NUMBER_RE.fullmatch(token):
        return "Number"
    return "Other"


# ----------------------------------------------------------------------------- alignment


Alignment = list[tuple[str, Optional[str], Optional[str]]]


def align(ref: list[str], hyp: list[str]) -> Alignment:
    """Minimum-edit alignment as (op, ref token or None, hyp token or None), in order, WeNet's tie order.

    Compiled (kaldialign); identical to ``align_python``, see the module docstring.
    """
    ids: dict[str, int] = {}
    ref_ids = [ids.setdefault(t, len(ids)) for t in ref]
    hyp_ids = [ids.setdefault(t, len(ids)) for t in hyp]
    # Hypothesis first: see the module docstring for why this gives WeNet's tie order.
    pairs = kaldialign.align(hyp_ids, ref_ids, -1)
    out: Alignment = []
    i = j = 0
    for h, r in pairs:
        if h == -1:
            out.append((DEL, ref[i], None))
            i += 1
        elif r == -1:
            out.append((INS, None, hyp[j]))
            j += 1
        else:
            out.append((COR if r == h else SUB, ref[i], hyp[j]))
            i, j = i + 1, j + 1
    return out


def align_python(ref: list[str], hyp: list[str]) -> Alignment:
    """The same alignment as ``align`` in plain Python (the reference implementation, O(len(ref) len(hyp)))."""
    n, m = len(ref), len(hyp)
    # back[i][j]: the edit that reaches cell (i, j) cheapest, ties broken DEL > INS > SUB/COR.
    back = [[INS] * (m + 1) for _ in range(n + 1)]
    prev = list(range(m + 1))
    for i in range(1, n + 1):
        cur = [i] + [0] * m
        row = back[i]
        row[0] = DEL
        r = ref[i - 1]
        for j in range(1, m + 1):
            best, op = prev[j] + 1, DEL
            ins = cur[j - 1] + 1
            if ins < best:
                best, op = ins, INS
            diag = prev[j - 1] + (r != hyp[j - 1])
            if diag < best:
                best, op = diag, SUB
            cur[j] = best
            row[j] = op
        prev = cur
    pairs = []
    i, j = n, m
    while i > 0 or j > 0:
        op = back[i][j]
        if op == DEL:
            pairs.append((DEL, ref[i - 1], None))
            i -= 1
        elif op == INS:
            pairs.append((INS, None, hyp[j - 1]))
            j -= 1
        else:
            pairs.append((COR if ref[i - 1] == hyp[j - 1] else SUB, ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
    pairs.reverse()
    return pairs


# ----------------------------------------------------------------------------- results


@dataclass
class Counts:
    c: int = 0
    s: int = 0
    d: int = 0
    i: int = 0

    @property
    def n(self) -> int:
        return self.c + self.s + self.d

    @property
    def errors(self) -> int:
        return self.s + self.d + self.i

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / max(self.n, 1)

    def add(self, op: str) -> None:
        if op == COR:
            self.c += 1
        elif op == SUB:
            self.s += 1
        elif op == DEL:
            self.d += 1
        elif op == INS:
            self.i += 1
        else:
            raise ValueError(f"unknown edit operation {op!r}; valid: C, S, D, I")

    def __iadd__(self, other: "Counts") -> "Counts":
        self.c += other.c
        self.s += other.s
        self.d += other.d
        self.i += other.i
        return self

    def fields(self) -> str:
        return "%4.2f %% N=%d C=%d S=%d D=%d I=%d" % (self.wer, self.n, self.c, self.s, self.d, self.i)


@dataclass
class UttResult:
    key: str
    counts: Counts
    alignment: Alignment
    missing_hyp: bool = False


@dataclass
class Result:
    total: Counts
    utts: list[UttResult]
    clusters: dict[str, Counts]
    missing_hyps: list[str] = field(default_factory=list)
    extra_hyps: list[str] = field(default_factory=list)
    options: "TokenOptions" = field(default_factory=lambda: TokenOptions())

    def error_rates(self) -> dict[str, Optional[float]]:
        """``mer`` (all tokens: the Overall line), ``cer`` (Mandarin cluster), ``wer`` (English cluster), in %.

        A cluster rate is None when the references hold no token of that cluster.
        """
        zh, en = self.clusters["Mandarin"], self.clusters["English"]
        return {"mer": self.total.wer, "cer": zh.wer if zh.n else None, "wer": en.wer if en.n else None}

    def summary_line(self) -> str:
        """``Overall -> 40.00 % N=10 C=8 S=1 D=1 I=2``, exactly as WeNet prints it."""
        return "Overall -> " + self.total.fields()

    def problems(self) -> list[str]:
        """One line per kind of unmatched utterance (empty when every key matched)."""
        lines = []
        if self.missing_hyps:
            lines.append(f"Missing hyps: {len(self.missing_hyps)} reference utterance(s) without a hypothesis, "
                         "scored as all deletions")
        if self.extra_hyps:
            lines.append(f"Extra hyps: {len(self.extra_hyps)} hypothesis utterance(s) without a reference, ignored")
        return lines

    def report(self, verbose: bool = True) -> str:
        """The text WeNet's compute-wer.py prints (``--v=1`` or ``--v=0``), plus the unmatched-key lines."""
        out = []
        if verbose:
            for u in self.utts:
                lab, rec = _aligned_lines(u.alignment)
                out += [f"utt: {u.key}", "WER: " + u.counts.fields(), "lab: " + lab, "rec: " + rec, ""]
            out.append("=" * 75)
        out.append(self.summary_line())
        if verbose:
            out += [f"{name} -> {c.fields()}" for name, c in self.clusters.items() if c.n or c.i]
            out.append("=" * 75)
        out.append("")
        problems = self.problems()
        if verbose:
            if self.missing_hyps:
                problems[0] += ": " + " ".join(self.missing_hyps)
            if self.extra_hyps:
                problems[-1] += ": " + " ".join(self.extra_hyps)
        out += problems
        return "\n".join(out) + "\n"


def _width(token: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in token)


def _aligned_lines(alignment) -> tuple[str, str]:
    # "*" marks the empty side of an insertion or deletion; columns are padded to the wider token.
    labs, recs = [], []
    for _, r, h in alignment:
        r, h = r if r is not None else "*", h if h is not None else "*"
        w = max(_width(r), _width(h))
        labs.append(r + " " * (w - _width(r)))
        recs.append(h + " " * (w - _width(h)))
    return " ".join(labs).rstrip(), " ".join(recs).rstrip()


# ----------------------------------------------------------------------------- API


@dataclass(frozen=True)
class TokenOptions:
    """How ``score`` turns a text into tokens; ``tokens`` applies the same to any other text (a hotword)."""

    char_mode: bool = True
    case_sensitive: bool = False
    remove_tags: bool = True
    ignore_words: frozenset = frozenset()  # already upper-cased unless case_sensitive
    normalize: Optional[str] = None

    def lang(self, *texts: str) -> Optional[str]:
        """The normalizer language for texts scored together ("auto": zh when any holds a Hanzi)."""
        if self.normalize in (None, "none"):
            return None
        if self.normalize == "auto":
            return "zh" if any(has_hanzi(t) for t in texts) else "en"
        return self.normalize

    def tokens(self, text: str, lang: Optional[str] = None) -> list[str]:
        """Normalize (with ``lang``, default ``self.lang(text)``) and tokenize ``text``."""
        lang = lang or self.lang(text)
        if lang is not None:
            text = normalize_text(text, lang)
        return tokenize(text, self.char_mode, self.case_sensitive, self.remove_tags, self.ignore_words)


def score(
    refs: dict[str, str],
    hyps: dict[str, str],
    char_mode: bool = True,
    case_sensitive: bool = False,
    remove_tags: bool = True,
    ignore_words: Iterable[str] = (),
    normalize: Optional[str] = None,
    aligner: Callable[[list[str], list[str]], Alignment] = align,
) -> Result:
    """Score ``hyps`` against ``refs`` (key -> raw text), in the order of ``refs``; see the module docstring.

    ``ignore_words`` are compared after upper-casing, so they are upper-cased here unless ``case_sensitive``.
    ``normalize`` is None/"none", "zh", "en" or "auto". ``aligner`` is ``align`` or ``align_python``
    (same result, the latter only for tests and benchmarks).
    """
    if normalize not in (None, *NORMALIZE_CHOICES):
        raise ValueError(f"unknown normalize {normalize!r}; valid: {', '.join(NORMALIZE_CHOICES)}")
    options = TokenOptions(char_mode, case_sensitive, remove_tags,
                           frozenset(w if case_sensitive else w.upper() for w in ignore_words), normalize)
    total = Counts()
    clusters = {name: Counts() for name in CLUSTERS}
    utts, missing = [], []
    for key, ref_text in refs.items():
        hyp_text = hyps.get(key)
        if hyp_text is None:
            missing.append(key)
            hyp_text = ""
        lang = options.lang(ref_text, hyp_text)
        alignment = aligner(options.tokens(ref_text, lang), options.tokens(hyp_text, lang))
        counts = Counts()
        for op, r, h in alignment:
            counts.add(op)
            clusters[token_cluster(r if r is not None else h)].add(op)
        total += counts
        utts.append(UttResult(key, counts, alignment, missing_hyp=key not in hyps))
    extra = [k for k in hyps if k not in refs]
    return Result(total, utts, clusters, missing, extra, options)


def read_kaldi_text(path: str | os.PathLike) -> dict[str, str]:
    """``key text`` lines -> {key: text}; a key alone means empty text, blank lines are skipped.

    Raises ValueError naming the line for invalid UTF-8 or a duplicate key.
    """
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start}); "
                                 "convert the file to UTF-8, e.g. with iconv") from None
            parts = line.strip().split(maxsplit=1)
            if not parts:
                continue
            key = parts[0]
            if key in out:
                raise ValueError(f"{path}:{lineno}: duplicate key {key!r} (first at line {first[key]})")
            out[key] = parts[1] if len(parts) > 1 else ""
            first[key] = lineno
    return out


def read_word_list(path: str | os.PathLike) -> list[str]:
    """One word per line (WeNet's ``--ig`` file); blank lines are skipped."""
    with open(path, encoding="utf-8") as f:
        return [w for w in (line.strip() for line in f) if w]
