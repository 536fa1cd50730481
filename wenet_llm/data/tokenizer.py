"""AED tokenizers (char, BPE, mixed Hanzi + BPE) and WeNet ``units.txt`` files.

``units.txt`` holds one ``symbol id`` per line with ids 0..V-1. The files written here follow WeNet's
pre-v3 layout, so that sos = eos = V-1 (WeNet's default without ``special_tokens``):

    <blank> 0
    <unk> 1
    ... units ...
    <sos/eos> V-1

Readers take sos/eos from the ``<sos/eos>`` line, so WeNet v3 files (``<sos/eos> 2``) load too.

Units by mode (texts are expected to be normalized already, see :mod:`wenet_llm.data.text_norm`):

- ``char`` (AISHELL): every distinct character of the texts, sorted by code point; a space is ``▁``.
- ``bpe`` (LibriSpeech): the sentencepiece pieces in sentencepiece id order, without its own
  ``<unk>``/``<s>``/``</s>`` (our ``<unk>`` replaces them), so V equals the sentencepiece vocab size.
- ``mixed``: the ``bpe`` units, then every CJK character (U+4E00-U+9FFF) seen in the texts, sorted by
  code point. CJK characters never reach sentencepiece: they are blanked out of its training text and
  split off before encoding, as in WeNet's BPE tokenizer, so each Hanzi is exactly one unit.

BPE tokenization (WeNet's rules): upper-case, split into CJK characters (one token each) and non-CJK
spans, encode each span with sentencepiece ``encode_as_pieces``. Decoding joins the tokens, turns ``▁``
into spaces and, unlike WeNet, drops spaces next to a CJK character so that mixed text decodes to the
:func:`~wenet_llm.data.text_norm.normalize_zh` form ("你好HELLO WORLD", not "你好 HELLO WORLD").
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

import sentencepiece as spm

from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

BLANK = "<blank>"
UNK = "<unk>"
SOS_EOS = "<sos/eos>"
SPECIALS = (BLANK, UNK, SOS_EOS)
SPACE = "\u2581"  # "▁", sentencepiece's word-boundary mark, also the space unit in char mode
MODES = ("char", "bpe", "mixed")
BPE_MODEL_TYPES = ("unigram", "bpe")

# WeNet's CJK range for BPE splitting; narrower than text_norm's Hanzi on purpose (compatibility).
_CJK_SPLIT_RE = re.compile("([\u4e00-\u9fff])")
_CJK_RE = re.compile("[\u4e00-\u9fff]")


class TokenizerError(ValueError):
    """A units file, sentencepiece model or data list that cannot be used; the message says why."""


def is_cjk(ch: str) -> bool:
    return len(ch) == 1 and "\u4e00" <= ch <= "\u9fff"


# --------------------------------------------------------------------------------------------
# units.txt


def read_units(path: str | os.PathLike) -> list[str]:
    """Read a units.txt; returns the symbols indexed by id. Errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"missing units file {path}; build it with: python -m wenet_llm.bin.make_tokenizer")
    by_symbol: dict[str, tuple[int, int]] = {}  # symbol -> (id, line number)
    by_id: dict[int, tuple[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2 or not re.fullmatch("[0-9]+", parts[1]):
                raise TokenizerError(f"{path}:{lineno}: expected 'symbol id' (id a non-negative integer), "
                                     f"got {line.rstrip()!r}")
            sym, idx = parts[0], int(parts[1])
            if sym in by_symbol:
                raise TokenizerError(f"{path}:{lineno}: symbol {sym!r} already defined on line {by_symbol[sym][1]}")
            if idx in by_id:
                other, other_line = by_id[idx]
                raise TokenizerError(f"{path}:{lineno}: id {idx} already used by {other!r} on line {other_line}")
            by_symbol[sym] = (idx, lineno)
            by_id[idx] = (sym, lineno)
    if not by_id:
        raise TokenizerError(f"{path}: empty units file")
    missing = sorted(set(range(len(by_id))) - set(by_id))
    if missing:
        raise TokenizerError(f"{path}: ids must be 0..{len(by_id) - 1} without gaps; missing id {missing[0]}")
    return [by_id[i][0] for i in range(len(by_id))]


def write_units(symbols: Sequence[str], path: str | os.PathLike) -> None:
    """Write ``symbol id`` lines with id = position, atomically."""
    seen: set[str] = set()
    for i, sym in enumerate(symbols):
        if not sym or len(sym.split()) != 1 or sym != sym.strip():
            raise TokenizerError(f"unit {i} ({sym!r}) is empty or contains whitespace; units.txt cannot hold it")
        if sym in seen:
            raise TokenizerError(f"unit {sym!r} appears twice (second time at id {i})")
        seen.add(sym)
    with atomic_open(path) as f:
        f.writelines(f"{sym} {i}\n" for i, sym in enumerate(symbols))


# --------------------------------------------------------------------------------------------
# Tokenizers


class _UnitsTokenizer:
    """Symbol table and the id <-> token mapping shared by both tokenizers."""

    def __init__(self, units_path: str | os.PathLike):
        self.units_path = Path(units_path)
        self.units = read_units(units_path)
        self._sym2id = {s: i for i, s in enumerate(self.units)}
        absent = [s for s in SPECIALS if s not in self._sym2id]
        if absent:
            raise TokenizerError(f"{units_path}: missing special symbol(s) {', '.join(absent)}")
        self.blank_id = self._sym2id[BLANK]
        self.unk_id = self._sym2id[UNK]
        self.sos_id = self.eos_id = self._sym2id[SOS_EOS]

    @property
    def vocab_size(self) -> int:
        return len(self.units)

    def tokenize(self, text: str) -> list[str]:
        raise NotImplementedError

    def oov_chars(self, text: str) -> set[str]:
        raise NotImplementedError

    def _join(self, tokens: list[str]) -> str:
        return " ".join("".join(tokens).replace(SPACE, " ").split())

    def encode(self, text: str) -> list[int]:
        return [self._sym2id.get(t, self.unk_id) for t in self.tokenize(text)]

    def ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Map ids to symbols, dropping blank and sos/eos (``<unk>`` is kept, as in WeNet)."""
        skip = {self.blank_id, self.sos_id, self.eos_id}
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise TokenizerError(f"token id {i} outside the vocabulary 0..{self.vocab_size - 1} "
                                     f"of {self.units_path}")
            if i not in skip:
                tokens.append(self.units[i])
        return tokens

    def decode(self, ids: Iterable[int]) -> str:
        return self._join(self.ids_to_tokens(ids))


class CharTokenizer(_UnitsTokenizer):
    """One token per character; whitespace runs become one ``▁``."""

    def tokenize(self, text: str) -> list[str]:
        return list(SPACE.join(text.split()))

    def oov_chars(self, text: str) -> set[str]:
        return {t for t in self.tokenize(text) if t not in self._sym2id}


def _sp_pieces(sp: spm.SentencePieceProcessor) -> list[str]:
    """The pieces that become units: sentencepiece's unk and control pieces are left out."""
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())
            if not (sp.is_unknown(i) or sp.is_control(i) or sp.is_unused(i))]


