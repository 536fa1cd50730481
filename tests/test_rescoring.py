"""Joint CTC + LLM rescoring of LLM-ASR decoding (wenet_llm/decode/rescoring.py)."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import math

import pytest
import torch

from test_guards import guards, tiny, utterance_feats  # noqa: F401  (tiny is a fixture)

from wenet_llm.config.core import from_dict
from wenet_llm.config.data import DataConfig, FbankConfig
from wenet_llm.config.llm import GenerationConfig, RescoringConfig
from wenet_llm.decode.guards import GuardedDecoder, load_ctc_tokenizer
from wenet_llm.data.context_terms import contains, split_term
from wenet_llm.decode.rescoring import ctc_log_likelihoods, hotword_candidates, hotword_substitution, rescore


def brute_force_ctc(log_probs: torch.Tensor, target: list[int], blank: int = 0) -> float:
    """log sum over every frame labelling that collapses to ``target``."""
    frames, vocab = log_probs.shape
    total = -math.inf
    for path in itertools.product(range(vocab), repeat=frames):
        collapsed = [u for i, u in enumerate(path) if u != blank and (i == 0 or path[i - 1] != u)]
        if collapsed == target:
            score = sum(float(log_probs[t, u]) for t, u in enumerate(path))
            high = max(total, score)
            total = high + math.log(math.exp(total - high) + math.exp(score - high))
    return total


def test_ctc_log_likelihood_is_the_sum_over_alignments():
    torch.manual_seed(0)
    log_probs = torch.randn(2, 4, 3, dtype=torch.float64).log_softmax(-1)  # (B, T', V), blank 0
    lengths = torch.tensor([4, 3])
    targets = [[1, 2], [1, 1], [], [2], [1, 2, 1, 2]]
    utts = [0, 0, 0, 1, 1]
    got = ctc_log_likelihoods(log_probs, lengths, utts, targets, 0).tolist()
    for value, b, target in zip(got, utts, targets):
        expected = brute_force_ctc(log_probs[b, : int(lengths[b])], target)
        if math.isinf(expected):
            assert math.isinf(value) and value < 0  # 4 labels do not fit 3 frames
        else:
            assert value == pytest.approx(expected, abs=1e-9)


def test_score_targets_equals_one_row_at_a_time(tiny, small_corpus):  # noqa: F811
    model, tok, builder = tiny
    feats, lengths = utterance_feats(small_corpus, 2)
    prompts = [builder.build(None, {}), builder.build(None, {"hotwords": ["ZORVATH"]})]
    targets = [builder.build(t).target for t in ("HELLO", "", "GOOD MORNING", "HELLO")]
    utts = [0, 0, 1, 1]
    with torch.no_grad():
        speech, _, _ = model.encode_speech(feats, lengths)
        batched = model.score_targets(speech, prompts, utts, targets, max_rows=3)
        for i, (b, target) in enumerate(zip(utts, targets)):
            p = prompts[b]
            embed = model.embedding
            row = torch.cat([embed(torch.tensor(p.prefix)), speech.embeds[b, : int(speech.lengths[b])],
                             embed(torch.tensor(p.suffix)), embed(torch.tensor(target))])
            logits = model.llm(inputs_embeds=row.unsqueeze(0)).logits[0].log_softmax(-1)
            start = len(p.prefix) + int(speech.lengths[b]) + len(p.suffix)
            expected = sum(float(logits[start - 1 + t, tok_id]) for t, tok_id in enumerate(target))
            assert float(batched[i]) == pytest.approx(expected, abs=1e-3)
    assert float(batched[0]) != pytest.approx(float(batched[3]), abs=1e-3)  # the context changes the score


class _Encoder:
    class ctc:
        blank_id = 0


class FakeModel:
    """The two scores by hand: the LLM's log-prob per candidate text (teacher forcing stand-in)."""

    encoder = _Encoder()

    def __init__(self, llm_scores: dict[str, float]):
        self.llm_scores = llm_scores
        self.seen: list[str] = []

    def score_targets(self, speech, prompts, utterances, targets, max_rows):
        texts = [t[0] for t in targets]
        self.seen += texts
        return torch.tensor([self.llm_scores[t] for t in texts])


class FakeBuilder:
    cfg = type("Cfg", (), {"max_hotwords": 100})()

    def build(self, text, context=None):
        return type("Pieces", (), {"target": [text]})()

    def output_text(self, text):
        return text


class LetterUnits:
    """Units 1..3 = A, B, C."""

    def encode(self, text):
        return [" ABC".index(c) for c in text]

    def decode(self, ids):
        return "".join(" ABC"[i] for i in ids)


