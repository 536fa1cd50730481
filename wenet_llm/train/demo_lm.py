"""The demo's base LLM: trim the Qwen tokenizer, build a small Qwen3, pre-train it on generated text.

The demo cannot download Qwen3-8B, so stage 1 of the demo recipe builds the LLM that stage 4 reads
through ``--llm_path``. What makes it a language model of the demo's language rather than a memory of
its 2,400 training transcripts is the amount of text: the demo grammar generates any number of
sentences, so the LM sees ``num_sentences`` fresh ones (every dev and test transcript kept out) besides
the training transcripts. Entities in the generated text are only names that occur in the training
transcripts, so names never heard in training stay unknown to the LM too.

The samples are the SFT stages' chat format without speech (user: instruction; assistant: sentence,
end of turn), loss on the assistant's words, as a chat-tuned LLM knows its format. Training runs on
the shared trainer; the result is saved as an ordinary Hugging Face directory ``<exp>/model``.
"""

from __future__ import annotations

import json
import logging
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from wenet_llm.config.demo_llm import DemoLLMConfig
from wenet_llm.synth import demo_text
from wenet_llm.data.formats import iter_entries
from wenet_llm.data.text_data import TextStream
from wenet_llm.models.llm.prompt import IGNORE_INDEX, PromptBuilder, apply_case
from wenet_llm.models.llm.qwen_tokenizer import save_vocab_map
from wenet_llm.models.llm.tiny_qwen import build_tiny_qwen
from wenet_llm.train.trainer import Trainer, resolve_init_from, seed_everything

logger = logging.getLogger(__name__)

HELD_OUT_SPLITS = ("dev", "test", "test_hotword", "test_noisy")
MODEL_DIR = "model"


def read_split_texts(data_dir: str | Path) -> dict[str, list[dict]]:
    """The entries of every split of a demo data dir that exists."""
    out = {}
    for split in ("train",) + HELD_OUT_SPLITS:
        path = Path(data_dir) / split / "data.list"
        if path.is_file():
            out[split] = list(iter_entries(path))
    if "train" not in out:
        raise FileNotFoundError(f"{data_dir}/train/data.list is missing; run stage 0 first")
    return out


def _generate_chunk(job: tuple) -> list[str]:
    seed, chunk, count, zh_fraction, lo, hi, entity_rate, entities, exclude = job
    rng = random.Random(f"wenet_llm.demo_lm/{seed}/{chunk}")
    out: list[str] = []
    tries = 0
    while len(out) < count and tries < 20 * count + 100:
        tries += 1
        lang = "zh" if rng.random() < zh_fraction else "en"
        topic = rng.choice(demo_text.topics(lang))
        named = []
        if entities.get(lang) and rng.random() < entity_rate:
            text, kind = rng.choice(entities[lang])
            named = [demo_text.Entity(text=text, kind=kind, lang=lang)]
        try:
            sentence = demo_text.make_sentence(rng, lang, topic, rng.uniform(lo, hi), named)
        except (RuntimeError, ValueError):
            continue  # an entity whose kind no template of this topic takes
        if sentence.text not in exclude:
            out.append(sentence.text)
    return out


