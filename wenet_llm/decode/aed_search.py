"""Search algorithms of the attention encoder-decoder (WeNet's four decoding modes).

- CTC greedy search: frame-wise argmax, repeats collapsed, blanks removed.
- CTC prefix beam search: the n-best label sequences under CTC.
- Attention beam search: autoregressive beam search with the attention decoder.
- Attention rescoring: CTC prefix beam n-best rescored by the decoder;
  score = decoder log-prob of the hypothesis plus <eos>, plus ctc_weight x the CTC prefix score.

All four take a padded batch and run as tensor operations over the batch (and the beam) on the
device of their inputs; only the final lists are built in Python.

Rescoring needs a decoder with ``forward(memory, memory_mask, ys_in, ys_in_lens) -> logits (B, L, V)``;
beam search one with ``project_memory(memory) -> memory_kv`` (per-utterance tensors, computed once) and
``forward_one_step(memory_kv, memory_mask, ys, cache) -> (log-probs (B*W, V), cache)`` for W prefixes per
utterance, whose cache (row-aligned tensors: the keys and values of the prefix) makes a step compute only
the newest position.
Shapes: B batch, T' encoder frames, D model dim, L tokens, V vocab. Masks: True = valid.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch

# CTC greedy search lives beside the CTC head, where the LLM-ASR model also uses it.
from wenet_llm.models.aed.ctc import ctc_greedy_search  # noqa: F401

NEG_INF = -float("inf")


class AttentionDecoder(Protocol):
    def __call__(self, memory: torch.Tensor, memory_mask: torch.Tensor, ys_in: torch.Tensor,
                 ys_in_lens: torch.Tensor) -> torch.Tensor: ...

    def project_memory(self, memory: torch.Tensor) -> list[torch.Tensor]: ...

    def forward_one_step(self, memory_kv: list[torch.Tensor], memory_mask: torch.Tensor, ys: torch.Tensor,
                         cache: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]: ...


# Two 31-bit polynomial hashes of a prefix, packed in one int64, find identical prefixes created on
# different beams in O(B * beam^2) per frame without comparing token rows. Prefixes that meet also have
# equal lengths and last tokens, so two different ones are merged only if both hashes collide (~2^-62).
_HASH_MOD = 2**31 - 1
_HASH_BASES = (1_000_003, 998_244_353)


def _hash_append(h: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
    """Hash of prefix + [token] from the prefix's hash h (both int64, broadcastable)."""
    h1 = torch.div(h, 2**31, rounding_mode="floor")
    h2 = h.remainder(2**31)
    h1 = (h1 * _HASH_BASES[0] + token + 1).remainder(_HASH_MOD)
    h2 = (h2 * _HASH_BASES[1] + token + 1).remainder(_HASH_MOD)
    return h1 * 2**31 + h2


