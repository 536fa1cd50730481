"""Tests for wenet_llm.score.hotword and the context file format (wenet_llm.data.context)."""

import json

import pytest

from wenet_llm.data.context import Context, read_context, read_term_list, write_context
from wenet_llm.score.hotword import find_occurrences, hotword_report, term_tokens
from wenet_llm.score.wer import TokenOptions, score

REFS = {
    "u1": "我和王小明去 zorblax 公司",
    "u2": "hello world",
    "u3": "good day",
    "u4": "你好",
}
HYPS = {
    "u1": "我和王晓明去 Zorblax, zorblax 公司",
    "u2": "hello quintor world",
    "u3": "good",
    "u4": "你好",
}
LISTS = {
    "u1": ["Zorblax", "王小明", "Quintor", "ZORBLAX"],  # ZORBLAX repeats Zorblax in tokens: counted once
    "u2": ["Quintor"],  # distractor only, and inserted
    "u4": ["Zorblax", ""],  # distractor only, not inserted; "" has no tokens
}


def test_find_occurrences_whole_tokens_no_overlap():
    assert find_occurrences("A A A".split(), ("A", "A")) == [0]
    assert find_occurrences("A B A B".split(), ("A", "B")) == [0, 2]
    assert find_occurrences(["ZORBLAXES"], ("ZORBLAX",)) == []
    assert find_occurrences(["A"], ()) == []


def test_term_tokens_use_the_scorer_normalizer():
    opts = TokenOptions(normalize="auto")
    assert term_tokens(["Zorblax,", "王小明", "", "ZORBLAX", "  ", "New York"], opts) == [
        ("ZORBLAX",), ("王", "小", "明"), ("NEW", "YORK")]


def test_hotword_metrics_hand_computed():
    r = score(REFS, HYPS, normalize="auto")
    rep = hotword_report(r, LISTS)
    a = rep.all
    # u1: ZORBLAX r=1 h=2 -> TP 1, FP 1; 王小明 r=1 h=0 (小 -> 晓) -> FN 1; QUINTOR absent. u2: QUINTOR h=1 -> FP 1.
    assert (a.tp, a.fp, a.fn) == (1, 2, 1)
    assert a.recall == pytest.approx(50.0)
    assert a.precision == pytest.approx(100 / 3)
    assert a.f1 == pytest.approx(40.0)  # 2 * 50 * 33.33 / 83.33
    # Biased reference tokens: 王 小 明 ZORBLAX (u1): 3 correct, 小 substituted; insertions of list terms:
    # the second ZORBLAX (u1) and QUINTOR (u2). B = 3 errors / 4; U: 11 tokens, u3's DAY deleted.
    assert (a.biased.n, a.biased.c, a.biased.s, a.biased.d, a.biased.i) == (4, 3, 1, 0, 2)
    assert a.bwer == pytest.approx(75.0)
    assert (a.unbiased.n, a.unbiased.errors) == (11, 1)
    assert a.uwer == pytest.approx(100 / 11)
    assert a.biased.n + a.unbiased.n == r.total.n
    assert a.biased.errors + a.unbiased.errors == r.total.errors
    assert (a.list_utts, a.distractor_utts, a.distractor_insert_utts) == (3, 2, 1)
    assert a.distractor_insert_rate == pytest.approx(50.0)
    assert [(u.key, u.tp, u.fp, u.fn) for u in rep.utts] == [
        ("u1", 1, 1, 1), ("u2", 0, 1, 0), ("u3", 0, 0, 0), ("u4", 0, 0, 0)]


