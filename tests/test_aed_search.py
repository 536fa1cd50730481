"""AED search algorithms against brute force on tiny problems, and the batched searches against
per-utterance reference implementations (the straightforward dict-based forms they replaced)."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import pytest
import torch

from wenet_llm.decode.aed_search import (
    attention_beam_search,
    attention_rescoring,
    ctc_greedy_search,
    ctc_prefix_beam_search,
)


NEG_INF = -float("inf")


def _log_add(*values: float) -> float:
    top = max(values)
    if top == NEG_INF:
        return NEG_INF
    return top + math.log(sum(math.exp(v - top) for v in values))


def reference_ctc_prefix_beam_search(log_probs, beam_size, blank_id=0):
    """log_probs (T', V) of one utterance -> n-best [(prefix, log-prob)], best first (one utterance,
    Python dicts: what the batched search must reproduce)."""
    beams = {(): (0.0, NEG_INF)}
    for t in range(log_probs.shape[0]):
        frame = log_probs[t]
        top_logp, top_ids = frame.topk(min(beam_size, frame.shape[0]))
        nxt = defaultdict(lambda: [NEG_INF, NEG_INF])
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
                    entry[1] = _log_add(entry[1], pb + logp)
                    same = nxt[prefix]
                    same[1] = _log_add(same[1], pnb + logp)
                else:
                    entry[1] = _log_add(entry[1], pb + logp, pnb + logp)
        ranked = sorted(nxt.items(), key=lambda kv: _log_add(*kv[1]), reverse=True)[:beam_size]
        beams = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked}
    return [(prefix, _log_add(pb, pnb)) for prefix, (pb, pnb) in beams.items()]


@torch.no_grad()
def reference_attention_rescoring(decoder, memory, memory_mask, nbest, sos, eos, ctc_weight):
    """One utterance (memory (1, T', D)): the decoder scores each hypothesis separately."""
    best_hyp, best_score = [], NEG_INF
    for hyp, ctc_score in nbest:
        ys_in = torch.tensor([[sos, *hyp]])
        logp = decoder(memory, memory_mask, ys_in, torch.tensor([len(hyp) + 1])).log_softmax(dim=-1)[0]
        targets = list(hyp) + [eos]
        score = float(logp[torch.arange(len(targets)), torch.tensor(targets)].sum()) + ctc_weight * ctc_score
        if score > best_score:
            best_hyp, best_score = list(hyp), score
    return best_hyp, best_score


def collapse(path, blank=0):
    out, prev = [], None
    for t in path:
        if t != prev and t != blank:
            out.append(t)
        prev = t
    return tuple(out)


def test_ctc_greedy_collapses_and_respects_lengths():
    ids = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 3], [2, 0, 2, 2, 3, 3, 3, 3]])
    log_probs = torch.nn.functional.one_hot(ids, 5).float().log()  # (B, T', V)
    hyps = ctc_greedy_search(log_probs, torch.tensor([8, 4]))
    assert hyps == [[1, 1, 2, 3], [2, 2]]


def test_prefix_beam_search_equals_brute_force():
    torch.manual_seed(0)
    frames, vocab = 5, 3
    log_probs = torch.randn(frames, vocab).log_softmax(-1)
    exact: dict[tuple, float] = {}
    for path in itertools.product(range(vocab), repeat=frames):
        logp = float(sum(log_probs[t, s] for t, s in enumerate(path)))
        key = collapse(path)
        exact[key] = math.log(math.exp(exact[key]) + math.exp(logp)) if key in exact else logp
    length = torch.tensor([frames])
    nbest = ctc_prefix_beam_search(log_probs[None], length, beam_size=64)[0]  # wide enough to be exact
    ranked = sorted(exact.items(), key=lambda kv: kv[1], reverse=True)
    for (prefix, score), (true_prefix, true_score) in zip(nbest[:10], ranked[:10]):
        assert prefix == true_prefix and abs(score - true_score) < 1e-5
    narrow = ctc_prefix_beam_search(log_probs[None], length, beam_size=3)[0]
    assert narrow[0][0] == ranked[0][0] and len(narrow) == 3


@pytest.mark.parametrize("beam_size,vocab,sharpness", [(1, 6, 1.0), (3, 4, 3.0), (4, 3, 1.0), (5, 12, 6.0),
                                                       (10, 30, 4.0)])
