"""Tests for wenet_llm.score.report and ``python -m wenet_llm.bin.score``."""

import json
import os
import subprocess
import sys

import pytest

from wenet_llm.bin import compute_wer as compute_wer_cli
from wenet_llm.bin import score as score_cli
from wenet_llm.score.report import parse_hyp_arg, read_refs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.fixture
def hotword_set(tmp_path):
    ref = _write(tmp_path / "ref", ["u1 我和王小明去 zorblax 公司", "u2 hello world", "u3 good day", "u4 你好", "n1"])
    without = _write(tmp_path / "without", ["u1 我和王晓明去 zorblacks 公司", "u2 hello world", "u3 good day",
                                            "u4 你好", "n1"])
    with_ = _write(tmp_path / "with", ["u1 我和王晓明去 Zorblax, zorblax 公司", "u2 hello quintor world", "u3 good",
                                       "u4 你好", "n1 哈哈哈哈哈哈哈哈"])
    ctx = _write(tmp_path / "ctx.jsonl", ['{"key": "u1", "hotwords": ["Zorblax", "王小明", "Quintor"]}',
                                          '{"key": "u2", "hotwords": ["Quintor"]}',
                                          '{"key": "u4", "hotwords": ["Zorblax"], "summary": "greeting"}'])
    seen = _write(tmp_path / "seen", ["zorblax"])
    return tmp_path, ref, without, with_, ctx, seen


