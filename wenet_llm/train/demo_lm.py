"""The demo's base LLM: trim the Qwen tokenizer, build a small Qwen3, pre-train it on generated text.

The demo cannot download Qwen3-8B, so stage 1 of the demo recipe builds the LLM that stage 4 reads
through ``--llm_path``. What makes it a language model of the demo's language rather than a memory of
its 2,400 training transcripts is the amount of text: the demo grammar generates any number of
sentences, so the LM sees ``num_sentences`` fresh ones (every dev and test transcript kept out) besides
the training transcripts. Entities in the generated text are only names that occur in the training
transcripts, so names never heard in training stay unknown to the LM too.

The samples are plain text packed into rows, the SFT stages' chat format without speech (user:
instruction; assistant: sentence, end of turn; loss on the assistant's words, as a chat-tuned LLM knows
its format) and, for SFT stages that put the CTC hypothesis in the prompt, first-pass copy samples: the
same turn with a corrupted copy of the sentence as the hypothesis, some with a hotword list whose names
the hypothesis misspells, so that the LM copies and mends its prompt before it hears any speech.
Training runs on the shared trainer; the result is saved as an ordinary Hugging Face directory
``<exp>/model``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import torch

from wenet_llm.config.demo_llm import DemoLLMConfig, HypothesisCopyConfig, SpelledSpeechConfig
from wenet_llm.synth import demo_text
from wenet_llm.data.formats import iter_entries
from wenet_llm.data.text_norm import has_hanzi
from wenet_llm.data.tokenizer import load_tokenizer as load_unit_tokenizer
from wenet_llm.data.tokenizer import read_units
from wenet_llm.data.text_data import TextStream
from wenet_llm.models.llm.adapter import unit_texts, unit_token_ids
from wenet_llm.models.llm.prompt import PromptBuilder, apply_case
from wenet_llm.models.llm.spelled import SLOTS, SpelledSpeechLM, slot_keys
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


def _corpus_names(corpus_dir: Path) -> list[tuple[dict, bool, bool]]:
    """Every name of the corpus' ``entities.json`` and ``rare_names.json`` as (entry, whether training
    transcripts say it (``train_count`` > 0; a rare name of the train split), whether it is a rare name)."""
    out = []
    path = corpus_dir / "entities.json"
    for e in json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []:
        out.append((e, e.get("train_count", 0) > 0, False))
    path = corpus_dir / "rare_names.json"
    for e in json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []:
        out.append((e, e["split"] == "train", True))
    return out


def training_entities(corpus_dir: str | Path, with_rare: bool = False) -> dict[str, list[tuple[str, str]]]:
    """(text, kind) of the entity names that occur in the training transcripts, per language, from the
    corpus' ``entities.json`` (names with ``train_count`` 0 are never heard in training: left out); with
    ``with_rare`` also the training split's rare names (``rare_names.json``). Dev and test names stay out."""
    corpus = Path(corpus_dir)
    if not (corpus / "entities.json").is_file():
        logger.warning("%s is missing: the generated LM text names no entity", corpus / "entities.json")
        return {}
    out: dict[str, set[tuple[str, str]]] = {}
    for e, heard, rare in _corpus_names(corpus):
        if heard and (with_rare or not rare):
            out.setdefault(e["lang"], set()).add((e["text"], e["kind"]))
    return {lang: sorted(v) for lang, v in out.items()}


def distractor_names(corpus_dir: str | Path) -> dict[str, list[str]]:
    """The corpus' never-spoken names (``distractor_names.json``), per language."""
    path = Path(corpus_dir) / "distractor_names.json"
    out: dict[str, list[str]] = {}
    for e in json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []:
        out.setdefault(e["lang"], []).append(e["text"])
    return {lang: sorted(v) for lang, v in out.items()}


FRESH_NAMES_PER_KIND = 600  # per language and kind: each fresh name is used about once or twice


def held_out_names(corpus_dir: str | Path) -> dict[str, list[str]]:
    """Per language, the corpus' names the LM must never read: names no training transcript says
    (``entities.json`` with ``train_count`` 0), the dev / test rare names and the never-spoken distractors."""
    corpus = Path(corpus_dir)
    out: dict[str, set[str]] = {}
    for e, heard, _ in _corpus_names(corpus):
        if not heard:
            out.setdefault(e["lang"], set()).add(e["text"])
    for lang, names in distractor_names(corpus).items():
        out.setdefault(lang, set()).update(names)
    return {lang: sorted(v) for lang, v in out.items()}


