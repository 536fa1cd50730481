"""Tests for wenet_llm.score.wer and ``python -m wenet_llm.bin.compute_wer``."""

import os
import random
import subprocess
import sys

import jiwer
import kaldialign
import pytest

from wenet_llm.bin import compute_wer as compute_wer_cli
from wenet_llm.score.wer import (
    Counts, align, align_python, read_kaldi_text, score, split_chars, token_cluster, tokenize,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _counts(result_or_utt):
    c = result_or_utt.total if hasattr(result_or_utt, "total") else result_or_utt.counts
    return (c.n, c.c, c.s, c.d, c.i)


# ----------------------------------------------------------------------------- tokenisation


@pytest.mark.parametrize("text, expected", [
    ("你好WORLD ok", ["你", "好", "WORLD", "OK"]),  # the facts file's example
    ("你好，世界！", ["你", "好", "世", "界"]),
    ("a , b ! c？《书》", ["A", "B", "C", "书"]),  # punctuation list at token starts
    ("ok? 好", ["OK?", "好"]),  # WeNet wart: punctuation inside an ASCII word stays
    ("你\u3000好\t \r\nx", ["你", "好", "X"]),  # Zs (ideographic space) and whitespace
    ("a \u0378 b", ["A", "B"]),  # U+0378 is unassigned (Cn)
    ("café", ["CAF", "É"]),  # a word ends at a non-ASCII character
    ("3.5元 mp3", ["3.5", "元", "MP3"]),
    ("こんにちは", list("こんにちは")),  # kana are Lo too
    ("", []),
])
def test_char_tokenisation(text, expected):
    assert tokenize(text) == expected


def test_tags_split_and_removed():
    assert split_chars("<unk><noise>你") == ["<unk>", "<noise>", "你"]
    assert tokenize("<unk><noise>你 hello<sil> <b>x") == ["你", "HELLO", "X"]
    assert tokenize("<unk> 你", remove_tags=False) == ["<UNK>", "你"]
    assert tokenize("a <unk> b", char_mode=False) == ["A", "B"]


def test_word_mode_case_and_ignore():
    assert tokenize("Hello  wORLD\t你好", char_mode=False) == ["HELLO", "WORLD", "你好"]
    assert tokenize("Hello world", char_mode=False, case_sensitive=True) == ["Hello", "world"]
    assert tokenize("um hello UH 嗯 好", ignore_words={"UM", "UH", "嗯"}) == ["HELLO", "好"]
    r = score({"u": "um hello uh"}, {"u": "hello"}, char_mode=False, ignore_words=["um", "Uh"])
    assert _counts(r) == (1, 1, 0, 0, 0)


# ----------------------------------------------------------------------------- alignment


def test_hand_computed_overall_line():
    # B->X substituted, D deleted, K and L inserted.
    r = score({"u": "A B C D E F G H I J"}, {"u": "A X C E F G H I J K L"}, char_mode=False)
    assert r.summary_line() == "Overall -> 40.00 % N=10 C=8 S=1 D=1 I=2"


def test_ties_prefer_deletion_then_insertion():
    # "A B" vs "B A": two substitutions cost the same as delete+insert; deletion wins the tie at the end.
    assert align(["A", "B"], ["B", "A"]) == [("I", None, "B"), ("C", "A", "A"), ("D", "B", None)]
    r = score({"u": "A B"}, {"u": "B A"}, char_mode=False)
    assert _counts(r) == (2, 1, 0, 1, 1)  # a sub-first tie order would give S=2
    # "A B" vs "C": deleting B beats substituting B->C in the tie, so A is the substituted token.
    assert align(["A", "B"], ["C"]) == [("S", "A", "C"), ("D", "B", None)]
    assert align(["A"], ["B"]) == [("S", "A", "B")]  # no tie: substitution is strictly cheaper


def test_ties_exact_paths():
    # At the last cell inserting Y ties with substituting A->Y; insertion wins, so X is deleted, A kept.
    assert align(["X", "A"], ["A", "Y"]) == [("D", "X", None), ("C", "A", "A"), ("I", None, "Y")]
    assert align([], ["A", "B"]) == [("I", None, "A"), ("I", None, "B")]
    assert align(["A", "B"], []) == [("D", "A", None), ("D", "B", None)]
    assert align([], []) == []


@pytest.mark.parametrize("aligner", [align, align_python])
def test_hand_computed_ties_both_aligners(aligner):
    assert aligner(["A", "B"], ["B", "A"]) == [("I", None, "B"), ("C", "A", "A"), ("D", "B", None)]
    assert aligner(["X", "A"], ["A", "Y"]) == [("D", "X", None), ("C", "A", "A"), ("I", None, "Y")]
    assert aligner(["A", "B"], ["C"]) == [("S", "A", "C"), ("D", "B", None)]
    assert aligner([], []) == []
    assert aligner([], ["A"]) == [("I", None, "A")]
    assert aligner(["A"], []) == [("D", "A", None)]


def test_compiled_align_equals_python_reference_pair_for_pair():
    # The guarantee: align (kaldialign, hypothesis first) == align_python (WeNet's tie order), so the S/D/I
    # split is WeNet's, not just the total. Small alphabets make ties frequent.
    rng = random.Random(2024)
    for trial in range(3000):
        alphabet = "ab" if trial % 3 == 0 else "abcde"
        ref = [rng.choice(alphabet) for _ in range(rng.randint(0, 14))]
        hyp = [rng.choice(alphabet) for _ in range(rng.randint(0, 14))]
        assert align(ref, hyp) == align_python(ref, hyp), (ref, hyp)
    for _ in range(20):  # long-form lengths
        ref = [rng.choice("abcdef") for _ in range(rng.randint(100, 300))]
        hyp = [rng.choice("abcdef") for _ in range(rng.randint(100, 300))]
        assert align(ref, hyp) == align_python(ref, hyp)


def test_reference_first_kaldialign_splits_ties_differently():
    # Why align() passes the hypothesis first. "A A C" vs "C B" costs 3 either way. WeNet's order (deletion
    # first at the last cell, then the cheaper substitutions) gives S S D; Kaldi called reference first keeps
    # the C-C match and pays with D D I: same total and N, different C/S/D/I.
    ref, hyp = ["A", "A", "C"], ["C", "B"]
    assert align(ref, hyp) == [("S", "A", "C"), ("S", "A", "B"), ("D", "C", None)]
    assert kaldialign.align(ref, hyp, "*") == [("A", "*"), ("A", "*"), ("C", "C"), ("*", "B")]
    wenet = score({"u": "A A C"}, {"u": "C B"}, char_mode=False)
    assert wenet.summary_line() == "Overall -> 100.00 % N=3 C=0 S=2 D=1 I=0"
    assert kaldialign.edit_distance(ref, hyp)["total"] == wenet.total.errors == 3


def test_score_identical_with_either_aligner():
    rng = random.Random(5)
    words = ["你", "好", "世", "HELLO", "WORLD", "OK", "3"]
    refs = {f"u{i}": " ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for i in range(200)}
    hyps = {f"u{i}": " ".join(rng.choice(words) for _ in range(rng.randint(0, 12))) for i in range(200)}
    fast, slow = score(refs, hyps), score(refs, hyps, aligner=align_python)
    assert fast.report(verbose=True) == slow.report(verbose=True)
    assert fast.total == slow.total and fast.clusters == slow.clusters


def test_total_errors_match_kaldialign_random():
    rng = random.Random(1234)
    for _ in range(500):
        ref = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        hyp = [rng.choice("abcd") for _ in range(rng.randint(0, 12))]
        pairs = align(ref, hyp)
        ops = [op for op, _, _ in pairs]
        assert [r for _, r, _ in pairs if r is not None] == ref
        assert [h for _, _, h in pairs if h is not None] == hyp
        assert all((op == "C") == (r == h) for op, r, h in pairs)
        errors = sum(op != "C" for op in ops)
        assert errors == kaldialign.edit_distance(ref, hyp)["total"], (ref, hyp)
        assert ops.count("D") - ops.count("I") == len(ref) - len(hyp)


def test_total_errors_match_jiwer():
    rng = random.Random(7)
    words = ["alpha", "beta", "gamma", "delta", "pi"]
    for _ in range(100):
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(1, 10)))
        hyp = " ".join(rng.choice(words) for _ in range(rng.randint(0, 10)))
        o = jiwer.process_words(ref, hyp)
        r = score({"u": ref}, {"u": hyp}, char_mode=False)
        assert r.total.errors == o.substitutions + o.deletions + o.insertions, (ref, hyp)
        assert r.total.n == len(ref.split())


