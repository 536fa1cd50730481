"""Terms in transcripts: units, matching, the statistical hotword extractor and term-pool files.

A transcript is compared in *units*, after the shared normalizer (``text_norm``, language picked by
script): every Hanzi is a unit, every other whitespace-separated run is a word unit. So "王小明" is
``王 小 明`` and "Zorblax Labs," is ``ZORBLAX LABS``; a term occurs in a transcript when its units
occur there as a contiguous run (whole words only: "ANN" does not occur in "ANNUAL"). This is the
scorer's view of a transcript too, so a target found here is one the hotword metrics find.

:class:`StatisticalExtractor` finds rare terms by corpus frequency (see
:class:`~wenet_llm.config.context_data.StatisticalExtractorConfig` for the rules).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

from wenet_llm.config.context_data import StatisticalExtractorConfig
from wenet_llm.data.text_norm import _HANZI_CLASS, has_hanzi, is_hanzi, normalize

_SENTENCE_END = ".!?。！？"
_UNIT_RE = re.compile(f"[{_HANZI_CLASS}]|[^\\s{_HANZI_CLASS}]+")  # one Hanzi, or a run of anything else
_PUNCT = "\"'()[]{}<>«»“”‘’,;:"


def units(text: str) -> list[str]:
    """The normalized units of ``text``: each Hanzi, and each run of other non-space characters."""
    norm = normalize(text, "auto")
    if not has_hanzi(norm):
        return [sys.intern(w) for w in norm.split()]
    return [sys.intern(u) for u in _UNIT_RE.findall(norm)]  # interned: a corpus's unit lists share strings


def split_term(term: str) -> list[str]:
    """The units of a term already in written form (:func:`join_units`), without normalizing it again."""
    return [sys.intern(u) for u in _UNIT_RE.findall(term)]


def ngrams(us: Sequence[str], max_n: int) -> set[tuple[str, ...]]:
    """Every run of 1..max_n units of ``us``, for constant-time "does this term occur here" tests."""
    return {tuple(us[i:i + n]) for n in range(1, min(max_n, len(us)) + 1) for i in range(len(us) - n + 1)}


@functools.lru_cache(maxsize=1 << 16)
def hanzi_unit(unit: str) -> bool:
    """True for a Hanzi unit (units are one Hanzi or a run without any); cached, units repeat."""
    return is_hanzi(unit[0])


def join_units(us: Sequence[str]) -> str:
    """Units back to written form: a space only between two non-Hanzi units ("王小明", "ZORBLAX LABS")."""
    out = ""
    for i, u in enumerate(us):
        if i and not hanzi_unit(u) and not hanzi_unit(us[i - 1]):
            out += " "
        out += u
    return out


def contains(hay: Sequence[str], needle: Sequence[str]) -> bool:
    """True when ``needle`` occurs in ``hay`` as a contiguous run of units."""
    n = len(needle)
    if n == 0 or n > len(hay):
        return False
    first = needle[0]
    return any(hay[i] == first and list(hay[i:i + n]) == list(needle) for i in range(len(hay) - n + 1))


def text_language(text: str) -> str:
    """"zh" for text holding a Hanzi, else "en" (the languages the toolkit normalizes)."""
    return "zh" if has_hanzi(text) else "en"


# ----------------------------------------------------------------------------- statistical extractor


def _entity_words(raw: str) -> set[str]:
    """Upper-cased words written capitalised, not first in a sentence, in a mixed-case ``raw`` text.

    In all-upper or all-lower transcripts (most ASR corpora) capitals say nothing, so none are returned.
    """
    if raw == raw.upper() or raw == raw.lower():  # Hanzi have no case: this tests the Latin letters
        return set()
    out = set()
    sentence_start = True
    for token in raw.split():
        word = token.strip(_PUNCT + _SENTENCE_END)
        if (len(word) >= 2 and word[0].isupper() and not sentence_start and not has_hanzi(word)
                and not word.upper().startswith("I'")):
            out.add(normalize(word, "en"))
        tail = token.rstrip(_PUNCT)
        if tail:
            sentence_start = tail[-1] in _SENTENCE_END
    return {w for w in out if w and " " not in w}


def _alnum_mix(unit: str) -> bool:
    return any(c.isdigit() for c in unit) and any(c.isalpha() for c in unit)


@dataclass
class Candidate:
    start: int  # unit span [start, end) in the utterance
    end: int
    rarity: int  # corpus count of its rarest unit: lower is rarer


class StatisticalExtractor:
    """Rare terms of each transcript, from unit frequencies over the corpus.

    ``fit(texts)`` counts the units (and, for Hanzi, the n-grams around rare characters, which decide
    how a rare character is widened into a term); ``extract(text, max_terms)`` then returns up to
    ``max_terms`` terms of one transcript, rarest first, in written form (:func:`join_units`).
    """

    def __init__(self, cfg: StatisticalExtractorConfig):
        self.cfg = cfg
        self.counts: Counter = Counter()
        self.word_threshold = math.inf  # a word unit with a count >= this is common
        self.char_threshold = math.inf
        self.ngram_counts: Counter = Counter()

    def fit(self, texts: Iterable[str]) -> "StatisticalExtractor":
        return self.fit_units([units(t) for t in texts])

    def fit_units(self, unit_lists: Sequence[Sequence[str]]) -> "StatisticalExtractor":
        """:meth:`fit` on transcripts already split with :func:`units`."""
        for us in unit_lists:
            self.counts.update(us)
        words = [c for u, c in self.counts.items() if not hanzi_unit(u)]
        chars = [c for u, c in self.counts.items() if hanzi_unit(u)]
        self.word_threshold = self._rank_threshold(words, self.cfg.common_words)
        self.char_threshold = self._rank_threshold(chars, self.cfg.common_chars)
        hi = self.cfg.zh_max_chars
        for us in unit_lists:  # only n-grams holding a rare Hanzi are ever compared (see _widen)
            for s, e in _hanzi_runs(us):
                rare = [self.is_rare(u) for u in us[s:e]]
                for a in range(s, e):
                    for b in range(a + 2, min(e, a + hi) + 1):
                        if any(rare[a - s:b - s]):
                            self.ngram_counts["".join(us[a:b])] += 1
        return self

    @staticmethod
    def _rank_threshold(counts: list[int], k: int) -> float:
        """A unit is outside the k most frequent when its count is below this (ties with the k-th are
        common): inf without a rank rule (k = 0), 0 when there are at most k distinct units."""
        if k <= 0:
            return math.inf
        ranked = sorted(counts, reverse=True)
        return ranked[k - 1] if len(ranked) > k else 0

    def is_rare(self, unit: str) -> bool:
        if unit.isdigit():
            return False  # numbers are read out, not hotwords
        count = self.counts.get(unit, 0)
        if count >= (self.char_threshold if hanzi_unit(unit) else self.word_threshold):
            return False
        return self.cfg.max_rare_count <= 0 or count <= self.cfg.max_rare_count

    def _ngram(self, us: Sequence[str], a: int, b: int) -> int:
        return self.ngram_counts.get("".join(us[a:b]), 0)

    def candidates(self, text: str, us: Optional[Sequence[str]] = None) -> tuple[Sequence[str], list[Candidate]]:
        us = units(text) if us is None else us
        entity = _entity_words(text)
        cands: list[Candidate] = []
        cfg = self.cfg
        for s, e in _word_runs(us):
            flags = [self.is_rare(u) or u in entity or _alnum_mix(u) for u in us[s:e]]
            i = s
            while i < e:
                if not flags[i - s]:
                    i += 1
                    continue
                j = i
                while j < e and flags[j - s]:
                    j += 1
                for a in range(i, j, cfg.max_words):  # a long run becomes several terms
                    b = min(j, a + cfg.max_words)
                    if b - a == 1 and len(us[a]) < cfg.min_word_chars:
                        continue
                    cands.append(Candidate(a, b, min(self.counts[u] for u in us[a:b])))
                i = j
        for s, e in _hanzi_runs(us):
            i = s
            while i < e:
                if not self.is_rare(us[i]):
                    i += 1
                    continue
                j = i
                while j < e and self.is_rare(us[j]):
                    j += 1
                rarity = min(self.counts[u] for u in us[i:j])
                if j - i >= cfg.zh_min_chars:
                    for a in range(i, j, cfg.zh_max_chars):
                        b = min(j, a + cfg.zh_max_chars)
                        if b - a >= cfg.zh_min_chars:
                            cands.append(Candidate(a, b, rarity))
                else:
                    span = self._widen(us, s, e, i, j)
                    if span is not None:
                        cands.append(Candidate(span[0], span[1], rarity))
                i = j
        return us, cands

    def _widen(self, us: Sequence[str], s: int, e: int, i: int, j: int) -> Optional[tuple[int, int]]:
        """The span around rare run [i, j) inside Hanzi run [s, e) that most often occurs in the corpus
        (a name recurs as a whole); ties: the shorter, then the one with rarer added neighbours, then
        the leftmost."""
        lo, hi = self.cfg.zh_min_chars, self.cfg.zh_max_chars
        best, best_key = None, None
        for a in range(max(s, j - hi), i + 1):
            for b in range(max(j, a + lo), min(e, a + hi) + 1):
                added = sum(self.counts[u] for u in list(us[a:i]) + list(us[j:b]))
                key = (self._ngram(us, a, b), -(b - a), -added, -a)
                if best_key is None or key > best_key:
                    best, best_key = (a, b), key
        return best

    def extract(self, text: str, max_terms: int, us: Optional[Sequence[str]] = None) -> list[str]:
        """Up to ``max_terms`` rare terms of ``text`` (``us``: its units, when already split): rarest first,
        then earliest; no overlaps."""
        us, cands = self.candidates(text, us)
        cands.sort(key=lambda c: (c.rarity, c.start, -(c.end - c.start)))
        taken: list[tuple[int, int]] = []
        out: list[str] = []
        for c in cands:
            if len(out) >= max_terms:
                break
            if any(c.start < b and a < c.end for a, b in taken):
                continue
            term = join_units(us[c.start:c.end])
            if term not in out:
                taken.append((c.start, c.end))
                out.append(term)
        return out


def _runs(us: Sequence[str], hanzi: bool) -> list[tuple[int, int]]:
    out, i = [], 0
    while i < len(us):
        if hanzi_unit(us[i]) != hanzi:
            i += 1
            continue
        j = i
        while j < len(us) and hanzi_unit(us[j]) == hanzi:
            j += 1
        out.append((i, j))
        i = j
    return out


def _hanzi_runs(us: Sequence[str]) -> list[tuple[int, int]]:
    return _runs(us, True)


def _word_runs(us: Sequence[str]) -> list[tuple[int, int]]:
    return _runs(us, False)


# ----------------------------------------------------------------------------- term pools


def read_term_pool(path: str | os.PathLike) -> list[tuple[str, Optional[str]]]:
    """(term, language or None) pairs of a distractor pool file.

    Accepted: a text file, one term per line; a JSON list of strings or of objects with ``text`` (and
    optionally ``lang``), or a JSON object mapping a language to a list of terms; JSON lines of strings or
    of such objects. A language left out is decided per term by its script.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"distractor pool file not found: {path}")
    raw = path.read_text(encoding="utf-8")
    hint = ('expected one term per line, a JSON list of strings / {"text": .., "lang": ..} objects, '
            'a JSON {lang: [terms]} object, or JSON lines of those')

    def item(obj: object, where: str) -> tuple[str, Optional[str]]:
        if isinstance(obj, str):
            return obj, None
        if isinstance(obj, dict) and isinstance(obj.get("text"), str):
            lang = obj.get("lang")
            return obj["text"], lang if isinstance(lang, str) else None
        raise ValueError(f"{where}: cannot read a term from {str(obj)[:80]!r}; {hint}")

    stripped = raw.lstrip()
    if path.suffix == ".jsonl":
        out = []
        for lineno, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    out.append(item(json.loads(line), f"{path}:{lineno}"))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not JSON ({e.msg}); {hint}") from None
    elif path.suffix == ".json" or stripped[:1] in ("[", "{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); {hint}") from None
        if isinstance(data, dict):
            out = []
            for lang, terms in data.items():
                if not isinstance(terms, list):
                    raise ValueError(f"{path}: value of {lang!r} must be a list of terms; {hint}")
                out.extend((t, lang) if isinstance(t, str) else item(t, f"{path}[{lang!r}]") for t in terms)
        elif isinstance(data, list):
            out = [item(obj, f"{path}[{i}]") for i, obj in enumerate(data)]
        else:
            raise ValueError(f"{path}: top level is a {type(data).__name__}; {hint}")
    else:
        out = [(line.strip(), None) for line in raw.splitlines() if line.strip()]
    return [(t.strip(), lang) for t, lang in out if t.strip()]
