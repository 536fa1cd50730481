"""Stage 0 of the corpus recipes: a local corpus copy -> validated WeNet lists and Kaldi dirs.

lhotse's own recipes read the corpora (``lhotse.recipes.aishell2.prepare_aishell2``,
``prepare_aishell`` for AISHELL-1, ``prepare_librispeech``); nothing is downloaded. Their
warnings about audio without a transcript are turned into counts in the report, every
transcript is normalised with :mod:`wenet_llm.data.text_norm`, and every entry goes through
:func:`wenet_llm.data.validate.validate_entries` before it reaches a training list.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from wenet_llm.config.data import ValidateConfig
from wenet_llm.data import formats, text_norm, validate
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

LIBRISPEECH_PARTS = (
    "train-clean-100", "train-clean-360", "train-other-500",
    "dev-clean", "dev-other", "test-clean", "test-other",
)


class UnknownNameError(ValueError):
    """An unknown corpus or part name; the message lists the valid ones."""


class EmptySplitError(ValueError):
    """A prepared split kept no utterance (its files and report are written first, for inspection)."""


def check_not_empty(summary: dict, out_dir: str | Path, what: str) -> None:
    """Raise EmptySplitError naming every split of ``summary`` (split -> validation report) that kept nothing."""
    empty = {split: r["totals"]["entries"] for split, r in summary.items() if not r["totals"]["kept"]}
    if empty:
        detail = "; ".join(f"{split}: {'no entries read' if n == 0 else f'all {n} entries rejected'}"
                           for split, n in empty.items())
        raise EmptySplitError(f"{what}: no utterance kept in {detail}. See {out_dir}/<split>/validate_report.json "
                              "for the reasons; check the corpus, or the limits of the validation config "
                              "(min_seconds, max_seconds)")


@dataclass(frozen=True)
class CorpusSpec:
    lang: str
    expected: Callable[[Path, Sequence[str]], list[Path]]  # paths that must exist
    hint: str  # the layout, for the error message


def _aishell2_paths(root: Path, parts: Sequence[str]) -> list[Path]:
    ios = root / "AISHELL-2" / "iOS"
    paths = []
    # lhotse's prepare_aishell2 always reads train, dev and test, whatever parts are asked for.
    for part in DEFAULT_PARTS["aishell2"]:
        base = ios / "data" if part == "train" else ios / part
        paths += [base / "wav", base / "trans.txt"]
    return paths


def _aishell_paths(root: Path, parts: Sequence[str]) -> list[Path]:
    return [root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"] + [
        root / "data_aishell" / "wav" / part for part in parts
    ]


def _librispeech_paths(root: Path, parts: Sequence[str]) -> list[Path]:
    return [root / part for part in parts]


CORPORA = {
    "aishell2": CorpusSpec("zh", _aishell2_paths,
                           "CORPUS_DIR/AISHELL-2/iOS/{data,dev,test}/{wav/<spk>/*.wav,trans.txt}"),
    "aishell": CorpusSpec("zh", _aishell_paths,
                          "CORPUS_DIR/data_aishell/{wav/{train,dev,test}/<spk>/*.wav,transcript/aishell_transcript_v0.8.txt}"),
    "librispeech": CorpusSpec("en", _librispeech_paths,
                              "CORPUS_DIR/<part>/<spk>/<chapter>/{*.flac,<spk>-<chapter>.trans.txt} "
                              "with <part> in " + ", ".join(LIBRISPEECH_PARTS)),
}
DEFAULT_PARTS = {
    "aishell2": ("train", "dev", "test"),
    "aishell": ("train", "dev", "test"),
    "librispeech": LIBRISPEECH_PARTS,
}
# Mini LibriSpeech parts have the same layout and are read by the same lhotse recipe.
VALID_PARTS = {**DEFAULT_PARTS, "librispeech": LIBRISPEECH_PARTS + ("train-clean-5", "dev-clean-2")}
MAX_ORPHAN_EXAMPLES = 10


def _spec(corpus: str) -> CorpusSpec:
    if corpus not in CORPORA:
        raise UnknownNameError(f"unknown corpus {corpus!r}; valid corpora: {sorted(CORPORA)}")
    return CORPORA[corpus]


def check_layout(corpus: str, corpus_dir: str | Path, parts: Sequence[str]) -> None:
    """Raise UnknownNameError for an unknown corpus or part, FileNotFoundError naming every expected
    sub-folder or file that is missing."""
    spec = _spec(corpus)
    unknown = [p for p in parts if p not in VALID_PARTS[corpus]]
    if unknown:
        raise UnknownNameError(f"unknown {corpus} part(s) {unknown}; valid parts: {list(VALID_PARTS[corpus])}")
    root = Path(corpus_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus dir {root} does not exist; expected layout: {spec.hint}")
    missing = [str(p) for p in spec.expected(root, parts) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{corpus} corpus at {root} is incomplete; missing: {missing}; expected layout: {spec.hint}"
        )


def _lhotse_manifests(corpus: str, corpus_dir: Path, parts: Sequence[str], num_jobs: int) -> dict:
    if corpus == "aishell2":
        from lhotse.recipes.aishell2 import prepare_aishell2  # not re-exported by lhotse.recipes

        return prepare_aishell2(corpus_dir, num_jobs=num_jobs)
    if corpus == "aishell":
        from lhotse.recipes import prepare_aishell

        return prepare_aishell(corpus_dir)
    from lhotse.recipes import prepare_librispeech

    return prepare_librispeech(corpus_dir, dataset_parts=list(parts), num_jobs=num_jobs)


def _audio_ids_on_disk(corpus: str, corpus_dir: Path, part: str) -> set[str]:
    """Ids (file stems, as lhotse's recording ids) of a part's audio files, to find what lhotse
    dropped for lack of a transcript."""
    if corpus == "aishell2":
        base = corpus_dir / "AISHELL-2" / "iOS" / ("data" if part == "train" else part) / "wav"
        return {p.stem for p in base.rglob("*.wav")}
    if corpus == "aishell":
        return {p.stem for p in (corpus_dir / "data_aishell" / "wav" / part).rglob("*.wav")}
    return {p.stem for p in (corpus_dir / part).rglob("*.flac")}


def _transcript_ids(corpus: str, corpus_dir: Path, part: str) -> set[str] | None:
    """Utterance ids of a part's transcripts, to find what lhotse dropped for lack of audio.

    None for AISHELL-1, whose single transcript file covers every part.
    """
    if corpus == "aishell2":
        files = [corpus_dir / "AISHELL-2" / "iOS" / ("data" if part == "train" else part) / "trans.txt"]
    elif corpus == "librispeech":
        files = sorted((corpus_dir / part).rglob("*.trans.txt"))
    else:
        return None
    ids = set()
    for path in files:
        with open(path, encoding="utf-8") as f:
            ids.update(line.split(maxsplit=1)[0] for line in f if line.strip())
    return ids


def manifests_to_entries(recordings, supervisions, lang: str) -> tuple[list[dict], int]:
    """lhotse manifests -> entries with normalised text; returns (entries, emptied by normalisation)."""
    entries, emptied = [], 0
    # Sorted by key: lhotse lists files in directory order, which differs between file systems.
    for sup in sorted(supervisions, key=lambda s: s.id):
        rec = recordings[sup.recording_id]
        if len(rec.sources) != 1 or rec.sources[0].type != "file":
            raise ValueError(f"{rec.id}: only single-file recordings are supported, got {rec.sources}")
        text = text_norm.normalize(sup.text or "", lang)
        emptied += bool(sup.text and sup.text.strip()) and not text
        entry = {"key": sup.id, "wav": str(Path(rec.sources[0].source).resolve()), "txt": text, "lang": lang}
        if sup.speaker:
            entry["spk"] = sup.speaker
        if sup.start > 0 or abs(sup.duration - rec.duration) > 1e-3:
            entry["start"] = round(sup.start, 4)
            entry["end"] = round(sup.start + sup.duration, 4)
        entries.append(entry)
    return entries, emptied


def write_split(entries: Sequence[dict], split_dir: Path, cfg: ValidateConfig, extra: dict | None = None) -> dict:
    """Validate, then write data.list, a Kaldi dir and the validation report of one split.

    ``extra`` (counts from before validation) is added to the report.
    """
    clean, report = validate.validate_entries(entries, cfg)
    report.update(extra or {})
    split_dir.mkdir(parents=True, exist_ok=True)
    formats.write_data_list(clean, split_dir / "data.list")
    formats.write_kaldi_dir(clean, split_dir)
    with atomic_open(split_dir / "validate_report.json") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)
    return report


# Training material beside the splits, in every prepared data dir that has it (what training's
# data.noise and data.non_speech read; see wenet_llm.train.experiments.with_augmentation_data):
NOISE_TRAIN_DIR = "noise_train"  # <data>/noise_train: a folder of noise clips, or a link to one (e.g. MUSAN)
TRAIN_NON_SPEECH = "train_non_speech"  # <data>/train_non_speech/data.list: non-speech clips, empty targets

DEMO_SPLITS = ("train", "dev", "test", "test_hotword", "test_noisy", "noise_only", TRAIN_NON_SPEECH)
_DEMO_NON_SPEECH = ("noise_only", TRAIN_NON_SPEECH)


def link_noise_dir(source: str | Path, link: str | Path) -> None:
    """Make ``link`` a link to the noise folder ``source``, replacing an earlier link (never a real folder)."""
    source, link = Path(source).resolve(), Path(link)
    if not source.is_dir():
        raise FileNotFoundError(f"noise folder {source} does not exist")
    if link.exists() and not link.is_symlink():
        raise FileExistsError(f"{link} exists and is not a link; move it away so that it can point at {source}")
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(link.name + ".tmp-link")
    if tmp.is_symlink():
        tmp.unlink()
    tmp.symlink_to(source, target_is_directory=True)
    tmp.replace(link)  # a rename: never a moment without the link


def prepare_demo(corpus_dir: str | Path, out_dir: str | Path, cfg: ValidateConfig | None = None) -> dict:
    """The generated demo corpus (its Kaldi dirs) -> validated ``out_dir/<split>/`` and the link
    ``out_dir/noise_train`` to its training noise; EmptySplitError when a split kept nothing."""
    cfg = cfg or ValidateConfig()
    corpus_dir = Path(corpus_dir)
    missing = [s for s in DEMO_SPLITS if not (corpus_dir / s / "data.list").is_file()]
    missing += [] if (corpus_dir / NOISE_TRAIN_DIR).is_dir() else [NOISE_TRAIN_DIR]
    if missing:
        raise FileNotFoundError(f"demo corpus at {corpus_dir} lacks splits {missing}; generate it with: "
                                f"python -m wenet_llm.bin.make_demo_corpus --out {corpus_dir}")
    summary = {}
    for split in DEMO_SPLITS:
        # data.list rather than the Kaldi dir: it carries hotwords, recordings and topics.
        entries = list(formats.iter_entries(corpus_dir / split / "data.list"))
        for e in entries:
            if e.get("lang") in ("en", "zh"):
                e["txt"] = text_norm.normalize(e["txt"], e["lang"])
        # Non-speech clips have empty targets by design.
        split_cfg = replace(cfg, allow_empty_text=cfg.allow_empty_text or split in _DEMO_NON_SPEECH)
        summary[split] = write_split(entries, Path(out_dir) / split, split_cfg)
    link_noise_dir(corpus_dir / NOISE_TRAIN_DIR, Path(out_dir) / NOISE_TRAIN_DIR)
    with atomic_open(Path(out_dir) / "prepare_demo_report.json") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
    check_not_empty(summary, out_dir, f"demo corpus at {corpus_dir}")
    return summary


def prepare_corpus(corpus: str, corpus_dir: str | Path, out_dir: str | Path,
                   parts: Sequence[str] | None = None, cfg: ValidateConfig | None = None,
                   num_jobs: int = 1) -> dict:
    """Prepare ``parts`` of a local corpus into ``out_dir/<part>/`` (part names with '-' -> '_');
    EmptySplitError when a part kept nothing."""
    spec = _spec(corpus)  # before DEFAULT_PARTS[corpus], so an unknown name lists the valid ones
    parts = tuple(parts or DEFAULT_PARTS[corpus])
    cfg = cfg or ValidateConfig()
    corpus_dir = Path(corpus_dir)
    check_layout(corpus, corpus_dir, parts)
    manifests = _lhotse_manifests(corpus, corpus_dir, parts, num_jobs)
    summary = {}
    for part in parts:
        if part not in manifests:
            raise RuntimeError(f"lhotse produced no manifests for {corpus} part {part!r} under {corpus_dir}")
        recordings, supervisions = manifests[part]["recordings"], manifests[part]["supervisions"]
        entries, emptied = manifests_to_entries(recordings, supervisions, spec.lang)
        on_disk = _audio_ids_on_disk(corpus, corpus_dir, part)
        # lhotse drops audio without a transcript with a warning only: count it here, by id
        # (a count difference would hide it behind transcript lines whose audio is missing).
        orphans = sorted(on_disk - {sup.recording_id for sup in supervisions})
        extra = {"audio_without_transcript": len(orphans),
                 "audio_without_transcript_examples": orphans[:MAX_ORPHAN_EXAMPLES],
                 "emptied_by_normalization": int(emptied)}
        transcript_ids = _transcript_ids(corpus, corpus_dir, part)
        if transcript_ids is not None:  # lhotse also drops transcripts whose audio is missing
            no_audio = sorted(transcript_ids - {sup.id for sup in supervisions})
            extra["transcript_without_audio"] = len(no_audio)
            extra["transcript_without_audio_examples"] = no_audio[:MAX_ORPHAN_EXAMPLES]
        report = write_split(entries, Path(out_dir) / part.replace("-", "_"), cfg, extra)
        summary[part] = report
        logger.info("%s %s: %d audio files, %d with transcripts, %d kept after validation",
                    corpus, part, len(on_disk), len(entries), report["totals"]["kept"])
    with atomic_open(Path(out_dir) / f"prepare_{corpus}_report.json") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
    check_not_empty(summary, out_dir, f"{corpus} corpus at {corpus_dir}")
    return summary