def _english_core(name: str) -> str:
    return name.split()[0]  # the invented word before a kind's suffix ("ZORVATH" of "ZORVATH MOTORS")


def _mandarin_core(name: str) -> str:
    return name[:2]  # surname and first given character, or the brand / place pair


def fresh_name_pools(held_out: dict[str, list[str]], units, seed: int,
                     per_kind: int = FRESH_NAMES_PER_KIND) -> dict[str, dict[str, list[str]]]:
    """Up to ``per_kind`` invented names per language and kind (``demo_text.NameMaker``) that the AED's
    ``units`` spell and that share no core with a ``held_out`` name: no English name with the same invented
    first word ("ZORVATH" of "ZORVATH MOTORS"), no Mandarin name starting with the same two characters
    (surname and first given character, or the brand / place pair before a kind's suffix)."""
    out: dict[str, dict[str, list[str]]] = {}
    for lang in demo_text.LANGS:
        core = _english_core if lang == "en" else _mandarin_core
        cores = {core(n) for n in held_out.get(lang, [])}

        def avoid(text: str, core=core, cores=cores) -> bool:
            return bool(units.oov_chars(text)) or core(text) in cores

        maker = demo_text.NameMaker(lang, seed)
        pools: dict[str, list[str]] = {}
        for kind in demo_text.ENTITY_KINDS:
            made = pools.setdefault(kind, [])
            try:
                while len(made) < per_kind:
                    made.append(maker.new("lm_fresh", kind, avoid).text)
            except ValueError:  # the name parts left after the held-out cores are used up: fewer names
                if not made:
                    raise ValueError(f"no fresh {lang} {kind} name shares no core with the corpus' held-out "
                                     f"names; set hypothesis.fresh_names: 0") from None
        out[lang] = pools
    return out


def rename(text: str, said: Sequence[str], kinds: dict[str, str], pools: dict[str, list[str]],
           rng: random.Random) -> tuple[str, list[str]]:
    """``text`` with each name of ``said`` (names it says, of known ``kinds``) swapped for a random name of
    the same kind from ``pools``; returns (the new text, the names it now says)."""
    new = []
    for name in sorted(said, key=len, reverse=True):
        pool = pools.get(kinds.get(name, ""), [])
        if not pool:
            continue
        fresh = rng.choice(pool)
        text = text.replace(name, fresh) if has_hanzi(name) else f" {text} ".replace(f" {name} ", f" {fresh} ")[1:-1]
        new.append(fresh)
    return text, new


def spell(unit_ids: Sequence[int], pool: Sequence[int], rng: random.Random, cfg: SpelledSpeechConfig,
          gap: tuple[int, int]) -> list[list[tuple[int, float]]]:
    """Frames of spelled speech: per frame the (unit, weight) pairs heard there ([] = blank)."""
    frames: list[list[tuple[int, float]]] = [[] for _ in range(rng.randint(*cfg.edge_frames))]

    def spike(unit: int) -> None:
        frames.extend([] for _ in range(rng.randint(*gap)))
        weight = rng.uniform(cfg.min_weight, 1.0)
        heard = [(unit, weight)]
        if pool and rng.random() < cfg.confuse:
            heard.append((rng.choice(pool), 1.0 - weight))
        frames.append(heard)

    for unit in unit_ids:
        if pool and rng.random() < cfg.insert:
            spike(rng.choice(pool))
        if rng.random() < cfg.delete:
            continue
        spike(rng.choice(pool) if pool and rng.random() < cfg.substitute else unit)
    frames.extend([] for _ in range(rng.randint(*cfg.edge_frames)))
    return frames


def group_positions(frames: list[list[tuple[int, float]]], k: int, slots: int) -> list[list[tuple[int, float]]]:
    """Group frames k by k into positions; each keeps its ``slots`` heaviest (unit, weight) pairs."""
    out = []
    for start in range(0, len(frames), k):
        heard = [p for frame in frames[start:start + k] for p in frame]
        out.append(sorted(heard, key=lambda p: -p[1])[:slots])
    return out


