"""Corpus validation: check every entry, keep the good ones, count and explain the rest.

Each entry ends up either *kept* (written to the clean data.list) or *rejected* under exactly one
reason, the first that applies in this order:

    transcript_without_audio, non_utf8_text, duplicate_key, empty_text, missing_file, unreadable_audio,
    zero_length, segment_out_of_range, too_short, too_long

(``transcript_without_audio``: a Kaldi ``text`` line whose key is in neither ``wav.scp`` nor
``segments``; the reverse, audio without a ``text`` line, is ``empty_text``.)

Kept entries may also be reported for things the loader fixes: ``resampled`` (sample rate differs
from ``cfg.sample_rate``), ``downmixed`` (more than one channel), ``oov_chars`` (characters that
the char tokenizer of :mod:`wenet_llm.data.tokenizer` maps to ``<unk>``; only with a units file).
For a duplicated key the first occurrence is the one checked and the later ones are rejected.

The report holds, per reason, its action, count and up to :data:`MAX_EXAMPLES` examples (key, wav,
detail), plus totals: entries, kept, rejected (kept + rejected == entries) and hours kept.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Union

import soundfile as sf

from wenet_llm.config import to_dict
from wenet_llm.config.data import ValidateConfig
from wenet_llm.data.formats import NO_AUDIO, NON_UTF8, SEGMENT_END_TOLERANCE, iter_entries, write_data_list
from wenet_llm.data.tokenizer import load_tokenizer
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

REJECT_REASONS = (
    "transcript_without_audio", "non_utf8_text", "duplicate_key", "empty_text", "missing_file", "unreadable_audio", "zero_length",
    "segment_out_of_range", "too_short", "too_long",
)
KEEP_REASONS = ("resampled", "downmixed", "oov_chars")
MAX_EXAMPLES = 10
_DECODE_FRAMES = 4096  # decoded at each end of a file to catch corrupt or truncated data
_CHUNK = 512  # entries whose audio is probed together (bounds memory on huge lists)


# ----------------------------------------------------------------------------- audio


@dataclass(frozen=True)
class AudioInfo:
    """A probed file: ``error`` is a reject reason (with ``detail``) or None when the audio is good."""

    error: Optional[str] = None
    detail: str = ""
    sample_rate: int = 0
    channels: int = 0
    frames: int = 0

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def wav_truncation(path: str) -> Optional[str]:
    """Why a RIFF/WAVE file is shorter than its header says, or None.

    libsndfile quietly shrinks the frame count to the bytes present, so a cut-off wav reads as a
    valid shorter file; the declared ``data`` chunk size is the only trace of the loss.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None  # not a plain WAV (RF64, FLAC, ...): the decode check covers it
        endian = "<" if head[:4] == b"RIFF" else ">"
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk_id, chunk_size = f.read(4), struct.unpack(endian + "I", f.read(4))[0]
            if chunk_id == b"data":
                have = size - pos - 8
                # 0 and 0xFFFFFFFF are "unknown size" placeholders left by streaming writers.
                if chunk_size not in (0, 0xFFFFFFFF) and chunk_size > have:
                    return f"truncated: header declares {chunk_size} data bytes, file holds {have}"
                return None
            pos += 8 + chunk_size + (chunk_size & 1)
    return "no data chunk in the WAV file"


