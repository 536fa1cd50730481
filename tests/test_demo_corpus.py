"""The generated demo corpus: determinism, splits, formats, hotword lists, noise."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wenet_llm.config import load_config
from wenet_llm.config.demo_corpus import DemoCorpusConfig
from wenet_llm.synth import demo_corpus
from wenet_llm.score.wer import read_kaldi_text

ALL_SPLITS = ("train", "dev", "test", "test_hotword", "test_noisy", "noise_only")


def read_list(split_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (split_dir / "data.list").read_text(encoding="utf-8").splitlines()]


def test_split_sizes(small_corpus, small_corpus_config):
    sizes = demo_corpus.split_sizes(small_corpus_config)
    assert sum(sizes.values()) == small_corpus_config.num_utts
    for split, size in sizes.items():
        assert len(read_list(small_corpus / split)) == size, split
    assert len(read_list(small_corpus / "test_noisy")) == sizes["test"]
    assert len(read_list(small_corpus / "noise_only")) == small_corpus_config.min_noise_only  # 5% of 60 < 5


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
            if split != "noise_only":
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
        in_train = sum(t.count(ent["text"]) for t in train_text)
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


def test_noise_only_has_empty_targets(small_corpus, small_corpus_config):
    entries = read_list(small_corpus / "noise_only")
    assert all(e["txt"] == "" for e in entries)
    assert {e["noise"]["kind"] for e in entries} == set(small_corpus_config.noise_only_kinds)
    for line in (small_corpus / "noise_only" / "text").read_text().splitlines():
        assert " " not in line  # the key alone: an empty transcript
    for e in entries:
        assert 2.0 <= e["duration"] <= 10.0


def test_noisy_set_matches_requested_snr(small_corpus):
    clean = {e["key"]: e for e in read_list(small_corpus / "test")}
    pairs = set()
    for e in read_list(small_corpus / "test_noisy"):
        src = clean[e["noise"]["clean_key"]]
        assert e["txt"] == src["txt"]
        pairs.add((e["noise"]["kind"], e["noise"]["snr_db"]))
        speech, _ = sf.read(src["wav"], dtype="float64")
        mixture, _ = sf.read(e["wav"], dtype="float64")
        # The mixture may have been scaled down as a whole to avoid clipping: fit that gain first.
        gain = float(np.dot(mixture, speech) / np.dot(speech, speech))
        residual = mixture / gain - speech
        snr = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
        assert abs(snr - e["noise"]["snr_db"]) < 0.5, (e["key"], snr)
    assert len(pairs) == len(clean)  # 3 test utterances -> 3 different (kind, snr) pairs


def test_deterministic_for_a_seed_and_any_worker_count(small_corpus, small_corpus_config, tmp_path):
    again = tmp_path / "again"
    demo_corpus.generate(small_corpus_config, again, num_jobs=1)
    for split in ALL_SPLITS:
        first, second = read_list(small_corpus / split), read_list(again / split)
        assert [(e["key"], e["txt"]) for e in first] == [(e["key"], e["txt"]) for e in second]
        for a, b in zip(first, second):
            assert sf.read(a["wav"])[0].tobytes() == sf.read(b["wav"])[0].tobytes(), a["key"]
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


def test_cli_rejects_bad_config(tmp_path):
    cmd = [sys.executable, "-m", "wenet_llm.bin.make_demo_corpus", "--out", str(tmp_path), "--override", "nmu_utts=3"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 2 and "unknown key 'nmu_utts'" in result.stderr and "num_utts" in result.stderr


def test_unknown_noise_kind_is_an_error(tmp_path):
    cfg = load_config(DemoCorpusConfig, None, ["num_utts=20", "noise_only_kinds=[thunder]"])
    with pytest.raises(ValueError, match="thunder.*valid kinds"):
        demo_corpus.generate(cfg, tmp_path)
