"""Stage 0 preparation (wenet_llm.data.prepare and its CLI) on fake AISHELL-2, AISHELL-1 and
LibriSpeech trees and on the generated demo corpus."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_corpora import make_fake_aishell1, make_fake_aishell2, make_fake_librispeech

from wenet_llm.bin import prepare_corpus as prepare_cli
from wenet_llm.data.prepare import (
    DEMO_SPLITS,
    UnknownNameError,
    check_layout,
    prepare_corpus,
    prepare_demo,
)
from wenet_llm.score.wer import read_kaldi_text

REPO = Path(__file__).resolve().parents[1]


def read_list(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def check_prepared(fake, out: Path, summary: dict, lang: str, suffix: str) -> None:
    """Every part of ``fake`` is in ``out/<part>/`` with the expected keys, texts, speakers and report."""
    assert set(summary) == set(fake.parts)
    for part, expected in fake.parts.items():
        d = out / part.replace("-", "_")
        entries = read_list(d / "data.list")
        keys = [e["key"] for e in entries]
        assert keys == sorted(expected.texts), part  # every transcribed utterance, in key order
        for e in entries:
            assert e["txt"] == expected.texts[e["key"]], e
            assert e["spk"] == expected.speakers[e["key"]], e
            assert e["lang"] == lang
            wav = Path(e["wav"])
            assert wav.is_absolute() and wav.is_file() and wav.name == e["key"] + suffix, e
            assert 0.5 <= e["duration"] <= 1.5
        assert read_kaldi_text(d / "text") == {e["key"]: e["txt"] for e in entries}
        assert read_kaldi_text(d / "wav.scp") == {e["key"]: e["wav"] for e in entries}
        assert read_kaldi_text(d / "utt2spk") == {e["key"]: e["spk"] for e in entries}
        spk2utt = read_kaldi_text(d / "spk2utt")
        assert {s: sorted(u.split()) for s, u in spk2utt.items()} == {
            s: sorted(k for k in keys if expected.speakers[k] == s) for s in set(expected.speakers.values())}
        # The report on disk and the returned summary both count what lhotse dropped.
        report = json.loads((d / "validate_report.json").read_text(encoding="utf-8"))
        for r in (report, summary[part]):
            assert r["totals"]["kept"] == r["totals"]["entries"] == len(expected.texts)
            assert r["audio_without_transcript"] == len(expected.audio_without_transcript)
            assert r["audio_without_transcript_examples"] == expected.audio_without_transcript
    assert sum(len(p.audio_without_transcript) for p in fake.parts.values()) == 1  # the fakes hold one


@pytest.fixture(scope="module")
def aishell2(tmp_path_factory):
    fake = make_fake_aishell2(tmp_path_factory.mktemp("aishell2_corpus"))
    out = tmp_path_factory.mktemp("aishell2_data")
    return fake, out, prepare_corpus("aishell2", fake.root, out, num_jobs=2)


def test_aishell2(aishell2):
    fake, out, summary = aishell2
    check_prepared(fake, out, summary, "zh", ".wav")
    assert (out / "prepare_aishell2_report.json").is_file()


def test_aishell2_text_normalization(aishell2):
    _, out, _ = aishell2
    texts = {e["txt"] for part in ("train", "dev", "test") for e in read_list(out / part / "data.list")}
    # Full-width letters and space, full-width digits, Chinese punctuation, an embedded English word.
    for expected in ("播放HELLO WORLD", "价格是35元吗", "明天会下雨带伞", "我用IPHONE打电话", "今天天气很好我们去公园"):
        assert expected in texts
    assert not any(ch in t for t in texts for ch in "，。！？“”；ｈ３　")


def test_aishell1(tmp_path):
    fake = make_fake_aishell1(tmp_path / "corpus")
    summary = prepare_corpus("aishell", fake.root, tmp_path / "data")
    check_prepared(fake, tmp_path / "data", summary, "zh", ".wav")
    texts = {e["txt"] for e in read_list(tmp_path / "data" / "dev" / "data.list")}
    texts |= {e["txt"] for e in read_list(tmp_path / "data" / "test" / "data.list")}
    assert "也成为KTV的主要客户" in texts  # words joined, full-width ｋｔｖ upper-cased ASCII


def test_librispeech(tmp_path):
    fake = make_fake_librispeech(tmp_path / "corpus")
    summary = prepare_corpus("librispeech", fake.root, tmp_path / "data", parts=list(fake.parts), num_jobs=2)
    check_prepared(fake, tmp_path / "data", summary, "en", ".flac")
    assert sorted(p.name for p in (tmp_path / "data").iterdir() if p.is_dir()) == [
        "dev_clean", "dev_other", "test_clean", "test_other", "train_clean_100"]


def test_transcript_without_audio_is_counted(tmp_path):
    fake = make_fake_librispeech(tmp_path / "corpus", parts=("dev-clean",))
    flac = sorted((fake.root / "dev-clean").rglob("*.flac"))
    transcribed = [p for p in flac if p.stem not in fake.parts["dev-clean"].audio_without_transcript]
    transcribed[0].unlink()  # lhotse drops its transcript line with only a warning
    summary = prepare_corpus("librispeech", fake.root, tmp_path / "data", parts=["dev-clean"])
    assert summary["dev-clean"]["transcript_without_audio"] == 1
    assert summary["dev-clean"]["transcript_without_audio_examples"] == [transcribed[0].stem]
    report = json.loads((tmp_path / "data" / "dev_clean" / "validate_report.json").read_text())
    assert report["transcript_without_audio"] == 1


def test_text_emptied_by_normalization_is_counted(tmp_path):
    fake = make_fake_aishell2(tmp_path / "corpus", spk_per_part=1, utts_per_spk=2)
    orphan = fake.parts["train"].audio_without_transcript[0]
    with open(fake.root / "AISHELL-2" / "iOS" / "data" / "trans.txt", "a", encoding="utf-8") as f:
        f.write(f"{orphan}\t。！……\n")  # punctuation only: nothing left after normalisation
    summary = prepare_corpus("aishell2", fake.root, tmp_path / "data")
    train = summary["train"]
    assert train["audio_without_transcript"] == 0
    assert train["emptied_by_normalization"] == 1
    assert train["reasons"]["empty_text"]["count"] == 1
    assert train["reasons"]["empty_text"]["examples"][0]["key"] == orphan
    assert [e["key"] for e in read_list(tmp_path / "data" / "train" / "data.list")] == sorted(
        fake.parts["train"].texts)


# ----------------------------------------------------------------------------- layout errors


def test_missing_aishell2_part_is_named(tmp_path):
    fake = make_fake_aishell2(tmp_path, spk_per_part=1, utts_per_spk=1)
    shutil.rmtree(fake.root / "AISHELL-2" / "iOS" / "dev")
    with pytest.raises(FileNotFoundError) as e:
        prepare_corpus("aishell2", fake.root, tmp_path / "data")
    msg = str(e.value)
    assert str(fake.root / "AISHELL-2" / "iOS" / "dev" / "wav") in msg
    assert str(fake.root / "AISHELL-2" / "iOS" / "dev" / "trans.txt") in msg
    assert "iOS/data" not in msg and "iOS/test/" not in msg  # only what is missing
    assert "expected layout: CORPUS_DIR/AISHELL-2/iOS/{data,dev,test}" in msg
    assert not (tmp_path / "data").exists()


def test_aishell2_needs_train_even_for_dev_and_test(tmp_path):
    # lhotse's recipe reads all three parts, so asking only for dev and test must not get past the check.
    fake = make_fake_aishell2(tmp_path, spk_per_part=1, utts_per_spk=1)
    shutil.rmtree(fake.root / "AISHELL-2" / "iOS" / "data")
    with pytest.raises(FileNotFoundError, match="AISHELL-2/iOS/data/trans.txt"):
        check_layout("aishell2", fake.root, ["dev", "test"])


def test_missing_aishell1_and_librispeech_parts_are_named(tmp_path):
    a1 = make_fake_aishell1(tmp_path / "a1", spk_per_part=1, utts_per_spk=1)
    shutil.rmtree(a1.root / "data_aishell" / "wav" / "test")
    with pytest.raises(FileNotFoundError, match=r"data_aishell/wav/test.*expected layout: CORPUS_DIR/data_aishell"):
        check_layout("aishell", a1.root, ["dev", "test"])
    check_layout("aishell", a1.root, ["train", "dev"])  # what is there passes
    ls = make_fake_librispeech(tmp_path / "ls", parts=("dev-clean",), spk_per_part=1, utts_per_chapter=1)
    with pytest.raises(FileNotFoundError) as e:
        check_layout("librispeech", ls.root, ["dev-clean", "dev-other"])
    assert str(ls.root / "dev-other") in str(e.value) and str(ls.root / "dev-clean") not in str(e.value)
    assert "train-clean-100" in str(e.value)  # the hint lists the part names


def test_missing_corpus_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; expected layout"):
        check_layout("aishell2", tmp_path / "nowhere", ["train"])


def test_unknown_corpus_and_part(tmp_path):
    for call in (lambda: prepare_corpus("timit", tmp_path, tmp_path / "data"),
                 lambda: check_layout("timit", tmp_path, ["train"])):
        with pytest.raises(UnknownNameError) as e:
            call()
        assert "'timit'" in str(e.value)
        for name in ("aishell", "aishell2", "librispeech"):
            assert f"'{name}'" in str(e.value)
    with pytest.raises(UnknownNameError, match=r"\['eval'\].*\['train', 'dev', 'test'\]"):
        check_layout("aishell2", tmp_path, ["train", "eval"])
    assert issubclass(UnknownNameError, ValueError)


# ----------------------------------------------------------------------------- CLI


def test_cli_prepares(tmp_path):
    fake = make_fake_aishell1(tmp_path / "corpus", spk_per_part=1, utts_per_spk=2)
    rc = prepare_cli.main(["--corpus", "aishell", "--corpus-dir", str(fake.root), "--out", str(tmp_path / "data"),
                           "--parts", "dev", "test", "--override", "max_seconds=1.2"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["dev", "prepare_aishell_report.json", "test"]
    # max_seconds reached the validation: utterances over 1.2 s are rejected as too long.
    too_long = 0
    for part in ("dev", "test"):
        report = json.loads((tmp_path / "data" / part / "validate_report.json").read_text())
        durations = [e["duration"] for e in read_list(tmp_path / "data" / part / "data.list")]
        assert durations and all(d <= 1.2 for d in durations)
        too_long += report["reasons"]["too_long"]["count"]
        assert report["totals"]["kept"] + report["reasons"]["too_long"]["count"] == len(fake.parts[part].texts)
    assert too_long > 0


def test_cli_fails_on_a_split_that_keeps_nothing(tmp_path, capsys):
    # The fake audio is 0.5-1.5 s long, so max_seconds 0.4 rejects every utterance of both parts.
    fake = make_fake_aishell1(tmp_path / "corpus", spk_per_part=1, utts_per_spk=2)
    rc = prepare_cli.main(["--corpus", "aishell", "--corpus-dir", str(fake.root), "--out", str(tmp_path / "data"),
                           "--parts", "dev", "test", "--override", "max_seconds=0.4"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "no utterance kept in dev: all 2 entries rejected; test: all 2 entries rejected" in err
    assert "validate_report.json" in err
    # The reports are written before the failure, so the reasons can be read.
    report = json.loads((tmp_path / "data" / "dev" / "validate_report.json").read_text())
    assert report["reasons"]["too_long"]["count"] == 2


def test_cli_bad_part_fails_cleanly(tmp_path, capsys):
    fake = make_fake_aishell1(tmp_path / "corpus", spk_per_part=1, utts_per_spk=1)
    rc = prepare_cli.main(["--corpus", "aishell", "--corpus-dir", str(fake.root), "--out", str(tmp_path / "data"),
                           "--parts", "dev", "eval"])
    assert rc == 2
    assert "unknown aishell part(s) ['eval']; valid parts: ['train', 'dev', 'test']" in capsys.readouterr().err


def test_cli_wrong_tree_end_to_end(tmp_path):
    (tmp_path / "corpus" / "AISHELL-2" / "iOS").mkdir(parents=True)  # the top folders, no data
    proc = subprocess.run(
        [sys.executable, "-m", "wenet_llm.bin.prepare_corpus", "--corpus", "aishell2",
         "--corpus-dir", str(tmp_path / "corpus"), "--out", str(tmp_path / "data")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("prepare_corpus: aishell2 corpus at ")
    assert "AISHELL-2/iOS/data/wav" in proc.stderr and "expected layout" in proc.stderr
    assert not (tmp_path / "data").exists()


# ----------------------------------------------------------------------------- demo corpus


def test_prepare_demo(small_corpus, tmp_path):
    summary = prepare_demo(small_corpus, tmp_path / "data")
    assert tuple(summary) == DEMO_SPLITS
    for split in DEMO_SPLITS:
        source = read_list(small_corpus / split / "data.list")
        prepared = read_list(tmp_path / "data" / split / "data.list")
        assert summary[split]["totals"]["kept"] == len(source) == len(prepared) > 0, split
        assert [e["key"] for e in prepared] == [e["key"] for e in source]
        assert (tmp_path / "data" / split / "wav.scp").is_file()
        for before, after in zip(source, prepared):
            assert set(before) <= set(after)  # extra fields survive
            for k in before:
                if k != "txt":
                    assert after[k] == before[k], (split, k)
    for split in ("noise_only", "train_non_speech"):
        assert all(e["txt"] == "" for e in read_list(tmp_path / "data" / split / "data.list"))
    noise = tmp_path / "data" / "noise_train"
    assert noise.is_symlink() and noise.resolve() == (small_corpus / "noise_train").resolve()
    assert {p.name for p in noise.glob("*.wav")} == {p.name for p in (small_corpus / "noise_train").glob("*.wav")}
    hotword = read_list(tmp_path / "data" / "test_hotword" / "data.list")
    assert all(isinstance(e["hotwords"], list) and e["hotwords"] for e in hotword)
    assert (tmp_path / "data" / "test_hotword" / "utt2hotwords").is_file()
    assert set(json.loads((tmp_path / "data" / "prepare_demo_report.json").read_text())) == set(DEMO_SPLITS)


def test_prepare_demo_points_training_at_noise_and_non_speech(small_corpus, tmp_path):
    from wenet_llm.config import load_config
    from wenet_llm.config.experiment import AEDExperimentConfig
    from wenet_llm.train.aed import with_data_dir

    cfg = load_config(AEDExperimentConfig, REPO / "examples" / "demo" / "s0" / "conf" / "aed_conformer.yaml")
    assert cfg.data.noise.enabled and cfg.data.non_speech.enabled
    bare = with_data_dir(cfg, tmp_path / "data")  # nothing prepared yet: the config's own paths stay
    assert bare.data.noise.noise_dir == cfg.data.noise.noise_dir and bare.data.non_speech.cuts == cfg.data.non_speech.cuts
    prepare_demo(small_corpus, tmp_path / "data")
    prepare_demo(small_corpus, tmp_path / "data")  # again: the link is replaced, not an error
    resolved = with_data_dir(cfg, tmp_path / "data", "shar")
    assert resolved.data.noise.noise_dir == str(tmp_path / "data" / "noise_train")
    assert resolved.data.non_speech.cuts == str(tmp_path / "data" / "train_non_speech" / "data.list")
    assert resolved.data.train == str(tmp_path / "data" / "train" / "shar")


def test_prepare_demo_keeps_a_real_noise_folder(small_corpus, tmp_path):
    (tmp_path / "data" / "noise_train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="not a link; move it away"):
        prepare_demo(small_corpus, tmp_path / "data")


def test_prepare_demo_empty_text_only_allowed_in_non_speech_splits(small_corpus, tmp_path):
    corpus = tmp_path / "corpus"
    for split in (*DEMO_SPLITS, "noise_train"):
        shutil.copytree(small_corpus / split, corpus / split)
    entries = read_list(corpus / "dev" / "data.list")
    entries[0]["txt"] = "!?"  # empty after normalisation
    (corpus / "dev" / "data.list").write_text("".join(json.dumps(e) + "\n" for e in entries))
    summary = prepare_demo(corpus, tmp_path / "data")
    assert summary["dev"]["reasons"]["empty_text"]["count"] == 1
    assert summary["dev"]["totals"]["kept"] == len(entries) - 1
    assert summary["noise_only"]["reasons"]["empty_text"]["count"] == 0
    assert summary["train_non_speech"]["reasons"]["empty_text"]["count"] == 0


def test_prepare_demo_missing_split(small_corpus, tmp_path):
    shutil.copytree(small_corpus / "train", tmp_path / "corpus" / "train")
    missing = r"lacks splits \['dev'.*'noise_only', 'train_non_speech', 'noise_train'\].*make_demo_corpus"
    with pytest.raises(FileNotFoundError, match=missing):
        prepare_demo(tmp_path / "corpus", tmp_path / "data")
