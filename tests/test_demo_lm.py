"""The demo LLM's first-pass copy samples (stage 1 text for an SFT with the CTC hypothesis in the prompt)."""

from __future__ import annotations

import random

import pytest

from wenet_llm.config.demo_llm import DemoLLMConfig, HypothesisCopyConfig
from wenet_llm.config.llm import PromptConfig
from wenet_llm.data.tokenizer import build_char_units, load_tokenizer as load_units
from wenet_llm.models.llm.decoder import load_tokenizer
from wenet_llm.models.llm.prompt import IGNORE_INDEX, PromptBuilder
from wenet_llm.synth import demo_text
from wenet_llm.train.demo_lm import (corrupt, fresh_name_pools, held_out_names, hotword_list, hypothesis_sample,
                                     lm_samples, random_word_strings, rename, unit_pools, warmup_words)


def test_corrupt_draws_each_error_kind():
    rng = random.Random(0)
    units = list(range(10, 20)) * 50
    pool = [1, 2, 3]
    assert corrupt(units, pool, rng, HypothesisCopyConfig()) != units
    assert corrupt(units, pool, rng, HypothesisCopyConfig(substitute=0, delete=0, insert=0)) == units
    deleted = corrupt(units, pool, rng, HypothesisCopyConfig(substitute=0, delete=0.5, insert=0))
    assert 150 < len(deleted) < 350 and set(deleted) <= set(units)
    inserted = corrupt(units, pool, rng, HypothesisCopyConfig(substitute=0, delete=0, insert=0.5))
    assert 650 < len(inserted) < 850 and [u for u in inserted if u >= 10] == units
    swapped = corrupt(units, pool, rng, HypothesisCopyConfig(substitute=0.5, delete=0, insert=0))
    assert len(swapped) == len(units) and 150 < sum(u in pool for u in swapped) < 350


def test_copy_samples_have_the_sft_layout(tiny_llm_dir, tmp_path):
    tok = load_tokenizer(tiny_llm_dir)
    texts = ["THE CAT", "今天", "A DOG"]
    build_char_units(texts, tmp_path / "units.txt")
    units = load_units(tmp_path / "units.txt")
    builder = PromptBuilder(tok, PromptConfig(english_case="lower", ctc_hypothesis=True))
    exact = HypothesisCopyConfig(fraction=1.0, substitute=0, delete=0, insert=0)
    row = hypothesis_sample(builder, "THE CAT", units, unit_pools(units.units), random.Random(0), exact)
    pieces = builder.build("THE CAT")
    assert row["input_ids"] == pieces.prefix + builder.hypothesis_ids("THE CAT") + pieces.suffix + pieces.target
    assert row["labels"] == [IGNORE_INDEX] * (len(row["labels"]) - len(pieces.target)) + pieces.target
    assert sum(row["speech_mask"]) == 0
    cfg = DemoLLMConfig(prompt=PromptConfig(english_case="lower", ctc_hypothesis=True), chat_fraction=0.0,
                        hypothesis=HypothesisCopyConfig(fraction=0.5))
    rows = lm_samples(builder, texts * 100, cfg, units, unit_pools(units.units))
    label = tok.encode("\nCTC:\n", add_special_tokens=False)
    copies = [r for r in rows if "speech_mask" in r]
    assert 100 < len(copies) < 200  # about half of the 300 sentences; the rest is packed text
    assert all(any(r["input_ids"][i:i + len(label)] == label for i in range(len(r["input_ids"]))) for r in copies)


