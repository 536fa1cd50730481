"""Text-only batches for language-model training (the demo's base LLM), in the trainer's stream interface.

Samples are already tokenized (``{"input_ids": [...], "labels": [...]}``; labels -100 where no loss);
further per-position fields (e.g. the spelled-speech unit slots of the demo LM) are padded with
``extra_pad[key]`` (a float pad value makes a float tensor) and missing ones are all padding.
Each epoch shuffles them (a function of seed and epoch), sorts within windows of similar length and cuts
batches of at most ``max_tokens`` padded positions, so a resumed run sees exactly the batches an
uninterrupted one would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch


@dataclass
class TextBatch:
    """B sequences of length L, right-padded."""

    input_ids: torch.Tensor  # (B, L)
    labels: torch.Tensor  # (B, L), -100 = no loss
    attention_mask: torch.Tensor  # (B, L), 1 = valid
    num_tokens: int = 0  # unpadded positions
    audio_seconds: float = 0.0
    skipped: list = field(default_factory=list)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # (B, L) each

    def __len__(self) -> int:
        return self.input_ids.shape[0]


class TextStream:
    def __init__(self, samples: Sequence[dict], max_tokens: int, pad_id: int, shuffle: bool = True, seed: int = 0,
                 window: int = 100, rank: int = 0, world_size: int = 1, extra_pad: dict | None = None):
        if max_tokens <= 0:
            raise ValueError(f"max_tokens must be > 0, got {max_tokens}")
        longest = max((len(s["input_ids"]) for s in samples), default=0)
        if longest > max_tokens:
            raise ValueError(f"a sample of {longest} tokens does not fit max_tokens {max_tokens}")
        self.samples, self.max_tokens, self.pad_id = list(samples), max_tokens, pad_id
        self.shuffle, self.seed, self.window = shuffle, seed, window
        self.rank, self.world_size = rank, world_size
        self.extra_pad = dict(extra_pad or {})
        self.epoch, self.batches_done = 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.batches_done = epoch, 0

    def batches(self) -> list[list[int]]:
        """This epoch's batches as sample indices (the same on every rank before sharding)."""
        order = list(range(len(self.samples)))
        if self.shuffle:
            random.Random(f"{self.seed}/{self.epoch}").shuffle(order)
        out: list[list[int]] = []
        for start in range(0, len(order), self.window):  # similar lengths together: less padding
            chunk = sorted(order[start:start + self.window], key=lambda i: len(self.samples[i]["input_ids"]))
            current: list[int] = []
            longest = 0
            for i in chunk:
                n = len(self.samples[i]["input_ids"])
                if current and max(longest, n) * (len(current) + 1) > self.max_tokens:
                    out.append(current)
                    current, longest = [], 0
                current.append(i)
                longest = max(longest, n)
            if current:
                out.append(current)
        if self.shuffle:
            random.Random(f"{self.seed}/{self.epoch}/batches").shuffle(out)
        return out[self.rank::self.world_size]

    def collate(self, indices: list[int]) -> TextBatch:
        rows = [self.samples[i] for i in indices]
        length = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), length), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for b, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[b, :n] = torch.tensor(r["input_ids"])
            labels[b, :n] = torch.tensor(r["labels"])
            mask[b, :n] = 1
        extra = {}
        for key, pad in self.extra_pad.items():
            dtype = torch.float32 if isinstance(pad, float) else torch.long
            values = torch.full((len(rows), length), pad, dtype=dtype)
            for b, r in enumerate(rows):
                if key in r:
                    values[b, : len(r[key])] = torch.tensor(r[key], dtype=dtype)
            extra[key] = values
        return TextBatch(ids, labels, mask, num_tokens=int(mask.sum()), extra=extra)

    def __iter__(self) -> Iterator[TextBatch]:
        batches = self.batches()
        for i in range(self.batches_done, len(batches)):
            self.batches_done = i + 1
            yield self.collate(batches[i])

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])
