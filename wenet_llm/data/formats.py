"""Corpus formats in and out: WeNet raw ``data.list``, Kaldi data dirs, lhotse manifests and Shar.

Inside the toolkit a corpus is a lhotse ``CutSet``. At the edges it is a stream of *entries*: plain
dicts with ``key``, ``wav`` (audio path), ``txt`` and optional ``start``/``end`` (seconds within the
wav), plus any extra fields (``lang``, ``spk``, ``duration``, ``hotwords``, ...), which every reader
and writer here carries along. In a ``CutSet`` each entry is one cut whose single supervision has
``id=key``, ``text=txt``, ``speaker=spk``, ``language=lang`` and the other extras in ``custom``.

Inputs :func:`iter_entries` and :func:`load_cuts` accept:

- a WeNet raw ``data.list``: any file whose lines are JSON objects with ``key``, ``wav``, ``txt``;
- a Kaldi data dir: ``wav.scp`` (plain paths only), ``text``, optional ``segments``,
  ``utt2spk`` (-> ``spk``), ``utt2lang`` (-> ``lang``), ``utt2dur`` (-> ``duration``) and any other
  ``utt2<field>`` file (-> ``<field>``, values in JSON when they are not plain strings);
- a lhotse cuts manifest (``*.jsonl`` / ``*.jsonl.gz`` of cuts);
- a lhotse recordings + supervisions pair: name the *supervisions* file; the recordings file is
  the same path with ``supervisions`` replaced by ``recordings`` (naming the recordings file works
  the other way round). One entry per supervision;
- (:func:`load_cuts` only) a lhotse Shar directory (``cuts.000000.jsonl.gz`` + ``recording.000000.tar``).

Format is decided by content (the first JSON line), not by file name.

A relative ``wav`` path in a data.list or ``wav.scp`` is resolved against the folder holding that
file, not the current directory, so a data dir can be moved or used from anywhere with its audio
beside it; entries carry the absolute path. (Paths in lhotse manifests follow lhotse's rule.)

An entry whose text line is not valid UTF-8 is still yielded, decoded with replacement characters
and marked ``"_error": "non_utf8_text"``, so that validation can count it instead of crashing. In a
Kaldi dir, a ``text`` line whose key has no audio (no ``wav.scp`` or ``segments`` line) is yielded
too, with an empty ``wav`` and ``"_error": "transcript_without_audio"``, so it is counted rather than lost.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional

import soundfile as sf

from wenet_llm.utils.fileio import atomic_open

if TYPE_CHECKING:
    from lhotse import CutSet, Recording

# lhotse (which loads torch) is imported inside the functions that build cuts, so that the tools that
# only read lists and Kaldi dirs, and every --help, start without it.

logger = logging.getLogger(__name__)

CORE_FIELDS = ("key", "wav", "txt", "start", "end")
NON_UTF8 = "non_utf8_text"
NO_AUDIO = "transcript_without_audio"
# Kaldi per-utterance files that map to entry fields of another name.
KALDI_FIELD_FILES = {"spk": "utt2spk", "lang": "utt2lang", "duration": "utt2dur"}
# A segment may end this far past the end of its file (times rounded when written); it is clipped.
SEGMENT_END_TOLERANCE = 0.02
_VALIDATE_HINT = "check the data with: python -m wenet_llm.bin.validate --in DATA --out CLEAN --report REPORT.json"


# ----------------------------------------------------------------------------- detection


def _open_text(path: Path, mode: str = "rb"):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, mode) if gz else open(path, mode)


def _first_json_object(path: Path) -> Optional[dict]:
    """The first non-blank line of ``path`` parsed as JSON, or None when it is not a JSON object."""
    with _open_text(path) as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                return None
            return obj if isinstance(obj, dict) else None
    return None


def is_shar_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and any(p.glob("cuts.*jsonl*")) and not (p / "wav.scp").exists()


def detect_format(path: str | os.PathLike) -> str:
    """One of ``data_list``, ``kaldi``, ``shar``, ``lhotse_cuts``, ``lhotse_supervisions``, ``lhotse_recordings``."""
    p = Path(path)
    if p.is_dir():
        if (p / "wav.scp").is_file():
            return "kaldi"
        if is_shar_dir(p):
            return "shar"
        raise ValueError(f"{p}: a directory that is neither a Kaldi data dir (no wav.scp) "
                         "nor a lhotse Shar dir (no cuts.*.jsonl.gz)")
    if not p.is_file():
        raise ValueError(f"{p}: no such file or directory")
    first = _first_json_object(p)
    if first is None:
        if p.stat().st_size == 0:
            return "data_list"  # an empty list is a valid, empty corpus
        raise ValueError(f"{p}: line 1 is not a JSON object; expected a WeNet data.list, a Kaldi data dir "
                         "or a lhotse jsonl manifest")
    if str(first.get("type", "")).endswith("Cut"):
        return "lhotse_cuts"
    if "sources" in first and "sampling_rate" in first:
        return "lhotse_recordings"
    if "recording_id" in first and "duration" in first:
        return "lhotse_supervisions"
    return "data_list"


# ----------------------------------------------------------------------------- readers


def _decode_line(raw: bytes) -> tuple[str, bool]:
    """(text, ok): invalid UTF-8 is replaced rather than raised, and reported through ``ok``."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def resolve_wav(wav: str, base: Path) -> str:
    """``wav`` as an absolute path, a relative one taken from folder ``base``; URLs are kept."""
    if os.path.isabs(wav) or "://" in wav:
        return wav
    return os.path.abspath(os.path.join(base, wav))


