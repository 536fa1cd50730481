"""The generated demo corpus: determinism, splits, formats, hotword lists, name pools, noise."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wenet_llm.config import load_config
from wenet_llm.config.demo_corpus import DemoCorpusConfig
from wenet_llm.synth import demo_corpus, demo_text
from wenet_llm.score.wer import read_kaldi_text

SPEECH_SPLITS = ("train", "dev", "test", "test_hotword", "test_noisy")
NON_SPEECH_SPLITS = ("noise_only", "train_non_speech")
ALL_SPLITS = SPEECH_SPLITS + NON_SPEECH_SPLITS


def read_list(split_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (split_dir / "data.list").read_text(encoding="utf-8").splitlines()]


def test_split_sizes(small_corpus, small_corpus_config):
    sizes = demo_corpus.split_sizes(small_corpus_config)
    assert sum(sizes.values()) == small_corpus_config.num_utts
    for split, size in sizes.items():
        assert len(read_list(small_corpus / split)) == size, split
    assert len(read_list(small_corpus / "test_noisy")) == sizes["test"] * len(small_corpus_config.noisy_snrs_db)
    for split in NON_SPEECH_SPLITS:
        assert len(read_list(small_corpus / split)) == small_corpus_config.min_noise_only  # 5% of 60 < 5


def test_kaldi_dirs_agree_with_lists(small_corpus):
    for split in ALL_SPLITS:
        d = small_corpus / split
        entries = read_list(d)
        keys = [e["key"] for e in entries]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        wav_scp, text, utt2spk, utt2dur = (read_kaldi_text(d / n) for n in ("wav.scp", "text", "utt2spk", "utt2dur"))
        assert list(wav_scp) == keys and list(text) == keys and list(utt2spk) == keys and list(utt2dur) == keys
        spk2utt = read_kaldi_text(d / "spk2utt")
        assert sorted(u for utts in spk2utt.values() for u in utts.split()) == keys
        for e in entries:
            assert wav_scp[e["key"]] == e["wav"] and text[e["key"]] == e["txt"]
            assert e["key"].startswith(utt2spk[e["key"]])  # Kaldi sort-order rule
            assert abs(float(utt2dur[e["key"]]) - e["duration"]) < 1e-3


def test_audio_format(small_corpus):
    for split in ALL_SPLITS:
        for e in read_list(small_corpus / split):
            info = sf.info(e["wav"])
            assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16"), e["key"]
            assert abs(info.frames / 16000 - e["duration"]) < 1e-3
            if split not in NON_SPEECH_SPLITS:
                assert 1.0 < info.frames / 16000 < 12.0, (e["key"], info.frames / 16000)


def test_transcripts_are_normalised_and_bilingual(small_corpus):
    langs = set()
    for split in ("train", "dev", "test", "test_hotword"):
        for e in read_list(small_corpus / split):
            langs.add(e["lang"])
            pattern = r"[A-Z']+( [A-Z']+)*" if e["lang"] == "en" else r"[\u4e00-\u9fff]+"
            assert re.fullmatch(pattern, e["txt"]), e
    assert langs == {"en", "zh"}


def test_hotword_lists_contain_targets_and_distractors(small_corpus, small_corpus_config):
    entries = read_list(small_corpus / "test_hotword")
    utt2hotwords = {k: json.loads(v) for k, v in read_kaldi_text(small_corpus / "test_hotword" / "utt2hotwords").items()}
    for e in entries:
        assert e["entities"], f"{e['key']} names no entity"
        assert utt2hotwords[e["key"]] == e["hotwords"]
        for term in e["entities"]:
            assert term in e["txt"] and term in e["hotwords"]
        distractors = [h for h in e["hotwords"] if h not in e["txt"]]
        assert len(distractors) == small_corpus_config.hotword_distractors
        assert len(set(e["hotwords"])) == len(e["hotwords"])


def test_entities_rare_in_train(small_corpus, small_corpus_config):
    entities = json.loads((small_corpus / "entities.json").read_text(encoding="utf-8"))
    train_text = [e["txt"] for e in read_list(small_corpus / "train")]
    for ent in entities:
        in_train = sum(_says(t, ent["text"], ent["lang"]) for t in train_text)
        assert in_train == ent["train_count"] <= small_corpus_config.max_train_count_per_entity
        if not ent["seen_in_train"]:
            assert in_train == 0
    hotword_terms = {t for e in read_list(small_corpus / "test_hotword") for t in e["entities"]}
    unseen = {e["text"] for e in entities if not e["seen_in_train"]}
    assert hotword_terms & unseen, "test_hotword should name entities never seen in training"


def test_recordings_group_utterances_by_topic(small_corpus):
    recordings = json.loads((small_corpus / "recordings.json").read_text(encoding="utf-8"))
    by_key = {e["key"]: e for s in ("train", "dev", "test", "test_hotword") for e in read_list(small_corpus / s)}
    assert sum(len(r["utts"]) for r in recordings.values()) == len(by_key)
    for rec_id, rec in recordings.items():
        for key in rec["utts"]:
            e = by_key[key]
            assert (e["rec"], e["topic"], e["spk"], e["lang"]) == (rec_id, rec["topic"], rec["spk"], rec["lang"])


@pytest.mark.parametrize("split", NON_SPEECH_SPLITS)
def test_non_speech_clips_have_empty_targets(small_corpus, small_corpus_config, split):
    entries = read_list(small_corpus / split)
    assert all(e["txt"] == "" and e["lang"] == "none" and "entities" not in e for e in entries)
    cfg = small_corpus_config
    kinds = cfg.noise_only_kinds if split == "noise_only" else cfg.train_non_speech_kinds
    assert {e["noise"]["kind"] for e in entries} == set(kinds)
    for line in (small_corpus / split / "text").read_text().splitlines():
        assert " " not in line  # the key alone: an empty transcript
    for e in entries:
        assert 2.0 <= e["duration"] <= 10.0


def _clip_heads(paths) -> set[bytes]:
    return {sf.read(p, frames=4000, dtype="int16")[0].tobytes() for p in paths}


def test_training_non_speech_and_noise_are_not_test_clips(small_corpus, small_corpus_config):
    test_keys = {e["key"] for e in read_list(small_corpus / "noise_only")}
    train = read_list(small_corpus / "train_non_speech")
    assert not test_keys & {e["key"] for e in train}
    test_heads = _clip_heads(e["wav"] for e in read_list(small_corpus / "noise_only"))
    noise_files = sorted((small_corpus / "noise_train").glob("*.wav"))
    train_heads = _clip_heads([e["wav"] for e in train] + noise_files)
    assert len(train_heads) == len(train) + len(noise_files)  # no clip repeats another
    assert not test_heads & train_heads


def test_noise_train_folder(small_corpus, small_corpus_config):
    cfg = small_corpus_config
    files = sorted((small_corpus / "noise_train").iterdir())
    assert all(f.suffix == ".wav" for f in files)
    kinds = Counter(f.name.split("-")[0] for f in files)
    assert kinds == {k: cfg.train_noise_clips_per_kind for k in cfg.train_noise_kinds}
    assert "babble" not in kinds
    for f in files:
        info = sf.info(f)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert info.frames == int(cfg.train_noise_seconds * 16000)
        assert np.abs(sf.read(f)[0]).max() > 0
    summary = json.loads((small_corpus / "summary.json").read_text())
    assert summary["noise_train"]["test_noisy_unseen_kinds"] == ["babble"]


def test_noisy_set_matches_requested_snr(small_corpus, small_corpus_config):
    clean = {e["key"]: e for e in read_list(small_corpus / "test")}
    by_clean: dict[str, list] = {}
    for e in read_list(small_corpus / "test_noisy"):
        src = clean[e["noise"]["clean_key"]]
        assert e["txt"] == src["txt"] and e["entities"] == src["entities"]
        assert e["noise"]["seen_in_train"] == (e["noise"]["kind"] in small_corpus_config.train_noise_kinds)
        by_clean.setdefault(src["key"], []).append((e["noise"]["snr_db"], e["noise"]["kind"]))
        speech, _ = sf.read(src["wav"], dtype="float64")
        mixture, _ = sf.read(e["wav"], dtype="float64")
        # The mixture may have been scaled down as a whole to avoid clipping: fit that gain first.
        gain = float(np.dot(mixture, speech) / np.dot(speech, speech))
        residual = mixture / gain - speech
        snr = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
        assert abs(snr - e["noise"]["snr_db"]) < 0.5, (e["key"], snr)
    # Every test utterance at every SNR, meeting a different kind at each (3 SNRs, 3 kinds).
    assert set(by_clean) == set(clean)
    for pairs in by_clean.values():
        assert sorted(snr for snr, _ in pairs) == sorted(small_corpus_config.noisy_snrs_db)
        assert {kind for _, kind in pairs} == set(small_corpus_config.noisy_kinds)


# ----------------------------------------------------------------------------- name pools


def _core(name: dict) -> str:
    """The part of a name that marks it as one name: the English invented word, the Mandarin name
    without its kind suffix (person names are whole)."""
    if name["lang"] == "en":
        return name["text"].split()[0]
    if name["kind"] == "person":
        return name["text"]
    return name["text"][:2]


def _says(text: str, name: str, lang: str) -> int:
    return f" {text} ".count(f" {name} ") if lang == "en" else text.count(name)


def check_name_pools(entities: list[dict], rare: list[dict], distractors: list[dict],
                     transcripts: dict[str, list[dict]], max_rare_count: int) -> None:
    """The properties a contextual stage relies on, on any corpus (entries: data.list dicts per split)."""
    pools = {"entities": entities, "train": [r for r in rare if r["split"] == "train"],
             "dev": [r for r in rare if r["split"] == "dev"], "distractors": distractors}
    texts = [n["text"] for pool in pools.values() for n in pool]
    assert len(texts) == len(set(texts)), "a name is in two pools, or twice in one"
    cores = {name: {(n["lang"], _core(n)) for n in pool} for name, pool in pools.items()}
    for a in pools:
        for b in pools:
            if a < b:
                assert not cores[a] & cores[b], (a, b, sorted(cores[a] & cores[b])[:5])
    zh = [t for t in texts if not t.isascii()]
    zh_set = set(zh)
    for t in zh:  # no Mandarin name inside another
        assert not any(t[i:j] in zh_set for i in range(len(t)) for j in range(i + 1, len(t) + 1) if t[i:j] != t), t

    by_lang = {lang: [e["txt"] for s in ("train", "dev", "test", "test_hotword") for e in transcripts[s]
                      if e["lang"] == lang] for lang in ("en", "zh")}
    unseen = [e for e in entities if not e["seen_in_train"]]
    for split in ("train", "dev"):
        for e in transcripts[split]:
            for name in unseen:
                assert not _says(e["txt"], name["text"], name["lang"]), (split, e["key"], name["text"])
    for name in distractors:
        assert not any(_says(t, name["text"], name["lang"]) for t in by_lang[name["lang"]]), name  # never spoken
    train_says = Counter()
    for e in transcripts["train"]:
        for name in e["entities"]:
            train_says[name] += _says(e["txt"], name, e["lang"])
    for r in pools["train"]:
        assert train_says[r["text"]] == r["count"], r
        assert 1 <= r["count"] <= max_rare_count
        assert sum(_says(t, r["text"], r["lang"]) for t in by_lang[r["lang"]]) == r["count"]  # only in train
    for r in pools["dev"]:
        assert r["count"] == 1 and sum(_says(t, r["text"], r["lang"]) for t in by_lang[r["lang"]]) == 1


def test_name_pools(small_corpus, small_corpus_config):
    load = lambda name: json.loads((small_corpus / name).read_text(encoding="utf-8"))  # noqa: E731
    transcripts = {s: read_list(small_corpus / s) for s in SPEECH_SPLITS}
    rare = load("rare_names.json")
    check_name_pools(load("entities.json"), rare, load("distractor_names.json"), transcripts,
                     small_corpus_config.max_rare_name_count)
    distractors = load("distractor_names.json")
    assert len(distractors) == 2 * len(demo_text.ENTITY_KINDS) * small_corpus_config.distractor_names_per_kind
    assert {(d["lang"], d["kind"]) for d in distractors} == {(lang, k) for lang in demo_text.LANGS
                                                            for k in demo_text.ENTITY_KINDS}
    rare_texts = {r["text"] for r in rare}
    train = transcripts["train"]
    with_rare = [e for e in train if set(e["entities"]) & rare_texts]
    assert all(len(e["entities"]) <= 1 for e in train)
    assert 0.02 < len(with_rare) / len(train) < 0.4  # rare_name_rate 0.15 on 48 utterances
    for split in SPEECH_SPLITS:
        for e in transcripts[split]:
            assert isinstance(e["entities"], list), (split, e["key"])  # present on every speech utterance
            assert all(name in e["txt"] for name in e["entities"])


def test_default_corpus_names_many_rare_names():
    """The default 3000-utterance corpus, planned only (no audio): what issue-sized contextual training needs."""
    cfg = DemoCorpusConfig()
    utts, planner, _ = demo_corpus.plan_speech(cfg, random.Random(cfg.seed))
    transcripts = {s: [] for s in SPEECH_SPLITS}
    for u in utts:
        transcripts[u.split].append(u.to_list_entry(cfg.sample_rate))
    rare = planner.rare_report()
    distractors = [vars(e) for e in planner.distractors]
    check_name_pools(planner.report(), rare, distractors, transcripts, cfg.max_rare_name_count)
    train_names = [r for r in rare if r["split"] == "train"]
    assert len(train_names) >= 300
    assert {r["lang"] for r in train_names} == {"en", "zh"}
    share = sum(r["count"] for r in train_names) / len(transcripts["train"])
    assert 0.1 <= share <= 0.2, share
    assert len(distractors) == 4000


@pytest.mark.parametrize("num_utts,seed", [(200, 0), (200, 1), (200, 2), (60, 7), (3000, 0)])
def test_every_split_is_bilingual_at_the_configured_share(num_utts, seed):
    """Recording languages are balanced per split: a smoke corpus' 10-utterance test split is never monolingual."""
    cfg = DemoCorpusConfig(num_utts=num_utts, seed=seed)
    utts, _, meta = demo_corpus.plan_speech(cfg, random.Random(cfg.seed))
    for split, size in demo_corpus.split_sizes(cfg).items():
        langs = Counter(u.lang for u in utts if u.split == split)
        assert set(langs) == {"en", "zh"}, (split, langs)
        assert sum(langs.values()) == size
        # off the configured share by at most one recording
        assert abs(langs["zh"] - cfg.zh_fraction * size) <= cfg.max_utts_per_recording, (split, langs)
    for rec in meta["recordings"].values():
        assert {u.lang for u in utts if u.key in rec["utts"]} == {rec["lang"]}


