"""Contextual test sets from local copies of public benchmarks, as data dirs plus context files.

**AISHELL-1 hotword subsets** (SeACo-Paraformer, arXiv:2308.03266): the subsets *Test-AISHELL1-NE*
(808 utterances, 400 hotwords) and *Dev-AISHELL1-NE* (1334, 600) of AISHELL-1 test/dev, published as
``data/{test,dev}/`` in the SeACo-Paraformer repository, each with

- ``uttid``: the AISHELL-1 utterance ids of the subset, one per line;
- ``hotword.txt``: the subset's hotword list, one term per line;
- ``r1-hotword.txt`` (optional): the hotwords a general model recalls below 40 % ("R1" hotwords);
- ``text`` (optional): ``<uttid> <transcript>`` lines; without it the transcripts come from AISHELL-1's
  ``data_aishell/transcript/aishell_transcript_v0.8.txt``.

The audio is AISHELL-1's ``data_aishell/wav/<part>/<speaker>/<uttid>.wav`` (the per-speaker archives
extracted). Written per part, as ``<out>/aishell1_hotword_<part>/``: the data dir (``data.list`` + Kaldi
files) whose entries carry ``hotwords`` (the utterance's list) and ``entities`` (the list terms said in it),
``context.jsonl`` (the same lists), ``hotwords.txt`` (the whole list, for ``--hotwords_file``) and
``hotwords_r1.txt``. An utterance's list holds the hotwords said in it plus distractors from the same list,
``list_size`` terms in all, shuffled (``list_size`` 0: the whole list for every utterance, as in the paper).

**ContextASR-Bench** (arXiv:2507.05727), its ContextASR-Speech subsets: ``ContextASR-Speech_English.jsonl``
and ``ContextASR-Speech_Mandarin.jsonl`` in the benchmark's root, one JSON object per line with ``uniq_id``,
``audio`` (path relative to the root), ``text``, ``duration``, ``domain_label`` and ``entity_list``, and the
audio archives extracted so that ``audio`` paths exist (an audio file found elsewhere under the root by its
file name is used too). Written as ``<out>/contextasr_speech_{en,zh}/``: the data dir (entries carry
``domain`` and ``entities``, no context), and the benchmark's three settings: *contextless* (decode the
list as it is), ``context_coarse.jsonl`` (a summary naming the domain, in the benchmark's wording) and
``context_fine.jsonl`` (that summary plus the entity list as hotwords).

Transcripts and terms are normalised with the toolkit's normalizer (``text_norm``), like every prepared
corpus. Utterances without audio or transcript are skipped and counted in ``prepare_report.json``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Optional, Sequence

from wenet_llm.data import formats
from wenet_llm.data.context import Context, write_context
from wenet_llm.data.context_terms import contains, join_units, units
from wenet_llm.data.text_norm import normalize
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

AISHELL1_PARTS = ("test", "dev")
CONTEXTASR_LANGS = {"English": "en", "Mandarin": "zh"}
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
# The benchmark's coarse-grained context, as its prompts word it.
_DOMAIN_SENTENCE = {"en": "This audio belongs to the {} field.", "zh": "这段语音属于{}领域。"}
_AISHELL_UTT_RE = re.compile(r"^BAC009(S\d{4})W\d{4}$")


def _read_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_text_file(path: Path) -> dict[str, str]:
    out = {}
    for line in _read_lines(path):
        key, _, text = line.partition(" ")
        out[key] = text.strip()
    return out


def _terms(raw: Iterable[str], lang: str) -> list[str]:
    """Normalised, de-duplicated terms, in the given order."""
    out: list[str] = []
    for term in raw:
        form = join_units(units(normalize(term, lang)))
        if form and form not in out:
            out.append(form)
    return out


def _write_set(out: Path, entries: list[dict], report: dict) -> None:
    formats.write_data_list(entries, out / "data.list")
    formats.write_kaldi_dir(entries, out)
    with atomic_open(out / "prepare_report.json") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)


# ----------------------------------------------------------------------------- AISHELL-1 hotword subsets


def _seaco_root(hotword_dir: Path) -> Path:
    for cand in (hotword_dir, hotword_dir / "data"):
        if any((cand / p / "uttid").is_file() for p in AISHELL1_PARTS):
            return cand
    raise ValueError(f"{hotword_dir}: no {{test,dev}}/uttid found here or under data/; expected the SeACo-Paraformer "
                     "hotword test sets (their repository's data/ folder: test/{uttid,hotword.txt}, dev/...)")


def utterance_list(rng: random.Random, targets: Sequence[str], pool: Sequence[str], utt_units: Sequence[str],
                   size: int) -> list[str]:
    """``targets`` plus distractors from ``pool`` that do not occur in the utterance, ``size`` in all
    (at least the targets; 0: the whole pool), shuffled."""
    if size <= 0:
        return list(pool)
    others = [t for t in pool if t not in targets and not contains(utt_units, units(t))]
    picked = list(targets) + rng.sample(others, min(len(others), max(0, size - len(targets))))
    rng.shuffle(picked)
    return picked


def prepare_aishell1_hotword(aishell1_dir: str | os.PathLike, hotword_dir: str | os.PathLike,
                             out_dir: str | os.PathLike, parts: Sequence[str] = AISHELL1_PARTS,
                             list_size: int = 100, seed: int = 0) -> dict:
    """Write ``<out_dir>/aishell1_hotword_<part>/`` for each part; returns {part: report}."""
    aishell1_dir, out_dir = Path(aishell1_dir), Path(out_dir)
    seaco = _seaco_root(Path(hotword_dir))
    wav_root = aishell1_dir / "data_aishell" / "wav"
    transcript = aishell1_dir / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    if not wav_root.is_dir():
        raise ValueError(f"{aishell1_dir}: no data_aishell/wav/ folder; expected a local AISHELL-1 (openslr 33) "
                         "with the per-speaker wav archives extracted")
    results = {}
    for part in parts:
        src = seaco / part
        if not (src / "uttid").is_file() or not (src / "hotword.txt").is_file():
            raise ValueError(f"{src}: missing uttid or hotword.txt of the SeACo-Paraformer {part} subset")
        uttids = _read_lines(src / "uttid")
        if (src / "text").is_file():
            texts, text_source = _read_text_file(src / "text"), str(src / "text")
        elif transcript.is_file():
            texts, text_source = _read_text_file(transcript), str(transcript)
        else:
            raise ValueError(f"no transcripts for the {part} subset: neither {src / 'text'} nor {transcript} exists")
        hotwords = _terms(_read_lines(src / "hotword.txt"), "zh")
        r1 = _terms(_read_lines(src / "r1-hotword.txt"), "zh") if (src / "r1-hotword.txt").is_file() else []
        wavs = {p.stem: p for p in sorted((wav_root / part).rglob("*.wav"))}
        skipped: Counter = Counter()
        entries, contexts = [], []
        said = Counter()
        for key in uttids:
            if key not in wavs:
                skipped["no_audio"] += 1
                continue
            # AISHELL-1 transcripts are space-separated words; like lhotse's recipe (and so our
            # data/aishell1 sets), the spaces go, also inside spelled-out letters ("ｋ ｔ ｖ" -> KTV).
            txt = normalize("".join(texts.get(key, "").split()), "zh")
            if not txt:
                skipped["no_transcript"] += 1
                continue
            us = units(txt)
            targets = [h for h in hotwords if contains(us, units(h))]
            said.update(targets)
            rng = random.Random(f"{seed}/aishell1_hotword/{key}")
            lst = utterance_list(rng, targets, hotwords, us, list_size)
            entry = {"key": key, "wav": str(wavs[key].resolve()), "txt": txt, "lang": "zh"}
            m = _AISHELL_UTT_RE.match(key)
            if m:
                entry["spk"] = m.group(1)
            entry.update(hotwords=lst, entities=targets)
            entries.append(entry)
            contexts.append(Context(key, lst, None, {"targets": targets}))
        if not entries:
            raise ValueError(f"none of the {len(uttids)} utterances of {src / 'uttid'} has audio under "
                             f"{wav_root / part} (found {len(wavs)} wavs); extract AISHELL-1's wav archives first")
        out = out_dir / f"aishell1_hotword_{part}"
        report = {"part": part, "uttids": len(uttids), "utterances": len(entries), "skipped": dict(skipped),
                  "hotwords": len(hotwords), "r1_hotwords": len(r1), "hotwords_said": len(said),
                  "hotword_occurrences": sum(said.values()),
                  "utterances_without_hotword": sum(not e["entities"] for e in entries),
                  "list_size": list_size or len(hotwords), "seed": seed, "text_source": text_source}
        _write_set(out, entries, report)
        write_context(contexts, out / "context.jsonl")
        for name, terms in (("hotwords.txt", hotwords), ("hotwords_r1.txt", r1)):
            with atomic_open(out / name) as f:
                f.writelines(t + "\n" for t in terms)
        if skipped:
            logger.warning("%s: skipped %s", out, dict(skipped))
        results[part] = report
    return results


# ----------------------------------------------------------------------------- ContextASR-Bench


def _audio_index(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(root.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()}


def prepare_contextasr(root: str | os.PathLike, out_dir: str | os.PathLike,
                       languages: Sequence[str] = tuple(CONTEXTASR_LANGS)) -> dict:
    """Write ``<out_dir>/contextasr_speech_<en|zh>/`` for each language; returns {language: report}."""
    root, out_dir = Path(root), Path(out_dir)
    results = {}
    index: Optional[dict[str, Path]] = None
    for language in languages:
        if language not in CONTEXTASR_LANGS:
            raise ValueError(f"unknown ContextASR-Bench language {language!r}; valid: {list(CONTEXTASR_LANGS)}")
        lang = CONTEXTASR_LANGS[language]
        labels = root / f"ContextASR-Speech_{language}.jsonl"
        if not labels.is_file():
            present = sorted(p.name for p in root.glob("*.jsonl")) if root.is_dir() else []
            raise ValueError(f"{labels} not found (jsonl files in {root}: {present or 'none'}); expected a local "
                             "ContextASR-Bench with ContextASR-Speech_English.jsonl / ContextASR-Speech_Mandarin.jsonl")
        skipped: Counter = Counter()
        entries, coarse, fine = [], [], []
        entities_dropped = 0
        keys: set[str] = set()
        with open(labels, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{labels}:{lineno}: not JSON ({e.msg})") from None
                key = str(item.get("uniq_id") or "")
                if not key or any(c.isspace() for c in key) or key in keys:
                    skipped["bad_or_duplicate_id"] += 1
                    continue
                txt = normalize(str(item.get("text") or ""), lang)
                if not txt:
                    skipped["no_transcript"] += 1
                    continue
                rel = str(item.get("audio") or item.get("wav_path") or "")
                wav = root / rel if rel else None
                if wav is None or not wav.is_file():
                    if index is None:
                        index = _audio_index(root)
                    wav = index.get(Path(rel).stem) if rel else None
                    if wav is None:
                        skipped["no_audio"] += 1
                        continue
                us = units(txt)
                raw_entities = item.get("entity_list") or []
                entities = [t for t in _terms(raw_entities, lang) if contains(us, units(t))]
                entities_dropped += len(_terms(raw_entities, lang)) - len(entities)
                domain = str(item.get("domain_label") or "").strip()
                entry = {"key": key, "wav": str(wav.resolve()), "txt": txt, "lang": lang}
                if isinstance(item.get("duration"), (int, float)):
                    entry["duration"] = float(item["duration"])
                entry.update(domain=domain, entities=entities)
                entries.append(entry)
                keys.add(key)
                summary = _DOMAIN_SENTENCE[lang].format(domain) if domain else None
                coarse.append(Context(key, [], summary))
                fine.append(Context(key, entities, summary))
        if not entries:
            raise ValueError(f"{labels}: no utterance with its audio under {root} (skipped: {dict(skipped)}); "
                             "extract the audio archives (tar -xf ...) inside the benchmark's root first")
        out = out_dir / f"contextasr_speech_{lang}"
        report = {"language": language, "labels": str(labels), "utterances": len(entries), "skipped": dict(skipped),
                  "entities": sum(len(e["entities"]) for e in entries),
                  "entities_not_in_text": entities_dropped,
                  "domains": len({e["domain"] for e in entries})}
        _write_set(out, entries, report)
        write_context(coarse, out / "context_coarse.jsonl")
        write_context(fine, out / "context_fine.jsonl")
        if skipped:
            logger.warning("%s: skipped %s", out, dict(skipped))
        results[language] = report
    return results