def read_data_list(path: str | os.PathLike) -> Iterator[dict]:
    """Entries of a WeNet raw data.list (JSON lines; blank lines are skipped); relative wav paths are
    resolved against the list's folder."""
    path = Path(path)
    with _open_text(path) as f:
        for lineno, raw in enumerate(f, 1):
            line, ok = _decode_line(raw)
            line = line.strip()
            if not line:
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not a JSON object ({e.msg}): {line[:80]!r}") from None
            if not isinstance(entry, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(entry).__name__}")
            _check_entry(entry, f"{path}:{lineno}")
            entry["wav"] = resolve_wav(entry["wav"], path.parent)
            if not ok:
                entry["_error"] = NON_UTF8
            yield entry


def _check_entry(entry: dict, where: str) -> None:
    missing = [k for k in ("key", "wav", "txt") if k not in entry]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}; a data.list line needs key, wav and txt")
    for k in ("key", "wav", "txt"):
        if not isinstance(entry[k], str):
            raise ValueError(f"{where}: field {k!r} must be a string, got {entry[k]!r}")
    if not entry["key"] or any(c.isspace() for c in entry["key"]):
        raise ValueError(f"{where}: key {entry['key']!r} is empty or contains whitespace")
    for k in ("start", "end"):
        v = entry.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"{where}: field {k!r} must be a number of seconds, got {v!r}")


def _kaldi_lines(path: Path) -> Iterator[tuple[int, str, str, bool]]:
    """(line number, key, rest, utf8 ok) for each non-blank line of a Kaldi ``key value`` file."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line, ok = _decode_line(raw)
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            yield lineno, parts[0], parts[1].strip() if len(parts) > 1 else "", ok


def _kaldi_map(path: Path, need_value: bool = True) -> dict[str, tuple[str, bool]]:
    out: dict[str, tuple[str, bool]] = {}
    first_line: dict[str, int] = {}
    for lineno, key, rest, ok in _kaldi_lines(path):
        if need_value and not rest:
            raise ValueError(f"{path}:{lineno}: expected 'key value', got only {key!r}")
        if key in out:
            raise ValueError(f"{path}:{lineno}: duplicate key {key!r} (first at line {first_line[key]})")
        out[key] = (rest, ok)
        first_line[key] = lineno
    return out


def _parse_field_value(raw: str) -> Any:
    """A ``utt2<field>`` value: JSON when it parses (lists, numbers), else the plain string."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _format_field_value(value: Any) -> str:
    """Inverse of :func:`_parse_field_value`: a string stays plain unless it would read back as something else."""
    if isinstance(value, str):
        plain = value and value == value.strip() and "\n" not in value
        if plain:
            try:
                json.loads(value)
            except json.JSONDecodeError:
                return value
    return json.dumps(value, ensure_ascii=False)


