"""The demo LLM's first-pass copy samples (stage 1 text for an SFT with the CTC hypothesis in the prompt)."""

from __future__ import annotations

import random

from wenet_llm.config.demo_llm import DemoLLMConfig, HypothesisCopyConfig
from wenet_llm.config.llm import PromptConfig
from wenet_llm.data.tokenizer import build_char_units, load_tokenizer as load_units
from wenet_llm.models.llm.decoder import load_tokenizer
from wenet_llm.models.llm.prompt import IGNORE_INDEX, PromptBuilder
from wenet_llm.train.demo_lm import corrupt, hypothesis_sample, lm_samples, unit_pools


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