def test_batched_prefix_beam_search_equals_reference(beam_size, vocab, sharpness):
    g = torch.Generator().manual_seed(beam_size * 100 + vocab)
    lengths = torch.tensor([23, 1, 17, 0, 23, 9])
    log_probs = (torch.randn(6, 23, vocab, generator=g) * sharpness).log_softmax(-1)  # (B, T', V)
    # Runs of the same frame make repeated tokens and prefixes that meet from different beams.
    log_probs[:, 5:9] = log_probs[:, 4:5]
    batched = ctc_prefix_beam_search(log_probs, lengths, beam_size)
    for b in range(6):
        reference = reference_ctc_prefix_beam_search(log_probs[b, : lengths[b]], beam_size)
        assert [p for p, _ in batched[b]] == [p for p, _ in reference], b
        assert all(abs(x - y) < 1e-9 for (_, x), (_, y) in zip(batched[b], reference)), b


def test_batched_prefix_beam_search_keeps_the_creation_order_of_ties():
    # One-hot frames: many candidates tie at -inf, and the order among ties decides the n-best.
    ids = torch.tensor([[1, 1, 0, 2, 2, 1, 0, 1], [2, 0, 2, 1, 1, 1, 2, 0]])
    log_probs = torch.nn.functional.one_hot(ids, 4).float().log()
    lengths = torch.tensor([8, 6])
    batched = ctc_prefix_beam_search(log_probs, lengths, beam_size=3)
    for b in range(2):
        assert batched[b] == reference_ctc_prefix_beam_search(log_probs[b, : lengths[b]], 3)