def _check_plain_path(path: Path, lineno: int, key: str, rx: str) -> None:
    if rx.endswith("|") or rx.startswith("|") or rx == "-" or re.search(r"\.ark:\d+$", rx):
        raise ValueError(
            f"{path}:{lineno}: {key} reads audio through a command or archive ({rx!r}); only plain file "
            "paths are supported: write the audio to files first (e.g. with sox) and list their paths"
        )


def read_kaldi_dir(data_dir: str | os.PathLike) -> Iterator[dict]:
    """Entries of a Kaldi data dir, in the order of ``segments`` (when present) or ``wav.scp``.

    A key in ``wav.scp``/``segments`` without a ``text`` line gets an empty transcript (logged), so
    validation reports it as ``empty_text`` instead of the whole read failing. A key in ``text``
    without audio is yielded last, marked ``transcript_without_audio`` (logged), so validation
    counts it. A ``utt2spk`` speaker equal to the key is Kaldi's "no speaker" and gives no ``spk``;
    a segment ``0 -1`` no start/end. Relative wav paths are resolved against ``data_dir``.
    """
    d = Path(data_dir)
    wav_scp, text_file, segments_file = d / "wav.scp", d / "text", d / "segments"
    if not wav_scp.is_file():
        raise ValueError(f"{d}: not a Kaldi data dir (missing wav.scp)")
    if not text_file.is_file():
        raise ValueError(f"{d}: Kaldi data dir without a text file")
    wavs: list[tuple[int, str, str]] = []
    for lineno, key, rx, _ in _kaldi_lines(wav_scp):
        if not rx:
            raise ValueError(f"{wav_scp}:{lineno}: expected 'key path', got only {key!r}")
        _check_plain_path(wav_scp, lineno, key, rx)
        wavs.append((lineno, key, resolve_wav(rx, d)))
    texts = _kaldi_map(text_file, need_value=False)
    extras: dict[str, dict[str, tuple[str, bool]]] = {}
    file_to_field = {v: k for k, v in KALDI_FIELD_FILES.items()}
    for f in sorted(d.glob("utt2*")):
        if f.is_file() and not f.name.startswith("."):
            extras[file_to_field.get(f.name, f.name[len("utt2"):])] = _kaldi_map(f)

    utts: list[tuple[str, str, Optional[float], Optional[float]]] = []
    if segments_file.is_file():
        rec_paths = {key: rx for _, key, rx in wavs}
        for lineno, key, rest, _ in _kaldi_lines(segments_file):
            parts = rest.split()
            if len(parts) != 3:
                raise ValueError(f"{segments_file}:{lineno}: expected 'utt rec start end', got {key} {rest!r}")
            rec, start_s, end_s = parts
            if rec not in rec_paths:
                raise ValueError(f"{segments_file}:{lineno}: recording {rec!r} is not in {wav_scp}")
            try:
                start, end = float(start_s), float(end_s)
            except ValueError:
                raise ValueError(f"{segments_file}:{lineno}: start/end must be numbers, "
                                 f"got {start_s!r} {end_s!r}") from None
            if end == -1:  # Kaldi: -1 = to the end of the file
                utts.append((key, rec_paths[rec], start or None, None))
            else:
                utts.append((key, rec_paths[rec], start, end))
    else:
        utts = [(key, rx, None, None) for _, key, rx in wavs]

    no_text = 0
    for key, wav, start, end in utts:
        txt, ok = texts.get(key, ("", True))
        no_text += key not in texts
        entry: dict[str, Any] = {"key": key, "wav": wav, "txt": txt}
        if start is not None:
            entry["start"] = start
        if end is not None:
            entry["end"] = end
        for field, values in extras.items():
            if key in values and not (field == "spk" and values[key][0] == key):  # Kaldi's "no speaker"
                raw = values[key][0]
                entry[field] = float(raw) if field == "duration" else raw if field in ("spk", "lang") \
                    else _parse_field_value(raw)
        if not ok:
            entry["_error"] = NON_UTF8
        yield entry
    if no_text:
        logger.warning("%s: %d utterance(s) have no line in text; they get an empty transcript", d, no_text)
    with_audio = {key for key, _, _, _ in utts}
    orphans = [key for key in texts if key not in with_audio]
    for key in orphans:
        yield {"key": key, "wav": "", "txt": texts[key][0], "_error": NO_AUDIO}
    if orphans:
        logger.warning("%s: %d line(s) of text have no audio in %s (e.g. %s)", d, len(orphans),
                       "segments" if segments_file.is_file() else "wav.scp", orphans[0])