@torch.no_grad()
def ctc_prefix_beam_search(log_probs: torch.Tensor, lengths: torch.Tensor, beam_size: int,
                           blank_id: int = 0) -> list[list[tuple[tuple[int, ...], float]]]:
    """log_probs (B, T', V), lengths (B,) -> per utterance the n-best [(prefix, log-prob)], best first.

    Each prefix keeps two log-probs: paths ending in blank (pb) and in a non-blank (pnb); only the
    beam_size most likely tokens of each frame are expanded. Vectorised over the batch and the beam
    (one step of tensor operations per frame, on the device of ``log_probs``); the arithmetic is in
    float64, and candidates with equal scores keep the order in which a dict-based per-utterance search
    (beams in rank order, each frame's tokens in top-k order) first creates them, so both give the same
    n-best lists (scores equal up to float64 rounding).
    """
    batch, frames, vocab = log_probs.shape
    dev, f64 = log_probs.device, torch.float64
    w, k = beam_size, min(beam_size, vocab)
    lengths = lengths.to(dev)
    neg = torch.tensor(NEG_INF, dtype=f64, device=dev)
    # Beam state (B, W): slot 0 holds the empty prefix, the other slots are unused until filled.
    pb = torch.full((batch, w), NEG_INF, dtype=f64, device=dev)
    pb[:, 0] = 0.0
    pnb = torch.full((batch, w), NEG_INF, dtype=f64, device=dev)
    used = torch.zeros(batch, w, dtype=torch.bool, device=dev)
    used[:, 0] = True
    last = torch.full((batch, w), -1, dtype=torch.long, device=dev)  # -1: empty prefix
    size = torch.zeros(batch, w, dtype=torch.long, device=dev)
    key = torch.zeros(batch, w, dtype=torch.long, device=dev)  # hash of the prefix
    parent_key = torch.full((batch, w), -1, dtype=torch.long, device=dev)  # hash without the last token
    # Back-pointers per frame: the source slot of each new beam and the token it appended (-1: none).
    sources, appended = [], []
    top_lp, top_ids = log_probs.topk(k, dim=-1)  # (B, T', k)
    top_lp = top_lp.to(f64)
    # Frames past an utterance's end become a certain blank: its beams then carry over unchanged (their
    # totals bit-exact), without a per-frame select between old and new state.
    ended = (torch.arange(frames, device=dev).unsqueeze(0) >= lengths.unsqueeze(1)).unsqueeze(2)  # (B, T', 1)
    top_ids = top_ids.masked_fill(ended, blank_id)
    top_lp = torch.where(ended, torch.cat([top_lp.new_zeros(1), top_lp.new_full((k - 1,), NEG_INF)]), top_lp)
    is_blank_all = top_ids == blank_id  # (B, T', k)
    has_blank_all = is_blank_all.any(-1, keepdim=True)  # (B, T', 1)
    j_blank_all = is_blank_all.int().argmax(-1, keepdim=True)  # (B, T', 1)
    lp_blank_all = torch.where(is_blank_all, top_lp, NEG_INF).amax(-1, keepdim=True)  # (B, T', 1)
    rows = torch.arange(batch, device=dev).unsqueeze(1)  # (B, 1)
    # Creation order of a candidate in the per-utterance search: beam w, top-k rank j, then
    # extension (0) before the repeat that keeps the prefix (1).
    beam_rank = torch.arange(w, device=dev)
    order = (beam_rank.unsqueeze(1) * k + torch.arange(k, device=dev)) * 2  # (W, k)
    never = 4 * w * k + 4  # later than any creation
    for t in range(int(lengths.max()) if batch else 0):
        lp, ids = top_lp[:, t], top_ids[:, t]  # (B, k)
        total = torch.logaddexp(pb, pnb)  # (B, W)
        is_blank, has_blank, j_blank, lp_blank = (is_blank_all[:, t], has_blank_all[:, t], j_blank_all[:, t],
                                                  lp_blank_all[:, t])  # (B, k), (B, 1) x 3
        repeat = ids.unsqueeze(1) == last.unsqueeze(2)  # (B, W, k): token == the prefix's last token
        has_repeat = repeat.any(-1)  # (B, W)
        j_repeat = repeat.int().argmax(-1)  # (B, W)
        lp_repeat = torch.where(repeat, lp.unsqueeze(1), neg).amax(-1)  # (B, W)

        # Same prefix: through a blank (pb), or the last token repeated without a blank (pnb).
        stay_pb = total + lp_blank
        stay_pnb = pnb + lp_repeat
        stay_new = used & (has_blank | has_repeat)
        stay_order = torch.minimum(torch.where(has_blank, (beam_rank * k + j_blank) * 2, never),
                                   torch.where(has_repeat, (beam_rank * k + j_repeat) * 2 + 1, never))
        # Extended prefix + token: a repeated token needs a blank in between (pb only).
        ext_pnb = torch.where(repeat, pb.unsqueeze(2), total.unsqueeze(2)) + lp.unsqueeze(1)  # (B, W, k)
        ext_new = used.unsqueeze(2) & ~is_blank.unsqueeze(1)  # (B, W, k)

        # An extension of beam v that equals the prefix of beam u (u = v + its last token) is merged into u.
        match = ((parent_key.unsqueeze(2) == key.unsqueeze(1)) & (size.unsqueeze(2) == size.unsqueeze(1) + 1)
                 & used.unsqueeze(2) & used.unsqueeze(1) & has_repeat.unsqueeze(2))  # (B, W_u, W_v)
        v = match.int().argmax(-1)  # (B, W)
        merged = match.any(-1)  # (B, W)
        stay_pnb = torch.where(merged, torch.logaddexp(stay_pnb, ext_pnb[rows, v, j_repeat]), stay_pnb)
        stay_order = torch.where(merged, torch.minimum(stay_order, order[v, j_repeat]), stay_order)
        folded = torch.zeros(batch, w * k + 1, dtype=torch.bool, device=dev)
        folded.scatter_(1, torch.where(merged, v * k + j_repeat, w * k), True)
        ext_new = ext_new & ~folded[:, :-1].view(batch, w, k)

        # Keep the beam_size best new candidates, ties in creation order.
        new = torch.cat([stay_new, ext_new.view(batch, w * k)], dim=1)  # (B, W + W*k)
        scores = torch.where(new, torch.cat([torch.logaddexp(stay_pb, stay_pnb), ext_pnb.view(batch, -1)], 1), neg)
        created = torch.cat([stay_order, order.view(1, -1).expand(batch, -1)], dim=1) + torch.where(new, 0, never)
        by_order = created.argsort(dim=1, stable=True)
        by_score = scores.gather(1, by_order).argsort(dim=1, descending=True, stable=True)[:, :w]
        pick = by_order.gather(1, by_score)  # (B, W) candidate index
        stay = pick < w
        src = torch.where(stay, pick, torch.div(pick - w, k, rounding_mode="floor"))  # source beam
        ext_idx = (pick - w).clamp(min=0)
        token = ids.gather(1, ext_idx.remainder(k))
        src_size = size.gather(1, src)
        sources.append(src)
        appended.append(torch.where(stay, -1, token))
        src_key = key.gather(1, src)
        pb, pnb, used, last, size, key, parent_key = (
            torch.where(stay, stay_pb.gather(1, src), neg),
            torch.where(stay, stay_pnb.gather(1, src), ext_pnb.view(batch, -1).gather(1, ext_idx)),
            new.gather(1, pick),
            torch.where(stay, last.gather(1, src), token),
            src_size + (~stay).long(),
            torch.where(stay, src_key, _hash_append(src_key, token)),
            torch.where(stay, parent_key.gather(1, src), src_key),
        )
    # Follow the back-pointers from the last frame to read each beam's prefix.
    tokens = torch.full((batch, w, len(appended)), -1, dtype=torch.long, device=dev)  # (B, W, T')
    slot = beam_rank.unsqueeze(0).expand(batch, -1)
    for t in range(len(appended) - 1, -1, -1):
        tokens[:, :, t] = appended[t].gather(1, slot)
        slot = sources[t].gather(1, slot)
    total = torch.logaddexp(pb, pnb).tolist()
    used, tokens = used.tolist(), tokens.tolist()
    return [[(tuple(x for x in tokens[b][i] if x >= 0), total[b][i]) for i in range(w) if used[b][i]]
            for b in range(batch)]