def test_rescore_picks_the_best_joint_score():
    # One utterance, 3 frames; the CTC head hears A then B: "AB" is its best, "AC" and "A" are also possible.
    probs = torch.tensor([[0.1, 0.8, 0.05, 0.05], [0.1, 0.05, 0.6, 0.25], [0.8, 0.1, 0.05, 0.05]])
    log_probs = probs.log().unsqueeze(0)
    lengths = torch.tensor([3])
    units = LetterUnits()
    ctc = {t: float(ctc_log_likelihoods(log_probs, lengths, [0], [units.encode(t)], 0)[0]) for t in ("AB", "AC", "CC")}
    assert ctc["AB"] > ctc["AC"] > ctc["CC"]
    # The LLM wrote "CC" (the audio does not support it) and prefers "AC" among the n-best.
    llm = collections.defaultdict(lambda: -9.0, {"CC": -1.0, "AC": -2.0, "AB": -6.0})

    def pick(weight, beam=4, text="CC"):
        model = FakeModel(llm)
        out = rescore(model, FakeBuilder(), units, None, log_probs, lengths, [None], [text],
                      RescoringConfig(enabled=True, ctc_beam=beam, ctc_weight=weight))[0]
        return out, model.seen

    out, seen = pick(0.0)
    assert out.text == "CC" and out.source == "llm"  # no CTC weight: the LLM's own favourite
    assert seen[0] == "CC" and len(seen) == len(set(seen)) == out.candidates  # LLM text first, no duplicates
    out, _ = pick(1.0)
    assert out.text == "AC" and out.source.startswith("ctc_")  # the LLM mends within what the audio allows
    assert out.llm_score == -2.0 and out.ctc_score == pytest.approx(ctc["AC"])
    out, _ = pick(100.0)
    assert out.text == "AB" and out.source == "ctc_0"  # CTC decides
    out, _ = pick(1.0, text="AC")
    assert out.text == "AC" and out.source == "llm"  # the LLM text wins a tie with the same CTC candidate
    assert out.as_dict() == {"source": "llm", "llm_score": -2.0, "ctc_score": round(ctc["AC"], 4),
                             "candidates": out.candidates}


def test_guarded_decoder_rescores_before_the_ctc_guard(tiny, small_corpus, tmp_path):  # noqa: F811
    from wenet_llm.decode.aed_search import ctc_prefix_beam_search
    from wenet_llm.decode.llm_decode import decode_llm

    model, tok, builder = tiny
    feats, lengths = utterance_feats(small_corpus)
    prompts = [builder.build(None, {}) for _ in range(len(lengths))]
    plain = GuardedDecoder(model, tok, builder, guards(ctc="off"), FbankConfig())(feats, lengths, prompts)
    gen = guards(ctc="off")
    heavy = dataclasses.replace(gen, rescoring=RescoringConfig(enabled=True, ctc_beam=4, ctc_weight=1000.0))
    outs = GuardedDecoder(model, tok, builder, heavy, FbankConfig())(feats, lengths, prompts)
    units = load_ctc_tokenizer(model.cfg.encoder_dir)
    enc = model.encoder(feats, lengths)
    nbest = ctc_prefix_beam_search(enc.ctc_log_probs, enc.encoder_mask.squeeze(1).sum(1), 4)
    enc_lengths = enc.encoder_mask.squeeze(1).sum(1)
    for b, (o, p, nb) in enumerate(zip(outs, plain, nbest)):
        assert o.tokens == p.tokens  # the LLM's own output is unchanged
        candidates = [units.encode(p.text)] + [list(h) for h, _ in nb]
        exact = ctc_log_likelihoods(enc.ctc_log_probs, enc_lengths, [b] * len(candidates), candidates, 0)
        # with CTC dominating, the pick is the candidate the CTC head likes best (the exact sum over
        # alignments, which may reorder the prefix beam's pruned scores)
        assert o.rescoring["ctc_score"] == pytest.approx(float(exact.max()), abs=1e-3)
        if o.rescoring["source"] == "llm":
            assert o.text == p.text
        else:
            assert o.text == units.decode(list(nb[int(o.rescoring["source"][4:])][0]))
        assert 1 <= o.rescoring["candidates"] <= 5
    light = dataclasses.replace(gen, rescoring=RescoringConfig(enabled=True, ctc_beam=4, ctc_weight=0.0))
    # random LLM: its greedy output is its own best-scored candidate (up to the search being greedy)
    for o in GuardedDecoder(model, tok, builder, light, FbankConfig())(feats, lengths, prompts):
        assert o.rescoring["source"] in {"llm"} | {f"ctc_{i}" for i in range(4)}
    # decode_llm records the pick per utterance and counts the CTC picks
    summary = decode_llm(model, tok, builder, heavy, small_corpus / "test" / "data.list", DataConfig(),
                         tmp_path / "rescored", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "rescored" / "results.jsonl").read_text().splitlines()]
    assert all(r["rescoring"] is not None for r in rows)
    assert summary["rescoring"] == {"enabled": True, "ctc_beam": 4, "ctc_weight": 1000.0, "rescored": len(rows),
                                    "from_ctc_nbest": sum(r["rescoring"]["source"].startswith("ctc_") for r in rows)}
    off = decode_llm(model, tok, builder, gen, small_corpus / "test" / "data.list", DataConfig(),
                     tmp_path / "plain", progress=False)
    assert off["rescoring"] == {"enabled": False}


