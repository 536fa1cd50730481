"""Hallucination guards of LLM-ASR decoding (docs/guards.md).

LLM decoders invent text on noise and silence, loop ("谢谢谢谢...", "thank you thank you ...") and run on
past the audio. Four guards, each switched in ``GenerationConfig.guards`` (``enabled: false`` turns all
of them off), run around the LLM for a batch of utterances (:class:`GuardedDecoder`):

1. ``vad`` (off by default): an energy gate on the fbank frames; an utterance without enough speech-like
   frames is output empty and never reaches the encoder or the LLM (:func:`speech_seconds`).
2. ``length_cap``: at most ``min_new_tokens_cap + max_tokens_per_second * seconds`` new tokens
   (:func:`length_caps`), so no output can run away.
3. ``repetition``: a stopping criterion ends a row as soon as its new tokens end in a repetition loop
   (:class:`RepetitionStopper`; the scorer's ``find_repetition_loop`` on token ids), and the loop is
   trimmed to one copy of its n-gram (:func:`trim_repetition`).
4. ``ctc``: the output is compared with the encoder's own CTC greedy hypothesis on the scorer's tokens
   (:func:`ctc_check`); a mismatch is flagged and, with ``action: fallback``, replaced by the CTC text.

Each output carries ``flags`` (``FLAGS``: which guard fired) and ``details`` (what it changed).

With ``GenerationConfig.rescoring`` on, the joint CTC + LLM rescoring (:mod:`wenet_llm.decode.rescoring`)
picks the output among the LLM's text (after the length cap and the repetition trim) and the CTC n-best
before the CTC guard checks it.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Optional, Sequence

import torch

from wenet_llm.config.data import FbankConfig
from wenet_llm.config.llm import CTCGuardConfig, GenerationConfig, GuardsConfig, RepetitionGuardConfig, VADGateConfig
from wenet_llm.data.features import MEL_LOW_HZ
from wenet_llm.decode.aed_search import ctc_greedy_search
from wenet_llm.decode.rescoring import rescore
from wenet_llm.score.hallucination import Loop, find_repetition_loop, trim_loop
from wenet_llm.score.wer import COR, TokenOptions, align

# Per-utterance flags, in the order the guards run. length_cap: generation stopped at its new-token cap
# (the duration cap, or max_new_tokens with that guard off); repetition: a loop was trimmed;
# ctc_mismatch: the output disagreed with the CTC hypothesis; ctc_fallback: it was replaced by it;
# non_speech: the energy gate output empty without decoding.
FLAGS = ("non_speech", "length_cap", "repetition", "ctc_mismatch", "ctc_fallback")

_SCORER_TOKENS = TokenOptions(normalize="auto")


# ----------------------------------------------------------------------------- switches


def switch_guards(cfg: GuardsConfig, enabled: Optional[bool] = None, length_cap: Optional[bool] = None,
                  repetition: Optional[bool] = None, ctc: Optional[str] = None,
                  vad: Optional[bool] = None) -> GuardsConfig:
    """``cfg`` with the given switches applied (None keeps the config's value).

    ``enabled`` is the master switch; ``ctc`` is ``off``, ``flag`` or ``fallback``. Turning all guards off
    while switching one on is a contradiction and an error.
    """
    if ctc not in (None, "off", "flag", "fallback"):
        raise ValueError(f"unknown CTC guard setting {ctc!r}; valid: off, flag, fallback")
    turned_on = [name for name, value in (("length_cap", length_cap), ("repetition", repetition), ("vad", vad))
                 if value] + (["ctc"] if ctc not in (None, "off") else [])
    if enabled is False and turned_on:
        raise ValueError(f"guards switched off as a whole but {', '.join(turned_on)} switched on; "
                         f"use the per-guard switches alone to run only some guards")
    out = dataclasses.replace(cfg)
    if enabled is not None:
        out.enabled = enabled
    if length_cap is not None:
        out.length_cap = length_cap
    if repetition is not None:
        out.repetition = dataclasses.replace(cfg.repetition, enabled=repetition)
    if ctc is not None:
        out.ctc = dataclasses.replace(cfg.ctc, enabled=ctc != "off",
                                      action=cfg.ctc.action if ctc == "off" else ctc)
    if vad is not None:
        out.vad = dataclasses.replace(cfg.vad, enabled=vad)
    return out


# ----------------------------------------------------------------------------- length cap


def length_caps(seconds: Sequence[float], gen: GenerationConfig) -> list[int]:
    """Per-utterance new-token caps: ``int(min_new_tokens_cap + max_tokens_per_second * s)``, at most
    ``max_new_tokens``; ``max_new_tokens`` alone when the length-cap guard is off."""
    if not gen.guards.active("length_cap"):
        return [gen.max_new_tokens] * len(seconds)
    return [max(1, min(gen.max_new_tokens, int(gen.min_new_tokens_cap + gen.max_tokens_per_second * s)))
            for s in seconds]


# ----------------------------------------------------------------------------- repetition


class RepetitionStopper:
    """A stopping criterion for Hugging Face ``generate`` (a plain callable, passed through
    ``LLMASRModel.generate_from_speech``): True for each row whose new tokens end in a repetition loop,
    or that has already ended. One instance per ``generate`` call: the first call fixes where the new
    tokens start.

    Only the last ``max(min_repeats * max_ngram, min_tokens)`` tokens are inspected: a loop of period
    n <= max_ngram that reaches the end needs at most that many, so the answer is the same as
    ``find_repetition_loop(all_new_tokens, at_end=True) is not None`` (tested).
    """

    def __init__(self, cfg: RepetitionGuardConfig, eos_ids: Sequence[int]):
        self.cfg = cfg
        self.window = max(cfg.min_repeats * cfg.max_ngram, cfg.min_tokens)
        self.eos = torch.tensor(sorted(set(eos_ids)), dtype=torch.long)
        self.start: Optional[int] = None

    def __call__(self, input_ids: torch.Tensor, scores=None, **kwargs) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1] - 1  # the first call comes after the first new token
        new = input_ids[:, self.start:]  # (R, L_new)
        ended = torch.isin(new, self.eos.to(new.device)).any(dim=1).tolist()
        tails = new[:, -self.window:].tolist()
        done = [e or self.loops(t) for e, t in zip(ended, tails)]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def loops(self, tail: Sequence[int]) -> bool:
        c = self.cfg
        return find_repetition_loop(tail, c.max_ngram, c.min_repeats, c.min_tokens, at_end=True) is not None


def trim_repetition(ids: Sequence[int], cfg: RepetitionGuardConfig) -> tuple[list[int], Optional[Loop]]:
    """(ids cut after the first copy of the first loop's n-gram, the loop) or (ids, None) without a loop.

    The stopper leaves a loop only at the end; taking the first loop anywhere also covers a beam that
    finished on its end token after looping."""
    loop = find_repetition_loop(ids, cfg.max_ngram, cfg.min_repeats, cfg.min_tokens)
    if loop is None:
        return list(ids), None
    return trim_loop(ids, loop), loop


# ----------------------------------------------------------------------------- CTC consistency


@dataclasses.dataclass
class CTCCheck:
    """The LLM output against the CTC greedy hypothesis, in scorer tokens (Hanzi characters and words)."""

    llm_tokens: int
    ctc_tokens: int
    distance: int  # edit distance between the two token sequences
    reason: Optional[str]  # None (consistent), "ctc_empty", "too_long" or "distance"

    @property
    def mismatch(self) -> bool:
        return self.reason is not None


def ctc_check(llm_text: str, ctc_text: str, cfg: CTCGuardConfig) -> CTCCheck:
    """Compare ``llm_text`` with ``ctc_text`` under the rules of :class:`CTCGuardConfig`.

    Both go through the scorer's normalizer and tokenizer, so case and punctuation never count."""
    lang = _SCORER_TOKENS.lang(llm_text, ctc_text)
    llm, ctc = _SCORER_TOKENS.tokens(llm_text, lang), _SCORER_TOKENS.tokens(ctc_text, lang)
    n_llm, n_ctc = len(llm), len(ctc)
    distance = sum(op != COR for op, _, _ in align(ctc, llm))
    reason = None
    if n_llm == 0:
        reason = None  # an empty output invents nothing (on non-speech both are empty)
    elif n_ctc == 0:
        reason = "ctc_empty"
    elif n_llm > cfg.max_length_ratio * n_ctc + cfg.slack_tokens:
        reason = "too_long"
    elif distance > cfg.max_distance * max(n_llm, n_ctc) and distance > cfg.slack_tokens:
        reason = "distance"
    return CTCCheck(n_llm, n_ctc, distance, reason)


def load_ctc_tokenizer(encoder_dir: str | Path):
    """The CTC units tokenizer of an exported encoder (``units.txt``, plus ``bpe.model`` if it has one)."""
    from wenet_llm.data.tokenizer import load_tokenizer
    from wenet_llm.models.aed.export import load_encoder_meta

    meta = load_encoder_meta(encoder_dir)
    return load_tokenizer(meta["units"], meta["bpe_model"])


# ----------------------------------------------------------------------------- energy gate


def band_bins(fbank: FbankConfig, max_hz: float) -> int:
    """How many of the fbank's mel bins are centred at or below ``max_hz`` (Kaldi's mel scale
    1127 ln(1 + f / 700), bins evenly spaced in mel between MEL_LOW_HZ and Nyquist); at least 1."""
    def mel(f: float) -> float:
        return 1127.0 * math.log(1.0 + f / 700.0)

    low, high = mel(MEL_LOW_HZ), mel(fbank.sample_rate / 2.0)
    step = (high - low) / (fbank.num_mel_bins + 1)
    # bin m (0-based) is centred at low + (m + 1) * step
    return max(1, min(fbank.num_mel_bins, int((mel(max_hz) - low) / step)))


def frame_energy_db(feats: torch.Tensor, num_bins: int) -> torch.Tensor:
    """Log-mel fbank (T, F) -> each frame's energy in dB over its first ``num_bins`` mel bins:
    10 log10 of the sum of their mel energies (T,)."""
    return torch.logsumexp(feats[:, :num_bins].double(), dim=-1) * (10.0 / math.log(10.0))


def speech_seconds(feats: torch.Tensor, cfg: VADGateConfig, fbank: FbankConfig) -> float:
    """Seconds of speech-like frames in one utterance's fbank (T, F): frames at least ``margin_db`` above
    the ``floor_percentile``-th percentile frame (the lower of the two nearest ranks)."""
    if feats.shape[0] == 0:
        return 0.0
    energy = frame_energy_db(feats, band_bins(fbank, cfg.max_hz))
    floor = torch.quantile(energy, cfg.floor_percentile / 100.0, interpolation="lower")
    return int((energy >= floor + cfg.margin_db).sum()) * fbank.frame_shift_ms / 1000.0


# ----------------------------------------------------------------------------- decoding


@dataclasses.dataclass
class GuardedOutput:
    text: str  # the hypothesis after every guard
    tokens: list[int]  # the LLM's ids after the repetition trim (empty when gated)
    flags: dict[str, bool]  # FLAGS: which guard fired
    details: dict  # per fired guard, what it found and changed
    ctc_text: Optional[str] = None  # the CTC greedy hypothesis when the CTC guard ran
    rescoring: Optional[dict] = None  # RescoredOutput.as_dict() of the joint rescoring, when it ran


def end_ids(tokenizer) -> tuple[list[int], int]:
    """(end-of-output ids, pad id) of the LLM tokenizer: its eos and <|endoftext|>."""
    eos = sorted({i for i in (tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>"))
                  if isinstance(i, int) and i >= 0})
    if not eos:
        raise ValueError("the LLM tokenizer has neither an eos token nor <|endoftext|>; generation could not stop")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    return eos, pad


class GuardedDecoder:
    """Decodes batches of features with ``model`` (an ``LLMASRModel``) and the guards of ``gen.guards``.

    ``fbank``: the feature settings (frame shift, mel bins). ``ctc_tokenizer`` turns CTC ids into text; by
    default it is loaded from the model's encoder export when the CTC guard is on.
    """

    def __init__(self, model, tokenizer, builder, gen: GenerationConfig, fbank: FbankConfig, ctc_tokenizer=None):
        self.model, self.tokenizer, self.builder, self.gen = model, tokenizer, builder, gen
        self.fbank = fbank
        self.guards = gen.guards
        self.eos_ids, self.pad_id = end_ids(tokenizer)
        if (self.guards.active("ctc") or gen.rescoring.enabled) and ctc_tokenizer is None:
            ctc_tokenizer = load_ctc_tokenizer(model.cfg.encoder_dir)
        self.ctc_tokenizer = ctc_tokenizer

    def active(self) -> dict[str, bool]:
        return {name: self.guards.active(name) for name in ("vad", "length_cap", "repetition", "ctc")}

    @torch.no_grad()
    def __call__(self, feats: torch.Tensor, feats_lengths: torch.Tensor, prompts: Sequence,
                 hotwords: Optional[Sequence[Sequence[str]]] = None) -> list[GuardedOutput]:
        """feats (B, T, F) raw fbank, zero-padded; feats_lengths (B,); one prompt per utterance and, for the
        rescoring's hotword candidates, one hotword list per utterance (the prompt's)."""
        lengths = feats_lengths.tolist()
        outputs: list[Optional[GuardedOutput]] = [None] * len(lengths)
        keep = []
        for i, n in enumerate(lengths):
            if self.guards.active("vad"):
                speech = speech_seconds(feats[i, :n], self.guards.vad, self.fbank)
                if speech < self.guards.vad.min_speech_seconds:
                    outputs[i] = GuardedOutput("", [], {**dict.fromkeys(FLAGS, False), "non_speech": True},
                                               {"non_speech": {"speech_seconds": round(speech, 3)}})
                    continue
            keep.append(i)
        if keep:
            for i, out in zip(keep, self._decode(feats, feats_lengths, prompts, keep, hotwords)):
                outputs[i] = out
        return outputs  # type: ignore[return-value]

    def _decode(self, feats, feats_lengths, prompts, keep: list[int], hotwords=None) -> list[GuardedOutput]:
        model, g = self.model, self.guards
        lengths = feats_lengths[torch.tensor(keep, device=feats_lengths.device)]
        rows = feats[torch.tensor(keep, device=feats.device), : int(lengths.max())]
        speech, enc, enc_lengths = model.encode_speech(rows, lengths)
        ctc_texts: list[Optional[str]] = [None] * len(keep)
        if g.active("ctc"):
            ctc_ids = ctc_greedy_search(enc.ctc_log_probs, enc_lengths, model.encoder.ctc.blank_id)
            ctc_texts = [self.ctc_tokenizer.decode(ids) for ids in ctc_ids]
        seconds = [n * self.fbank.frame_shift_ms / 1000.0 for n in lengths.tolist()]
        caps = length_caps(seconds, self.gen)
        criteria = [RepetitionStopper(g.repetition, self.eos_ids)] if g.active("repetition") else []
        kept_prompts = [prompts[i] for i in keep]
        ids = model.generate_from_speech(speech, kept_prompts, self.gen, self.eos_ids, self.pad_id,
                                         max_new_tokens=caps, stopping_criteria=criteria)
        outputs = [self._trim(seq, cap) for seq, cap in zip(ids, caps)]
        if self.gen.rescoring.enabled:
            chosen = rescore(model, self.builder, self.ctc_tokenizer, speech, enc.ctc_log_probs, enc_lengths,
                             kept_prompts, [o.text for o in outputs], self.gen.rescoring,
                             [hotwords[i] for i in keep] if hotwords is not None else None)
            for out, pick in zip(outputs, chosen):
                out.text, out.rescoring = pick.text, pick.as_dict()
        return [self._check(out, ctc) for out, ctc in zip(outputs, ctc_texts)]

    def _trim(self, seq: list[int], cap: int) -> GuardedOutput:
        """The length-cap flag and the repetition trim of one generated sequence."""
        g = self.guards
        flags = dict.fromkeys(FLAGS, False)
        details: dict = {}
        if len(seq) >= cap:
            flags["length_cap"] = True
            details["length_cap"] = {"cap": cap}
        if g.active("repetition"):
            trimmed, loop = trim_repetition(seq, g.repetition)
            if loop is not None:
                flags["repetition"] = True
                details["repetition"] = {"start": loop.start, "period": loop.period, "repeats": loop.repeats,
                                         "removed_tokens": len(seq) - len(trimmed)}
                seq = trimmed
        text = self.builder.output_text(self.tokenizer.decode(seq, skip_special_tokens=True))
        return GuardedOutput(text, seq, flags, details)

    def _check(self, out: GuardedOutput, ctc_text: Optional[str]) -> GuardedOutput:
        """The CTC guard on the output (the rescoring's pick when it ran)."""
        out.ctc_text = ctc_text
        if ctc_text is not None:
            check = ctc_check(out.text, ctc_text, self.guards.ctc)
            if check.mismatch:
                out.flags["ctc_mismatch"] = True
                out.details["ctc"] = dataclasses.asdict(check)
                if self.guards.ctc.action == "fallback":
                    out.flags["ctc_fallback"] = True
                    out.details["ctc"]["llm_text"] = out.text
                    out.text = ctc_text
        return out