class MarkovDecoder(torch.nn.Module):
    """Logits depend on the last input token only (and, per utterance, on a memory bias)."""

    def __init__(self, vocab: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab, vocab, generator=g) * 2

    def forward(self, memory, memory_mask, ys_in, ys_in_lens):
        bias = memory[:, :1, : self.table.shape[0]]  # (B, 1, V)
        return self.table[ys_in] + bias  # (B, L, V)

    def project_memory(self, memory):
        return [memory]

    def forward_one_step(self, memory_kv, memory_mask, ys, cache):
        # The cache holds the prefix; checking it proves beam search reorders it with the beams.
        if cache is not None:
            assert torch.equal(cache[0], ys[:, :-1].float())
        memory = memory_kv[0].repeat_interleave(ys.size(0) // memory_kv[0].size(0), dim=0)  # one row per prefix
        return self.forward(memory, memory_mask, ys, None)[:, -1].log_softmax(-1), [ys.float()]


def brute_force_best(decoder, memory, sos, eos, vocab, max_len):
    """The hypothesis of at most max_len tokens with the best log-prob (with <eos>) per position."""
    best, best_value = None, -float("inf")
    tokens = [t for t in range(vocab) if t not in (sos, eos)]
    for length in range(0, max_len + 1):
        for seq in itertools.product(tokens, repeat=length):
            ys = torch.tensor([[sos, *seq]])
            logp = decoder(memory, None, ys, None).log_softmax(-1)[0]
            targets = list(seq) + [eos]
            value = float(sum(logp[i, t] for i, t in enumerate(targets))) / len(targets)
            if value > best_value:
                best, best_value = list(seq), value
    return best


def test_attention_beam_search_batched_equals_single_and_brute_force():
    vocab, sos, eos = 5, 4, 4
    decoder = MarkovDecoder(vocab, seed=2)
    torch.manual_seed(0)
    memory = torch.randn(4, 6, 8) * 3
    frames = torch.tensor([6, 2, 3, 4])  # length limits 4 (max_len), 2, 3, 4
    mask = (torch.arange(6)[None, :] < frames[:, None]).unsqueeze(1)  # (B, 1, T')
    batched = attention_beam_search(decoder, memory, mask, beam_size=3, sos=sos, eos=eos, max_len=4)
    assert len({tuple(h) for h in batched}) > 1, "degenerate test: identical hypotheses"
    for b in range(4):
        single = attention_beam_search(decoder, memory[b : b + 1], mask[b : b + 1], 3, sos, eos, max_len=4)
        assert single[0] == batched[b]
        limit = min(int(frames[b]), 4)
        exact = brute_force_best(decoder, memory[b : b + 1], sos, eos, vocab, max_len=limit)
        # 4^3 live hypotheses at most before the last step: a beam of 64 searches exhaustively.
        wide = attention_beam_search(decoder, memory[b : b + 1], mask[b : b + 1], 64, sos, eos, max_len=4)
        assert wide[0] == exact and len(exact) <= limit


class SmoothedOracle(torch.nn.Module):
    """A perfect decoder trained with label smoothing eps: 1-eps on the next reference token (the utterance's
    id is memory[:, 0, 0]; <eos> after the reference), the rest spread over the other tokens, <eos> the
    most likely of them (a sentence could end here) at twice the share of each other one."""

    def __init__(self, targets, vocab, eos, eps=0.1):
        super().__init__()
        self.targets, self.vocab, self.eos, self.eps = targets, vocab, eos, eps

    def project_memory(self, memory):
        return [memory[:, 0, 0].long()]  # the utterance ids

    def forward_one_step(self, memory_kv, memory_mask, ys, cache):
        pos = ys.size(1) - 1
        probs = torch.full((ys.size(0), self.vocab), self.eps / self.vocab)  # V-2 others + 2 shares for eos
        probs[:, self.eos] = 2 * self.eps / self.vocab
        for row, u in enumerate(memory_kv[0].repeat_interleave(ys.size(0) // memory_kv[0].size(0)).tolist()):
            target = self.targets[u][pos] if pos < len(self.targets[u]) else self.eos
            probs[row, target] = 1 - self.eps
        return probs.log(), [ys.float()]


def test_attention_beam_search_does_not_end_long_outputs_early():
    # Raw log-probs prefer stopping at once (log(0.2/30) = -5.0) to 80 tokens of log(0.9) (-8.5).
    vocab, eos = 30, 29
    g = torch.Generator().manual_seed(0)
    targets = [torch.randint(0, 29, (n,), generator=g).tolist() for n in (10, 45, 80)]
    decoder = SmoothedOracle(targets, vocab, eos)
    memory = torch.zeros(3, 100, 4)
    memory[:, 0, 0] = torch.arange(3).float()
    mask = torch.ones(3, 1, 100, dtype=torch.bool)
    assert attention_beam_search(decoder, memory, mask, 4, eos, eos) == targets


def test_attention_rescoring_picks_the_best_combined_score():
    vocab, sos, eos = 5, 4, 4
    decoder = MarkovDecoder(vocab, seed=3)
    memory = torch.randn(1, 6, 8)
    mask = torch.ones(1, 1, 6, dtype=torch.bool)
    nbest = [((1, 2), -1.0), ((3,), -1.5), ((), -4.0), ((2, 2, 1), -2.0)]

    def att_score(hyp):
        logp = decoder(memory, mask, torch.tensor([[sos, *hyp]]), None).log_softmax(-1)[0]
        return float(sum(logp[i, t] for i, t in enumerate(list(hyp) + [eos])))

    for weight in (0.0, 0.5, 10.0):
        (hyp, score), = attention_rescoring(decoder, memory, mask, [nbest], sos, eos, ctc_weight=weight)
        combined = {h: att_score(h) + weight * c for h, c in nbest}
        best = max(combined, key=combined.get)
        assert tuple(hyp) == best and abs(score - combined[best]) < 1e-5
    assert attention_rescoring(decoder, memory, mask, [[]], sos, eos, 0.3) == [([], NEG_INF)]


def test_batched_rescoring_equals_reference_on_a_random_model():
    from test_aed_decode import tiny_model

    model = tiny_model(2)
    g = torch.Generator().manual_seed(5)
    memory = torch.randn(3, 12, 16, generator=g)
    mask = torch.arange(12)[None, None, :] < torch.tensor([12, 7, 9])[:, None, None]  # (B, 1, T')
    nbests = [[(tuple(torch.randint(0, 7, (n,), generator=g).tolist()), -float(n)) for n in (3, 0, 6, 2)],
              [], [((1, 2, 3), -2.0), ((4,), -0.5)]]
    batched = attention_rescoring(model.decoder, memory, mask, nbests, model.sos, model.eos, 0.3)
    for b in range(3):
        ref_hyp, ref_score = reference_attention_rescoring(model.decoder, memory[b : b + 1], mask[b : b + 1],
                                                           nbests[b], model.sos, model.eos, 0.3)
        assert batched[b][0] == ref_hyp and (batched[b][1] == ref_score or abs(batched[b][1] - ref_score) < 1e-4)
