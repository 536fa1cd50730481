"""Search algorithms of the attention encoder-decoder (WeNet's four decoding modes).

- CTC greedy search: frame-wise argmax, repeats collapsed, blanks removed (batched).
- CTC prefix beam search: the n-best label sequences under CTC (per utterance).
- Attention beam search: autoregressive beam search with the attention decoder (batched).
- Attention rescoring: CTC prefix beam n-best rescored by the decoder;
  score = decoder log-prob of the hypothesis plus <eos>, plus ctc_weight x the CTC prefix score.

Rescoring needs a decoder with ``forward(memory, memory_mask, ys_in, ys_in_lens) -> logits (B, L, V)``;
beam search one with ``forward_one_step(memory, memory_mask, ys, cache) -> (log-probs (B, V), cache)``,
whose per-layer cache (B, L, D) makes each step cost O(L) instead of recomputing the prefix.
Shapes: B batch, T' encoder frames, D model dim, L tokens, V vocab. Masks: True = valid.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Protocol, Sequence

import torch

NEG_INF = -float("inf")


class AttentionDecoder(Protocol):
    def __call__(self, memory: torch.Tensor, memory_mask: torch.Tensor, ys_in: torch.Tensor,
                 ys_in_lens: torch.Tensor) -> torch.Tensor: ...

    def forward_one_step(self, memory: torch.Tensor, memory_mask: torch.Tensor, ys: torch.Tensor,
                         cache: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]: ...


def _log_add(*values: float) -> float:
    top = max(values)
    if top == NEG_INF:
        return NEG_INF
    return top + math.log(sum(math.exp(v - top) for v in values))


def ctc_greedy_search(log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0) -> list[list[int]]:
    """log_probs (B, T', V), lengths (B,) -> one token list per utterance."""
    best = log_probs.argmax(dim=-1)  # (B, T')
    hyps = []
    for b in range(best.shape[0]):
        path = best[b, : int(lengths[b])].tolist()
        hyp, prev = [], None
        for token in path:
            if token != prev and token != blank_id:
                hyp.append(token)
            prev = token
        hyps.append(hyp)
    return hyps


def ctc_prefix_beam_search(log_probs: torch.Tensor, beam_size: int, blank_id: int = 0) -> list[tuple[tuple[int, ...], float]]:
    """log_probs (T', V) of one utterance -> n-best [(prefix, log-prob)], best first.

    Each prefix keeps two log-probs: paths ending in blank (pb) and in a non-blank (pnb).
    Only the beam_size most likely tokens of each frame are expanded.
    """
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for t in range(log_probs.shape[0]):
        frame = log_probs[t]
        top_logp, top_ids = frame.topk(min(beam_size, frame.shape[0]))
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            for logp, token in zip(top_logp.tolist(), top_ids.tolist()):
                if token == blank_id:
                    entry = nxt[prefix]
                    entry[0] = _log_add(entry[0], pb + logp, pnb + logp)
                    continue
                last = prefix[-1] if prefix else None
                extended = prefix + (token,)
                entry = nxt[extended]
                if token == last:
                    # A repeat only extends the prefix through a blank; without one it merges.
                    entry[1] = _log_add(entry[1], pb + logp)
                    same = nxt[prefix]
                    same[1] = _log_add(same[1], pnb + logp)
                else:
                    entry[1] = _log_add(entry[1], pb + logp, pnb + logp)
        ranked = sorted(nxt.items(), key=lambda kv: _log_add(*kv[1]), reverse=True)[:beam_size]
        beams = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked}
    return [(prefix, _log_add(pb, pnb)) for prefix, (pb, pnb) in beams.items()]


