"""Hallucination guards of LLM decoding (wenet_llm.decode.guards): each guard on hand-computed cases, then
wired through GuardedDecoder, decode_llm, the Python API and bin.decode with the tiny random model."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from wenet_llm.config import from_dict
from wenet_llm.config.core import ConfigError
from wenet_llm.config.data import DataConfig, FbankConfig
from wenet_llm.config.llm import GenerationConfig, GuardsConfig, RepetitionGuardConfig, VADGateConfig
from wenet_llm.decode.guards import (FLAGS, GuardedDecoder, RepetitionStopper, band_bins, ctc_check, length_caps,
                                     speech_seconds, switch_guards, trim_repetition)
from wenet_llm.score.hallucination import find_repetition_loop
from wenet_llm.score.wer import TokenOptions

EOS = 99


# -- configuration and switches ---------------------------------------------------------------------------

def test_defaults_all_guards_on_but_the_energy_gate():
    gen = GenerationConfig()
    assert (gen.max_tokens_per_second, gen.min_new_tokens_cap, gen.max_new_tokens) == (10.0, 8, 256)
    g = gen.guards
    assert [g.active(n) for n in ("length_cap", "repetition", "ctc", "vad")] == [True, True, True, False]
    assert (g.repetition.max_ngram, g.repetition.min_repeats, g.repetition.min_tokens) == (20, 3, 8)
    assert (g.ctc.action, g.ctc.max_length_ratio, g.ctc.max_distance, g.ctc.slack_tokens) == ("fallback", 2.0, 0.75, 2)
    off = dataclasses.replace(g, enabled=False, vad=dataclasses.replace(g.vad, enabled=True))
    assert not any(off.active(n) for n in ("length_cap", "repetition", "ctc", "vad"))  # the one master switch
    with pytest.raises(ValueError, match="unknown guard 'loop'; valid: length_cap, repetition, ctc, vad"):
        g.active("loop")


def test_guard_config_errors_say_what_to_change():
    with pytest.raises(ConfigError, match="set guards.length_cap: false"):
        from_dict(GenerationConfig, {"max_tokens_per_second": 0})
    with pytest.raises(ConfigError, match="min_repeats >= 2"):
        from_dict(GenerationConfig, {"guards": {"repetition": {"min_repeats": 1}}})
    with pytest.raises(ConfigError, match="max_distance must be in"):
        from_dict(GenerationConfig, {"guards": {"ctc": {"max_distance": 1.5}}})
    with pytest.raises(ConfigError, match="'flag', 'fallback'"):
        from_dict(GenerationConfig, {"guards": {"ctc": {"action": "replace"}}})
    with pytest.raises(ConfigError, match="floor_percentile"):
        from_dict(GenerationConfig, {"guards": {"vad": {"floor_percentile": 100}}})


def test_switches():
    g = GuardsConfig()
    off = switch_guards(g, enabled=False)
    assert not off.enabled and off.repetition.enabled and not off.active("repetition")
    some = switch_guards(g, length_cap=False, ctc="flag", vad=True)
    assert [some.active(n) for n in ("length_cap", "repetition", "ctc", "vad")] == [False, True, True, True]
    assert some.ctc.action == "flag" and g.ctc.action == "fallback" and not g.vad.enabled  # g is unchanged
    assert not switch_guards(g, ctc="off").active("ctc")
    assert switch_guards(g) == g
    with pytest.raises(ValueError, match="switched off as a whole but repetition, ctc switched on"):
        switch_guards(g, enabled=False, repetition=True, ctc="fallback")
    with pytest.raises(ValueError, match="valid: off, flag, fallback"):
        switch_guards(g, ctc="on")


def test_decode_cli_refuses_contradicting_switches_before_loading(tmp_path, capsys):
    from wenet_llm.bin import decode

    rc = decode.main(["--model", str(tmp_path / "nowhere"), "--test", "t.list", "--out", str(tmp_path / "o"),
                      "--guards", "off", "--vad_gate", "on"])
    assert rc == 2 and "switched off as a whole but vad switched on" in capsys.readouterr().err


# -- 1. length cap -----------------------------------------------------------------------------------------

def test_length_caps_by_hand():
    gen = GenerationConfig()  # 8 + 10 tokens per second, at most 256
    assert length_caps([0.0, 0.05, 1.0, 2.55, 30.0], gen) == [8, 8, 18, 33, 256]
    fast = from_dict(GenerationConfig, {"max_tokens_per_second": 4, "min_new_tokens_cap": 3, "max_new_tokens": 20})
    assert length_caps([0.0, 2.0, 4.2, 10.0], fast) == [3, 11, 19, 20]
    for off in ({"guards": {"length_cap": False}}, {"guards": {"enabled": False}}):
        assert length_caps([0.0, 1.0], from_dict(GenerationConfig, off)) == [256, 256]


# -- 2. repetition -----------------------------------------------------------------------------------------

def first_stop(stopper: RepetitionStopper, rows: list[list[int]]) -> list[int | None]:
    """Feed ``rows`` one new token per step, as generate does; the step (tokens so far) each row stops at."""
    ids = torch.tensor(rows)
    stops: list[int | None] = [None] * len(rows)
    for step in range(1, ids.shape[1] + 1):
        done = stopper(ids[:, :step], None)
        assert done.dtype == torch.bool and done.shape == (len(rows),)
        for r, d in enumerate(done.tolist()):
            if d and stops[r] is None:
                stops[r] = step
    return stops


def test_repetition_stopper_by_hand():
    rows = [
        [5, 6, 5, 6, 5, 6, 5, 6, 5, 6],  # period 2: 8 tokens (4 copies) are a loop at step 8
        [1, 2, 3, 1, 2, 3, 1, 2, 3, 4],  # period 3: 3 copies, 9 tokens, at step 9
        [7, 7, 7, 7, 7, 7, 7, 7, 7, 7],  # period 1: min_tokens 8 decides, step 8
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],  # no loop
        [4, 4, 4, EOS, EOS, EOS, EOS, EOS, EOS, EOS],  # ended at step 4: nothing left to check
        [1, 2, 1, 2, 1, 2, 1, 8, 9, 10],  # 7 tokens of period 2: too short, and it breaks off
    ]
    assert first_stop(RepetitionStopper(RepetitionGuardConfig(), [EOS]), rows) == [8, 9, 8, None, 4, None]
    # A prompt before the new tokens (the first call fixes where they start) changes nothing.
    prompt = [[7] * 9 + r for r in rows]
    stopper = RepetitionStopper(RepetitionGuardConfig(), [EOS])
    stopper(torch.tensor(prompt)[:, :10], None)
    ids = torch.tensor(prompt)
    assert [bool(stopper(ids[:, :9 + s], None)[r]) for r, s in enumerate([8, 9, 8])] == [True] * 3
    assert [bool(stopper(ids[:, :9 + s - 1], None)[r]) for r, s in enumerate([8, 9, 8])] == [False] * 3


def test_repetition_stopper_equals_the_scorers_detector():
    """Over random low-entropy sequences, the stopper's windowed test at every step is exactly
    find_repetition_loop(new tokens, at_end=True) is not None."""
    rng = random.Random(0)
    for cfg in (RepetitionGuardConfig(max_ngram=3, min_repeats=2, min_tokens=4), RepetitionGuardConfig()):
        for _ in range(60):
            alphabet = rng.randint(1, 4)
            seq = [rng.randrange(alphabet) for _ in range(80)]
            if rng.random() < 0.5:  # a long periodic run somewhere in the middle
                unit = [rng.randrange(alphabet) for _ in range(rng.randint(1, 25))]
                at = rng.randrange(40)
                seq[at:at + 40] = (unit * 40)[:40]
            stopper = RepetitionStopper(cfg, [EOS])
            ids = torch.tensor([seq])
            for step in range(1, len(seq) + 1):
                expected = find_repetition_loop(seq[:step], cfg.max_ngram, cfg.min_repeats, cfg.min_tokens,
                                                at_end=True) is not None
                assert bool(stopper(ids[:, :step], None)[0]) == expected, (seq[:step], cfg)


def test_trim_repetition_by_hand():
    cfg = RepetitionGuardConfig()
    ids = [10, 11, 12, 13, 12, 13, 12, 13, 12, 13]  # "12 13" x4 from position 2
    trimmed, loop = trim_repetition(ids, cfg)
    assert trimmed == [10, 11, 12, 13] and (loop.start, loop.period, loop.repeats) == (2, 2, 4)
    assert trim_repetition([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2], cfg)[0] == [1, 2, 3]  # a partial last copy goes too
    assert trim_repetition([1, 2, 1, 2, 1, 2, 1], cfg) == ([1, 2, 1, 2, 1, 2, 1], None)  # 7 tokens: no loop


# -- 3. CTC consistency ------------------------------------------------------------------------------------

@pytest.mark.parametrize("llm, ctc, expected", [
    ("", "", (0, 0, 0, None)),  # non-speech: both empty, consistent
    ("", "你好", (0, 2, 2, None)),  # an empty output invents nothing
    ("谢谢观看", "", (4, 0, 4, "ctc_empty")),  # the encoder heard nothing
    ("THE CAT SAT ON THE MAT", "the cat sat on the mat.", (6, 6, 0, None)),  # normalized: case, punctuation
    ("我用 iPhone 打电话", "我用IPHONE打电话", (6, 6, 0, None)),  # Hanzi characters and words
    ("今天天气很好今天天气很好", "今天天气很好", (12, 6, 6, None)),  # 12 <= 2*6+2; d=6 <= 0.75*12
    ("今天天气很好今天天气很好今天", "今天天气很好", (14, 6, 8, None)),  # 14 <= 14
    ("今天天气很好今天天气很好今天天", "今天天气很好", (15, 6, 9, "too_long")),  # 15 > 2*6+2
    ("HELLO WORLD HOW ARE YOU", "THE CAT SAT ON MAT", (5, 5, 5, "distance")),  # 5 > 0.75*5 and 5 > 2
    ("A B C", "X Y Z", (3, 3, 3, "distance")),  # 3 > 2.25 and 3 > 2
    ("A B", "X Y", (2, 2, 2, None)),  # within the slack of 2 tokens
    ("A B C D", "A B X Y", (4, 4, 2, None)),  # 2 <= 0.75*4
])
def test_ctc_check_by_hand(llm, ctc, expected):
    check = ctc_check(llm, ctc, GuardsConfig().ctc)
    assert (check.llm_tokens, check.ctc_tokens, check.distance, check.reason) == expected
    assert check.mismatch == (expected[3] is not None)


def test_ctc_check_thresholds_are_the_configs():
    from wenet_llm.config.llm import CTCGuardConfig

    strict = CTCGuardConfig(max_length_ratio=1.0, slack_tokens=0, max_distance=0.2)
    assert ctc_check("今天天气很好吗", "今天天气很好", strict).reason == "too_long"  # 7 > 1*6+0
    assert ctc_check("今天天气真好", "今天天气很好", strict).reason is None  # d=1 <= 0.2*6
    assert ctc_check("今天空气真好", "今天天气很好", strict).reason == "distance"  # d=2 > 1.2


# -- 4. energy gate ----------------------------------------------------------------------------------------

def test_band_bins_by_hand():
    # mel(f) = 1127 ln(1 + f/700): mel(20) = 31.75, mel(8000) = 2840.02, step (2840.02 - 31.75) / 81 = 34.67;
    # bin m is centred at 31.75 + (m + 1) * 34.67 <= mel(1000) = 1000.0 for m + 1 <= 27.93: 27 bins.
    assert band_bins(FbankConfig(), 1000.0) == 27
    assert band_bins(FbankConfig(), 16000.0) == 80 and band_bins(FbankConfig(), 1.0) == 1
    # 8 kHz audio, 40 bins: mel(4000) = 2146.1, step 51.57; mel(1000) -> (1000 - 31.75) / 51.57 = 18.8
    assert band_bins(FbankConfig(sample_rate=8000, num_mel_bins=40), 1000.0) == 18


def gate_feats(loud_frames: int, total: int = 100, boost_db: float = 7.0, bins: slice = slice(0, 27)):
    feats = torch.zeros(total, 80)  # log-mel: every mel energy 1
    feats[:loud_frames, bins] = boost_db / 10.0 * 2.302585  # x 10^(boost/10)
    return feats


def test_energy_gate_by_hand():
    cfg, fbank = VADGateConfig(enabled=True), FbankConfig()
    # 80 quiet frames set the 10th-percentile floor (10 log10 27 dB over the 27 band bins); a loud frame is
    # 10 log10(27 * 10^0.7) = floor + 7 dB >= floor + 6 dB: speech-like.
    assert speech_seconds(gate_feats(20), cfg, fbank) == pytest.approx(0.20)  # 20 frames: not gated
    assert speech_seconds(gate_feats(19), cfg, fbank) == pytest.approx(0.19)  # < min_speech_seconds: gated
    assert speech_seconds(gate_feats(50, boost_db=5.9), cfg, fbank) == 0.0  # below the margin
    assert speech_seconds(gate_feats(50, boost_db=30, bins=slice(27, 80)), cfg, fbank) == 0.0  # above the band
    assert speech_seconds(torch.full((300, 80), -15.9), cfg, fbank) == 0.0  # digital silence
    assert speech_seconds(torch.zeros(0, 80), cfg, fbank) == 0.0
    # Louder frames than the floor by 7 dB in 95 of 100 frames: the floor is then a loud frame.
    assert speech_seconds(gate_feats(95), cfg, fbank) == pytest.approx(0.0)


def test_energy_gate_on_the_demo_corpus(small_corpus):
    """Default gate: every clean and noisy test utterance passes; silence and steady noise do not."""
    from wenet_llm.data.features import compute_fbank, load_audio
    from wenet_llm.data.formats import read_data_list

    cfg, fbank = VADGateConfig(enabled=True), FbankConfig()
    speech, steady = [], []
    for split in ("test", "test_noisy", "noise_only"):
        for e in read_data_list(small_corpus / split / "data.list"):
            feats = compute_fbank(load_audio(e["wav"], fbank.sample_rate), fbank.sample_rate, fbank, dither=0.0)
            kind = (e.get("noise") or {}).get("kind")
            if split != "noise_only":
                speech.append(speech_seconds(feats, cfg, fbank))
            elif kind != "tones":  # DTMF tones are not steady: the gate lets them through
                steady.append(speech_seconds(feats, cfg, fbank))
    assert len(speech) >= 6 and min(speech) >= 0.5  # well above min_speech_seconds, at 0 dB SNR too
    assert len(steady) >= 4 and max(steady) < cfg.min_speech_seconds


# -- the guards wired together, with the tiny random model ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tiny_encoder_dir, tiny_llm_dir):
    from test_llm_model import tiny_model

    from wenet_llm.config.llm import PromptConfig
    from wenet_llm.models.llm.prompt import PromptBuilder

    model, tok = tiny_model(tiny_encoder_dir, tiny_llm_dir)
    model.eval()
    return model, tok, PromptBuilder(tok, PromptConfig(), model.speech_length)


def utterance_feats(small_corpus, n: int = 3):
    from wenet_llm.data.features import compute_fbank, load_audio
    from wenet_llm.data.formats import read_data_list

    fbank = FbankConfig()
    feats = [compute_fbank(load_audio(e["wav"], 16000), 16000, fbank, dither=0.0)
             for e in list(read_data_list(small_corpus / "test" / "data.list"))[:n]]
    lengths = torch.tensor([f.shape[0] for f in feats])
    padded = torch.zeros(len(feats), int(lengths.max()), 80)
    for i, f in enumerate(feats):
        padded[i, : f.shape[0]] = f
    return padded, lengths


def guards(**switches) -> GenerationConfig:
    gen = from_dict(GenerationConfig, {"max_new_tokens": 40})
    return dataclasses.replace(gen, guards=switch_guards(gen.guards, **switches))


class FixedCTC:
    """A CTC tokenizer stub whose hypothesis is always ``text``."""

    def __init__(self, text: str):
        self.text = text

    def decode(self, ids) -> str:
        return self.text


def test_guarded_decoding_stops_and_trims_loops(tiny, small_corpus):
    """The random model loops; with the guard each row stops at the first step the scorer's detector
    finds a loop at the end, and keeps one copy of its n-gram. Batched == one by one."""
    model, tok, builder = tiny
    feats, lengths = utterance_feats(small_corpus)
    prompts = [builder.build(None, {}) for _ in range(len(lengths))]
    free = GuardedDecoder(model, tok, builder, guards(enabled=False), FbankConfig())(feats, lengths, prompts)
    guarded = GuardedDecoder(model, tok, builder, guards(ctc="off"), FbankConfig())(feats, lengths, prompts)
    assert all(not any(o.flags.values()) or o.flags == {**dict.fromkeys(FLAGS, False), "length_cap": True}
               for o in free)
    looped = 0
    cfg = RepetitionGuardConfig()
    for f, g in zip(free, guarded):
        steps = [k for k in range(1, len(f.tokens) + 1)
                 if find_repetition_loop(f.tokens[:k], cfg.max_ngram, cfg.min_repeats, cfg.min_tokens, at_end=True)]
        if not steps:
            assert g.tokens == f.tokens and not g.flags["repetition"]
            continue
        looped += 1
        stop = steps[0]
        assert g.flags["repetition"] and g.tokens == trim_repetition(f.tokens[:stop], cfg)[0]
        assert len(g.tokens) + g.details["repetition"]["removed_tokens"] == stop
        assert g.text == builder.output_text(tok.decode(g.tokens, skip_special_tokens=True))
    assert looped >= 1  # the random model does loop: the test exercised the guard
    single = [GuardedDecoder(model, tok, builder, guards(ctc="off"), FbankConfig())(
        feats[i:i + 1, : int(lengths[i])], lengths[i:i + 1], prompts[i:i + 1])[0] for i in range(len(lengths))]
    assert [o.tokens for o in single] == [o.tokens for o in guarded]


def test_guarded_decoding_ctc_flag_and_fallback(tiny, small_corpus):
    from wenet_llm.decode.aed_search import ctc_greedy_search
    from wenet_llm.decode.guards import load_ctc_tokenizer

    model, tok, builder = tiny
    feats, lengths = utterance_feats(small_corpus)
    prompts = [builder.build(None, {}) for _ in range(len(lengths))]
    # A CTC that hears nothing: every non-empty output is a mismatch; fallback empties it, flag keeps it.
    flagged = GuardedDecoder(model, tok, builder, guards(ctc="flag"), FbankConfig(), FixedCTC(""))(
        feats, lengths, prompts)
    fallen = GuardedDecoder(model, tok, builder, guards(ctc="fallback"), FbankConfig(), FixedCTC(""))(
        feats, lengths, prompts)
    tokens = [TokenOptions(normalize="auto").tokens(f.text) for f in flagged]
    assert any(tokens)
    for f, g, t in zip(flagged, fallen, tokens):
        assert f.flags["ctc_mismatch"] == g.flags["ctc_mismatch"] == bool(t) and not f.flags["ctc_fallback"]
        assert g.flags["ctc_fallback"] == bool(t) and g.tokens == f.tokens
        assert g.text == ("" if t else f.text)
        if t:
            assert g.details["ctc"] == {"llm_tokens": len(t), "ctc_tokens": 0, "distance": len(t),
                                        "reason": "ctc_empty", "llm_text": f.text}
    # The real CTC head: its greedy hypothesis through the export's units.
    outs = GuardedDecoder(model, tok, builder, guards(), FbankConfig())(feats, lengths, prompts)
    enc = model.encoder(feats, lengths)
    units = load_ctc_tokenizer(model.cfg.encoder_dir)
    expected = [units.decode(ids) for ids in ctc_greedy_search(enc.ctc_log_probs, enc.encoder_mask.squeeze(1).sum(1))]
    assert [o.ctc_text for o in outs] == expected
    for o, f in zip(outs, GuardedDecoder(model, tok, builder, guards(ctc="off"), FbankConfig())(feats, lengths,
                                                                                                  prompts)):
        check = ctc_check(f.text, o.ctc_text, GuardsConfig().ctc)
        assert o.flags["ctc_mismatch"] == o.flags["ctc_fallback"] == check.mismatch
        assert o.text == (o.ctc_text if check.mismatch else f.text)


def test_gated_utterances_skip_the_model(tiny, small_corpus):
    model, tok, builder = tiny
    feats, lengths = utterance_feats(small_corpus, 2)
    silent = torch.full_like(feats[:1], -15.9)  # digital silence, as long as the first utterance
    batch = torch.cat([feats[:1], silent, feats[1:]])
    blens = torch.tensor([lengths[0], lengths[0], lengths[1]])
    prompts = [builder.build(None, {}) for _ in range(3)]
    outs = GuardedDecoder(model, tok, builder, guards(vad=True), FbankConfig())(batch, blens, prompts)
    assert outs[1].text == "" and outs[1].tokens == [] and outs[1].ctc_text is None
    assert outs[1].flags == {**dict.fromkeys(FLAGS, False), "non_speech": True}
    assert outs[1].details == {"non_speech": {"speech_seconds": 0.0}}
    ungated = GuardedDecoder(model, tok, builder, guards(), FbankConfig())(feats, lengths, prompts[:2])
    assert [outs[0].tokens, outs[2].tokens] == [o.tokens for o in ungated]
    assert not outs[0].flags["non_speech"] and not outs[2].flags["non_speech"]
    # A batch of nothing but silence never reaches the model.
    only = GuardedDecoder(None, tok, builder, guards(vad=True, ctc="off"), FbankConfig())(silent, blens[:1],
                                                                                         prompts[:1])
    assert only[0].flags["non_speech"]


def test_decode_llm_writes_flags_and_counts(tiny, small_corpus, tmp_path):
    from wenet_llm.decode.llm_decode import decode_llm

    model, tok, builder = tiny
    test_list = tmp_path / "data.list"
    lines = [line for split in ("test", "noise_only")
             for line in (small_corpus / split / "data.list").read_text().splitlines()]
    test_list.write_text("\n".join(lines) + "\n")
    summaries, rows = {}, {}
    for name, gen in (("on", guards(vad=True)), ("off", guards(enabled=False))):
        summaries[name] = decode_llm(model, tok, builder, gen, test_list, DataConfig(), tmp_path / name,
                                     progress=False)
        rows[name] = [json.loads(x) for x in (tmp_path / name / "results.jsonl").read_text().splitlines()]
        assert json.loads((tmp_path / name / "summary.json").read_text()) == summaries[name]
    for name in ("on", "off"):
        assert all(set(r["flags"]) == set(FLAGS) for r in rows[name])
        counts = {f: sum(r["flags"][f] for r in rows[name]) for f in FLAGS}
        assert summaries[name]["guards"]["flagged"] == counts
        assert summaries[name]["length_cap_hits"] == counts["length_cap"]
    assert summaries["on"]["guards"]["active"] == {"vad": True, "length_cap": True, "repetition": True, "ctc": True}
    assert not any(summaries["off"]["guards"]["active"].values())
    off = summaries["off"]["guards"]["flagged"]
    assert off["non_speech"] == off["repetition"] == off["ctc_mismatch"] == off["ctc_fallback"] == 0
    assert all(r["ctc_hyp"] is None and r["guards"] == ({"length_cap": {"cap": 40}} if r["flags"]["length_cap"]
                                                         else {}) for r in rows["off"])
    on = summaries["on"]["guards"]["flagged"]
    assert on["non_speech"] >= 4 and on["repetition"] >= 1  # the steady noise clips; a loop of the random model
    for r in rows["on"]:
        assert r["flags"]["non_speech"] == (r["ctc_hyp"] is None)
        assert (r["hyp"] == "") if r["flags"]["non_speech"] else (r["ctc_hyp"] is not None)
        assert r["num_tokens"] <= 8 + 10 * r["seconds"] + 0.01  # the duration cap (seconds are rounded)
        if r["flags"]["ctc_fallback"]:
            assert r["hyp"] == r["ctc_hyp"] and r["guards"]["ctc"]["llm_text"] != r["hyp"]


def test_recognizer_transcribe_runs_the_guards(tiny, small_corpus, tiny_encoder_dir, tiny_llm_dir):
    from wenet_llm.api import Recognizer
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.data.formats import read_data_list

    model, tok, _ = tiny
    cfg = from_dict(LLMExperimentConfig, {"model": {"encoder_dir": str(tiny_encoder_dir),
                                                    "llm": {"path": str(tiny_llm_dir), "dtype": "fp32"},
                                                    "adapter": {"hidden_size": 24}},
                                          "decode": {"max_new_tokens": 40, "guards": {"vad": {"enabled": True}}}})
    rec = Recognizer(model, cfg, tok)
    entries = list(read_data_list(small_corpus / "test" / "data.list"))[:2]
    wavs = [e["wav"] for e in entries]
    silence = torch.zeros(16000).numpy()
    detailed = rec.transcribe_detailed(wavs + [silence])
    assert [o.text for o in detailed] == rec.transcribe(wavs + [silence])
    assert detailed[2].flags["non_speech"] and detailed[2].text == ""
    assert all(o.ctc_text is not None for o in detailed[:2])
    off = rec.transcribe_detailed(wavs + [silence], guards=False)
    assert all(o.ctc_text is None and not any(v for k, v in o.flags.items() if k != "length_cap") for o in off)
    assert all(len(o.tokens) <= 8 + 10 * e["duration"] for o, e in zip(detailed, entries))  # the duration cap
