"""Joint CTC + LLM rescoring: the LLM's counterpart of WeNet's attention rescoring.

An utterance's candidates are the encoder's CTC prefix-beam n-best and the LLM's own output. Each gets
the LLM's log-prob of it (transcript and end token after the utterance's prompt, teacher forcing) plus
``ctc_weight`` times its CTC log-likelihood (the exact sum over alignments, from the encoder's CTC head);
the best is the output. The LLM mends what the CTC head misspells; the CTC score keeps the output to what
the audio supports, so a fluent sentence that replaces a misheard word with another one of the grammar
loses to the candidate that spells what was said.

With a hotword list, the LLM text and the best CTC candidates also give candidates with a listed term put
where a span sounds like it (:func:`hotword_candidates`: toneless pinyin for Hanzi, letters for words).
A CTC head misspells a name it never heard (ZANSON for ZANSEN); the list spells it, and the same two
scores, the LLM's with the list in its prompt, decide whether the replacement stands.
Settings: :class:`wenet_llm.config.llm.RescoringConfig`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import kaldialign
import torch
import torch.nn.functional as F

from wenet_llm.config.llm import RescoringConfig
from wenet_llm.data.context_terms import contains, hanzi_unit, join_units, split_term
from wenet_llm.decode.aed_search import ctc_prefix_beam_search


def _sound(tokens: Sequence[str]) -> str:
    """What a token run sounds like, as letters: toneless pinyin for Hanzi, the word's letters otherwise."""
    from pypinyin import Style, lazy_pinyin  # a dependency of the package (the demo corpus' Mandarin voice)

    return "".join(lazy_pinyin(t, style=Style.NORMAL)[0] if hanzi_unit(t) else t.upper() for t in tokens)


def hotword_substitution(text: str, hotword: str, threshold: float) -> str | None:
    """``text`` with the span that sounds most like ``hotword`` replaced by it, or None.

    Spans of the hotword's length in tokens, one less and one more, in the hotword's script only (Hanzi
    spans for a Mandarin term, words for a Latin one); their sound (:func:`_sound`) against the hotword's
    by edit distance over its length. None when the best span is farther than ``threshold``, when the
    text already says the hotword there, or when nothing fits."""
    words, term = split_term(text), split_term(hotword)
    if not words or not term:
        return None
    hanzi = hanzi_unit(term[0])
    target = _sound(term)
    best: tuple[float, int, int] | None = None
    for size in range(max(1, len(term) - 1), len(term) + 2):
        for start in range(0, len(words) - size + 1):
            span = words[start:start + size]
            if any(hanzi_unit(t) != hanzi for t in span):
                continue
            if span == term:
                return None
            ratio = kaldialign.edit_distance(_sound(span), target)["total"] / max(len(target), 1)
            if best is None or ratio < best[0]:
                best = (ratio, start, size)
    if best is None or best[0] > threshold:
        return None
    _, start, size = best
    return join_units(words[:start] + term + words[start + size:])


def hotword_candidates(bases: Sequence[str], hotwords: Sequence[str], threshold: float) -> list[str]:
    """For each base text: one candidate per hotword that a span of it sounds like, and one with every such
    hotword put in (one after the other), in that order, without repeats."""
    out: list[str] = []
    for base in bases:
        every = base
        for hotword in hotwords:
            one = hotword_substitution(base, hotword, threshold)
            if one is not None and one not in out:
                out.append(one)
            every = hotword_substitution(every, hotword, threshold) or every
        if every != base and every not in out:
            out.append(every)
    return out


@dataclass
class RescoredOutput:
    text: str
    source: str  # "llm", "ctc_<rank>" (0 = the CTC prefix beam's best) or "hotword" (a listed term put in)
    llm_score: float
    ctc_score: float
    candidates: int

    def as_dict(self) -> dict:
        return {"source": self.source, "llm_score": round(self.llm_score, 4), "ctc_score": round(self.ctc_score, 4),
                "candidates": self.candidates}