# ----------------------------------------------------------------------------- utterance matching


def test_missing_hyp_counts_as_deletions_and_is_reported():
    refs = {"u1": "你好", "u2": "世界和平", "u3": "早"}
    hyps = {"u1": "你好", "u3": "", "x9": "多余"}
    r = score(refs, hyps)
    assert _counts(r) == (7, 2, 0, 5, 0)  # u2's 4 tokens and u3's 1 are deletions
    assert r.missing_hyps == ["u2"]  # u3 has an (empty) hyp line: not missing
    assert r.extra_hyps == ["x9"]
    assert [u.missing_hyp for u in r.utts] == [False, True, False]
    verbose = r.report(verbose=True)
    assert "Missing hyps: 1 " in verbose and verbose.rstrip().split("\n")[-2].endswith(": u2")
    assert verbose.rstrip().endswith(": x9")
    quiet = r.report(verbose=False)
    assert quiet.startswith(r.summary_line() + "\n\n")
    assert "Missing hyps: 1 " in quiet and "u2" not in quiet


def test_all_matched_quiet_report_is_overall_and_blank_line():
    r = score({"a": "甲乙"}, {"a": "甲丙"})
    assert r.report(verbose=False) == "Overall -> 50.00 % N=2 C=1 S=1 D=0 I=0\n\n"
    assert r.problems() == []