def spelled_sample(builder: PromptBuilder, text: str, units, pools: dict[str, list[int]], rng: random.Random,
                   cfg: SpelledSpeechConfig) -> dict:
    """One spelled-speech sample: the chat layout with speech positions carrying unit slots."""
    lang = "zh" if has_hanzi(text) else "en"
    frames = spell(units.encode(text), pools[lang], rng, cfg, cfg.zh_gap_frames if lang == "zh" else cfg.en_gap_frames)
    positions = group_positions(frames, cfg.downsample, SLOTS)
    row = builder.layout(builder.build(text, {}), len(positions))
    start = row["speech_mask"].index(1) if positions else 0
    for i in range(SLOTS):
        row[f"unit{i}"] = [-1] * len(row["input_ids"])
        row[f"weight{i}"] = [0.0] * len(row["input_ids"])
        for j, heard in enumerate(positions):
            if i < len(heard):
                row[f"unit{i}"][start + j], row[f"weight{i}"][start + j] = heard[i]
    return row


def corrupt(unit_ids: Sequence[int], pool: Sequence[int], rng: random.Random, cfg: HypothesisCopyConfig) -> list[int]:
    """A recognition-like copy of ``unit_ids``: units inserted, deleted or substituted from ``pool``."""
    out = []
    for unit in unit_ids:
        if pool and rng.random() < cfg.insert:
            out.append(rng.choice(pool))
        if rng.random() < cfg.delete:
            continue
        out.append(rng.choice(pool) if pool and rng.random() < cfg.substitute else unit)
    return out


def hypothesis_sample(builder: PromptBuilder, text: str, units, pools: dict[str, list[int]], rng: random.Random,
                      cfg: HypothesisCopyConfig, names: Sequence[str] = (), hotwords: Sequence[str] = ()) -> dict:
    """One first-pass copy sample: the chat layout without speech, a corrupted hypothesis of ``text`` in the
    prompt, ``text`` as the answer. ``hotwords`` (a list for the prompt's context block): the ``names``
    among them that ``text`` says are corrupted at ``cfg.name_error`` per unit in the hypothesis."""
    lang = "zh" if has_hanzi(text) else "en"
    pool = pools.get(lang, [])
    listed = sorted((n for n in names if n in hotwords and _says(text, n)), key=len, reverse=True)
    parts = re.split("(" + "|".join(map(re.escape, listed)) + ")", text) if listed else [text]
    name_cfg = dataclasses.replace(cfg, substitute=cfg.name_error, delete=cfg.name_error / 2, insert=0.0)
    heard = [units.decode(corrupt(units.encode(part), pool, rng, name_cfg if part in listed else cfg))
             for part in parts]
    hypothesis = ("" if lang == "zh" else " ").join(h for h in heard if h)
    context = {"hotwords": list(hotwords)} if hotwords else {}
    return builder.layout(builder.build(text, context), 0, builder.hypothesis_ids(hypothesis))


def hotword_list(text: str, names: Sequence[str], distractors: Sequence[str], rng: random.Random,
                 max_distractors: int) -> list[str]:
    """The names ``text`` says (as whole words in English) and up to ``max_distractors`` others, shuffled."""
    said = [n for n in names if _says(text, n)]
    others = [d for d in distractors if d not in said and not _says(text, d)]
    chosen = said + rng.sample(others, min(len(others), rng.randint(0, max_distractors)))
    rng.shuffle(chosen)
    return chosen


def warmup_words(names: dict[str, list[str]], units) -> dict[str, list[str]]:
    """Per language, the grammar's words and the given names that the AED's ``units`` spell without
    ``<unk>`` (char or mixed units alike)."""
    return {lang: [w for w in sorted(set(demo_text.vocabulary(lang)) | set(names.get(lang, [])))
                   if not units.oov_chars(w)] for lang in demo_text.LANGS}


