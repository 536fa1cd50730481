"""The contextual data builder: a training list -> the same list with per-utterance hotword lists and summaries.

Input: any list :func:`wenet_llm.data.formats.iter_entries` reads (data.list, Kaldi dir, lhotse manifest).
Output, under ``out_dir``:

- ``data.list``: every input entry, in input order, with the top-level fields the dataset hands to the
  prompt builder (``CONTEXT_FIELDS`` in ``data/dataset.py``): ``hotwords`` (a list of strings, possibly
  empty) and/or ``summary`` (a string). A plain entry (``plain_fraction``) has neither: fields of those
  names in the input are removed from it, and replaced in the others;
- ``context.jsonl``: the same context in the context format of ``data/context.py`` (``key``, ``hotwords``,
  ``summary``) plus ``targets``, the list terms said in the utterance (empty for a negative list);
- ``context_report.json``: what was built (see :func:`build_context_data`).

Per utterance (every random choice comes from its own stream seeded by ``(seed, choice, key)``, so a
result does not depend on the order or number of utterances, and changing one knob leaves the others'
choices alone):

1. targets: the entry's ``target_field`` and/or the extractor's terms, normalised, kept only when they
   occur in the transcript (a "target" that is not said would teach the model to insert it), at most
   ``max_targets``;
2. the list: with probability ``negative_fraction`` (utterances with targets) no target is kept; the
   length is drawn from [min_list_len, max_list_len] (at least the kept targets); the rest are
   distractors drawn from the pool of every other utterance's targets plus ``pool_files``, in the
   utterance's language, never a term that occurs in the transcript; the order is shuffled;
3. the summary of the utterance's group (``group_by`` field or ``group_key_regex`` on the key), offline
   or from the chat endpoint. A summary never holds the utterance's own transcript verbatim: for an
   utterance whose whole transcript it contains, the offline summary is rebuilt without the terms said
   in it (an endpoint summary is replaced by that offline one).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
import os
import random
import re
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from wenet_llm.config.context_data import ContextDataConfig
from wenet_llm.data import formats
from wenet_llm.data.chat_client import ChatClient, parse_json_reply
from wenet_llm.data.context import Context, write_context
from wenet_llm.data.context_terms import (StatisticalExtractor, contains, hanzi_unit, join_units, ngrams,
                                          read_term_pool, text_language, units)
from wenet_llm.data.text_norm import is_hanzi
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

CONTEXT_KEYS = ("hotwords", "summary")  # the fields this builder writes (and removes from plain entries)


def _rng(seed: int, what: str, key: str) -> random.Random:
    # String seeds go through sha512: stable across processes and Python versions, unlike hash().
    return random.Random(f"{seed}/{what}/{key}")


@dataclass
class _Utt:
    entry: dict
    key: str
    text: str
    lang: str
    units: list[str]
    usable: bool = True  # False: an entry the reader flagged (e.g. non-UTF-8 text); written as is
    plain: bool = False
    targets: list[str] = field(default_factory=list)
    hotwords: Optional[list[str]] = None
    kept_targets: list[str] = field(default_factory=list)
    summary: Optional[str] = None
    group: Optional[str] = None


def term_form(term: str, normalize_terms: bool) -> str:
    """A term as written in lists: in the transcripts' normalised form, or as given."""
    return join_units(term_units(term)) if normalize_terms else " ".join(term.split())


@functools.lru_cache(maxsize=1 << 20)
def term_units(term: str) -> tuple[str, ...]:
    """:func:`units` of a term or summary, computed once per distinct string (normalising is the slow part)."""
    return tuple(units(term))


# ----------------------------------------------------------------------------- LLM extraction and summaries

_EXTRACT_SYSTEM = (
    "You pick hotwords for a speech recogniser: rare, domain-specific terms in a transcript that a recogniser "
    "is likely to get wrong (names of people, places, organisations and products, technical terms, rare words). "
    "You answer with one JSON object and nothing else.")
_EXTRACT_USER = (
    "For each numbered transcript below, list at most {m} hotwords, each 1 to 4 words copied exactly as written "
    "in that transcript; common words are not hotwords, and a transcript may have none. Answer with a JSON object "
    'mapping each number to its list, e.g. {{"1": ["Zorblax Labs"], "2": []}}.\n\n{items}')
_SUMMARY_SYSTEM = (
    "You write short context notes that help a speech recogniser transcribe a recording: what it is about and "
    "the rare names and terms in it. You never quote whole sentences.")