def _lhotse_pair(path: Path, kind: str) -> tuple[Path, Path]:
    """(recordings, supervisions) paths from either one of them."""
    a, b = ("supervisions", "recordings") if kind == "lhotse_supervisions" else ("recordings", "supervisions")
    if a not in path.name:
        raise ValueError(f"{path}: a lhotse {a} manifest whose name does not contain '{a}', so its {b} "
                         f"manifest cannot be found; name them like foo_{a}.jsonl.gz / foo_{b}.jsonl.gz")
    other = path.with_name(path.name.replace(a, b))
    if not other.is_file():
        raise ValueError(f"{path}: the matching {b} manifest {other} does not exist")
    return (path, other) if kind == "lhotse_recordings" else (other, path)


def _cuts_from_lhotse_file(path: Path, kind: str) -> CutSet:
    from lhotse import CutSet, RecordingSet, SupervisionSet

    if kind == "lhotse_cuts":
        return CutSet.from_file(path)
    rec_path, sup_path = _lhotse_pair(path, kind)
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_file(rec_path),
                                 supervisions=SupervisionSet.from_file(sup_path))
    return cuts.trim_to_supervisions(keep_overlapping=False)


def iter_entries(path: str | os.PathLike) -> Iterator[dict]:
    """Entries of a data.list, Kaldi data dir or lhotse manifest (see the module docstring)."""
    path = Path(path)
    kind = detect_format(path)
    if kind == "data_list":
        yield from read_data_list(path)
    elif kind == "kaldi":
        yield from read_kaldi_dir(path)
    elif kind == "shar":
        raise ValueError(f"{path}: a lhotse Shar dir holds its audio inside tar files, not as paths; "
                         "load it with wenet_llm.data.formats.load_shar")
    else:
        yield from cuts_to_entries(_cuts_from_lhotse_file(path, kind))


# ----------------------------------------------------------------------------- cuts


class _RecordingIds:
    """Unique recording ids from wav paths: the file stem, or stem plus a path hash on a clash."""

    def __init__(self) -> None:
        self.by_path: dict[str, str] = {}
        self.used: set[str] = set()

    def __call__(self, wav: str) -> str:
        rid = self.by_path.get(wav)
        if rid is None:
            rid = Path(wav).stem or "rec"
            if rid in self.used:
                rid = f"{rid}-{hashlib.sha1(wav.encode()).hexdigest()[:8]}"
            self.by_path[wav] = rid
            self.used.add(rid)
        return rid


def recording_from_file(wav: str, recording_id: str) -> Recording:
    from lhotse import Recording
    from lhotse.audio import AudioSource

    info = sf.info(wav)
    return Recording(
        id=recording_id,
        sources=[AudioSource(type="file", channels=list(range(info.channels)), source=wav)],
        sampling_rate=info.samplerate,
        num_samples=info.frames,
        duration=info.frames / info.samplerate,
    )