def test_hotword_substitution_by_sound():
    # English: letters; the CTC head's ZANSON for the listed ZANSEN (1 letter of 6)
    assert hotword_substitution("WELCOME TO ZANSON ALTHOUGH", "ZANSEN", 0.5) == "WELCOME TO ZANSEN ALTHOUGH"
    assert hotword_substitution("WELCOME TO ZANSON ALTHOUGH", "ZANSEN", 0.1) is None  # too far for the threshold
    assert hotword_substitution("WELCOME TO ZANSEN", "ZANSEN", 0.5) is None  # already said
    # a two-word term may replace one, two or three words
    assert hotword_substitution("FOR QUL LANYI RAENAGY BECAUSE", "QUILANIA ENERGY", 0.5) == "FOR QUILANIA ENERGY BECAUSE"
    # Mandarin: toneless pinyin (lai yu xiang / lei yu xiang), Hanzi spans only
    assert hotword_substitution("我在办公室遇到了雷预箱另外", "赖钰翔", 0.5) == "我在办公室遇到了赖钰翔另外"
    assert hotword_substitution("MY FRIEND LAI YU XIANG", "赖钰翔", 0.9) is None  # no Hanzi span to replace
    assert hotword_substitution("我们去BANK", "BANKS", 0.5) == "我们去BANKS"  # spacing of mixed text kept
    assert hotword_substitution("", "ZANSEN", 0.5) is None
    def says(text, term):  # how the rescoring counts a listed term for the bonus
        return contains(split_term(text), split_term(term))

    assert says("我在遇到了赖钰翔", "赖钰翔") and says("TO ZANSEN NOW", "ZANSEN") and not says("TO ZANSENS", "ZANSEN")
    bases = ["MET ZANSON AND QUENVIM", "MET ZANSEN AND QUENVIM"]
    assert hotword_candidates(bases, ["ZANSEN", "QUENVIN"], 0.5) == [
        "MET ZANSEN AND QUENVIM", "MET ZANSON AND QUENVIN", "MET ZANSEN AND QUENVIN"]


def test_rescore_puts_a_listed_term_in_when_the_llm_likes_it():
    probs = torch.tensor([[0.1, 0.8, 0.05, 0.05], [0.1, 0.05, 0.6, 0.25], [0.8, 0.1, 0.05, 0.05]])
    log_probs = probs.log().unsqueeze(0)
    lengths = torch.tensor([3])
    units = LetterUnits()
    # "AB" is what the CTC head heard; "AC" is listed: a candidate only with the list
    llm = collections.defaultdict(lambda: -9.0, {"AB": -3.0, "AC": -1.0})

    class Builder(FakeBuilder):
        def output_text(self, text):
            return text.upper()

    cfg = RescoringConfig(enabled=True, ctc_beam=1, ctc_weight=1.0)
    plain = rescore(FakeModel(llm), Builder(), units, None, log_probs, lengths, [None], ["AB"], cfg)[0]
    assert plain.text == "AB" and plain.candidates == 1
    listed = rescore(FakeModel(llm), Builder(), units, None, log_probs, lengths, [None], ["AB"], cfg, [["ac"]])[0]
    assert listed.text == "AC" and listed.source == "hotword" and listed.candidates == 2
    # the bonus: a listed term counts even where the LLM does not prefer it
    flat = collections.defaultdict(lambda: -9.0, {"AB": -1.0, "AC": -1.0})
    ctc_gap = float(ctc_log_likelihoods(log_probs, lengths, [0, 0], [[1, 2], [1, 3]], 0).diff()[0])
    for bonus, expected in ((0.0, "AB"), (-ctc_gap + 0.01, "AC")):
        out = rescore(FakeModel(flat), Builder(), units, None, log_probs, lengths, [None], ["AB"],
                      dataclasses.replace(cfg, hotword_bonus=bonus), [["AC"]])[0]
        assert out.text == expected
    off = dataclasses.replace(cfg, hotword_threshold=0.0)
    assert rescore(FakeModel(llm), Builder(), units, None, log_probs, lengths, [None], ["AB"], off, [["AC"]])[0].text == "AB"


def test_rescoring_config_errors():
    with pytest.raises(ValueError, match="ctc_beam"):
        from_dict(GenerationConfig, {"rescoring": {"ctc_beam": 0}})
    with pytest.raises(ValueError, match="ctc_weight"):
        from_dict(GenerationConfig, {"rescoring": {"ctc_weight": -1}})
    with pytest.raises(ValueError, match="hotword_threshold"):
        from_dict(GenerationConfig, {"rescoring": {"hotword_threshold": 1.5}})


def test_decode_cli_rescoring_switches(tmp_path, capsys):
    from wenet_llm.bin import decode

    args = ["--model", str(tmp_path / "nowhere"), "--test", "t.list", "--out", str(tmp_path / "o")]
    assert decode.main(args + ["--rescoring", "on", "--ctc-beam", "0"]) == 2  # before the model loads
    assert "ctc_beam >= 1" in capsys.readouterr().err
    assert decode.main(args + ["--ctc-weight", "-1"]) == 2 and "ctc_weight must be >= 0" in capsys.readouterr().err
    assert decode.main(args + ["--rescoring", "on", "--ctc-weight", "0.5"]) == 2  # valid: fails only at loading
    assert "ctc_weight" not in capsys.readouterr().err