def test_copy_samples_with_hotword_lists(tiny_llm_dir, tmp_path):
    tok = load_tokenizer(tiny_llm_dir)
    texts = ["I MET ZORVATH TODAY", "今天见到泽兰科技", "A DOG"]
    build_char_units(texts + ["ZORVATHQ"], tmp_path / "units.txt")
    units = load_units(tmp_path / "units.txt")
    pools = unit_pools(units.units)
    builder = PromptBuilder(tok, PromptConfig(english_case="lower", ctc_hypothesis=True))
    rng = random.Random(0)
    assert hotword_list("I MET ZORVATH TODAY", ["ZORVATH", "ZORV"], [], rng, 0) == ["ZORVATH"]  # whole words
    listed = hotword_list("I MET ZORVATH TODAY", ["ZORVATH"], ["KELAX", "BRONTIS", "ZORVATH"], rng, 5)
    assert "ZORVATH" in listed and len(listed) == len(set(listed)) <= 3
    # Only the listed name is misheard (name_error); the rest of the sentence stays right here.
    cfg = HypothesisCopyConfig(fraction=1.0, substitute=0, delete=0, insert=0, name_error=0.9)
    row = hypothesis_sample(builder, "I MET ZORVATH TODAY", units, pools, rng, cfg, ["ZORVATH"], ["ZORVATH", "KELAX"])
    text = tok.decode(row["input_ids"])
    assert "Hotwords: zorvath, kelax\n" in text and "\nCTC:\ni met " in text and " today<|im_end|>" in text
    assert "CTC:\ni met zorvath today" not in text
    assert row["labels"][-len(builder.build("I MET ZORVATH TODAY").target):] == builder.build("I MET ZORVATH TODAY").target
    unlisted = hypothesis_sample(builder, "I MET ZORVATH TODAY", units, pools, rng, cfg, ["ZORVATH"], [])
    assert "CTC:\ni met zorvath today" in tok.decode(unlisted["input_ids"])  # no list: the name is not singled out
    zh = hypothesis_sample(builder, "今天见到泽兰科技", units, pools, rng, cfg, ["泽兰科技"], ["泽兰科技"])
    assert "CTC:\n今天见到" in tok.decode(zh["input_ids"])
    demo = DemoLLMConfig(prompt=PromptConfig(english_case="lower", ctc_hypothesis=True), chat_fraction=0.0,
                         hypothesis=HypothesisCopyConfig(fraction=1.0, hotword_fraction=0.5))
    rows = lm_samples(builder, texts * 50, demo, units, pools, {"en": ["ZORVATH"], "zh": ["泽兰科技"]},
                      {"en": ["KELAX"], "zh": ["泽兰手机"]})
    with_list = [r for r in rows if "Hotwords:" in tok.decode(r["input_ids"])]
    assert len(rows) == 150 and 40 < len(with_list) < 110


def test_copy_warmup_strings_come_from_spellable_words(tmp_path):
    build_char_units(["ABHLOR STVZXQ", "泽兰科技"], tmp_path / "units.txt")
    words = warmup_words({"en": ["ZORVATH LABS", "QXÉ"], "zh": ["泽兰科技"]}, load_units(tmp_path / "units.txt"))
    assert "ZORVATH LABS" in words["en"] and "QXÉ" not in words["en"]  # É is no unit: <unk> is never copied
    assert words["zh"] == ["泽兰科技"]  # every grammar word needs a character outside these units
    rng = random.Random(0)
    strings = random_word_strings({"en": ["ONE", "TWO", "THREE"], "zh": ["你好", "北京"]}, 400, 0.5, rng, (2, 4))
    zh = [s for s in strings if "你好" in s or "北京" in s]
    assert 150 < len(zh) < 250 and all(" " not in s and 4 <= len(s) <= 8 for s in zh)
    en = [s.split() for s in strings if s not in zh]
    assert all(2 <= len(w) <= 4 and set(w) <= {"ONE", "TWO", "THREE"} for w in en)
    assert len({" ".join(w) for w in en}) > 30  # in no fixed order
    with pytest.raises(ValueError, match="warmup_words"):
        HypothesisCopyConfig(warmup_words=(5, 2)).validate()


def _fake_name_corpus(root):
    import json
    root.mkdir()
    (root / "entities.json").write_text(json.dumps([
        {"text": "ZORVATH MOTORS", "kind": "company", "lang": "en", "train_count": 3},
        {"text": "KELAX", "kind": "person", "lang": "en", "train_count": 0},
        {"text": "泽兰科技", "kind": "company", "lang": "zh", "train_count": 0}]), encoding="utf-8")
    (root / "rare_names.json").write_text(json.dumps([
        {"text": "BRONTIS", "kind": "place", "lang": "en", "split": "test"},
        {"text": "QUELOR", "kind": "place", "lang": "en", "split": "train"}]), encoding="utf-8")
    (root / "distractor_names.json").write_text(json.dumps([{"text": "梅岚县", "lang": "zh"}]), encoding="utf-8")


