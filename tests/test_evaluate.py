"""Stage 7's evaluation helpers (the whole stage runs in the demo smoke test and the corpus recipe tests)."""

from __future__ import annotations

import json

from wenet_llm.score.report import score_system
from wenet_llm.train.evaluate import (_ctc_fallback_rate, _noisy_breakdown, distractor_context, read_stage_times,
                                      results_markdown, seen_terms, set_kind)


def test_set_kind_follows_the_entries():
    assert set_kind([{"txt": ""}, {"txt": ""}]) == "non_speech"
    assert set_kind([{"txt": "A B", "hotwords": ["A"]}, {"txt": "C"}]) == "hotword"
    assert set_kind([{"txt": "A B", "noise": {"kind": "pink", "snr_db": 5.0}}]) == "noisy"
    assert set_kind([{"txt": "A B"}, {"txt": ""}]) == "plain"


def test_distractor_lists_never_name_a_spoken_word():
    entries = [{"key": "u1", "txt": "I MET ZORVATH TODAY"}, {"key": "u2", "txt": "我们去了卡瓦诺"}]
    pool = ["ZORVATH", "KAVANOK", "卡瓦诺", "TEMNOK", "QUENASK", "GLORAQ", "索拉", "BRIMEL"]
    ctx = distractor_context(entries, pool, per_utt=3, seed=1)
    assert ctx == distractor_context(entries, pool, per_utt=3, seed=1)  # deterministic
    assert len(ctx["u1"]["hotwords"]) == len(ctx["u2"]["hotwords"]) == 3
    assert "ZORVATH" not in ctx["u1"]["hotwords"] and "卡瓦诺" not in ctx["u2"]["hotwords"]


def test_seen_terms_are_the_training_entities():
    train = [{"txt": "A", "entities": ["ZORVATH", "卡瓦诺"]}, {"txt": "B"}, {"txt": "C", "entities": ["ZORVATH"]}]
    assert seen_terms(train) == ["ZORVATH", "卡瓦诺"]


def test_stage_times_keep_the_last_time_of_each_part(tmp_path):
    path = tmp_path / "stage_times.tsv"
    path.write_text("0\tdata/.stage0.done\t13\n1\tdata/.stage1.done\t5\n1\texp/demo_llm/.done\t20\n"
                    "2\texp/aed/.stage2.done\t100\n2\texp/aed/.stage2.done\t70\nbroken line\n")
    assert read_stage_times(path) == {"0": 13, "1": 25, "2": 70}


def test_noisy_breakdown_per_snr_and_kind():
    entries = [{"key": "a", "txt": "ONE TWO", "noise": {"kind": "pink", "snr_db": 10.0}},
               {"key": "b", "txt": "ONE TWO", "noise": {"kind": "babble", "snr_db": 0.0}},
               {"key": "c", "txt": "你好", "noise": {"kind": "pink", "snr_db": 0.0}}]
    hyps = {"a": "ONE TWO", "b": "ONE", "c": "你"}
    s = score_system("x", "-", {e["key"]: e["txt"] for e in entries}, hyps)
    out = _noisy_breakdown(s, entries)
    assert out["snr"]["10"] == {"en_wer": 0.0, "zh_cer": None}
    assert out["snr"]["0"] == {"en_wer": 50.0, "zh_cer": 50.0}  # b: 1 of 2 words; c: 1 of 2 characters
    assert out["kind"]["babble"] == {"en_wer": 50.0, "zh_cer": None}
    assert out["kind"]["pink"] == {"en_wer": 0.0, "zh_cer": 50.0}


def test_results_markdown_tables():
    results = {"systems": {"llm_ctx": {"test": {"en_wer": 9.5, "zh_cer": 3.25, "mer": 5.0}}},
               "final_stage": "llm_ctx", "primary_set": "test",
               "noisy": {"en_wer": {"0": 20.0, "10": 11.0}, "zh_cer": {"0": 8.0, "10": None}},
               "hotword": {"set": "test_hotword", "recall_without": 40.0, "recall_with": 90.0},
               "distractor_insert_rate": 0.5}
    md = results_markdown(results)
    assert "| llm_ctx | test | 9.50 | 3.25 | 5.00 |" in md
    assert md.index("| 10 | 11.00 | - |") < md.index("| 0 | 20.00 | 8.00 |")  # high SNR first
    assert "| recall % | 40.00 | 90.00 |" in md
    assert "0.50 % of utterances gained a list name" in md


def test_ctc_fallback_rate_counts_the_guard_flags(tmp_path):
    assert _ctc_fallback_rate(tmp_path) is None  # an AED decode: no per-utterance records
    records = [{"key": "a", "flags": {"ctc_fallback": True}}, {"key": "b", "flags": {"ctc_fallback": False}},
               {"key": "c", "flags": {}}, {"key": "d", "flags": {"ctc_fallback": True, "ctc_mismatch": True}}]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert _ctc_fallback_rate(tmp_path) == 50.0