_SUMMARY_USER = (
    "Below are transcripts of the utterances of one recording. Write, in the language of the transcripts and in "
    "at most {chars} characters, one or two sentences on what the recording is about, then the rare names and "
    "terms it mentions. Do not repeat any sentence.\n\n{texts}")


def llm_extract(client, utts: Sequence[_Utt], max_terms: int, batch_size: int, num_workers: int) -> dict:
    """Ask the endpoint for each utterance's hotwords, ``batch_size`` transcripts per request.

    Returns counts: ``unparsed_batches`` (replies without the JSON asked for: their utterances get no
    terms, and the reply is dropped from the cache so that a rerun asks again)."""
    batches = [list(utts[i:i + batch_size]) for i in range(0, len(utts), batch_size)]
    counts = Counter()

    def one(batch: list[_Utt]) -> tuple[list[_Utt], Optional[dict]]:
        items = "\n".join(f"{i}. {u.text}" for i, u in enumerate(batch, 1))
        messages = [{"role": "system", "content": _EXTRACT_SYSTEM},
                    {"role": "user", "content": _EXTRACT_USER.format(m=max_terms, items=items)}]
        reply = client.complete(messages)
        try:
            data = parse_json_reply(reply)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return batch, data
        except ValueError:
            client.forget(messages)
            return batch, None

    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        for n, (batch, data) in enumerate(pool.map(one, batches), 1):
            if data is None:
                counts["unparsed_batches"] += 1
                logger.warning("the endpoint's reply for %d transcripts (%s...) held no JSON object; they get no "
                               "extracted terms", len(batch), batch[0].key)
                continue
            for i, u in enumerate(batch, 1):
                terms = data.get(str(i), [])
                if not isinstance(terms, list):
                    counts["malformed_lists"] += 1
                    continue
                u.targets = [t for t in terms if isinstance(t, str)]
            if n % 100 == 0:
                logger.info("LLM extraction: %d of %d requests", n, len(batches))
    return dict(counts)


def llm_summaries(client, groups: dict[str, list[_Utt]], max_chars: int, max_prompt_chars: int,
                  num_workers: int) -> dict[str, str]:
    def one(item: tuple[str, list[_Utt]]) -> tuple[str, str]:
        gid, members = item
        texts, size = [], 0
        for u in members:
            if size + len(u.text) > max_prompt_chars:
                break
            texts.append(u.text)
            size += len(u.text) + 1
        messages = [{"role": "system", "content": _SUMMARY_SYSTEM},
                    {"role": "user", "content": _SUMMARY_USER.format(chars=max_chars, texts="\n".join(texts))}]
        return gid, " ".join(client.complete(messages).split())

    with ThreadPoolExecutor(max_workers=num_workers) as pool:
        return {gid: _cut(text, max_chars) for gid, text in pool.map(one, sorted(groups.items()))}


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    if " " in cut and not is_hanzi(cut[-1]):
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:，、；：")


# ----------------------------------------------------------------------------- offline summaries


def _topic_units(us: Sequence[str]) -> list[str]:
    """The units a group's description is made of: words of 4+ letters, and Hanzi bigrams."""
    out = [u for u in us if not hanzi_unit(u) and len(u) >= 4 and u.isalpha()]
    out += [us[i] + us[i + 1] for i in range(len(us) - 1) if hanzi_unit(us[i]) and hanzi_unit(us[i + 1])]
    return out


def extractive_summary(lang: str, topic: str, words: Sequence[str], terms: Sequence[str]) -> str:
    """"Topic: food. About: RECIPE, BAKERY. Key terms: ZANURANT MOTORS." (Mandarin: 话题：…。内容：…。关键词：…。)"""
    if lang == "zh":
        parts = [f"话题：{topic}。" if topic else "", f"内容：{'、'.join(words)}。" if words else "",
                 f"关键词：{'、'.join(terms)}。" if terms else ""]
        return "".join(parts)
    parts = [f"Topic: {topic}." if topic else "", f"About: {', '.join(words)}." if words else "",
             f"Key terms: {', '.join(terms)}." if terms else ""]
    return " ".join(p for p in parts if p)