def test_verbose_report_layout():
    r = score({"u1": "A B C", "u2": "你好"}, {"u1": "A C D", "u2": "你好"}, char_mode=False)
    lines = r.report(verbose=True).split("\n")
    assert lines[:5] == ["utt: u1", "WER: 66.67 % N=3 C=2 S=0 D=1 I=1",
                         "lab: A B C *", "rec: A * C D", ""]
    assert lines[5:7] == ["utt: u2", "WER: 0.00 % N=1 C=1 S=0 D=0 I=0"]
    i = lines.index("Overall -> 50.00 % N=4 C=3 S=0 D=1 I=1")
    assert set(lines[i - 1]) == {"="}
    assert lines[i + 1:i + 3] == ["Mandarin -> 0.00 % N=1 C=1 S=0 D=0 I=0",
                                  "English -> 66.67 % N=3 C=2 S=0 D=1 I=1"]


def test_empty_reference_does_not_divide_by_zero():
    r = score({"u": ""}, {"u": "a b"})
    assert _counts(r) == (0, 0, 0, 0, 2)
    assert r.summary_line() == "Overall -> 200.00 % N=0 C=0 S=0 D=0 I=2"


# ----------------------------------------------------------------------------- clusters


@pytest.mark.parametrize("token, cluster", [
    ("你", "Mandarin"), ("HELLO", "English"), ("DON'T", "English"), ("2024", "Number"),
    ("MP3", "Other"), ("こ", "Other"), ("É", "Other"), ("3.5", "Other"),
])
def test_token_cluster(token, cluster):
    assert token_cluster(token) == cluster


def test_clusters_attribute_insertions_to_hyp_token():
    # 你->您 (S, Mandarin), 2024 deleted (Number), inserted 啊 (Mandarin) and OK (English).
    r = score({"u": "你好HELLO 2024 world"}, {"u": "您好啊HELLO world ok"})
    assert [op for op, _, _ in r.utts[0].alignment] == ["S", "C", "I", "C", "D", "C", "I"]
    cl = r.clusters
    assert (cl["Mandarin"].n, cl["Mandarin"].s, cl["Mandarin"].i) == (2, 1, 1)
    assert (cl["English"].n, cl["English"].c, cl["English"].i) == (2, 2, 1)
    assert (cl["Number"].n, cl["Number"].d) == (1, 1)
    assert cl["Other"] == Counts()
    summed = Counts()
    for c in cl.values():
        summed += c
    assert summed == r.total


# ----------------------------------------------------------------------------- normalisation


def test_normalize_hook_applies_to_both_sides():
    refs, hyps = {"u": "Don't stop—now"}, {"u": "DON'T STOP now."}
    assert score(refs, hyps, char_mode=False).total.errors == 2  # "stop—now" vs "STOP", "now."
    assert score(refs, hyps, char_mode=False, normalize="en").total.errors == 0
    zh_ref, zh_hyp = {"u": "我用 iPhone，打电话。"}, {"u": "我用IPHONE打电话"}
    assert score(zh_ref, zh_hyp, char_mode=False).total.errors > 0
    assert score(zh_ref, zh_hyp, char_mode=False, normalize="zh").total.errors == 0
    assert score(zh_ref, zh_hyp, char_mode=False, normalize="auto").total.errors == 0
    with pytest.raises(ValueError, match="valid: none, zh, en, auto"):
        score(refs, hyps, normalize="fr")


# ----------------------------------------------------------------------------- files and CLI