def test_hotword_seen_unseen_split_hand_computed():
    r = score(REFS, HYPS, normalize="auto")
    rep = hotword_report(r, LISTS, seen_terms=["zorblax"])
    s, u = rep.seen, rep.unseen
    # Seen lists: u1 [ZORBLAX], u4 [ZORBLAX]. TP 1, FP 1; biased: ZORBLAX correct + one inserted.
    assert (s.tp, s.fp, s.fn, s.recall, s.precision) == (1, 1, 0, 100.0, 50.0)
    assert (s.biased.n, s.biased.errors, s.bwer) == (1, 1, 100.0)
    assert (s.distractor_utts, s.distractor_insert_utts) == (1, 0)
    # Unseen lists: u1 [王小明, QUINTOR], u2 [QUINTOR]. 王小明 missed, QUINTOR inserted in u2.
    assert (u.tp, u.fp, u.fn, u.recall, u.precision, u.f1) == (0, 1, 1, 0.0, 0.0, 0.0)
    assert (u.biased.n, u.biased.errors) == (3, 2)
    assert u.bwer == pytest.approx(200 / 3)
    assert (u.distractor_utts, u.distractor_insert_utts, u.distractor_insert_rate) == (1, 1, 100.0)
    d = rep.to_dict()
    assert d["recall"] == 50.0 and d["seen"]["recall"] == 100.0 and d["unseen"]["recall"] == 0.0


def test_hotword_metrics_undefined_without_lists():
    rep = hotword_report(score({"a": "x"}, {"a": "x"}), {})
    assert rep.all.recall is None and rep.all.precision is None and rep.all.f1 is None
    assert rep.all.bwer is None and rep.all.uwer == 0.0 and rep.all.distractor_insert_rate is None
    assert "seen" not in rep.to_dict()


# ----------------------------------------------------------------------------- context file


def test_context_round_trip_and_data_list_lines(tmp_path):
    p = tmp_path / "context.jsonl"
    ctxs = [Context("utt1", ["Zorblax", "王小明"], "关于 Zorblax 的会议"), Context("utt2", [], None, {"lang": "en"})]
    assert write_context(ctxs, p) == 2
    lines = p.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"key": "utt1", "hotwords": ["Zorblax", "王小明"], "summary": "关于 Zorblax 的会议"}
    assert json.loads(lines[1]) == {"key": "utt2", "hotwords": [], "lang": "en"}
    assert read_context(p) == {c.key: c for c in ctxs}
    dl = tmp_path / "data.list"
    dl.write_text(json.dumps({"key": "a", "wav": "a.wav", "txt": "x", "context": {"hotwords": ["X"]}}) + "\n\n"
                  + json.dumps({"key": "b", "wav": "b.wav", "txt": "y"}) + "\n", encoding="utf-8")
    got = read_context(dl)
    assert got["a"].hotwords == ["X"] and got["a"].extra == {"wav": "a.wav", "txt": "x"}
    assert got["b"].hotwords == [] and got["b"].summary is None


@pytest.mark.parametrize("line, message", [
    ('{"hotwords": ["x"]}', r"c.jsonl:2: 'key' must be a non-empty string"),
    ('{"key": "a b"}', "without whitespace"),
    ('{"key": "k", "hotwords": "x"}', r"c.jsonl:2: 'hotwords' must be a list of strings"),
    ('{"key": "k", "summary": 3}', "'summary' must be a string"),
    ('{"key": "k", "context": ["x"]}', "'context' must be a JSON object"),
    ('["k"]', "expected a JSON object"),
    ("k x", r"c.jsonl:2: not a JSON object"),
    ('{"key": "u0"}', r"c.jsonl:2: duplicate key 'u0' \(first at line 1\)"),
])
def test_context_errors_name_file_and_line(tmp_path, line, message):
    p = tmp_path / "c.jsonl"
    p.write_text('{"key": "u0"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_context(p)


def test_write_context_rejects_duplicates_and_term_list(tmp_path):
    with pytest.raises(ValueError, match="duplicate context key 'a'"):
        write_context([Context("a"), Context("a")], tmp_path / "c.jsonl")
    assert not (tmp_path / "c.jsonl").exists()
    t = tmp_path / "seen.txt"
    t.write_text("Zorblax\n\n 王小明 \n", encoding="utf-8")
    assert read_term_list(t) == ["Zorblax", "王小明"]