class _Extractive:
    """Offline group summaries: the group's topic field, its most typical words (tf-idf over groups) and
    its most frequent targets."""

    def __init__(self, groups: dict[str, list[_Utt]], topic_field: str, max_terms: int, max_words: int):
        self.groups = groups
        self.topic_field, self.max_terms, self.max_words = topic_field, max_terms, max_words
        self.df: Counter = Counter()
        self._parts: dict[str, tuple[str, str, list[str], list[str]]] = {}
        for members in groups.values():
            self.df.update({t for u in members for t in _topic_units(u.units)})

    def parts(self, gid: str) -> tuple[str, str, list[str], list[str]]:
        if gid not in self._parts:
            self._parts[gid] = self._make_parts(gid)
        return self._parts[gid]

    def _make_parts(self, gid: str) -> tuple[str, str, list[str], list[str]]:
        members = self.groups[gid]
        lang = Counter(u.lang for u in members).most_common(1)[0][0]
        topics = Counter(str(u.entry.get(self.topic_field)) for u in members
                         if isinstance(u.entry.get(self.topic_field), str) and u.entry.get(self.topic_field))
        topic = topics.most_common(1)[0][0] if topics else ""
        seen: Counter = Counter()
        order: dict[str, int] = {}
        for u in members:
            for t in u.targets:
                seen[t] += 1
                order.setdefault(t, len(order))
        terms = sorted(seen, key=lambda t: (-seen[t], order[t]))[: self.max_terms]
        n_groups = len(self.groups)
        tf = Counter(t for u in members for t in _topic_units(u.units))
        said_in_terms = [term_units(t) for t in terms]
        scored = []
        for unit, count in tf.items():
            if self.df[unit] * 2 > n_groups or any(contains(tu, term_units(unit)) for tu in said_in_terms):
                continue  # in most groups (says nothing), or already a key term
            scored.append((-count * math.log(n_groups / self.df[unit]), unit))
        words = [unit for _, unit in sorted(scored)[: self.max_words]]
        return lang, topic, words, terms

    def for_utterance(self, gid: str, u: _Utt) -> tuple[Optional[str], bool]:
        """(summary, rebuilt) for one member: terms and words said in ``u`` are left out when the whole
        summary would otherwise contain ``u``'s transcript; None when even that cannot avoid it."""
        lang, topic, words, terms = self.parts(gid)
        text = extractive_summary(lang, topic, words, terms)
        if not leaks(text, u):
            return text or None, False
        words = [w for w in words if not contains(u.units, term_units(w))]
        terms = [t for t in terms if not contains(u.units, term_units(t))]
        text = extractive_summary(lang, topic, words, terms)
        return (None if not text or leaks(text, u) else text), True


def leaks(summary: str, u: _Utt) -> bool:
    """True when the summary holds the utterance's whole transcript."""
    return bool(u.units) and contains(term_units(summary), u.units)


# ----------------------------------------------------------------------------- distractors


