"""One data pipeline for the AED and the LLM stages: cuts -> augmented fbank batches.

Flow: a CutSet (from a data.list, a Kaldi dir, a lhotse manifest or a Shar dir) ->
optional non-speech clips with empty targets multiplexed in -> lhotse's
DynamicBucketingSampler (by total duration, rank- and world-size-aware) -> :class:`SpeechDataset`
in DataLoader workers (load, resample, downmix, speed perturbation, reverberation, additive
noise, fbank, SpecAugment; WeNet's order) -> :class:`Batch`.

The AED stage passes a tokenizer and gets padded token ids. The LLM stages also pass a
``text_processor`` (their prompt builder): called in the DataLoader workers with the transcript,
the context fields (hotwords, topic, recording, summary) and the number of feature frames, it returns
the model's text inputs (e.g. the prompt's id runs), which :func:`collate` pads into
``Batch.text_inputs`` with a ``<key>_lengths`` tensor beside each. Augmentation randomness is a function of (seed, epoch, utterance id), so a
batch is the same whichever worker builds it and after a resume.

A failing or out-of-range utterance never stops training: it is skipped, returned in
``Batch.skipped`` and counted by :class:`SkipReport`, which the trainer prints every epoch. An
unreadable noise or RIR file is reported as that (``augment:`` reasons): the utterance is kept
without that augmentation.
"""

from __future__ import annotations

import logging
import itertools
import random
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Protocol

import numpy as np
import torch
from lhotse import CutSet
from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler
from lhotse.dataset.sampling.base import SamplingConstraint

from wenet_llm.config.data import DataConfig, SamplerConfig
from wenet_llm.data import augment, features, formats

logger = logging.getLogger(__name__)

IGNORE_ID = -1  # WeNet pads token targets with -1
CONTEXT_FIELDS = ("hotwords", "topic", "rec", "entities", "summary")
AUGMENT_PREFIX = "augment:"  # SkipReport reasons of augmentation failures (the utterance is kept)


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


class TextProcessor(Protocol):
    """Builds a model's text inputs of one utterance in a DataLoader worker (e.g. the LLM prompt)."""

    pad_values: dict[str, int]  # per output key, the padding value collate uses

    def __call__(self, text: str, context: dict, num_frames: int) -> dict[str, list[int]]: ...

    def num_tokens(self, duration: float, text: str, context: dict) -> int: ...


@dataclass
class Batch:
    """A training batch. B batch, T frames, F mel bins, L tokens."""

    keys: list[str]
    feats: torch.Tensor  # (B, T, F), zero padded
    feats_lengths: torch.Tensor  # (B,)
    texts: list[str]
    langs: list[str]
    context: list[dict]  # per utterance: hotwords, topic, rec, entities when present
    tokens: Optional[torch.Tensor] = None  # (B, L), padded with IGNORE_ID; AED only
    token_lengths: Optional[torch.Tensor] = None  # (B,)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (key, reason, detail)
    audio_seconds: float = 0.0
    # text_processor outputs, each (B, L) padded with its pad value (LLM stages)
    text_inputs: dict[str, torch.Tensor] = field(default_factory=dict)  # and "<key>_lengths" (B,) for each
    num_tokens: int = 0  # unpadded text ids of text_inputs (for tokens/s)

    def __len__(self) -> int:
        return len(self.keys)