def random_word_strings(words: dict[str, list[str]], count: int, zh_fraction: float, rng: random.Random,
                        length: tuple[int, int]) -> list[str]:
    """``count`` strings of ``length`` (range) words drawn at random: text no grammar predicts."""
    if not words.get("en") and not words.get("zh"):
        raise ValueError("no word to draw copy warm-up strings from")
    out = []
    for _ in range(count):
        lang = "zh" if (rng.random() < zh_fraction or not words.get("en")) and words.get("zh") else "en"
        drawn = [rng.choice(words[lang]) for _ in range(rng.randint(*length))]
        out.append(("" if lang == "zh" else " ").join(drawn))
    return out


def _says(text: str, name: str) -> bool:
    if has_hanzi(name):
        return name in text
    return f" {name} " in f" {text} "


def lm_samples(builder: PromptBuilder, texts: Sequence[str], cfg: DemoLLMConfig, units=None,
               pools: dict[str, list[int]] | None = None, names: dict[str, list[str]] | None = None,
               distractors: dict[str, list[str]] | None = None, kinds: dict[str, str] | None = None,
               fresh: dict[str, dict[str, list[str]]] | None = None) -> list[dict]:
    """Training rows: ``cfg.spelled.fraction`` of ``texts`` as spelled speech, ``cfg.hypothesis.fraction`` as
    first-pass copy samples, ``cfg.chat_fraction`` in the SFT chat layout without speech, the rest packed
    back to back with ``<|im_end|>`` after each sentence into rows of ``cfg.pack_tokens`` (loss on every
    token: the language at full speed). ``names`` (per language: the entity names the text may say) and
    ``distractors`` (per language: names for the lists besides them) feed the copy samples' hotword lists.
    With ``fresh`` (per language and kind: invented names, :func:`fresh_name_pools`) and ``kinds`` (each
    name's kind), ``cfg.hypothesis.fresh_names`` of the copy samples that say a name say a fresh one instead."""
    rng = random.Random(f"wenet_llm.demo_lm.samples/{cfg.seed}")
    tok, eos = builder.tokenizer, builder.eos_id
    rows, packed, current = [], [], []
    copies = listed = renamed = 0
    for text in texts:
        draw = rng.random()
        if draw < cfg.spelled.fraction and units is not None:
            rows.append(spelled_sample(builder, text, units, pools or {}, rng, cfg.spelled))
            continue
        draw -= cfg.spelled.fraction
        if draw < cfg.hypothesis.fraction and units is not None:
            lang = "zh" if has_hanzi(text) else "en"
            lang_names = (names or {}).get(lang, [])
            sample_names = lang_names
            if fresh and kinds and cfg.hypothesis.fresh_names > 0:
                said = [n for n in lang_names if _says(text, n)]
                if said and rng.random() < cfg.hypothesis.fresh_names:
                    text, sample_names = rename(text, said, kinds, fresh.get(lang, {}), rng)
                    renamed += 1
            hotwords: list[str] = []
            if rng.random() < cfg.hypothesis.hotword_fraction:
                hotwords = hotword_list(text, sample_names, lang_names + (distractors or {}).get(lang, []), rng,
                                        cfg.hypothesis.max_distractors)
                listed += bool(hotwords)
            rows.append(hypothesis_sample(builder, text, units, pools or {}, rng, cfg.hypothesis, sample_names,
                                          hotwords))
            copies += 1
            continue
        if draw < cfg.hypothesis.fraction + cfg.chat_fraction:
            rows.append(builder.layout(builder.build(text, {}), 0))
            continue
        ids = tok.encode(builder.target_text(text), add_special_tokens=False)[: cfg.pack_tokens - 1] + [eos]
        if len(current) + len(ids) > cfg.pack_tokens:
            packed.append(current)
            current = []
        current = current + ids
    if current:
        packed.append(current)
    rows += [{"input_ids": ids, "labels": list(ids)} for ids in packed]
    empty = builder.layout(builder.build("", {}), 0, builder.hypothesis_ids(""))  # no speech: only the end of the turn
    rows += [dict(empty) for _ in range(int(round(cfg.spelled.empty_fraction * len(texts))))]
    if copies:
        logger.info("first-pass copy samples: %d (%d with a hotword list, %d with fresh names)", copies, listed,
                    renamed)
    return rows