def probe_audio(path: str) -> AudioInfo:
    """Header plus a real decode of both ends of the file."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return AudioInfo("missing_file", "no such file")
    if not os.path.isfile(path):
        return AudioInfo("missing_file", "not a regular file")
    if size == 0:
        return AudioInfo("zero_length", "empty file (0 bytes)")
    try:
        truncated = wav_truncation(path)
        if truncated:
            return AudioInfo("unreadable_audio", truncated)
        with sf.SoundFile(path) as f:
            info = AudioInfo(sample_rate=f.samplerate, channels=f.channels, frames=f.frames)
            if f.frames <= 0:
                return AudioInfo("zero_length", "no samples", f.samplerate, f.channels, 0)
            head = f.read(min(f.frames, _DECODE_FRAMES))
            tail_start = max(0, f.frames - _DECODE_FRAMES)
            if tail_start > 0:
                f.seek(tail_start)
                tail = f.read(_DECODE_FRAMES)
                if len(tail) < f.frames - tail_start:
                    return AudioInfo("unreadable_audio", f"decoded {len(tail)} of the last "
                                     f"{f.frames - tail_start} frames (truncated?)")
            elif len(head) < f.frames:
                return AudioInfo("unreadable_audio", f"decoded {len(head)} of {f.frames} frames (truncated?)")
        return info
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as e:
        return AudioInfo("unreadable_audio", str(e).strip() or type(e).__name__)


# ----------------------------------------------------------------------------- text


def make_oov_checker(units: Union[str, os.PathLike, Callable[[str], Iterable[str]], None]):
    """A ``text -> OOV characters`` function: the tokenizer's for a units.txt path, or ``units`` itself."""
    if units is None or callable(units):
        return units
    return load_tokenizer(units).oov_chars


# ----------------------------------------------------------------------------- report