def generate_sentences(cfg: DemoLLMConfig, exclude: set[str], entities: dict[str, list[tuple[str, str]]],
                       num_jobs: int = 1, chunk_size: int = 2000) -> list[str]:
    """``cfg.num_sentences`` grammar sentences, none in ``exclude``; the same for any ``num_jobs``."""
    chunks = [(cfg.seed, i, min(chunk_size, cfg.num_sentences - i * chunk_size), cfg.zh_fraction,
               cfg.min_target_seconds, cfg.max_target_seconds, cfg.entity_rate, entities, exclude)
              for i in range((cfg.num_sentences + chunk_size - 1) // chunk_size)]
    if num_jobs > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(num_jobs) as pool:
            parts = list(pool.map(_generate_chunk, chunks))
    else:
        parts = [_generate_chunk(c) for c in chunks]
    return [s for part in parts for s in part]


def training_entities(corpus_dir: str | Path) -> dict[str, list[tuple[str, str]]]:
    """(text, kind) of the entity names that occur in the training transcripts, per language, from the
    corpus' ``entities.json`` (names with ``train_count`` 0 are never heard in training: left out)."""
    path = Path(corpus_dir) / "entities.json"
    if not path.is_file():
        logger.warning("%s is missing: the generated LM text names no entity", path)
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    for e in json.loads(path.read_text(encoding="utf-8")):
        if e.get("train_count", 0) > 0:
            out.setdefault(e["lang"], []).append((e["text"], e["kind"]))
    return {lang: sorted(v) for lang, v in out.items()}


def lm_step(model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
    """Next-token cross-entropy on the labelled positions."""
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    shift_logits, shift_labels = logits[:, :-1].float(), batch.labels[:, 1:]
    target = shift_labels != IGNORE_INDEX
    n = target.sum().clamp(min=1)
    loss = F.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1),
                           ignore_index=IGNORE_INDEX, reduction="sum") / n
    acc = ((shift_logits.argmax(-1) == shift_labels) & target).sum() / n
    return {"loss": loss, "acc": acc.detach()}


def lm_samples(builder: PromptBuilder, texts: Sequence[str], chat_fraction: float, pack_tokens: int,
               seed: int = 0) -> list[dict]:
    """Training rows: a ``chat_fraction`` of ``texts`` in the SFT chat layout (no speech positions), the
    rest packed back to back with ``<|im_end|>`` after each sentence into rows of ``pack_tokens``."""
    rng = random.Random(f"wenet_llm.demo_lm.samples/{seed}")
    tok, eos = builder.tokenizer, builder.eos_id
    rows, packed, current = [], [], []
    for text in texts:
        if rng.random() < chat_fraction:
            rows.append(builder.layout(builder.build(text, {}), 0))
            continue
        ids = tok.encode(builder.target_text(text), add_special_tokens=False)[: pack_tokens - 1] + [eos]
        if len(current) + len(ids) > pack_tokens:
            packed.append(current)
            current = []
        current = current + ids
    if current:
        packed.append(current)
    rows += [{"input_ids": ids, "labels": list(ids)} for ids in packed]
    return rows


def chat_samples(builder: PromptBuilder, texts: Sequence[str]) -> list[dict]:
    """The chat layout of every text (the validation rows: what the SFT stages' prior looks like)."""
    return [builder.layout(builder.build(t, {}), 0) for t in texts]


def build_demo_llm(cfg: DemoLLMConfig, data_dir: str | Path, exp_dir: str | Path, num_jobs: int = 1) -> Path:
    """Build and pre-train the demo LLM; returns the Hugging Face directory ``<exp_dir>/model``."""
    exp = Path(exp_dir)
    seed_everything(cfg.train.seed)
    splits = read_split_texts(data_dir)
    train_texts = [e["txt"] for e in splits["train"] if e.get("txt")]
    held_out = {e["txt"] for split in HELD_OUT_SPLITS for e in splits.get(split, []) if e.get("txt")}
    sentences = generate_sentences(cfg, held_out, training_entities(Path(data_dir) / "corpus"), num_jobs)
    logger.info("LM text: %d generated sentences + %d training transcripts (%d held-out transcripts excluded)",
                len(sentences), len(train_texts), len(held_out))
    case = cfg.prompt.english_case
    every_text = [apply_case(t, case) for t in sentences + train_texts + sorted(held_out)]
    every_text += [cfg.prompt.instruction, cfg.prompt.hotwords_prefix, cfg.prompt.summary_prefix, cfg.prompt.system]
    every_text += [apply_case(w, case) for lang in demo_text.LANGS for w in sorted(demo_text.vocabulary(lang))]
    model, tokenizer = build_tiny_qwen(every_text, exp / "base", cfg.size, seed=cfg.train.seed)
    logger.info("tokenizer: %d entries (trimmed from Qwen3's 151,669); model: %s parameters", len(tokenizer),
                f"{sum(p.numel() for p in model.parameters()):,}")
    builder = PromptBuilder(tokenizer, cfg.prompt)
    samples = lm_samples(builder, sentences + train_texts, cfg.chat_fraction, cfg.pack_tokens, cfg.seed)
    train = TextStream(samples, cfg.max_tokens, tokenizer.pad_token_id, seed=cfg.train.seed)
    dev_texts = [e["txt"] for e in splits.get("dev", []) if e.get("txt")]
    dev = TextStream(chat_samples(builder, dev_texts), cfg.max_tokens, tokenizer.pad_token_id, shuffle=False) \
        if dev_texts else None
    logger.info("LM training rows: %d (%d tokens)", len(samples), sum(len(s["input_ids"]) for s in samples))
    Trainer(model, lm_step, cfg.train, exp / "train", config=cfg).fit(train, dev)
    weights = torch.load(resolve_init_from(exp / "train"), map_location="cpu", weights_only=True)
    model.load_state_dict(weights)
    out = exp / MODEL_DIR
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    save_vocab_map(out, json.loads((exp / "base" / "vocab_map.json").read_text())["qwen_ids"])
    return out