def _load_sp(path: str | os.PathLike) -> spm.SentencePieceProcessor:
    if not Path(path).is_file():
        raise TokenizerError(f"missing sentencepiece model {path}; build it with: "
                             "python -m wenet_llm.bin.make_tokenizer --mode bpe")
    sp = spm.SentencePieceProcessor()
    try:
        sp.load(str(path))
    except (OSError, RuntimeError) as e:
        raise TokenizerError(f"{path} is not a sentencepiece model: {e}") from None
    return sp


class BpeTokenizer(_UnitsTokenizer):
    """CJK characters as single tokens, everything else as sentencepiece pieces (WeNet's BPE rules)."""

    def __init__(self, units_path: str | os.PathLike, bpe_model: str | os.PathLike):
        super().__init__(units_path)
        self.bpe_model = Path(bpe_model)
        self.sp = _load_sp(bpe_model)
        self._check_consistent()

    def _check_consistent(self) -> None:
        pieces = _sp_pieces(self.sp)
        missing = [p for p in pieces if p not in self._sym2id]
        piece_set = set(pieces)
        extra = [u for u in self.units if u not in piece_set and u not in SPECIALS and not is_cjk(u)]
        if missing or extra:
            what = f"pieces missing from units: {missing[:5]}" if missing else f"units that are no piece: {extra[:5]}"
            raise TokenizerError(f"{self.units_path} does not match {self.bpe_model} ({what}); "
                                 "rebuild both with: python -m wenet_llm.bin.make_tokenizer")

    def _spans(self, text: str) -> Iterable[str]:
        return (part for part in _CJK_SPLIT_RE.split(text.upper()) if part.strip())

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = []
        for part in self._spans(text):
            if is_cjk(part):
                tokens.append(part)
            else:
                tokens.extend(self.sp.encode_as_pieces(part))
        return tokens

    def oov_chars(self, text: str) -> set[str]:
        oov: set[str] = set()
        unk = self.sp.unk_id()
        for part in self._spans(text):
            if is_cjk(part):
                if part not in self._sym2id:
                    oov.add(part)
                continue
            for piece in self.sp.encode_as_pieces(part):
                if self.sp.piece_to_id(piece) == unk:  # one unk piece may cover a run of unknown chars
                    oov.update(ch for ch in piece if ch != SPACE and not ch.isspace())
        return oov

    def _join(self, tokens: list[str]) -> str:
        text = super()._join(tokens)
        return re.sub(" (?=[\u4e00-\u9fff])|(?<=[\u4e00-\u9fff]) ", "", text)