def entries_to_cuts(entries: Iterable[dict]) -> CutSet:
    """One cut per entry, reading each audio header once (soundfile).

    A mono file gives a ``MonoCut``; a multi-channel file a ``MultiCut`` over all channels, so the
    loader can downmix (``cut.load_audio()`` is then (C, N)). Raises ValueError, naming the entry, on
    audio that cannot be read or a segment outside the file: validate the data first.
    """
    from lhotse import CutSet, SupervisionSegment
    from lhotse.cut import MonoCut, MultiCut

    rec_ids = _RecordingIds()
    recordings: dict[str, Recording] = {}
    cuts = []
    for entry in entries:
        key, wav = entry["key"], entry["wav"]
        if entry.get("_error"):
            raise ValueError(f"entry {key}: {entry['_error']}; {_VALIDATE_HINT}")
        rec = recordings.get(wav)
        if rec is None:
            try:
                rec = recording_from_file(wav, rec_ids(wav))
            except (OSError, RuntimeError, sf.LibsndfileError) as e:
                raise ValueError(f"entry {key}: cannot read audio {wav}: {e}; {_VALIDATE_HINT}") from None
            recordings[wav] = rec
        start = float(entry.get("start") or 0.0)
        end = float(entry["end"]) if entry.get("end") is not None else rec.duration
        if start < 0 or end <= start or end > rec.duration + SEGMENT_END_TOLERANCE:
            raise ValueError(f"entry {key}: segment {start}..{end} s is outside {wav} "
                             f"({rec.duration:.3f} s); {_VALIDATE_HINT}")
        end = min(end, rec.duration)
        extras = {k: v for k, v in entry.items() if k not in CORE_FIELDS and k not in ("spk", "lang", "duration")}
        channel: Any = 0 if len(rec.channel_ids) == 1 else list(rec.channel_ids)
        sup = SupervisionSegment(
            id=key, recording_id=rec.id, start=0.0, duration=end - start, channel=channel,
            text=entry["txt"], speaker=entry.get("spk"), language=entry.get("lang"), custom=extras or None,
        )
        cut_cls = MonoCut if isinstance(channel, int) else MultiCut
        cuts.append(cut_cls(id=key, start=start, duration=end - start, channel=channel,
                            recording=rec, supervisions=[sup]))
    return CutSet.from_cuts(cuts)


def cuts_to_entries(cuts: Iterable) -> Iterator[dict]:
    """One entry per supervision. ``start``/``end`` are set unless it spans the whole recording;
    ``duration`` (of the utterance, in seconds) is always set."""
    from lhotse import SupervisionSegment

    for cut in cuts:
        rec = cut.recording if cut.has_recording else None
        src = rec.sources[0] if rec is not None and len(rec.sources) == 1 else None
        if src is None or src.type not in ("file", "url"):
            raise ValueError(f"cut {cut.id}: its audio is not a single file on disk (shar/in-memory/multi-source); "
                             "a data.list or Kaldi dir can only point to audio files")
        sups = cut.supervisions or [SupervisionSegment(id=cut.id, recording_id=rec.id, start=0.0,
                                                       duration=cut.duration, text="")]
        half_sample = 0.5 / rec.sampling_rate
        for sup in sups:
            start = cut.start + sup.start
            end = start + sup.duration
            entry: dict[str, Any] = {"key": sup.id, "wav": src.source, "txt": sup.text or ""}
            if start > half_sample or abs(end - rec.duration) > half_sample:
                entry["start"] = round(start, 6)
                entry["end"] = round(end, 6)
            if sup.speaker is not None:
                entry["spk"] = sup.speaker
            if sup.language is not None:
                entry["lang"] = sup.language
            entry["duration"] = round(sup.duration, 4)
            for k, v in (sup.custom or {}).items():
                entry.setdefault(k, v)
            yield entry


def load_cuts(path: str | os.PathLike) -> CutSet:
    """A CutSet from a data.list, Kaldi dir, lhotse manifest (pair) or Shar dir."""
    path = Path(path)
    kind = detect_format(path)
    if kind == "shar":
        return load_shar(path)
    if kind in ("data_list", "kaldi"):
        return entries_to_cuts(iter_entries(path))
    return _cuts_from_lhotse_file(path, kind)


# ----------------------------------------------------------------------------- writers


def _ordered(entry: dict) -> dict:
    """Core fields first, internal ``_`` fields dropped."""
    out = {k: entry[k] for k in CORE_FIELDS if k in entry and entry[k] is not None}
    out.update((k, v) for k, v in entry.items() if k not in CORE_FIELDS and not k.startswith("_"))
    return out


def write_data_list(entries: Iterable[dict], path: str | os.PathLike) -> int:
    """Write a WeNet raw data.list (UTF-8 JSON lines, atomically); returns the number of lines."""
    n = 0
    with atomic_open(path) as f:
        for entry in entries:
            f.write(json.dumps(_ordered(entry), ensure_ascii=False) + "\n")
            n += 1
    return n


def _fmt_seconds(x: float) -> str:
    return str(round(float(x), 6))


