"""AED search algorithms against brute force on tiny problems."""

from __future__ import annotations

import itertools
import math

import torch

from wenet_llm.decode.aed_search import (
    attention_beam_search,
    attention_rescoring,
    ctc_greedy_search,
    ctc_prefix_beam_search,
)


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
    nbest = ctc_prefix_beam_search(log_probs, beam_size=64)  # wide enough to be exact
    ranked = sorted(exact.items(), key=lambda kv: kv[1], reverse=True)
    for (prefix, score), (true_prefix, true_score) in zip(nbest[:10], ranked[:10]):
        assert prefix == true_prefix and abs(score - true_score) < 1e-5
    narrow = ctc_prefix_beam_search(log_probs, beam_size=3)
    assert narrow[0][0] == ranked[0][0] and len(narrow) == 3


class MarkovDecoder(torch.nn.Module):
    """Logits depend on the last input token only (and, per utterance, on a memory bias)."""

    def __init__(self, vocab: int, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(vocab, vocab, generator=g) * 2

    def forward(self, memory, memory_mask, ys_in, ys_in_lens):
        bias = memory[:, :1, : self.table.shape[0]]  # (B, 1, V)
        return self.table[ys_in] + bias  # (B, L, V)

    def forward_one_step(self, memory, memory_mask, ys, cache):
        # The cache holds the prefix; checking it proves beam search reorders it with the beams.
        if cache is not None:
            assert torch.equal(cache[0], ys[:, :-1].float())
        return self.forward(memory, memory_mask, ys, None)[:, -1].log_softmax(-1), [ys.float()]


def brute_force_best(decoder, memory, sos, eos, vocab, max_len):
    best, best_score = None, -float("inf")
    tokens = [t for t in range(vocab) if t not in (sos, eos)]
    for length in range(0, max_len):
        for seq in itertools.product(tokens, repeat=length):
            ys = torch.tensor([[sos, *seq]])
            logp = decoder(memory, None, ys, None).log_softmax(-1)[0]
            targets = list(seq) + [eos]
            score = float(sum(logp[i, t] for i, t in enumerate(targets)))
            if score > best_score:
                best, best_score = list(seq), score
    return best


def test_attention_beam_search_batched_equals_single_and_brute_force():
    vocab, sos, eos = 5, 4, 4
    decoder = MarkovDecoder(vocab)
    torch.manual_seed(1)
    memory = torch.randn(3, 6, 8)
    mask = torch.ones(3, 1, 6, dtype=torch.bool)
    batched = attention_beam_search(decoder, memory, mask, beam_size=4, sos=sos, eos=eos, max_len=4)
    for b in range(3):
        single = attention_beam_search(decoder, memory[b : b + 1], mask[b : b + 1], 4, sos, eos, max_len=4)
        assert single[0] == batched[b]
        exact = brute_force_best(decoder, memory[b : b + 1], sos, eos, vocab, max_len=4)
        wide = attention_beam_search(decoder, memory[b : b + 1], mask[b : b + 1], 16, sos, eos, max_len=4)
        assert wide[0] == exact


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
        hyp, score = attention_rescoring(decoder, memory, mask, nbest, sos, eos, ctc_weight=weight)
        combined = {h: att_score(h) + weight * c for h, c in nbest}
        best = max(combined, key=combined.get)
        assert tuple(hyp) == best and abs(score - combined[best]) < 1e-5
    assert attention_rescoring(decoder, memory, mask, [], sos, eos, 0.3)[0] == []