def test_fresh_names_share_no_core_with_held_out_names(tmp_path):
    _fake_name_corpus(tmp_path / "corpus")
    held = held_out_names(tmp_path / "corpus")
    # Names no training transcript says, dev/test rare names and distractors; never a training name.
    assert held == {"en": ["BRONTIS", "KELAX"], "zh": ["梅岚县", "泽兰科技"]}
    hanzi = "".join(demo_text._ZH_SURNAMES + demo_text._ZH_GIVEN + demo_text._ZH_PLACE + demo_text._ZH_BRAND)
    suffixes = "".join(x for v in demo_text._ZH_SUFFIXES.values() for x in v)
    build_char_units([" ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), hanzi + suffixes], tmp_path / "units.txt")
    units = load_units(tmp_path / "units.txt")
    # Hold out a name the maker would make first (its first word / first two characters are the core):
    # no fresh name comes back with that core.
    probe = fresh_name_pools({}, units, seed=5, per_kind=20)
    first_en, first_zh = probe["en"]["person"][0], probe["zh"]["company"][0]
    fresh = fresh_name_pools({"en": [first_en + " LABS"], "zh": [first_zh[:2] + "手表"]}, units, seed=5, per_kind=20)
    for lang in ("en", "zh"):
        assert set(fresh[lang]) == set(demo_text.ENTITY_KINDS) and all(len(v) == 20 for v in fresh[lang].values())
    assert all(n.split()[0] != first_en.split()[0] for v in fresh["en"].values() for n in v)
    assert all(n[:2] != first_zh[:2] for v in fresh["zh"].values() for n in v)
    # Names the units cannot spell are never made.
    build_char_units(["ABC"], tmp_path / "few.txt")
    with pytest.raises(ValueError, match="fresh_names: 0"):
        fresh_name_pools({}, load_units(tmp_path / "few.txt"), seed=5, per_kind=2)


def test_copy_samples_with_fresh_names(tiny_llm_dir, tmp_path):
    rng = random.Random(0)
    pools = {"company": ["VELOLIX MOTORS"], "place": ["梅霞县"]}
    kinds = {"ZORVATH MOTORS": "company", "泽兰县": "place", "ZORV": "company"}
    # Whole names only, English by words; Mandarin anywhere in the text.
    assert rename("I LIKE ZORVATH MOTORS A LOT", ["ZORVATH MOTORS"], kinds, pools, rng) == (
        "I LIKE VELOLIX MOTORS A LOT", ["VELOLIX MOTORS"])
    assert rename("我去泽兰县了", ["泽兰县"], kinds, pools, rng) == ("我去梅霞县了", ["梅霞县"])
    assert rename("我去泽兰县了", ["泽兰县"], {}, pools, rng) == ("我去泽兰县了", [])  # kind unknown: kept
    tok = load_tokenizer(tiny_llm_dir)
    texts = ["I LIKE ZORVATH MOTORS", "A DOG"]
    build_char_units(texts + ["VELOLIX"], tmp_path / "units.txt")
    units = load_units(tmp_path / "units.txt")
    builder = PromptBuilder(tok, PromptConfig(english_case="lower", ctc_hypothesis=True))
    cfg = DemoLLMConfig(prompt=PromptConfig(english_case="lower", ctc_hypothesis=True), chat_fraction=0.0,
                        hypothesis=HypothesisCopyConfig(fraction=1.0, hotword_fraction=1.0, fresh_names=0.5,
                                                        max_distractors=0))
    rows = lm_samples(builder, texts * 100, cfg, units, unit_pools(units.units), {"en": ["ZORVATH MOTORS"]}, {},
                      kinds, {"en": pools})
    answers = [tok.decode(r["input_ids"]).rsplit("</think>\n\n", 1)[1] for r in rows]
    fresh = [a for a in answers if "velolix motors" in a]
    assert 30 < len(fresh) < 70  # half of the 100 samples that say a name
    assert sum("zorvath motors" in a for a in answers) == 100 - len(fresh)
    # The list holds the name the sample says: the fresh one.
    assert all("Hotwords: velolix motors" in tok.decode(r["input_ids"]) for r, a in zip(rows, answers)
               if "velolix motors" in a)
    same = lm_samples(builder, texts * 100, cfg, units, unit_pools(units.units), {"en": ["ZORVATH MOTORS"]}, {})
    assert not any("velolix" in tok.decode(r["input_ids"]) for r in same)  # without pools: no renaming