def load_tokenizer(units_path: str | os.PathLike,
                   bpe_model: str | os.PathLike | None = None) -> CharTokenizer | BpeTokenizer:
    """A BpeTokenizer when a sentencepiece model is given, else a CharTokenizer."""
    if bpe_model:
        return BpeTokenizer(units_path, bpe_model)
    return CharTokenizer(units_path)


# --------------------------------------------------------------------------------------------
# Building units


def _check_nonempty(units: list[str], what: str) -> None:
    if len(units) == len(SPECIALS):
        raise TokenizerError(f"no units found in the {what}; is the text empty?")


def build_char_units(texts: Iterable[str], out_path: str | os.PathLike) -> list[str]:
    """Write the char units.txt for ``texts``; returns the units by id."""
    chars: set[str] = set()
    for text in texts:
        chars.update(SPACE.join(text.split()))
    units = [BLANK, UNK, *sorted(chars), SOS_EOS]
    _check_nonempty(units, "texts")
    write_units(units, out_path)
    return units


def _bpe_training_line(text: str) -> str:
    # A CJK run becomes a space: tokenization splits there too, so the words around it stay apart.
    return " ".join(_CJK_RE.sub(" ", text.upper()).split())


def train_bpe(texts: Iterable[str], model_prefix: str | os.PathLike, vocab_size: int,
              model_type: str = "unigram") -> Path:
    """Train ``{model_prefix}.model`` and ``.vocab`` on upper-cased ``texts`` without CJK characters."""
    if model_type not in BPE_MODEL_TYPES:
        raise TokenizerError(f"unknown sentencepiece model type {model_type!r}; valid: {', '.join(BPE_MODEL_TYPES)}")
    lines = [line for line in map(_bpe_training_line, texts) if line]
    if not lines:
        raise TokenizerError("no non-CJK text to train sentencepiece on; use --mode char for CJK-only corpora")
    prefix = Path(model_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    # Train under a temporary name so an interrupted run never leaves a model without its vocab.
    tmp_dir = Path(tempfile.mkdtemp(dir=prefix.parent, prefix=f".{prefix.name}."))
    try:
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines), model_prefix=str(tmp_dir / "sp"), vocab_size=vocab_size,
                model_type=model_type, character_coverage=1.0, num_threads=min(16, os.cpu_count() or 1),
                minloglevel=1)
        except RuntimeError as e:
            raise TokenizerError(f"sentencepiece could not train a {vocab_size}-piece {model_type} model on "
                                 f"{len(lines)} lines: {e}; choose a smaller --vocab-size") from None
        for ext in ("vocab", "model"):
            os.replace(tmp_dir / f"sp.{ext}", f"{prefix}.{ext}")
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info("trained %s sentencepiece model %s.model (%d pieces) on %d lines",
                model_type, prefix, vocab_size, len(lines))
    return Path(f"{prefix}.model")


