"""Transcript normalization: one policy per language, shared by corpus preparation and scoring.

Both policies first apply Unicode NFKC (full-width letters, digits and spaces become ASCII), turn
curly apostrophes into ``'``, replace every punctuation, symbol and control character with a space,
upper-case, and collapse whitespace. An apostrophe survives only inside a word (``DON'T``) or after
a word-final S (``JAMES'``, LibriSpeech's plural possessive) unless the word opened with a quote
(``'YES'`` -> ``YES``).

- ``en`` (LibriSpeech): exactly the steps above.
- ``zh`` (AISHELL-style): additionally every space next to a Hanzi is dropped, so Hanzi run together
  while embedded English words keep one space between them: "我用 iPhone 打电话" -> "我用IPHONE打电话".

Digits are kept as written (no verbalization); punctuation inside a number becomes a space ("3.5" -> "3 5").
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

# CJK Unified Ideographs with extensions A-H, compatibility ideographs and 〇 (used in dates).
_HANZI_RANGES = (
    ("\u3007", "\u3007"),
    ("\u3400", "\u4dbf"),
    ("\u4e00", "\u9fff"),
    ("\uf900", "\ufaff"),
    ("\U00020000", "\U0002fa1f"),
    ("\U00030000", "\U000323af"),
)
_HANZI_CLASS = "".join(f"{lo}-{hi}" for lo, hi in _HANZI_RANGES)
_HANZI_RE = re.compile(f"[{_HANZI_CLASS}]")
_SPACE_NEXT_TO_HANZI_RE = re.compile(f" (?=[{_HANZI_CLASS}])|(?<=[{_HANZI_CLASS}]) ")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def is_hanzi(ch: str) -> bool:
    return bool(_HANZI_RE.fullmatch(ch))


def has_hanzi(text: str) -> bool:
    return _HANZI_RE.search(text) is not None


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() and not is_hanzi(ch)


def _keep_apostrophe(text: str, i: int) -> bool:
    prev = text[i - 1] if i > 0 else ""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if not (prev and _is_word_char(prev)):
        return False
    if _is_word_char(nxt):
        return True
    if prev not in "sS":
        return False
    # A word-final S' is a possessive unless the word opened with a quote: 'YES' is quoted.
    j = i - 1
    while j >= 0 and (_is_word_char(text[j]) or (text[j] == "'" and j > 0 and _is_word_char(text[j - 1]))):
        j -= 1
    return not (j >= 0 and text[j] == "'")


def _is_removed(ch: str) -> bool:
    # P*: punctuation, S*: symbols (incl. "▁", the tokenizers' space), C*: control and format characters.
    return unicodedata.category(ch)[0] in "PSC"


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    out = []
    for i, ch in enumerate(text):
        if ch == "'":
            out.append(ch if _keep_apostrophe(text, i) else " ")
        elif _is_removed(ch):
            out.append(" ")
        else:
            out.append(ch)
    return " ".join("".join(out).upper().split())


def normalize_en(text: str) -> str:
    """LibriSpeech policy: "Don't stop—James’ car!" -> "DON'T STOP JAMES' CAR"."""
    return _clean(text)


def normalize_zh(text: str) -> str:
    """AISHELL policy with embedded English: "你好，hello world！" -> "你好HELLO WORLD"."""
    return _SPACE_NEXT_TO_HANZI_RE.sub("", _clean(text))


NORMALIZERS: dict[str, Callable[[str], str]] = {"zh": normalize_zh, "en": normalize_en}


def normalize(text: str, lang: str) -> str:
    """Normalize ``text`` for ``lang`` ("zh", "en", or "auto": zh when the text holds any Hanzi)."""
    if lang == "auto":
        lang = "zh" if has_hanzi(text) else "en"
    try:
        fn = NORMALIZERS[lang]
    except KeyError:
        valid = ", ".join(["auto", *sorted(NORMALIZERS)])
        raise ValueError(f"unknown language {lang!r} for text normalization; valid: {valid}") from None
    return fn(text)