def ctc_log_likelihoods(log_probs: torch.Tensor, lengths: torch.Tensor, utterances: Sequence[int],
                        targets: Sequence[Sequence[int]], blank_id: int) -> torch.Tensor:
    """log P_ctc(target | utterance): log_probs (B, T', V) log-softmax, lengths (B,); row i scores
    ``targets[i]`` (unit ids, may be empty) on utterance ``utterances[i]``. (N,) float64; -inf where the
    target cannot be aligned (longer than the frames allow)."""
    index = torch.tensor(list(utterances), dtype=torch.long, device=log_probs.device)
    frames = log_probs[index].transpose(0, 1).double()  # (T', N, V)
    flat = [u for t in targets for u in t]
    target = torch.tensor(flat, dtype=torch.long, device=log_probs.device)
    target_lengths = torch.tensor([len(t) for t in targets], dtype=torch.long, device=log_probs.device)
    nll = F.ctc_loss(frames, target, lengths.to(log_probs.device)[index], target_lengths, blank=blank_id,
                     reduction="none", zero_infinity=False)
    return -nll


def rescore(model, builder, ctc_tokenizer, speech, ctc_log_probs: torch.Tensor, ctc_lengths: torch.Tensor,
            prompts: Sequence, llm_texts: Sequence[str], cfg: RescoringConfig,
            hotwords: Sequence[Sequence[str]] | None = None) -> list[RescoredOutput]:
    """Pick each utterance's output among its LLM text, its CTC n-best and, with a hotword list, those
    texts with a span that sounds like a listed term replaced by the term.

    ``model``: an ``LLMASRModel``; ``speech`` its ``encode_speech`` adapter output and ``ctc_log_probs``
    (B, T', V) / ``ctc_lengths`` (B,) the encoder's CTC head; ``prompts``, ``llm_texts`` (in the corpus
    convention, as the guards leave them) and ``hotwords`` one per utterance. A candidate's score is the
    LLM's log-prob + ``ctc_weight`` x its CTC log-likelihood + ``hotword_bonus`` per listed term it says.
    On equal scores the LLM text wins, then the better CTC rank."""
    blank = model.encoder.ctc.blank_id
    nbests = ctc_prefix_beam_search(ctc_log_probs, ctc_lengths, cfg.ctc_beam, blank)
    utterances: list[int] = []
    texts: list[str] = []
    units: list[list[int]] = []
    sources: list[str] = []
    terms: list[list[str]] = []
    for b, (llm_text, nbest) in enumerate(zip(llm_texts, nbests)):
        seen: set[str] = set()
        candidates = [(llm_text, ctc_tokenizer.encode(llm_text), "llm")]
        candidates += [(ctc_tokenizer.decode(list(hyp)), list(hyp), f"ctc_{rank}") for rank, (hyp, _) in enumerate(nbest)]
        listed = [builder.output_text(h) for h in (hotwords[b] if hotwords else [])]
        listed = [h for h in listed if h][: builder.cfg.max_hotwords]
        terms.append(listed)
        if listed and cfg.hotword_threshold > 0:
            bases = [text for text, _, _ in candidates[: 1 + cfg.hotword_bases]]
            candidates += [(text, ctc_tokenizer.encode(text), "hotword")
                           for text in hotword_candidates(bases, listed, cfg.hotword_threshold)]
        for text, ids, source in candidates:
            if text in seen:
                continue
            seen.add(text)
            utterances.append(b)
            texts.append(text)
            units.append(ids)
            sources.append(source)
    ctc = ctc_log_likelihoods(ctc_log_probs, ctc_lengths, utterances, units, blank).tolist()
    targets = [builder.build(text).target for text in texts]
    llm = model.score_targets(speech, prompts, utterances, targets, cfg.max_candidates_per_batch).tolist()
    best: list[int] = [-1] * len(llm_texts)
    said = [sum(contains(split_term(texts[i]), split_term(h)) for h in terms[utterances[i]])
            for i in range(len(texts))]
    totals = [llm[i] + (cfg.ctc_weight * ctc[i] if cfg.ctc_weight else 0.0) + cfg.hotword_bonus * said[i]
              for i in range(len(texts))]
    for i, b in enumerate(utterances):
        if best[b] < 0 or totals[i] > totals[best[b]]:
            best[b] = i
    counts = Counter(utterances)
    return [RescoredOutput(texts[i], sources[i], llm[i], ctc[i], counts[b]) for b, i in enumerate(best)]