@torch.no_grad()
def attention_beam_search(decoder: AttentionDecoder, memory: torch.Tensor, memory_mask: torch.Tensor,
                          beam_size: int, sos: int, eos: int, max_len: int | None = None) -> list[list[int]]:
    """Batched beam search with the attention decoder. memory (B, T', D), memory_mask (B, 1, T').

    Each utterance may produce at most as many tokens as it has valid encoder frames (or ``max_len``),
    as when it is decoded alone: WeNet bounds every utterance by the padded batch length instead, so a
    looping hypothesis decodes differently in a batch.
    """
    batch, frames, dim = memory.shape
    n = batch * beam_size
    memory = memory.unsqueeze(1).repeat(1, beam_size, 1, 1).view(n, frames, dim)  # (B*beam, T', D)
    memory_mask = memory_mask.unsqueeze(1).repeat(1, beam_size, 1, 1).view(n, 1, frames)  # (B*beam, 1, T')
    limits = memory_mask.sum(dim=-1)  # (B*beam, 1) valid frames: each hypothesis's length limit
    if max_len is not None:
        limits = limits.clamp(max=max_len)
    hyps = torch.full((n, 1), sos, dtype=torch.long, device=memory.device)  # (B*beam, 1)
    # Only the first beam of each utterance is live at the start, so the beams do not duplicate.
    scores = torch.tensor([0.0] + [NEG_INF] * (beam_size - 1), device=memory.device).repeat(batch).unsqueeze(1)
    ended = torch.zeros(n, 1, dtype=torch.bool, device=memory.device)
    cache = None
    for step in range(int(limits.max())):
        if bool(ended.all()):
            break
        logp, cache = decoder.forward_one_step(memory, memory_mask, hyps, cache)  # (B*beam, V)
        # A finished hypothesis, or one at its length limit, may only continue with <eos> at no cost.
        eos_only = torch.full_like(logp, NEG_INF)
        eos_only[:, eos] = 0.0
        logp = torch.where(ended | (step >= limits), eos_only, logp)
        k = min(beam_size, logp.shape[-1])
        top_logp, top_ids = logp.topk(k, dim=-1)  # (B*beam, k)
        cand = (scores + top_logp).view(batch, beam_size * k)
        best, offset = cand.topk(beam_size, dim=-1)  # (B, beam)
        source = (torch.arange(batch, device=memory.device).unsqueeze(1) * beam_size + offset // k).view(-1)
        tokens = top_ids.view(batch, beam_size * k).gather(1, offset).view(-1, 1)
        hyps = torch.cat([hyps[source], tokens], dim=1)
        cache = [layer_cache[source] for layer_cache in cache]  # follow the surviving beams
        scores = best.view(-1, 1)
        ended = ended[source] | (tokens == eos)
    best_beam = scores.view(batch, beam_size).argmax(dim=-1)
    out = []
    for b in range(batch):
        seq = hyps[b * beam_size + int(best_beam[b]), 1:].tolist()
        out.append(seq[: seq.index(eos)] if eos in seq else seq)
    return out


@torch.no_grad()
def attention_rescoring(decoder: AttentionDecoder, memory: torch.Tensor, memory_mask: torch.Tensor,
                        nbest: Sequence[tuple[Sequence[int], float]], sos: int, eos: int,
                        ctc_weight: float) -> tuple[list[int], float]:
    """Rescore one utterance's CTC n-best with the decoder. memory (1, T', D), memory_mask (1, 1, T')."""
    if not nbest:
        return [], NEG_INF
    n = len(nbest)
    lens = torch.tensor([len(h) + 1 for h, _ in nbest], dtype=torch.long, device=memory.device)
    ys_in = torch.full((n, int(lens.max())), eos, dtype=torch.long, device=memory.device)  # (n, L), eos-padded
    ys_in[:, 0] = sos
    for i, (hyp, _) in enumerate(nbest):
        if hyp:
            ys_in[i, 1 : len(hyp) + 1] = torch.tensor(list(hyp), device=memory.device)
    logp = decoder(memory.expand(n, -1, -1), memory_mask.expand(n, -1, -1), ys_in, lens).log_softmax(dim=-1)
    best_hyp, best_score = [], NEG_INF
    for i, (hyp, ctc_score) in enumerate(nbest):
        targets = list(hyp) + [eos]
        att_score = float(logp[i, torch.arange(len(targets)), torch.tensor(targets)].sum())
        score = att_score + ctc_weight * ctc_score
        if score > best_score:
            best_hyp, best_score = list(hyp), score
    return best_hyp, best_score
