"""Contextual test-set preparation on fake trees: AISHELL-1 hotword subsets (SeACo-Paraformer) and ContextASR-Bench."""

from __future__ import annotations

import json

import pytest
from fake_corpora import (CONTEXTASR_ITEMS, SEACO_HOTWORDS, make_fake_aishell1, make_fake_contextasr,
                          make_fake_seaco_hotword)

from wenet_llm.bin import prepare_context_testsets
from wenet_llm.data.context import read_context
from wenet_llm.data.context_testsets import prepare_aishell1_hotword, prepare_contextasr
from wenet_llm.data.formats import read_data_list, read_kaldi_dir

HOTWORDS = [norm for _, norm in SEACO_HOTWORDS]  # 楼市 深圳 KTV 邬迪 拓朗


@pytest.fixture(scope="module")
def aishell(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seaco")
    a1 = make_fake_aishell1(tmp / "aishell1")
    seaco = make_fake_seaco_hotword(tmp / "SeACo-Paraformer", a1)
    return tmp, a1, seaco


def test_aishell1_hotword_subsets(aishell):
    tmp, a1, seaco = aishell
    reports = prepare_aishell1_hotword(a1.root, seaco.parent, tmp / "out", list_size=3, seed=0)  # the repo root works
    for part in ("test", "dev"):
        out = tmp / "out" / f"aishell1_hotword_{part}"
        entries = list(read_data_list(out / "data.list"))
        assert [e["key"] for e in entries] == sorted(a1.parts[part].texts)  # the id without audio is skipped
        assert reports[part]["skipped"] == {"no_audio": 1} and reports[part]["uttids"] == 5
        assert (out / "hotwords.txt").read_text(encoding="utf-8").split() == HOTWORDS
        ctx = read_context(out / "context.jsonl")
        for e in entries:
            assert e["txt"] == a1.parts[part].texts[e["key"]] and e["lang"] == "zh"
            assert e["spk"] == e["key"][6:11]
            said = [h for h in HOTWORDS if h in e["txt"]]
            assert e["entities"] == said and ctx[e["key"]].extra["targets"] == said
            lst = e["hotwords"]
            assert len(lst) == 3 and len(set(lst)) == 3 and set(said) <= set(lst) <= set(HOTWORDS)
            assert all(h in said or h not in e["txt"] for h in lst)
            assert ctx[e["key"]].hotwords == lst
        assert [e["key"] for e in read_kaldi_dir(out)] == [e["key"] for e in entries]
    # Fake AISHELL-1 test texts hold 楼市, KTV (written full-width in hotword.txt) and 深圳, one each.
    test = reports["test"]
    assert (test["hotwords_said"], test["hotword_occurrences"], test["utterances_without_hotword"]) == (3, 3, 1)
    assert test["text_source"].endswith("data/test/text") and reports["dev"]["text_source"].endswith(
        "aishell_transcript_v0.8.txt")
    assert (tmp / "out" / "aishell1_hotword_test" / "hotwords_r1.txt").read_text(encoding="utf-8") == "深圳\n"
    assert (tmp / "out" / "aishell1_hotword_dev" / "hotwords_r1.txt").read_text(encoding="utf-8") == ""
    # list_size 0: the whole list for every utterance, in the list's order; the same seed, the same lists.
    prepare_aishell1_hotword(a1.root, seaco, tmp / "full", parts=["test"], list_size=0)
    assert all(e["hotwords"] == HOTWORDS for e in read_data_list(tmp / "full" / "aishell1_hotword_test" / "data.list"))
    prepare_aishell1_hotword(a1.root, seaco, tmp / "again", list_size=3, seed=0)
    for part in ("test", "dev"):
        name = f"aishell1_hotword_{part}/data.list"
        assert (tmp / "out" / name).read_bytes() == (tmp / "again" / name).read_bytes()


def test_aishell1_hotword_errors(aishell, tmp_path):
    _, a1, seaco = aishell
    with pytest.raises(ValueError, match="no {test,dev}/uttid found"):
        prepare_aishell1_hotword(a1.root, tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="no data_aishell/wav/ folder"):
        prepare_aishell1_hotword(tmp_path, seaco, tmp_path / "out")
    (tmp_path / "data_aishell" / "wav").mkdir(parents=True)
    with pytest.raises(ValueError, match="none of the 5 utterances .* has audio"):
        prepare_aishell1_hotword(tmp_path, seaco, tmp_path / "out", parts=["test"])


def test_contextasr_speech(tmp_path):
    root = make_fake_contextasr(tmp_path / "ContextASR-Bench")
    reports = prepare_contextasr(root, tmp_path / "out")
    en = tmp_path / "out" / "contextasr_speech_en"
    entries = list(read_data_list(en / "data.list"))
    assert [e["key"] for e in entries] == ["BOSON-000001_EN", "BOSON-000002_EN"]  # the third has no audio
    first, second = entries
    assert first["txt"] == "DR COLLINS MET ZORBLAX LABS THEN CALLED MIA" and first["lang"] == "en"
    assert first["entities"] == ["ZORBLAX LABS", "MIA"]  # Quintor is not said: dropped
    assert first["domain"] == "Science; Tech" and first["duration"] == 1.0
    assert "hotwords" not in first and "summary" not in first  # contextless as it is
    assert second["wav"].endswith("English/part2/BOSON-000002_EN.wav")  # found by its file name
    assert second["entities"] == ["A M A'S"]
    coarse, fine = read_context(en / "context_coarse.jsonl"), read_context(en / "context_fine.jsonl")
    assert coarse["BOSON-000001_EN"].hotwords == [] and fine["BOSON-000001_EN"].hotwords == ["ZORBLAX LABS", "MIA"]
    assert coarse["BOSON-000001_EN"].summary == fine["BOSON-000001_EN"].summary == \
        "This audio belongs to the Science; Tech field."
    assert reports["English"]["skipped"] == {"no_audio": 1} and reports["English"]["entities_not_in_text"] == 1
    zh = tmp_path / "out" / "contextasr_speech_zh"
    zh_entries = {e["key"]: e for e in read_data_list(zh / "data.list")}
    assert zh_entries["MSRA-000001_ZH"]["txt"] == "溥杰老先生掏出清宫秘档"
    assert zh_entries["MSRA-000002_ZH"]["entities"] == ["C反应蛋白数值"]
    assert read_context(zh / "context_fine.jsonl")["MSRA-000001_ZH"].summary == "这段语音属于历史研究领域。"
    assert reports["Mandarin"]["utterances"] == 2 and reports["Mandarin"]["domains"] == 2
    assert sum(item[1] == "Chinese" for item in CONTEXTASR_ITEMS) == 2
    # One language only; a missing subset names the files that are there.
    prepare_contextasr(root, tmp_path / "en_only", ["English"])
    assert not (tmp_path / "en_only" / "contextasr_speech_zh").exists()
    (root / "ContextASR-Speech_Mandarin.jsonl").unlink()
    with pytest.raises(ValueError, match=r"ContextASR-Speech_Mandarin.jsonl not found .*ContextASR-Speech_English"):
        prepare_contextasr(root, tmp_path / "out2", ["Mandarin"])


def test_command_line(aishell, tmp_path, capsys):
    _, a1, seaco = aishell
    root = make_fake_contextasr(tmp_path / "casr")
    assert prepare_context_testsets.main(["--aishell1-dir", str(a1.root), "--hotword-dir", str(seaco),
                                          "--aishell1-parts", "test", "--contextasr-dir", str(root),
                                          "--contextasr-langs", "English", "--out", str(tmp_path / "data")]) == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["aishell1_hotword_test", "contextasr_speech_en"]
    entries = list(read_data_list(tmp_path / "data" / "aishell1_hotword_test" / "data.list"))
    assert all(len(e["hotwords"]) == len(HOTWORDS) for e in entries)  # default list size 100 > the 5 terms
    report = json.loads((tmp_path / "data" / "contextasr_speech_en" / "prepare_report.json").read_text())
    assert report["utterances"] == 2
    with pytest.raises(SystemExit):
        prepare_context_testsets.main(["--out", str(tmp_path / "x")])
    assert "nothing to prepare" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prepare_context_testsets.main(["--hotword-dir", str(seaco), "--out", str(tmp_path / "x")])
    assert "--hotword-dir and --aishell1-dir go together" in capsys.readouterr().err
    assert prepare_context_testsets.main(["--contextasr-dir", str(tmp_path), "--out", str(tmp_path / "x")]) == 1
    assert "ContextASR-Speech_English.jsonl not found" in capsys.readouterr().err