class SkippedItem(Exception):
    """An utterance left out of a batch for a counted reason (e.g. too long)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class SkipReport:
    """Counts per reason, with a few examples, of utterances skipped while loading."""

    def __init__(self, max_examples: int = 5):
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}
        self.max_examples = max_examples

    def add(self, key: str, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < self.max_examples:
            examples.append(f"{key} ({detail})" if detail else key)

    def total(self) -> int:
        """Utterances skipped (augmentation failures keep their utterance and are not counted)."""
        return sum(c for r, c in self.counts.items() if not r.startswith(AUGMENT_PREFIX))

    def summary(self) -> str:
        skipped = [(r, c) for r, c in self.counts.most_common() if not r.startswith(AUGMENT_PREFIX)]
        augment = [(r, c) for r, c in self.counts.most_common() if r.startswith(AUGMENT_PREFIX)]
        lines = [f"{self.total()} utterance(s) skipped:" if skipped else "no utterance skipped"]
        for reason, count in skipped:
            lines.append(f"  {reason}: {count}, e.g. {'; '.join(self.examples[reason])}")
        if augment:
            lines.append("augmentation failures (the utterance was kept without it):")
            for reason, count in augment:
                lines.append(f"  {reason.removeprefix(AUGMENT_PREFIX)}: {count}, e.g. {'; '.join(self.examples[reason])}")
        return "\n".join(lines)

    def state_dict(self) -> dict:
        return {"counts": dict(self.counts), "examples": self.examples}

    def load_state_dict(self, state: dict) -> None:
        self.counts = Counter(state["counts"])
        self.examples = {k: list(v) for k, v in state["examples"].items()}

    def merge_state_dict(self, state: dict) -> None:
        """Add another report's counts (e.g. another rank's); examples fill up to max_examples."""
        self.counts.update(state["counts"])
        for reason, examples in state["examples"].items():
            mine = self.examples.setdefault(reason, [])
            mine.extend(examples[: max(0, self.max_examples - len(mine))])


def item_rng(seed: int, epoch: int, key: str) -> random.Random:
    # String seeds go through sha512: stable across processes, unlike hash().
    return random.Random(f"{seed}/{epoch}/{key}")


class SpeechDataset(torch.utils.data.Dataset):
    """Map-style lhotse dataset: ``dataset[cuts]`` -> :class:`Batch`."""

    def __init__(self, cfg: DataConfig, train: bool, tokenizer: Tokenizer | None = None, seed: int = 0,
                 text_processor: TextProcessor | None = None):
        self.cfg = cfg
        self.train = train
        self.tokenizer = tokenizer
        self.text_processor = text_processor
        self.seed = seed
        self.epoch = 0
        rate = cfg.fbank.sample_rate
        self.noise_source = augment.NoiseSource(cfg.noise.noise_dir, sample_rate=rate) if train and cfg.noise.enabled else None
        self.rir_source = augment.RirSource(cfg.reverb.rir_dir, sample_rate=rate) if train and cfg.reverb.enabled else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def load_item(self, cut) -> dict:
        """Audio -> features (+ tokens) of one cut; raises SkippedItem for counted filters."""
        cfg = self.cfg
        rng = item_rng(self.seed, self.epoch, cut.id)
        np_rng = np.random.default_rng(rng.getrandbits(64))
        sup = cut.supervisions[0] if cut.supervisions else None
        text = (sup.text or "") if sup else ""
        if cut.duration < cfg.filter.min_seconds:
            raise SkippedItem("too_short", f"{cut.duration:.2f}s < {cfg.filter.min_seconds}s")
        if cut.duration > cfg.filter.max_seconds:
            raise SkippedItem("too_long", f"{cut.duration:.2f}s > {cfg.filter.max_seconds}s")
        tokens = None
        if self.tokenizer is not None:
            tokens = self.tokenizer.encode(text)
            if not cfg.filter.min_tokens <= len(tokens) <= cfg.filter.max_tokens:
                raise SkippedItem("token_count", f"{len(tokens)} tokens outside "
                                                 f"[{cfg.filter.min_tokens}, {cfg.filter.max_tokens}]")
        audio = cut.load_audio()  # (channels, samples)
        audio = audio.mean(axis=0) if audio.ndim == 2 else audio
        sample_rate = cfg.fbank.sample_rate
        if cut.sampling_rate != sample_rate:
            audio = features.resample(audio, cut.sampling_rate, sample_rate)
        if audio.size == 0:
            raise SkippedItem("zero_length", "no samples")
        problems: list[tuple[str, str]] = []
        if self.train:
            if cfg.speed_perturb.enabled:
                factor = augment.choose_speed(cfg.speed_perturb, rng)
                if factor != 1.0:
                    audio = augment.speed_perturb(audio, sample_rate, factor)
            # A bad RIR or noise file is that file's fault: report it, keep the utterance unaugmented.
            if self.rir_source is not None:
                try:
                    audio, _ = augment.add_reverb(audio, self.rir_source, cfg.reverb, np_rng)
                except Exception as e:
                    problems.append((AUGMENT_PREFIX + "rir_file_unreadable", f"{type(e).__name__}: {e}"))
            if self.noise_source is not None and self.epoch >= cfg.noise.start_epoch:
                try:
                    audio, _ = augment.add_noise(audio, self.noise_source, cfg.noise, np_rng)
                except Exception as e:
                    problems.append((AUGMENT_PREFIX + "noise_file_unreadable", f"{type(e).__name__}: {e}"))
        dither = cfg.fbank.dither if self.train else 0.0
        feats = features.compute_fbank(audio, sample_rate, cfg.fbank, dither=dither, seed=rng.getrandbits(31))
        if feats.shape[0] == 0:
            raise SkippedItem("too_short", f"{audio.size} samples give no frame")
        if self.train and cfg.spec_aug.enabled:
            feats = augment.spec_augment(feats, cfg.spec_aug, rng)
        custom = (sup.custom or {}) if sup else {}
        context = {k: custom[k] for k in CONTEXT_FIELDS if k in custom}
        text_inputs = None
        if self.text_processor is not None:
            text_inputs = self.text_processor(text, context, int(feats.shape[0]))
        return {
            "key": cut.id, "feats": feats, "tokens": tokens, "text": text,
            "lang": (sup.language or "") if sup else "",
            "context": context, "text_inputs": text_inputs,
            "seconds": audio.size / sample_rate, "problems": problems,
        }

    def __getitem__(self, cuts: CutSet) -> Batch:
        items, skipped = [], []
        for cut in cuts:
            try:
                item = self.load_item(cut)
            except SkippedItem as e:
                skipped.append((cut.id, e.reason, e.detail))
                continue
            except Exception as e:  # one unreadable file must not end a multi-day run
                skipped.append((cut.id, "load_error", f"{type(e).__name__}: {e}"))
                continue
            items.append(item)
            skipped.extend((cut.id, reason, detail) for reason, detail in item["problems"])
        pad_values = self.text_processor.pad_values if self.text_processor is not None else {}
        return collate(items, skipped, pad_values)


def collate(items: list[dict], skipped: list[tuple[str, str, str]], pad_values: dict[str, int] | None = None) -> Batch:
    """Pad to the longest item; items sorted by length, longest first (as WeNet does).

    Text-processor outputs are right-padded per key with ``pad_values[key]``.
    """
    items = sorted(items, key=lambda it: it["feats"].shape[0], reverse=True)
    num_bins = items[0]["feats"].shape[1] if items else 0
    lengths = torch.tensor([it["feats"].shape[0] for it in items], dtype=torch.long)
    feats = torch.zeros(len(items), int(lengths.max()) if items else 0, num_bins)  # (B, T, F)
    for i, it in enumerate(items):
        feats[i, : it["feats"].shape[0]] = it["feats"]
    batch = Batch(
        keys=[it["key"] for it in items], feats=feats, feats_lengths=lengths,
        texts=[it["text"] for it in items], langs=[it["lang"] for it in items],
        context=[it["context"] for it in items], skipped=skipped,
        audio_seconds=float(sum(it["seconds"] for it in items)),
    )
    if items and items[0]["tokens"] is not None:
        token_lengths = torch.tensor([len(it["tokens"]) for it in items], dtype=torch.long)
        tokens = torch.full((len(items), int(token_lengths.max())), IGNORE_ID, dtype=torch.long)  # (B, L)
        for i, it in enumerate(items):
            tokens[i, : len(it["tokens"])] = torch.tensor(it["tokens"], dtype=torch.long)
        batch.tokens, batch.token_lengths = tokens, token_lengths
    if items and items[0].get("text_inputs") is not None:
        pad_values = pad_values or {}
        for key in items[0]["text_inputs"]:
            rows = [it["text_inputs"][key] for it in items]
            padded = torch.full((len(rows), max(1, max(len(r) for r in rows))), pad_values.get(key, 0),
                                dtype=torch.long)
            for i, row in enumerate(rows):
                padded[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            batch.text_inputs[key] = padded  # (B, L)
            batch.text_inputs[f"{key}_lengths"] = torch.tensor([len(r) for r in rows], dtype=torch.long)  # (B,)
        batch.num_tokens = sum(len(v) for it in items for v in it["text_inputs"].values())
    return batch


def load_cut_set(path: str, fmt: str = "raw") -> CutSet:
    """A CutSet from a data.list / Kaldi dir / lhotse manifest (raw) or a lhotse Shar dir (shar)."""
    if fmt == "shar":
        return formats.load_shar(path)
    if fmt != "raw":
        raise ValueError(f"unknown data format {fmt!r}; valid formats: ['raw', 'shar']")
    return formats.load_cuts(path)


def training_cuts(cfg: DataConfig, seed: int = 0) -> Callable[[int], CutSet]:
    """``epoch -> training cuts``: from ``non_speech.start_epoch`` on, with non-speech clips (empty
    targets) multiplexed in at ``non_speech.rate``; before it, the speech cuts alone.

    Both lists are read and checked here, once, so a bad non-speech list fails at start-up rather
    than at the epoch that first uses it.
    """
    cuts = load_cut_set(cfg.train, cfg.format)
    if not cfg.non_speech.enabled or cfg.non_speech.rate == 0:
        return lambda epoch: cuts
    non_speech = load_cut_set(cfg.non_speech.cuts, "raw")
    for cut in non_speech:
        for sup in cut.supervisions:
            if (sup.text or "").strip():
                raise ValueError(f"{cfg.non_speech.cuts}: non-speech clip {cut.id} has a transcript "
                                 f"({sup.text!r}); its target must be empty")
    rate = cfg.non_speech.rate
    # Stops with the speech data; non-speech repeats as needed (ids get a repeat suffix).
    mixed = CutSet.mux(cuts, non_speech.repeat(), weights=[1.0 - rate, rate], stop_early=True, seed=seed)
    return lambda epoch: mixed if epoch >= cfg.non_speech.start_epoch else cuts


class DurationTokenConstraint(SamplingConstraint):
    """A batch holds at most ``max_duration`` seconds and ``max_tokens`` token positions, both counted
    as padded (batch size x longest item), as lhotse's TimeConstraint counts duration. As with lhotse's
    own constraints, a batch closes when one more item as long as its longest would pass a bound, and
    the item that tipped it stays in; bucketing keeps that overshoot small.

    ``count_tokens(cut)`` estimates an item's sequence length (for the LLM: speech positions + prompt +
    context + transcript). Buckets are by duration.
    """

    def __init__(self, max_duration: float, max_tokens: int, count_tokens: Callable[[Any], int]):
        self.max_duration, self.max_tokens, self.count_tokens = max_duration, max_tokens, count_tokens
        self.reset()

    def add(self, example) -> None:
        self.num_cuts += 1
        self.longest_seconds = max(self.longest_seconds, example.duration)
        self.longest_tokens = max(self.longest_tokens, self.count_tokens(example))

    def _over(self, n: int) -> bool:
        return n * self.longest_seconds > self.max_duration or n * self.longest_tokens > self.max_tokens

    def exceeded(self) -> bool:
        return self._over(self.num_cuts)

    def close_to_exceeding(self) -> bool:
        return self._over(self.num_cuts + 1)

    def reset(self) -> None:
        self.num_cuts, self.longest_seconds, self.longest_tokens = 0, 0.0, 0

    def measure_length(self, example) -> float:
        return example.duration


def cut_token_counter(text_processor: TextProcessor) -> Callable[[Any], int]:
    """``cut -> estimated sequence length`` through the text processor, for :class:`DurationTokenConstraint`."""

    def count(cut) -> int:
        sup = cut.supervisions[0] if cut.supervisions else None
        custom = (sup.custom or {}) if sup else {}
        context = {k: custom[k] for k in CONTEXT_FIELDS if k in custom}
        return text_processor.num_tokens(cut.duration, (sup.text or "") if sup else "", context)

    return count


def make_sampler(cuts: CutSet, cfg: SamplerConfig, shuffle: bool, rank: int = 0, world_size: int = 1,
                 count_tokens: Callable[[Any], int] | None = None):
    """DynamicBucketingSampler by total duration (and tokens, when ``cfg.max_tokens`` and a counter are
    given); a plain sampler for sets too small to bucket."""
    # lhotse needs at least one cut per bucket; peeking reads only the head of a lazy set.
    num_buckets = sum(1 for _ in itertools.islice(cuts, cfg.num_buckets))
    common: dict[str, Any] = dict(shuffle=shuffle, drop_last=cfg.drop_last, seed=cfg.seed, rank=rank,
                                  world_size=world_size)
    if cfg.max_tokens > 0 and count_tokens is not None:
        common["constraint"] = DurationTokenConstraint(cfg.max_duration, cfg.max_tokens, count_tokens)
    else:
        common["max_duration"] = cfg.max_duration
    if num_buckets < 2:  # SimpleCutSampler has no custom constraint: duration only for such tiny sets
        common.pop("constraint", None)
        return SimpleCutSampler(cuts, max_duration=cfg.max_duration, **common)
    with warnings.catch_warnings():
        # Raw lists are read eagerly on purpose (their headers are checked); Shar dirs stream lazily.
        warnings.filterwarnings("ignore", message=".*eagerly read CutSet.*")
        return DynamicBucketingSampler(cuts, num_buckets=num_buckets, buffer_size=cfg.buffer_size, **common)


class _SkipFirst(torch.utils.data.Sampler):
    """Skip the first ``n`` batches of an epoch: resume without loading their audio."""

    def __init__(self, sampler, n: int):
        self.sampler = sampler
        self.n = n

    def __iter__(self) -> Iterator[CutSet]:
        for i, cuts in enumerate(self.sampler):
            if i >= self.n:
                yield cuts


class DataStream:
    """Epoch-aware iterator over batches whose position is saved in checkpoints.

    The position is (epoch, batches consumed in that epoch), counted where the trainer takes
    batches, not where DataLoader workers prefetch them, so a resume continues exactly at the
    next unseen batch. Batches whose every item was skipped are counted and not yielded.
    """

    def __init__(self, cuts: CutSet | Callable[[int], CutSet], dataset: SpeechDataset, cfg: DataConfig,
                 shuffle: bool, rank: int = 0, world_size: int = 1, num_workers: int | None = None):
        self.cuts = cuts  # or ``epoch -> CutSet`` when the set changes with the epoch (training_cuts)
        self.dataset = dataset
        self.cfg = cfg
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.num_workers = cfg.num_workers if num_workers is None else num_workers
        self.epoch = 0
        self.batches_done = 0
        self.skips = SkipReport()

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:  # a new epoch: position and skip counts start again
            self.epoch, self.batches_done = epoch, 0
            self.skips = SkipReport()

    def __iter__(self) -> Iterator[Batch]:
        processor = getattr(self.dataset, "text_processor", None)
        counter = cut_token_counter(processor) if processor is not None else None
        cuts = self.cuts(self.epoch) if callable(self.cuts) else self.cuts
        sampler = make_sampler(cuts, self.cfg.sampler, self.shuffle, self.rank, self.world_size, counter)
        sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        loader = torch.utils.data.DataLoader(
            self.dataset, sampler=_SkipFirst(sampler, self.batches_done), batch_size=None,
            num_workers=self.num_workers, persistent_workers=False,
            worker_init_fn=_worker_init if self.num_workers > 0 else None,
        )
        for batch in loader:
            self.batches_done += 1
            for key, reason, detail in batch.skipped:
                self.skips.add(key, reason, detail)
            if len(batch) > 0:
                yield batch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "batches_done": self.batches_done, "skips": self.skips.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.batches_done = int(state["batches_done"])
        self.skips.load_state_dict(state["skips"])


def _worker_init(_: int) -> None:
    # Workers each use one thread: the cores belong to the main process and to the other workers.
    torch.set_num_threads(1)