def unit_pools(unit_list: Sequence[str]) -> dict[str, list[int]]:
    """The unit ids a recognition error may produce, per language (Hanzi; English letters and apostrophe)."""
    zh = [i for i, u in enumerate(unit_list) if len(u) == 1 and has_hanzi(u)]
    en = [i for i, u in enumerate(unit_list) if len(u) == 1 and (u.isascii() and (u.isalpha() or u == "'"))]
    return {"zh": zh, "en": en}


def lm_step(model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
    """The trainer's step function of :class:`SpelledSpeechLM` on text batches."""
    extra = batch.extra
    units = weights = None
    if "unit0" in extra:
        units = torch.stack([extra[f"unit{i}"] for i in range(SLOTS)], dim=-1)  # (B, L, S)
        weights = torch.stack([extra[f"weight{i}"] for i in range(SLOTS)], dim=-1)
    return model(batch.input_ids, batch.attention_mask, batch.labels, extra.get("speech_mask"), units, weights)


def _extra_pad() -> dict:
    """Padding values of the rows' extra keys (speech mask, spelled-speech slots)."""
    return {"speech_mask": 0, **{k: (0.0 if k.startswith("weight") else -1) for k in slot_keys()}}


def copy_warmup(wrapper: SpelledSpeechLM, cfg: DemoLLMConfig, builder: PromptBuilder, units,
                pools: dict[str, list[int]], words: dict[str, list[str]], exp_dir: Path) -> None:
    """Train ``wrapper`` for ``cfg.hypothesis.warmup_steps`` steps on copy samples of random word strings
    (constant learning rate after a short ramp; resumable like any stage) and leave its final weights in it."""
    hyp = cfg.hypothesis
    rng = random.Random(f"wenet_llm.demo_lm.copy_warmup/{cfg.seed}")
    strings = random_word_strings(words, hyp.warmup_samples, cfg.zh_fraction, rng, hyp.warmup_words)
    rows = [hypothesis_sample(builder, text, units, pools, rng, hyp) for text in strings]
    logger.info("copy warm-up: %d steps on %d random word strings (%d English / %d Mandarin words to draw from)",
                hyp.warmup_steps, len(rows), len(words.get("en", [])), len(words.get("zh", [])))
    train_cfg = dataclasses.replace(
        cfg.train, max_steps=hyp.warmup_steps, max_epoch=10 ** 6,
        scheduler=dataclasses.replace(cfg.train.scheduler, name="constant",
                                      warmup_steps=min(cfg.train.scheduler.warmup_steps, hyp.warmup_steps // 4)))
    stream = TextStream(rows, cfg.max_tokens, builder.tokenizer.pad_token_id, seed=cfg.train.seed,
                        extra_pad=_extra_pad())
    Trainer(wrapper, lm_step, train_cfg, exp_dir, config=cfg).fit(stream)
    wrapper.load_state_dict(torch.load(resolve_init_from(exp_dir), map_location="cpu", weights_only=True))


def build_demo_llm(cfg: DemoLLMConfig, data_dir: str | Path, exp_dir: str | Path, num_jobs: int = 1) -> Path:
    """Build and pre-train the demo LLM; returns the Hugging Face directory ``<exp_dir>/model``.

    With ``cfg.spelled.fraction`` or ``cfg.hypothesis.fraction`` > 0 the AED's units
    (``<data_dir>/lang/units.txt``, stage 1) spell the spelled-speech samples and corrupt the copy samples'
    hypotheses."""
    exp = Path(exp_dir)
    seed_everything(cfg.train.seed)
    splits = read_split_texts(data_dir)
    train_texts = [e["txt"] for e in splits["train"] if e.get("txt")]
    held_out = {e["txt"] for split in HELD_OUT_SPLITS for e in splits.get(split, []) if e.get("txt")}
    # Copy samples with hotword lists want many names to copy: the training split's rare names join the text.
    corpus = Path(data_dir) / "corpus"
    entities = training_entities(corpus, with_rare=cfg.hypothesis.hotword_fraction > 0)
    sentences = generate_sentences(cfg, held_out, entities, num_jobs)
    logger.info("LM text: %d generated sentences + %d training transcripts (%d held-out transcripts excluded)",
                len(sentences), len(train_texts), len(held_out))
    case = cfg.prompt.english_case
    units = unit_list = None
    if cfg.spelled.fraction > 0 or cfg.hypothesis.fraction > 0:
        units_path = Path(data_dir) / "lang" / "units.txt"
        units, unit_list = load_unit_tokenizer(units_path), read_units(units_path)
    every_text = [apply_case(t, case) for t in sentences + train_texts + sorted(held_out)]
    every_text += [cfg.prompt.instruction, cfg.prompt.hotwords_prefix, cfg.prompt.summary_prefix, cfg.prompt.system,
                   "\n" + cfg.prompt.ctc_hypothesis_label + "\n"]
    every_text += [apply_case(w, case) for lang in demo_text.LANGS for w in sorted(demo_text.vocabulary(lang))]
    distractors = distractor_names(corpus)
    every_text += [apply_case(n, case) for v in distractors.values() for n in v]
    every_text += unit_texts(unit_list or [], case)  # every unit's text is a token: the adapter's warm start
    fresh = None
    if units is not None and cfg.hypothesis.fraction > 0 and cfg.hypothesis.fresh_names > 0:
        fresh = fresh_name_pools(held_out_names(corpus), units, cfg.seed)
        every_text += [apply_case(n, case) for by_kind in fresh.values() for v in by_kind.values() for n in v]
        logger.info("fresh names for copy samples: %s", ", ".join(
            f"{lang} {sum(map(len, v.values()))}" for lang, v in sorted(fresh.items())))
    model, tokenizer = build_tiny_qwen(every_text, exp / "base", cfg.size, seed=cfg.train.seed)
    logger.info("tokenizer: %d entries (trimmed from Qwen3's 151,669); model: %s parameters", len(tokenizer),
                f"{sum(p.numel() for p in model.parameters()):,}")
    builder = PromptBuilder(tokenizer, cfg.prompt)
    pools = unit_pools(unit_list) if unit_list else {}
    names = {lang: [text for text, _ in v] for lang, v in entities.items()}
    kinds = {text: kind for v in entities.values() for text, kind in v}
    samples = lm_samples(builder, sentences + train_texts, cfg, units, pools, names, distractors, kinds, fresh)
    pad = _extra_pad()
    train = TextStream(samples, cfg.max_tokens, tokenizer.pad_token_id, seed=cfg.train.seed, extra_pad=pad)
    dev_texts = [e["txt"] for e in splits.get("dev", []) if e.get("txt")]
    dev_rows = []
    rng = random.Random(f"wenet_llm.demo_lm.dev/{cfg.seed}")
    for text in dev_texts:  # what SFT starts from: reading spelled speech or a hypothesis (or the chat prior)
        if units is not None and cfg.spelled.fraction > 0:
            dev_rows.append(spelled_sample(builder, text, units, pools, rng, cfg.spelled))
        elif units is not None:
            dev_rows.append(hypothesis_sample(builder, text, units, pools, rng, cfg.hypothesis))
        else:
            dev_rows.append(builder.layout(builder.build(text, {}), 0))
    dev = TextStream(dev_rows, cfg.max_tokens, tokenizer.pad_token_id, shuffle=False, extra_pad=pad) \
        if dev_rows else None
    kinds = {"spelled": sum("unit0" in r for r in samples), "chat": sum("speech_mask" in r and "unit0" not in r
                                                                       for r in samples)}
    logger.info("LM training rows: %d (%d spelled speech, %d chat, %d packed; %d tokens)", len(samples),
                kinds["spelled"], kinds["chat"], len(samples) - kinds["spelled"] - kinds["chat"],
                sum(len(s["input_ids"]) for s in samples))
    wrapper = SpelledSpeechLM(model, unit_token_ids(unit_list or [], tokenizer, case))
    if units is not None and cfg.hypothesis.fraction > 0 and cfg.hypothesis.warmup_steps > 0:
        copy_warmup(wrapper, cfg, builder, units, pools, warmup_words(names, units), exp / "copy_warmup")
    Trainer(wrapper, lm_step, cfg.train, exp / "train", config=cfg).fit(train, dev)
    wrapper.load_state_dict(torch.load(resolve_init_from(exp / "train"), map_location="cpu", weights_only=True))
    out = exp / MODEL_DIR
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    save_vocab_map(out, json.loads((exp / "base" / "vocab_map.json").read_text())["qwen_ids"])
    return out