@torch.no_grad()
def attention_beam_search(decoder: AttentionDecoder, memory: torch.Tensor, memory_mask: torch.Tensor,
                          beam_size: int, sos: int, eos: int, max_len: int | None = None) -> list[list[int]]:
    """Batched beam search with the attention decoder. memory (B, T', D), memory_mask (B, 1, T').

    The beam holds beam_size live (unfinished) hypotheses per utterance. At every step each of them may
    also end: hypothesis + <eos> is a finished candidate, valued by its log-prob divided by its length
    (tokens + <eos>), and the best finished candidate is the result. A finished hypothesis leaves the beam.

    Why per-token values: a decoder trained with label smoothing eps gives <eos> about eps/(V-1) at every
    step and no token more than about 1-eps, so by raw log-prob stopping now (-8.9 for V=709, eps=0.1)
    beats finishing a sentence with more than ~85 tokens to go (each at least -log(1-eps)=0.105 nats), and
    long outputs end early. The per-token average compares a truncated and a complete hypothesis fairly.

    Each utterance may produce at most as many tokens as it has valid encoder frames (or ``max_len``), as
    when decoded alone (WeNet bounds every utterance by the padded batch length); there every live
    hypothesis ends, paying the decoder's <eos> log-prob. An utterance stops as soon as no live hypothesis
    can beat its best finished one (live log-probs only fall and a hypothesis has at most limit+1
    positions, so live_best/(limit+1) bounds its value) and then leaves the batch; the result is the same
    as with search to the limit.
    """
    batch, frames, _ = memory.shape
    dev, w = memory.device, beam_size
    limits = memory_mask.reshape(batch, frames).sum(-1)  # (B,) valid frames
    if max_len is not None:
        limits = limits.clamp(max=max_len)
    # Utterances still searching (U of them): their ids, limits, memory (projected once), raw beam scores
    # (U, W) and, per row of U*W, the hypothesis ([sos] + tokens) and the decoder cache.
    utt, lim, mem_mask = torch.arange(batch, device=dev), limits, memory_mask
    mem = decoder.project_memory(memory)
    hyps = torch.full((batch * w, 1), sos, dtype=torch.long, device=dev)
    # Only the first beam is live at the start, so the beams do not duplicate.
    scores = torch.full((batch, w), NEG_INF, device=dev)
    scores[:, 0] = 0.0
    cache = None
    best = torch.full((batch,), NEG_INF, device=dev)  # best finished value per utterance
    longest = int(limits.max()) if batch else 0
    best_tokens = torch.full((batch, longest + 1), eos, dtype=torch.long, device=dev)
    for step in range(longest + 1):
        u = utt.shape[0]
        logp, cache = decoder.forward_one_step(mem, mem_mask, hyps, cache)  # (U*W, V)
        logp = logp.view(u, w, -1)  # (U, W, V)
        value = (scores + logp[:, :, eos]) / (step + 1)  # (U, W) each beam ending now
        top, top_beam = value.max(-1)  # (U,): the first of equal values
        better = top > best[utt]
        if bool(better.any()):
            ids = utt[better]
            best[ids] = top[better]
            best_tokens[ids, :step] = hyps.view(u, w, -1)[better, top_beam[better], 1:]
            best_tokens[ids, step] = eos
        at_limit = step >= lim
        done = at_limit | (best[utt] >= scores.amax(-1) / (lim + 1))
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = ~done
            rows = keep.repeat_interleave(w)
            utt, lim, scores, logp, mem_mask = utt[keep], lim[keep], scores[keep], logp[keep], mem_mask[keep]
            mem = [t[keep] for t in mem]
            hyps, cache = hyps[rows], [t[rows] for t in cache]
            u = utt.shape[0]
        logp[:, :, eos] = NEG_INF  # live hypotheses continue with a token
        k = min(w, logp.shape[-1])
        top_logp, top_ids = logp.topk(k, dim=-1)  # (U, W, k)
        scores, pick = (scores.unsqueeze(2) + top_logp).view(u, w * k).topk(w, dim=-1)  # (U, W)
        source = (torch.arange(u, device=dev).unsqueeze(1) * w + pick // k).view(-1)
        hyps = torch.cat([hyps[source], top_ids.view(u, w * k).gather(1, pick).view(-1, 1)], dim=1)
        cache = [t[source] for t in cache]  # follow the surviving beams
    return [row[: row.index(eos)] for row in best_tokens.tolist()]


@torch.no_grad()
def attention_rescoring(decoder: AttentionDecoder, memory: torch.Tensor, memory_mask: torch.Tensor,
                        nbests: Sequence[Sequence[tuple[Sequence[int], float]]], sos: int, eos: int,
                        ctc_weight: float) -> list[tuple[list[int], float]]:
    """Rescore every utterance's CTC n-best with the decoder in one forward pass.

    memory (B, T', D), memory_mask (B, 1, T'), nbests: B lists of (hypothesis, CTC log-prob)
    -> per utterance (best hypothesis, its combined score); the first of equal scores wins,
    and an empty n-best gives ([], -inf).
    """
    flat = [(b, list(hyp), float(ctc)) for b, nbest in enumerate(nbests) for hyp, ctc in nbest]
    best: list[tuple[list[int], float]] = [([], NEG_INF) for _ in nbests]
    if not flat:
        return best
    dev = memory.device
    lens = torch.tensor([len(hyp) + 1 for _, hyp, _ in flat], dtype=torch.long)
    ys_in = torch.full((len(flat), int(lens.max())), eos, dtype=torch.long)  # (N, L) [sos] + hyp, eos-padded
    ys_in[:, 0] = sos
    for i, (_, hyp, _) in enumerate(flat):
        ys_in[i, 1 : len(hyp) + 1] = torch.tensor(hyp, dtype=torch.long)
    targets = torch.cat([ys_in[:, 1:], ys_in.new_full((len(flat), 1), eos)], dim=1)  # (N, L) hyp + [eos]
    valid = torch.arange(ys_in.shape[1]).unsqueeze(0) < lens.unsqueeze(1)  # (N, L)
    utt = torch.tensor([b for b, _, _ in flat], device=dev)
    logp = decoder(memory[utt], memory_mask[utt], ys_in.to(dev), lens.to(dev)).log_softmax(dim=-1)  # (N, L, V)
    att = logp.gather(2, targets.to(dev).unsqueeze(2)).squeeze(2).masked_fill(~valid.to(dev), 0.0).sum(1)  # (N,)
    for (b, hyp, ctc), att_score in zip(flat, att.tolist()):
        score = att_score + ctc_weight * ctc
        if score > best[b][1]:
            best[b] = (hyp, score)
    return best