def build_bpe_units(sp_model_path: str | os.PathLike, texts: Iterable[str] | None,
                    out_path: str | os.PathLike) -> list[str]:
    """Write units.txt for a sentencepiece model, plus the CJK characters of ``texts`` (mixed mode)."""
    pieces = _sp_pieces(_load_sp(sp_model_path))
    cjk = sorted({ch for text in texts or () for ch in _CJK_RE.findall(text)})
    units = [BLANK, UNK, *pieces, *cjk, SOS_EOS]
    _check_nonempty(units, f"sentencepiece model {sp_model_path}")
    write_units(units, out_path)
    return units


def read_data_list_texts(path: str | os.PathLike) -> list[str]:
    """Transcripts (``txt``) of a WeNet raw data.list; entries with an empty transcript are skipped."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerError(f"missing data list {path}; write it with the data preparation stage first")
    texts, empty = [], 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise TokenizerError(f"{path}:{lineno}: not a JSON object; a raw data.list (key, wav, txt) "
                                     "is needed, not a shard list") from None
            if not isinstance(entry, dict) or "txt" not in entry:
                raise TokenizerError(f"{path}:{lineno}: entry has no 'txt' field")
            txt = str(entry["txt"])
            if txt.strip():
                texts.append(txt)
            else:
                empty += 1
    if empty:
        logger.info("%s: skipped %d entries with an empty transcript", path, empty)
    return texts


def make_tokenizer(texts: Iterable[str], mode: str, out_dir: str | os.PathLike, vocab_size: int = 5000,
                   model_type: str = "unigram") -> dict:
    """Write ``units.txt`` (and ``bpe.model``/``bpe.vocab`` unless mode is char) under ``out_dir``.

    ``vocab_size`` is the sentencepiece vocabulary; in bpe mode units.txt has exactly that many lines,
    in mixed mode that many plus the CJK characters. Returns a summary of what was written.
    """
    if mode not in MODES:
        raise TokenizerError(f"unknown tokenizer mode {mode!r}; valid: {', '.join(MODES)}")
    texts = list(texts)
    if not texts:
        raise TokenizerError("no transcripts to build a tokenizer from")
    out_dir = Path(out_dir)
    units_path = out_dir / "units.txt"
    summary: dict = {"mode": mode, "num_texts": len(texts), "units": str(units_path)}
    if mode == "char":
        units = build_char_units(texts, units_path)
        # A bpe.model left by an earlier bpe/mixed build would make readers of this dir pick BPE.
        for stale in (out_dir / "bpe.model", out_dir / "bpe.vocab"):
            if stale.exists():
                logger.warning("removing %s: left by an earlier bpe/mixed build, not part of char units", stale)
                stale.unlink()
    else:
        num_cjk = sum(1 for t in texts if _CJK_RE.search(t))
        if mode == "bpe" and num_cjk:
            logger.warning("%d of %d transcripts contain CJK characters, which map to <unk> in bpe mode; "
                           "use --mode mixed to give each its own unit", num_cjk, len(texts))
        if mode == "mixed" and not num_cjk:
            logger.warning("mixed mode but no transcript contains CJK characters; the units equal bpe mode's")
        model = train_bpe(texts, out_dir / "bpe", vocab_size, model_type)
        units = build_bpe_units(model, texts if mode == "mixed" else None, units_path)
        summary["bpe_model"] = str(model)
        summary["num_cjk_units"] = sum(1 for u in units if is_cjk(u))
    summary["vocab_size"] = len(units)
    return summary
