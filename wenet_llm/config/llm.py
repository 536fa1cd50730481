"""Schema of the LLM-ASR system (Index-ASR): exported encoder -> adapter -> causal LLM, and its SFT stages.

One :class:`LLMExperimentConfig` describes one training stage (SFT 1, SFT 2 or the contextual SFT):
the model, what of it trains (``model.trainable``), the prompt, the data and the trainer. The stages
differ only in their YAML: SFT 1 trains ``[adapter]``; SFT 2 ``[encoder, adapter, lora]``; the
contextual stage keeps SFT 2's set and mixes context into the prompts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wenet_llm.config.data import DataConfig
from wenet_llm.config.train import TrainConfig

TRAINABLE_MODULES = ("encoder", "adapter", "lora", "llm")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class AdapterConfig:
    """Encoder frames -> LLM positions (Index-ASR's adapter).

    stack: concatenate ``downsample`` consecutive encoder frames (40 ms -> 80 ms at k=2), then
      Linear -> ReLU -> Linear to the LLM hidden size.
    conv1d: a strided Conv1d (kernel = stride = ``downsample``) instead of the frame stacking,
      then ReLU -> Linear.
    ctc_posterior: each frame's CTC posteriors (from the encoder's own CTC layer) times a learned
      embedding per CTC unit, initialised from the LLM's token embeddings of the unit's text, summed over
      ``downsample`` frames; plus the stack adapter on the hidden states, its output layer starting at
      zero (a warm start: the LLM first reads the units the encoder heard).
    ctc_compress: like ctc_posterior, but one position per run of frames whose CTC argmax is the same
      non-blank unit (CTC compression): the posteriors and hidden states of a run are averaged, blank
      frames are dropped, so a position is one heard unit, in order, and silence gives no position.
      ``downsample`` only sizes the estimate of positions used to bound batches by tokens.
    """

    type: Literal["stack", "conv1d", "ctc_posterior", "ctc_compress"] = "stack"
    downsample: int = 2
    hidden_size: int = 2048
    dropout: float = 0.0
    # ctc_posterior only: temperature of the CTC posteriors (1: the encoder's own distribution).
    posterior_temperature: float = 1.0

    def validate(self) -> None:
        if self.downsample < 1 or self.hidden_size < 1:
            raise ValueError(f"downsample and hidden_size must be >= 1, got {self.downsample}, {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.posterior_temperature <= 0:
            raise ValueError(f"posterior_temperature must be > 0, got {self.posterior_temperature}")


@dataclass
class DecoderLLMConfig:
    """The causal LLM: a local Hugging Face directory (config, weights, tokenizer and chat template)."""

    path: str = ""  # e.g. /models/Qwen3-8B; nothing is ever downloaded
    dtype: Literal["fp32", "bf16", "fp16"] = "bf16"  # the frozen weights' dtype; trained weights stay fp32
    attn_implementation: Literal["sdpa", "eager"] = "sdpa"


@dataclass
class LoraConfig:
    """LoRA on the LLM through peft (SFT 2 and the contextual stage)."""

    enabled: bool = False
    r: int = 64
    alpha: int = 128
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))

    def validate(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ValueError(f"r must be >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module, e.g. q_proj")


@dataclass
class LLMASRModelConfig:
    encoder_dir: str = "exp/aed/encoder"  # stage 3's export (encoder with CMVN inside, CTC layer)
    llm: DecoderLLMConfig = field(default_factory=DecoderLLMConfig)
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    # What trains; the rest is frozen (the encoder runs under no_grad in eval mode when frozen).
    # Names: encoder, adapter, lora (needs lora.enabled), llm (every LLM weight; not with lora).
    trainable: list[str] = field(default_factory=lambda: ["adapter"])
    # Auxiliary CTC loss on the encoder's own CTC layer when the encoder trains: keeps that layer a
    # valid recogniser (the hallucination guard compares with it). 0 = off.
    ctc_weight: float = 0.0
    encoder_dropout: float = -1.0  # < 0: keep the exported encoder's dropout rates when it trains

    def validate(self) -> None:
        unknown = sorted(set(self.trainable) - set(TRAINABLE_MODULES))
        if unknown:
            raise ValueError(f"trainable: unknown module(s) {unknown}; valid: {list(TRAINABLE_MODULES)}")
        if not self.trainable:
            raise ValueError(f"trainable is empty; name at least one of {list(TRAINABLE_MODULES)}")
        if "lora" in self.trainable and not self.lora.enabled:
            raise ValueError("trainable names lora but lora.enabled is false")
        if "llm" in self.trainable and self.lora.enabled:
            raise ValueError("trainable names llm (full fine-tuning) while lora.enabled is true; choose one")
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1), got {self.ctc_weight}")
        if self.ctc_weight > 0 and "encoder" not in self.trainable:
            raise ValueError("ctc_weight > 0 needs a trainable encoder (the CTC layer is frozen otherwise)")


@dataclass
class PromptConfig:
    """The chat prompt (built with the LLM tokenizer's own chat template, thinking disabled).

    The user turn holds the optional context block, the instruction and the speech, in that order;
    the assistant turn holds the transcript and the end-of-turn token.
    """

    system: str = ""  # empty: no system turn
    instruction: str = "Transcribe the speech."
    hotwords_prefix: str = "Hotwords: "
    hotword_separator: str = ", "
    summary_prefix: str = "Context: "
    max_hotwords: int = 100  # longer lists are cut (a warning says so at decoding)
    max_context_tokens: int = 512  # the context block is cut to this many tokens
    # lower: train and decode English in lower case (Qwen reads natural text better than the upper-case
    # transcripts of LibriSpeech-style corpora) and write hypotheses upper-cased back.
    english_case: Literal["keep", "lower"] = "keep"
    # The encoder's CTC greedy hypothesis, in the LLM's own tokens, after the speech positions
    # ("<speech>\n{ctc_hypothesis_label}\n{hypothesis}"): a first pass that a small LLM learns to copy and
    # correct sooner than it learns to read the adapter's output alone. Off in the report's design.
    ctc_hypothesis: bool = False
    ctc_hypothesis_label: str = "CTC:"
    max_hypothesis_tokens: int = 256  # a longer hypothesis is cut (a runaway CTC output cannot flood the prompt)

    def validate(self) -> None:
        if self.max_hotwords < 0 or self.max_context_tokens < 0:
            raise ValueError("max_hotwords and max_context_tokens must be >= 0")
        if self.ctc_hypothesis and (self.max_hypothesis_tokens < 1 or not self.ctc_hypothesis_label.strip()):
            raise ValueError("ctc_hypothesis needs max_hypothesis_tokens >= 1 and a non-empty ctc_hypothesis_label")
        if not self.instruction.strip():
            raise ValueError("instruction must not be empty")


@dataclass
class RepetitionGuardConfig:
    """Stop a row of generation when its new tokens end in a repetition loop, and trim the loop.

    The loop is the scorer's (:func:`wenet_llm.score.hallucination.find_repetition_loop`) on LLM token
    ids: an n-gram of 1..``max_ngram`` tokens repeated back to back at least ``min_repeats`` times and
    covering at least ``min_tokens`` tokens. The output keeps one copy of the n-gram.
    """

    enabled: bool = True
    max_ngram: int = 20
    min_repeats: int = 3
    min_tokens: int = 8

    def validate(self) -> None:
        if self.max_ngram < 1 or self.min_repeats < 2 or self.min_tokens < 2:
            raise ValueError(f"repetition guard needs max_ngram >= 1, min_repeats >= 2 and min_tokens >= 2, "
                             f"got {self.max_ngram}, {self.min_repeats}, {self.min_tokens}")


@dataclass
class CTCGuardConfig:
    """Compare the LLM output with the encoder's own CTC greedy hypothesis (scorer tokens: Hanzi and words).

    With n_llm and n_ctc tokens and an edit distance d between them, the output is a mismatch when
    - ``ctc_empty``: n_ctc == 0 < n_llm (the encoder heard nothing; the output is invented), or
    - ``too_long``: n_llm > max_length_ratio * n_ctc + slack_tokens, or
    - ``distance``: d > max_distance * max(n_llm, n_ctc) and d > slack_tokens.
    An empty LLM output is never a mismatch (it cannot be a hallucination). ``action``: ``flag`` only
    marks it; ``fallback`` also replaces the output with the CTC hypothesis.
    """

    enabled: bool = True
    action: Literal["flag", "fallback"] = "fallback"
    max_length_ratio: float = 2.0
    max_distance: float = 0.75
    slack_tokens: int = 2

    def validate(self) -> None:
        if self.max_length_ratio < 1.0:
            raise ValueError(f"max_length_ratio must be >= 1, got {self.max_length_ratio}")
        if not 0.0 < self.max_distance <= 1.0:
            raise ValueError(f"max_distance must be in (0, 1], got {self.max_distance}")
        if self.slack_tokens < 0:
            raise ValueError(f"slack_tokens must be >= 0, got {self.slack_tokens}")


@dataclass
class VADGateConfig:
    """Energy gate before decoding: an utterance with too little speech-like signal is output empty
    without running the encoder or the LLM.

    A frame's energy (dB) is 10 log10 of the sum of its mel energies over the bins centred at or below
    ``max_hz``, where voiced speech has most of its energy (over the full band, broadband noise hides
    speech at 0-10 dB SNR). A frame is speech-like when it is at least ``margin_db`` above the
    utterance's ``floor_percentile``-th percentile frame (its noise floor); fewer than
    ``min_speech_seconds`` of such frames: non-speech. Silence and steady noise (white, pink, hum) have
    none; tones or music can pass.
    """

    enabled: bool = False
    max_hz: float = 1000.0
    margin_db: float = 6.0
    floor_percentile: float = 10.0
    min_speech_seconds: float = 0.2

    def validate(self) -> None:
        if self.max_hz <= 0 or self.margin_db <= 0 or self.min_speech_seconds <= 0:
            raise ValueError(f"max_hz, margin_db and min_speech_seconds must be > 0, got {self.max_hz}, "
                             f"{self.margin_db}, {self.min_speech_seconds}")
        if not 0.0 <= self.floor_percentile < 100.0:
            raise ValueError(f"floor_percentile must be in [0, 100), got {self.floor_percentile}")


GUARD_NAMES = ("length_cap", "repetition", "ctc", "vad")


@dataclass
class GuardsConfig:
    """Hallucination guards of LLM decoding (docs/guards.md). ``enabled: false`` turns every guard off
    whatever the per-guard settings (the "guards off" column of a comparison)."""

    enabled: bool = True
    # The per-utterance new-token cap from the audio duration (decode.max_tokens_per_second and
    # decode.min_new_tokens_cap); off: only decode.max_new_tokens bounds the output.
    length_cap: bool = True
    repetition: RepetitionGuardConfig = field(default_factory=RepetitionGuardConfig)
    ctc: CTCGuardConfig = field(default_factory=CTCGuardConfig)
    vad: VADGateConfig = field(default_factory=VADGateConfig)

    def active(self, name: str) -> bool:
        """Whether guard ``name`` (one of GUARD_NAMES) runs."""
        if name not in GUARD_NAMES:
            raise ValueError(f"unknown guard {name!r}; valid: {', '.join(GUARD_NAMES)}")
        if not self.enabled:
            return False
        return self.length_cap if name == "length_cap" else getattr(self, name).enabled


@dataclass
class RescoringConfig:
    """Joint CTC + LLM rescoring, the LLM's counterpart of WeNet's attention rescoring (docs/llm.md).

    The candidates of an utterance are the encoder's CTC prefix-beam n-best (``ctc_beam`` of them), the
    LLM's own output (after the guards' trims) and, with a hotword list, those with a listed term put in
    where a span sounds like it. Each is scored by the LLM, the log-prob of the transcript
    and its end token after the utterance's prompt (teacher forcing, context included), plus
    ``ctc_weight`` times its CTC log-likelihood under the encoder's CTC head; the best is the output. The
    LLM mends what the CTC head misspells, and the CTC score keeps the LLM to what was said: a fluent
    sentence the audio does not support loses to one it does.
    """

    enabled: bool = False
    ctc_beam: int = 10
    ctc_weight: float = 1.0
    # With a hotword list: the LLM text and the hotword_bases best CTC candidates each give more candidates,
    # the span that sounds most like a listed term (toneless pinyin / letters, edit distance over the term's
    # length at most hotword_threshold; 0 = none) replaced by the term. A CTC head misspells a name it never
    # heard; the list says how it is spelled, and the LLM with the list in its prompt and the CTC score of
    # the sound judge the replacement like any other candidate. hotword_bonus: added per listed term a
    # candidate says (a biasing bonus; 0 = none).
    hotword_threshold: float = 0.5
    hotword_bases: int = 3
    hotword_bonus: float = 0.0
    max_candidates_per_batch: int = 64  # rows of one teacher-forcing forward (memory bound)

    def validate(self) -> None:
        if not 0.0 <= self.hotword_threshold <= 1.0 or self.hotword_bases < 0 or self.hotword_bonus < 0:
            raise ValueError(f"rescoring needs hotword_threshold in [0, 1], hotword_bases >= 0 and hotword_bonus "
                             f">= 0, got {self.hotword_threshold}, {self.hotword_bases}, {self.hotword_bonus}")
        if self.ctc_beam < 1 or self.max_candidates_per_batch < 1:
            raise ValueError(f"rescoring needs ctc_beam >= 1 and max_candidates_per_batch >= 1, got "
                             f"{self.ctc_beam}, {self.max_candidates_per_batch}")
        if self.ctc_weight < 0:
            raise ValueError(f"rescoring.ctc_weight must be >= 0, got {self.ctc_weight}")


@dataclass
class GenerationConfig:
    """Decoding of the LLM: greedy (num_beams 1) or beam search, with a KV cache, its guards and the
    optional joint CTC + LLM rescoring."""

    num_beams: int = 1
    max_new_tokens: int = 256  # hard cap on new tokens, guards or not
    # The length-cap guard: at most min_new_tokens_cap + max_tokens_per_second * seconds new tokens.
    # Mandarin and English speech run at about 3-5 Qwen tokens per second, so 10 leaves twice that.
    max_tokens_per_second: float = 10.0
    min_new_tokens_cap: int = 8
    max_duration: float = 120.0  # seconds of audio per decoding batch
    guards: GuardsConfig = field(default_factory=GuardsConfig)
    rescoring: RescoringConfig = field(default_factory=RescoringConfig)

    def validate(self) -> None:
        if self.num_beams < 1 or self.max_new_tokens < 1 or self.max_duration <= 0:
            raise ValueError("num_beams and max_new_tokens must be >= 1 and max_duration > 0")
        if self.max_tokens_per_second <= 0 or self.min_new_tokens_cap < 1:
            raise ValueError(f"max_tokens_per_second must be > 0 and min_new_tokens_cap >= 1, got "
                             f"{self.max_tokens_per_second}, {self.min_new_tokens_cap} (to decode without the "
                             f"duration cap, set guards.length_cap: false)")
        self.rescoring.validate()


@dataclass
class LLMExperimentConfig:
    """One LLM-ASR training stage (SFT 1, SFT 2 or contextual SFT)."""

    experiment: Literal["llm_asr"] = "llm_asr"
    model: LLMASRModelConfig = field(default_factory=LLMASRModelConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: GenerationConfig = field(default_factory=GenerationConfig)