@pytest.mark.parametrize("zh_fraction,lang", [(0.0, "en"), (1.0, "zh")])
def test_one_language_corpus(zh_fraction, lang):
    cfg = DemoCorpusConfig(num_utts=200, zh_fraction=zh_fraction)
    utts, _, _ = demo_corpus.plan_speech(cfg, random.Random(cfg.seed))
    assert {u.lang for u in utts} == {lang}


def test_deterministic_for_a_seed_and_any_worker_count(small_corpus, small_corpus_config, tmp_path):
    again = tmp_path / "again"
    demo_corpus.generate(small_corpus_config, again, num_jobs=1)
    for split in ALL_SPLITS:
        first, second = read_list(small_corpus / split), read_list(again / split)
        assert [{**e, "wav": ""} for e in first] == [{**e, "wav": ""} for e in second]
        for a, b in zip(first, second):
            assert sf.read(a["wav"])[0].tobytes() == sf.read(b["wav"])[0].tobytes(), a["key"]
    for name in ("entities.json", "rare_names.json", "distractor_names.json", "recordings.json"):
        assert (small_corpus / name).read_bytes() == (again / name).read_bytes(), name
    noise = sorted(p.name for p in (small_corpus / "noise_train").iterdir())
    assert noise == sorted(p.name for p in (again / "noise_train").iterdir())
    for name in noise:
        assert (small_corpus / "noise_train" / name).read_bytes() == (again / "noise_train" / name).read_bytes()
    other = load_config(DemoCorpusConfig, None, ["num_utts=60", "seed=8"])
    plan_a, _, _ = demo_corpus.plan_speech(small_corpus_config, demo_corpus.random.Random(7))
    plan_b, _, _ = demo_corpus.plan_speech(other, demo_corpus.random.Random(8))
    assert [u.text for u in plan_a] != [u.text for u in plan_b]


def test_cli_writes_resolved_config(tmp_path):
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "wenet_llm.bin.make_demo_corpus", "--out", str(out), "--num-utts", "20",
           "--seed", "3", "--override", "noise_only_kinds=[tones]", "--num-jobs", "2"]
    subprocess.run(cmd, check=True, capture_output=True)
    resolved = load_config(DemoCorpusConfig, out / "corpus_config.yaml")
    assert resolved.num_utts == 20 and resolved.seed == 3 and resolved.noise_only_kinds == ["tones"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train"]["utts"] == 16 and summary["noise_only"]["utts"] == 5
    assert summary["train_non_speech"]["utts"] == 5


def test_cli_rejects_bad_config(tmp_path):
    cmd = [sys.executable, "-m", "wenet_llm.bin.make_demo_corpus", "--out", str(tmp_path), "--override", "nmu_utts=3"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 2 and "unknown key 'nmu_utts'" in result.stderr and "num_utts" in result.stderr


def test_unknown_noise_kind_is_an_error(tmp_path):
    cfg = load_config(DemoCorpusConfig, None, ["num_utts=20", "noise_only_kinds=[thunder]"])
    with pytest.raises(ValueError, match="thunder.*valid kinds"):
        demo_corpus.generate(cfg, tmp_path)