class _Report:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.examples: dict[str, list[dict]] = {r: [] for r in REJECT_REASONS + KEEP_REASONS}
        self.oov: Counter = Counter()

    def add(self, reason: str, entry: dict, detail: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < MAX_EXAMPLES:
            self.examples[reason].append({"key": entry.get("key"), "wav": entry.get("wav"), "detail": detail})

    def to_dict(self, total: int, kept: int, seconds_kept: float) -> dict:
        reasons = {}
        for r in REJECT_REASONS + KEEP_REASONS:
            reasons[r] = {"action": "rejected" if r in REJECT_REASONS else "kept",
                          "count": self.counts[r], "examples": self.examples[r]}
        if self.oov:
            reasons["oov_chars"]["chars"] = dict(self.oov.most_common(100))
        return {
            "totals": {"entries": total, "kept": kept, "rejected": total - kept,
                       "hours_kept": seconds_kept / 3600},
            "reasons": reasons,
        }


# ----------------------------------------------------------------------------- checks


def _segment(entry: dict, audio: AudioInfo) -> tuple[Optional[str], float]:
    """(problem or None, utterance seconds)."""
    start, end = entry.get("start"), entry.get("end")
    if start is None and end is None:
        return None, audio.duration
    start = float(start or 0.0)
    end = audio.duration if end is None else float(end)
    if start < 0 or end <= start or start >= audio.duration or end > audio.duration + SEGMENT_END_TOLERANCE:
        return f"segment {start:g}..{end:g} s outside the file (0..{audio.duration:.3f} s) or empty", 0.0
    return None, min(end, audio.duration) - start


def _check_entry(entry: dict, audio: AudioInfo, cfg: ValidateConfig, report: _Report,
                 oov_chars) -> tuple[bool, float]:
    """(kept, seconds) for one entry whose text checks passed; records its reasons in ``report``."""
    if audio.error:
        report.add(audio.error, entry, audio.detail)
        return False, 0.0
    problem, seconds = _segment(entry, audio)
    if problem:
        report.add("segment_out_of_range", entry, problem)
        return False, 0.0
    if seconds < cfg.min_seconds:
        report.add("too_short", entry, f"{seconds:.3f} s < min_seconds {cfg.min_seconds:g}")
        return False, 0.0
    if seconds > cfg.max_seconds:
        report.add("too_long", entry, f"{seconds:.3f} s > max_seconds {cfg.max_seconds:g}")
        return False, 0.0
    if audio.sample_rate != cfg.sample_rate:
        report.add("resampled", entry, f"{audio.sample_rate} Hz -> {cfg.sample_rate} Hz at load time")
    if audio.channels > 1:
        report.add("downmixed", entry, f"{audio.channels} channels -> mono at load time")
    if oov_chars is not None:
        oov = sorted(oov_chars(entry["txt"]))
        if oov:
            report.oov.update(oov)
            report.add("oov_chars", entry, "".join(oov))
    return True, seconds


def _chunks(entries: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for e in entries:
        chunk.append(e)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def validate_entries(entries: Iterable[dict], cfg: ValidateConfig, units=None,
                     num_workers: int = 4) -> tuple[list[dict], dict]:
    """Check ``entries``; return (clean entries, report). See the module docstring.

    ``units`` is a units.txt path or a ``text -> OOV characters`` callable. Clean entries lose
    internal ``_`` fields and gain ``duration`` (utterance seconds) when they had none. Audio files
    are probed on ``num_workers`` threads (libsndfile releases the GIL), once per file per chunk.
    """
    oov_chars = make_oov_checker(units)
    report = _Report()
    seen: set[str] = set()
    clean: list[dict] = []
    total, seconds_kept = 0, 0.0
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        for chunk in _chunks(entries, _CHUNK):
            todo = []
            for entry in chunk:
                total += 1
                key = entry["key"]
                if entry.get("_error") == NO_AUDIO:
                    report.add("transcript_without_audio", entry, "text line without a wav.scp/segments line")
                elif entry.get("_error") == NON_UTF8:
                    report.add("non_utf8_text", entry, "text is not valid UTF-8: " + repr(entry["txt"][:40]))
                elif key in seen:
                    report.add("duplicate_key", entry, "key already used by an earlier entry")
                elif not entry["txt"].strip() and not cfg.allow_empty_text:
                    what = "whitespace-only" if entry["txt"] else "empty"
                    report.add("empty_text", entry, f"{what} transcript")
                else:
                    todo.append(entry)
                seen.add(key)
            paths = list(dict.fromkeys(e["wav"] for e in todo))
            probed = dict(zip(paths, pool.map(probe_audio, paths)))
            for entry in todo:
                kept, seconds = _check_entry(entry, probed[entry["wav"]], cfg, report, oov_chars)
                if kept:
                    out = {k: v for k, v in entry.items() if not k.startswith("_")}
                    out.setdefault("duration", round(seconds, 4))
                    clean.append(out)
                    seconds_kept += seconds
    return clean, report.to_dict(total, len(clean), seconds_kept)


def format_summary(report: dict) -> str:
    """A small text table: reason, action, count, then the totals."""
    rows = [(r, v["action"], v["count"]) for r, v in report["reasons"].items() if v["count"]]
    t = report["totals"]
    width = max([len(r) for r, _, _ in rows] + [len("reason")])
    lines = [f"{'reason':<{width}}  {'action':<8}  count"]
    lines += [f"{r:<{width}}  {a:<8}  {c}" for r, a, c in rows] or [f"{'(none)':<{width}}  {'':<8}  0"]
    lines.append(f"entries {t['entries']}  kept {t['kept']}  rejected {t['rejected']}  "
                 f"hours kept {t['hours_kept']:.4f}")
    return "\n".join(lines)


def run_validate(in_path: str | os.PathLike, out_path: str | os.PathLike, report_path: str | os.PathLike,
                 cfg: ValidateConfig, units: Optional[str] = None, num_workers: int = 4) -> dict:
    """Validate a data.list / Kaldi dir / lhotse manifest; write the clean data.list and the JSON report."""
    if not Path(in_path).exists():
        raise FileNotFoundError(f"input {in_path} does not exist")
    clean, report = validate_entries(iter_entries(in_path), cfg, units=units, num_workers=num_workers)
    write_data_list(clean, out_path)
    full: dict[str, Any] = {"input": str(in_path), "output": str(out_path), "units": units,
                            "config": to_dict(cfg), **report}
    with atomic_open(report_path) as f:
        json.dump(full, f, ensure_ascii=False, indent=1)
    return full