def test_read_kaldi_text(tmp_path):
    p = tmp_path / "text"
    p.write_bytes("u1 你好 world\n\nu2\nu3   a  b \n".encode())
    assert read_kaldi_text(p) == {"u1": "你好 world", "u2": "", "u3": "a  b"}
    p.write_bytes(b"u1 ok\nu2 \xff\xfe bad\n")
    with pytest.raises(ValueError, match=r"text:2: not valid UTF-8"):
        read_kaldi_text(p)
    p.write_bytes(b"u1 a\nu1 b\n")
    with pytest.raises(ValueError, match=r"text:2: duplicate key 'u1' \(first at line 1\)"):
        read_kaldi_text(p)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "wenet_llm.bin.compute_wer", *args],
                          capture_output=True, text=True, cwd=REPO, env=env)


def test_cli_end_to_end(tmp_path):
    ref = _write(tmp_path / "ref", ["u1 你好WORLD ok", "u2 甚至出现交易", "u3 <unk>没有", "u4 丢失"])
    hyp = _write(tmp_path / "hyp", ["u1 你好 world", "u2 甚至出现了交", "u3 没有", "u5 多余"])
    p = _cli("--char=1", "--v=1", ref, hyp)
    assert p.returncode == 0, p.stderr
    assert "utt: u1\nWER: 25.00 % N=4 C=3 S=0 D=1 I=0\nlab: 你 好 WORLD OK\nrec: 你 好 WORLD *\n" in p.stdout
    # u1 C3 D1, u2 C5 D1 I1 (tie: 了 inserted, 易 deleted), u3 C2 (<unk> dropped), u4 missing: D2.
    assert "\nOverall -> 35.71 % N=14 C=10 S=0 D=4 I=1\n" in p.stdout
    assert "scored as all deletions: u4" in p.stdout and "ignored: u5" in p.stdout
    assert "warning: Missing hyps: 1" in p.stderr

    q = _cli("--char", "1", "--v", "0", ref, hyp)
    assert q.returncode == 0
    assert q.stdout.startswith("Overall -> 35.71 % N=14 C=10 S=0 D=4 I=1\n\n")
    assert "utt:" not in q.stdout and "u4" not in q.stdout


def test_cli_options(tmp_path, capsys):
    ref = _write(tmp_path / "ref", ["a Hello um World"])
    hyp = _write(tmp_path / "hyp", ["a hello world."])
    ig = _write(tmp_path / "ig", ["UM"])
    assert compute_wer_cli.main(["--v", "0", ref, hyp]) == 0
    assert capsys.readouterr().out == "Overall -> 66.67 % N=3 C=1 S=1 D=1 I=0\n\n"
    assert compute_wer_cli.main(["--v", "0", "--ig=" + ig, "--normalize", "en", ref, hyp]) == 0
    assert capsys.readouterr().out == "Overall -> 0.00 % N=2 C=2 S=0 D=0 I=0\n\n"
    assert compute_wer_cli.main(["--v=0", "--cs=1", "--ignore", ig, "--normalize", "none", ref, hyp]) == 0
    # Case-sensitive: "UM" no longer matches "um", and Hello/World differ from hello/world.
    assert capsys.readouterr().out == "Overall -> 100.00 % N=3 C=0 S=2 D=1 I=0\n\n"


def test_cli_errors(tmp_path):
    ref = _write(tmp_path / "ref", ["a x"])
    p = _cli(ref, str(tmp_path / "nope"))
    assert p.returncode == 1 and "compute_wer:" in p.stderr and "nope" in p.stderr
    bad = tmp_path / "bad"
    bad.write_bytes(b"a \xc3\x28\n")
    p = _cli(ref, str(bad))
    assert p.returncode == 1 and "bad:1: not valid UTF-8" in p.stderr
    p = _cli("--normalize", "fr", ref, ref)
    assert p.returncode == 2 and "invalid choice" in p.stderr


def _split_chars_reference(text):
    # The character-by-character scan of WeNet's compute-wer.py, as split_chars was first written.
    import unicodedata
    tokens, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "!,?、。！，；？：「」︰『』《》" or ch in " \t\r\n" or unicodedata.category(ch) in ("Zs", "Cn"):
            i += 1
            continue
        if unicodedata.category(ch) == "Lo":
            tokens.append(ch)
            i += 1
            continue
        is_tag, j = ch == "<", i + 1
        while j < n and not (ord(text[j]) >= 128 or text[j] in " \t\r\n" or (is_tag and text[j] == ">")):
            j += 1
        if is_tag and j < n and text[j] == ">":
            j += 1
        tokens.append(text[i:j])
        i = j
    return tokens


def test_split_chars_equals_the_plain_scan_on_random_text():
    rng = random.Random(11)
    alphabet = list("ab Z9'<>-.?!,\t\n") + ["你", "好", "。", "，", "é", "\u3000", "\u0378", "こ", "<unk>", "ß", "\U00020000"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 25)))
        assert split_chars(text) == _split_chars_reference(text), repr(text)