class _Pool:
    """Distractor terms per language, in a fixed order (sorted), each term once."""

    def __init__(self, same_language: bool):
        self.same_language = same_language
        self.terms: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)  # lang -> {written form: units}
        self.max_units = 1

    def add(self, term: str, lang: str) -> None:
        us = term_units(term)
        if us:
            self.terms[lang if self.same_language else "*"].setdefault(join_units(us), us)
            self.max_units = max(self.max_units, len(us))

    def freeze(self) -> None:
        self.lists = {lang: sorted(terms) for lang, terms in self.terms.items()}

    def sizes(self) -> dict[str, int]:
        return {lang: len(terms) for lang, terms in sorted(self.lists.items())}

    def sample(self, rng: random.Random, lang: str, n: int, utt_units: Sequence[str], taken: set[str]) -> list[str]:
        """``n`` terms of ``lang`` (fewer when the pool runs out) that do not occur in the utterance."""
        lang = lang if self.same_language else "*"
        pool = self.lists.get(lang, [])
        out: list[str] = []
        if n <= 0 or not pool:
            return out
        said = ngrams(utt_units, self.max_units)
        first = rng.sample(range(len(pool)), min(len(pool), n + n // 4 + 4))
        # The rest of the pool, in random order, is only drawn when many of the first draws were refused.
        rest = _shuffled_rest(rng, len(pool), set(first)) if len(first) < len(pool) else ()
        for i in itertools.chain(first, rest):
            term = pool[i]
            if term in taken or self.terms[lang][term] in said:
                continue
            out.append(term)
            taken.add(term)
            if len(out) == n:
                break
        return out


def _shuffled_rest(rng: random.Random, n: int, skip: set[int]):
    rest = [i for i in range(n) if i not in skip]
    rng.shuffle(rest)
    yield from rest


# ----------------------------------------------------------------------------- the builder


def _group_of(u: _Utt, group_by: str, regex: Optional[re.Pattern]) -> Optional[str]:
    if regex is not None:
        m = regex.search(u.key)
        return m.group(1) if m else None
    value = u.entry.get(group_by)
    return str(value) if value not in (None, "") else None


def _field_targets(u: _Utt, name: str) -> Optional[list[str]]:
    value = u.entry.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"entry {u.key}: field {name!r} must be a list of strings (the terms said in it), "
                         f"got {value!r}")
    return value


def build_context_data(inp: str | os.PathLike, out_dir: str | os.PathLike, cfg: ContextDataConfig,
                       extra_pool_files: Sequence[str] = ()) -> dict:
    """Build the contextual list of ``inp`` under ``out_dir``; returns the report (also written)."""
    out_dir = Path(out_dir)
    hw, sm = cfg.hotwords, cfg.summary
    utts: list[_Utt] = []
    seen_keys: set[str] = set()
    for entry in formats.iter_entries(inp):
        key = entry["key"]
        if key in seen_keys:
            raise ValueError(f"{inp}: duplicate utterance key {key!r}; context is keyed by utterance, so keys "
                             "must be unique (python -m wenet_llm.bin.validate finds and drops duplicates)")
        seen_keys.add(key)
        text = entry.get("txt") or ""
        lang = entry["lang"] if isinstance(entry.get("lang"), str) and entry.get("lang") else text_language(text)
        u = _Utt(entry, key, text, lang, units(text), usable="_error" not in entry)
        u.plain = not u.usable or _rng(cfg.seed, "plain", key).random() < cfg.plain_fraction
        utts.append(u)
    if not utts:
        raise ValueError(f"{inp}: no utterances")
    usable = [u for u in utts if u.usable]
    report: dict = {"input": str(inp), "output": str(out_dir / "data.list"), "utterances": len(utts),
                    "unusable_entries": len(utts) - len(usable), "seed": cfg.seed}

    # 1. targets
    counts: Counter = Counter()
    extractor_used = "none"
    client = None
    # Targets are found even with hotwords off: they are the key terms of the offline summaries.
    needs_llm = (hw.targets != "field" and hw.extractor == "llm") or (sm.enabled and sm.source == "llm")
    if needs_llm:
        client = ChatClient(cfg.llm, cfg.llm.cache_dir or out_dir / "llm_cache")
    if hw.targets != "extract":
        for u in usable:
            terms = _field_targets(u, hw.target_field)
            if terms is None:
                counts["without_target_field"] += 1
            u.targets = terms or []
    to_extract = [u for u in usable if hw.targets == "extract" or (hw.targets == "field_or_extract" and not u.targets)]
    if to_extract:
        extractor_used = hw.extractor
        if hw.extractor == "statistical":
            stat = StatisticalExtractor(cfg.statistical).fit_units([u.units for u in usable])
            for u in to_extract:
                u.targets = stat.extract(u.text, hw.max_targets, u.units)
        else:
            counts.update(llm_extract(client, to_extract, hw.max_targets, cfg.llm.batch_size, cfg.llm.num_workers))
    for u in usable:
        kept: list[str] = []
        for t in u.targets:
            form = term_form(t, hw.normalize_terms)
            if not form or form in kept:
                continue
            if not contains(u.units, term_units(form)):
                counts["targets_not_in_text"] += 1
                continue
            kept.append(form)
        counts["targets_over_max"] += max(0, len(kept) - hw.max_targets)
        u.targets = kept[: hw.max_targets]

    # 2. hotword lists
    hot: dict = {"enabled": hw.enabled}
    if hw.enabled:
        pool = _Pool(hw.same_language)
        for u in usable:
            for t in u.targets:
                pool.add(t, u.lang)
        pool_files = list(hw.pool_files) + list(extra_pool_files)
        from_files = 0
        for path in pool_files:
            for term, lang in read_term_pool(path):
                pool.add(term_form(term, hw.normalize_terms), lang or text_language(term))
                from_files += 1
        pool.freeze()
        lengths, n_targets = [], []
        lists = Counter()
        for u in usable:
            if u.plain:
                continue
            negative = bool(u.targets) and _rng(cfg.seed, "negative", u.key).random() < hw.negative_fraction
            if not u.targets and not hw.no_target_lists:
                lists["no_list"] += 1
                continue
            keep = [] if negative else list(u.targets)
            drawn = _rng(cfg.seed, "length", u.key).randint(hw.min_list_len, hw.max_list_len)
            want = max(drawn, len(keep))
            rng = _rng(cfg.seed, "distractors", u.key)
            distractors = pool.sample(rng, u.lang, want - len(keep), u.units, set(keep))
            lists["short"] += len(keep) + len(distractors) < want
            u.hotwords = keep + distractors
            rng.shuffle(u.hotwords)
            u.kept_targets = keep
            lists["with_targets" if keep else "negatives"] += 1
            lists["negatives_by_choice"] += negative
            lists["empty"] += not u.hotwords
            lengths.append(len(u.hotwords))
            n_targets.append(len(keep))
        hot.update({
            "targets": hw.targets if hw.targets == "extract" else f"{hw.targets}:{hw.target_field}",
            "extractor": extractor_used,
            "utterances_with_targets": sum(bool(u.targets) for u in usable),
            "lists": len(lengths), "lists_with_targets": lists["with_targets"], "negatives": lists["negatives"],
            "negatives_by_choice": lists["negatives_by_choice"],
            "negatives_without_targets": lists["negatives"] - lists["negatives_by_choice"],
            "empty_lists": lists["empty"], "no_list": lists["no_list"],
            "short_lists": lists["short"],  # fewer distractors in the pool than the drawn length asked for
            "mean_list_length": round(sum(lengths) / len(lengths), 3) if lengths else 0.0,
            "max_list_length": max(lengths, default=0),
            "mean_targets_per_list": round(sum(n_targets) / len(n_targets), 3) if n_targets else 0.0,
            "pool_sizes": pool.sizes(), "pool_files": pool_files, "pool_file_terms": from_files,
            "targets_not_in_text": counts["targets_not_in_text"], "targets_over_max": counts["targets_over_max"],
            "without_target_field": counts["without_target_field"],
        })
        for name in ("unparsed_batches", "malformed_lists"):
            if counts[name]:
                hot[name] = counts[name]

    # 3. summaries
    summ: dict = {"enabled": sm.enabled}
    if sm.enabled:
        regex = re.compile(sm.group_key_regex) if sm.group_key_regex else None
        members: dict[str, list[_Utt]] = defaultdict(list)
        no_group = 0
        for u in usable:
            u.group = _group_of(u, sm.group_by, regex)
            if u.group is None:
                no_group += 1
            else:
                members[u.group].append(u)
        groups = {g: ms for g, ms in members.items() if len(ms) >= sm.min_group_size}
        offline = _Extractive(groups, sm.topic_field, sm.max_terms, sm.max_topic_words)
        from_llm = llm_summaries(client, groups, sm.max_chars, sm.max_prompt_chars, cfg.llm.num_workers) \
            if sm.source == "llm" else {}
        sc = Counter()
        for u in usable:
            if u.plain or u.group not in groups:
                continue
            if _rng(cfg.seed, "summary", u.key).random() >= sm.fraction:
                sc["not_chosen"] += 1
                continue
            text = from_llm.get(u.group)
            if sm.source == "llm" and not text:
                sc["llm_empty_replaced"] += 1
            elif text and leaks(text, u):
                sc["llm_leaks_replaced"] += 1
                text = None
            if not text:
                text, rebuilt = offline.for_utterance(u.group, u)
                sc["rebuilt_without_own_terms"] += rebuilt and text is not None
                sc["dropped_would_leak"] += rebuilt and text is None
                sc["extractive"] += text is not None
            else:
                sc["llm"] += 1
            u.summary = _cut(text, sm.max_chars) if text else None
        summ.update({
            "source": sm.source, "group_by": f"regex:{sm.group_key_regex}" if regex else sm.group_by,
            "groups": len(groups), "small_groups": len(members) - len(groups),
            "utterances_without_group": no_group,
            "with_summary": sum(u.summary is not None for u in usable), **{k: sc[k] for k in sorted(sc)},
        })

    # 4. write
    out_entries, contexts = [], []
    for u in utts:
        entry = {k: v for k, v in u.entry.items() if k not in CONTEXT_KEYS}
        if u.hotwords is not None:
            entry["hotwords"] = u.hotwords
        if u.summary is not None:
            entry["summary"] = u.summary
        out_entries.append(entry)
        if u.hotwords is not None or u.summary is not None:
            contexts.append(Context(u.key, list(u.hotwords or []), u.summary, {"targets": u.kept_targets}))
    n_ctx = len(contexts)
    report.update({"plain": len(utts) - n_ctx, "contextual": n_ctx, "plain_fraction": cfg.plain_fraction,
                   "hotwords": hot, "summary": summ})
    if client is not None:
        report["llm"] = {"url": client.url, "model": client.model, **client.stats.to_dict()}
    formats.write_data_list(out_entries, out_dir / "data.list")
    write_context(contexts, out_dir / "context.jsonl")
    with atomic_open(out_dir / "context_report.json") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
    return report