def test_score_cli_side_by_side_hand_computed(hotword_set, capsys):
    tmp, ref, without, with_, ctx, seen = hotword_set
    out = tmp / "out"
    assert score_cli.main(["--ref", ref, "--hyp", f"without={without}", "--hyp", f"with={with_}",
                           "--context", ctx, "--seen", seen, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # 15 reference tokens (9 + 2 + 2 + 2 + 0). without: 小->晓, ZORBLAX->ZORBLACKS.
    # with: 小->晓, one extra ZORBLAX, QUINTOR inserted, DAY deleted, 哈 x 8 on the empty reference.
    assert "without: Overall -> 13.33 % N=15 C=13 S=2 D=0 I=0" in printed
    assert "with: Overall -> 80.00 % N=15 C=13 S=1 D=1 I=10" in printed
    js = json.loads((out / "score.json").read_text(encoding="utf-8"))
    assert js["order"] == ["without", "with"] and js["normalize"] == "auto"
    w, c = js["systems"]["without"], js["systems"]["with"]
    assert (w["mer"], w["cer"], w["wer"]) == (pytest.approx(40 / 3), 10.0, 20.0)  # 2/15, 1/10 Hanzi, 1/5 words
    assert (c["mer"], c["cer"], c["wer"]) == (80.0, 90.0, 60.0)  # Hanzi: 1 S + 8 I over 10; words: 1 D + 2 I over 5
    assert c["hallucination"]["loop_utts"] == 1 and c["hallucination"]["empty_ref_mean_tokens"] == 8.0
    assert c["hallucination"]["insertion_rate"] == pytest.approx(200 / 3)
    assert (w["hotword"]["recall"], w["hotword"]["precision"], w["hotword"]["bwer"]) == (0.0, None, 50.0)
    hw = c["hotword"]
    assert (hw["tp"], hw["fp"], hw["fn"], hw["recall"], hw["bwer"]) == (1, 2, 1, 50.0, 75.0)
    assert hw["f1"] == pytest.approx(40.0) and hw["distractor_insert_rate"] == 50.0
    assert (hw["seen"]["recall"], hw["unseen"]["recall"]) == (100.0, 0.0)
    assert (w["hotword"]["seen"]["bwer"], w["hotword"]["unseen"]["bwer"]) == (100.0, pytest.approx(100 / 3))
    md = (out / "score.md").read_text(encoding="utf-8").splitlines()
    assert md[0] == "| figure | without | with |"
    assert "| hotword recall % | 0.00 | 50.00 |" in md
    assert "| hotword precision % | - | 33.33 |" in md
    assert "| hotword recall % (unseen) | 0.00 | 0.00 |" in md
    assert "| repetition loops % | 0.00 | 20.00 |" in md
    wer = (out / "with" / "wer").read_text(encoding="utf-8")
    assert "Overall -> 80.00 % N=15 C=13 S=1 D=1 I=10" in wer and "utt: u1" in wer
    rows = [json.loads(x) for x in (out / "with" / "details.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["key"] for r in rows] == ["u1", "u2", "u3", "u4", "n1"]
    assert rows[0]["hyp"] == "我 和 王 晓 明 去 ZORBLAX ZORBLAX 公 司" and rows[0]["hotwords"]["tp"] == 1
    assert rows[4]["loop"] == {"start": 0, "period": 1, "repeats": 8} and rows[4]["overlong"] is None


def test_single_hyp_layout_and_wenet_compatible_report(tmp_path, capsys):
    ref = _write(tmp_path / "ref", ["a 你好WORLD ok", "b 甚至出现交易"])
    hyp = _write(tmp_path / "hyp", ["a 你好 world", "b 甚至出现了交"])
    out = tmp_path / "out"
    assert score_cli.main(["--ref", ref, "--hyp", hyp, "--out", str(out), "--normalize", "none"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["details.jsonl", "score.json", "score.md", "wer"]
    js = json.loads((out / "score.json").read_text(encoding="utf-8"))
    assert list(js["systems"]) == ["hyp"] and js["context"] is None and "hotword" not in js["systems"]["hyp"]
    capsys.readouterr()
    # With --normalize none the wer file is exactly compute_wer --char 1 --v 1.
    assert compute_wer_cli.main(["--char", "1", "--v", "1", ref, hyp]) == 0
    assert (out / "wer").read_text(encoding="utf-8") == capsys.readouterr().out


def test_refs_from_data_list_and_kaldi_dir(tmp_path):
    dl = _write(tmp_path / "data.list", [json.dumps({"key": "a", "wav": "a.wav", "txt": "你好"}, ensure_ascii=False)])
    assert read_refs(dl) == {"a": "你好"}
    (tmp_path / "kd").mkdir()
    _write(tmp_path / "kd" / "text", ["a 你好", "b"])
    assert read_refs(tmp_path / "kd") == {"a": "你好", "b": ""}
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without a 'text' file"):
        read_refs(tmp_path / "empty")


def test_hyp_names():
    assert parse_hyp_arg("exp/decode/text", 0, 1) == ("hyp", "exp/decode/text")
    assert parse_hyp_arg("with=exp/decode/text", 0, 2) == ("with", "exp/decode/text")
    with pytest.raises(ValueError, match="name each of the 2 hypothesis files"):
        parse_hyp_arg("exp/decode/text", 0, 2)


def test_score_cli_errors(hotword_set, capsys):
    tmp, ref, without, with_, ctx, seen = hotword_set
    out = str(tmp / "o")
    assert score_cli.main(["--ref", ref, "--hyp", without, "--hyp", with_, "--out", out]) == 1
    assert "name each of the 2" in capsys.readouterr().err
    assert score_cli.main(["--ref", ref, "--hyp", f"a={without}", "--hyp", f"a={with_}", "--out", out]) == 1
    assert "unique" in capsys.readouterr().err
    assert score_cli.main(["--ref", ref, "--hyp", without, "--seen", seen, "--out", out]) == 1
    assert "--seen needs --context" in capsys.readouterr().err
    assert score_cli.main(["--ref", ref, "--hyp", str(tmp / "nope"), "--out", out]) == 1
    assert "score:" in capsys.readouterr().err
    bad = _write(tmp / "bad.jsonl", ['{"key": "u1", "hotwords": "Zorblax"}'])
    assert score_cli.main(["--ref", ref, "--hyp", without, "--context", bad, "--out", out]) == 1
    assert "bad.jsonl:1: 'hotwords' must be a list of strings" in capsys.readouterr().err


def test_score_module_runs_as_a_program(hotword_set):
    tmp, ref, without, *_ = hotword_set
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-m", "wenet_llm.bin.score", "--ref", ref, "--hyp", without,
                        "--out", str(tmp / "o")], capture_output=True, text=True, cwd=REPO, env=env)
    assert p.returncode == 0, p.stderr
    assert "hyp: Overall -> 13.33 % N=15" in p.stdout