def write_kaldi_dir(entries: Iterable[dict], data_dir: str | os.PathLike) -> None:
    """Write a Kaldi data dir sorted by key: wav.scp, text, utt2spk, spk2utt, and when known utt2dur,
    segments (any entry with start/end; wav.scp then maps recording ids), utt2lang and one
    ``utt2<field>`` per other extra field."""
    d = Path(data_dir)
    entries = sorted((_ordered(e) for e in entries), key=lambda e: e["key"])
    keys = [e["key"] for e in entries]
    dups = sorted(k for k, n in Counter(keys).items() if n > 1)
    if dups:
        raise ValueError(f"duplicate keys {dups[:5]} cannot be written to a Kaldi dir; {_VALIDATE_HINT}")
    for e in entries:
        if any(c.isspace() for c in e["wav"]):
            raise ValueError(f"entry {e['key']}: wav path {e['wav']!r} contains whitespace, "
                             "which Kaldi files cannot hold")
    files: dict[str, list[str]] = {"text": [f"{e['key']} {e['txt']}".rstrip() for e in entries]}
    if any("start" in e or "end" in e for e in entries):
        rec_ids = _RecordingIds()
        recs: dict[str, str] = {}
        segs = []
        for e in entries:
            rid = rec_ids(e["wav"])
            recs[rid] = e["wav"]
            end = e.get("end")
            segs.append(f"{e['key']} {rid} {_fmt_seconds(float(e.get('start', 0.0)))} "
                        f"{'-1' if end is None else _fmt_seconds(float(end))}")
        files["wav.scp"] = [f"{rid} {wav}" for rid, wav in sorted(recs.items())]
        files["segments"] = segs
    else:
        files["wav.scp"] = [f"{e['key']} {e['wav']}" for e in entries]
    spk2utt: dict[str, list[str]] = {}
    for e in entries:
        spk2utt.setdefault(str(e.get("spk", e["key"])), []).append(e["key"])
    files["utt2spk"] = [f"{e['key']} {e.get('spk', e['key'])}" for e in entries]
    files["spk2utt"] = [f"{s} {' '.join(ks)}" for s, ks in sorted(spk2utt.items())]
    durs = {e["key"]: _entry_duration(e) for e in entries}
    if entries and all(v is not None for v in durs.values()):
        files["utt2dur"] = [f"{k} {durs[k]:.4f}" for k in keys]
    extra_fields = sorted({k for e in entries for k in e if k not in CORE_FIELDS and k not in ("spk", "duration")})
    for field in extra_fields:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", field):
            raise ValueError(f"extra field {field!r} cannot be a Kaldi file name (utt2{field})")
        files[f"utt2{field}"] = [f"{e['key']} {_format_field_value(e[field])}" for e in entries if field in e]
    d.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        with atomic_open(d / name) as f:
            f.writelines(line + "\n" for line in lines)
    for stale in ("segments", "utt2dur"):  # don't leave a stale file from an earlier write
        if stale not in files and (d / stale).exists():
            (d / stale).unlink()


def _entry_duration(e: dict) -> Optional[float]:
    if e.get("end") is not None:
        return float(e["end"]) - float(e.get("start", 0.0))
    d = e.get("duration")
    return float(d) if isinstance(d, (int, float)) and not isinstance(d, bool) and math.isfinite(d) else None


# ----------------------------------------------------------------------------- Shar


def export_shar(cuts: CutSet, out_dir: str | os.PathLike, shard_size: int = 1000, audio_format: str = "flac") -> dict:
    """Write ``cuts`` as a lhotse Shar dir: the cut's audio (flac or wav) and the cut manifests with
    their supervisions and custom fields. Returns lhotse's {field: [shard paths]}."""
    if audio_format not in ("flac", "wav"):
        raise ValueError(f"audio_format must be 'flac' or 'wav', got {audio_format!r}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return cuts.to_shar(out_dir, fields={"recording": audio_format}, shard_size=shard_size)


def load_shar(in_dir: str | os.PathLike) -> CutSet:
    """A lazy CutSet over a Shar dir; its audio is read from the tar shards."""
    from lhotse import CutSet

    if not is_shar_dir(in_dir):
        raise ValueError(f"{in_dir}: not a lhotse Shar dir (no cuts.*.jsonl.gz); write one with export_shar")
    return CutSet.from_shar(in_dir=in_dir)
