"""Schema of the demo's base LLM: a small Qwen3 pre-trained on text that the demo grammar generates.

No model hub is reachable where the demo runs, so the demo builds the LLM that its stage 4 reads through
``--llm_path``, the way a corpus recipe reads Qwen3-8B: the genuine Qwen tokenizer trimmed to the
corpus text, a Qwen3-architecture model of :class:`TinyLLMSize`, pre-trained on many more sentences
than the speech transcripts (dev and test transcripts kept out), in the SFT stages' chat format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from wenet_llm.config.llm import PromptConfig
from wenet_llm.config.train import TrainConfig


@dataclass
class TinyLLMSize:
    """A Qwen3 configuration small enough to train on CPU."""

    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 64
    intermediate_size: int = 768
    max_position_embeddings: int = 2048
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = True

    def validate(self) -> None:
        if min(self.hidden_size, self.num_hidden_layers, self.num_attention_heads, self.num_key_value_heads,
               self.head_dim, self.intermediate_size) < 1:
            raise ValueError("every size must be >= 1")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_key_value_heads must divide num_attention_heads")


@dataclass
class SpelledSpeechConfig:
    """Text-only "spelled speech" samples (see wenet_llm.models.llm.spelled): a sentence spelled in the
    AED's CTC units, spread over 40 ms frames with blanks between the units, with recognition-like errors,
    grouped into the SFT adapter's positions. For a CTC-compressing adapter (one position per heard unit)
    set the gap and edge ranges to [0, 0] and downsample to 1."""

    fraction: float = 0.0  # share of sentences laid out as spelled speech (0: none)
    # Share of extra samples with no speech position and an empty answer: what silence gives a
    # CTC-compressing adapter, so the LLM answers nothing to it rather than a sentence of its prior.
    empty_fraction: float = 0.0
    downsample: int = 2  # encoder frames per LLM position: the SFT stages' adapter.downsample
    zh_gap_frames: tuple[int, int] = (2, 6)  # blank frames before each unit (range): Mandarin ~4-5 chars/s
    en_gap_frames: tuple[int, int] = (0, 2)  # English letters come ~13 per second
    edge_frames: tuple[int, int] = (1, 8)  # silence before and after
    substitute: float = 0.04  # unit replaced by a random one of its language
    delete: float = 0.02
    insert: float = 0.02
    confuse: float = 0.3  # share of units whose weight is split with a random unit
    min_weight: float = 0.6  # the heard unit's weight is drawn from [min_weight, 1]

    def validate(self) -> None:
        if not 0.0 <= self.fraction <= 1.0 or not 0.0 <= self.empty_fraction < 1.0 or self.downsample < 1:
            raise ValueError("fraction and empty_fraction must be in [0, 1] and downsample >= 1")
        for name in ("zh_gap_frames", "en_gap_frames", "edge_frames"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range [lo, hi] with 0 <= lo <= hi")
        for name in ("substitute", "delete", "insert", "confuse"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if not 0.0 < self.min_weight <= 1.0:
            raise ValueError("min_weight must be in (0, 1]")


@dataclass
class HypothesisCopyConfig:
    """Text-only first-pass copy samples, for an SFT that puts the CTC hypothesis in the prompt
    (``prompt.ctc_hypothesis``): the chat layout without speech, a corrupted copy of the sentence as the
    hypothesis (errors drawn per CTC unit), the sentence as the answer. The LM learns to copy its
    prompt and to mend what the grammar says is wrong before SFT 1 starts."""

    fraction: float = 0.0  # share of sentences laid out as copy samples (0: none)
    substitute: float = 0.05  # unit replaced by a random one of its language
    delete: float = 0.03
    insert: float = 0.02
    # Share of copy samples with a hotword list in the prompt (the contextual stage's format): the names
    # the sentence says plus distractors (other names of its language, never-spoken ones included), in
    # random order; a list may hold no target. In the hypothesis a listed name is corrupted at
    # name_error per unit, as a CTC layer mishears a rare name, so that the list is the way to spell it.
    hotword_fraction: float = 0.0
    max_distractors: int = 10
    name_error: float = 0.2
    # Share of copy samples that name an entity whose names are replaced by freshly invented ones of the
    # same kind (the corpus' name parts, no core of a dev, test or distractor name). An LM that only ever
    # copies the names of its text learns them as words and rewrites a name it never read into one it
    # knows; fresh names make copying whatever the hypothesis or the list says the only way to the answer.
    fresh_names: float = 0.0
    # A copy warm-up before the LM text: warmup_steps steps on copy samples of random word strings
    # (warmup_words words of the grammar's vocabulary and training names, in no grammatical order). Mixed
    # into grammar text a small LM keeps to its language prior and never learns to copy; on strings the
    # grammar cannot predict it forms copying heads within a few hundred steps, which the LM text then uses.
    warmup_steps: int = 0
    warmup_samples: int = 12000
    warmup_words: tuple[int, int] = (3, 15)

    def validate(self) -> None:
        if not all(0.0 <= getattr(self, name) <= 1.0 for name in ("fraction", "hotword_fraction", "fresh_names")):
            raise ValueError("fraction, hotword_fraction and fresh_names must be in [0, 1]")
        for name in ("substitute", "delete", "insert", "name_error"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.max_distractors < 0:
            raise ValueError("max_distractors must be >= 0")
        if self.warmup_steps < 0 or self.warmup_samples <= 0:
            raise ValueError("warmup_steps must be >= 0 and warmup_samples > 0")
        if not 1 <= self.warmup_words[0] <= self.warmup_words[1]:
            raise ValueError(f"warmup_words must be (min, max) with 1 <= min <= max, got {self.warmup_words}")


@dataclass
class DemoLLMConfig:
    num_sentences: int = 60000  # generated sentences, besides the training transcripts
    seed: int = 1  # of the sentence generator (the corpus uses its own seed)
    zh_fraction: float = 0.5
    min_target_seconds: float = 2.5  # sentence lengths as the corpus draws them
    max_target_seconds: float = 8.0
    entity_rate: float = 0.08  # share of sentences naming an entity seen in the training transcripts
    size: TinyLLMSize = field(default_factory=TinyLLMSize)
    # The SFT stages' prompt: the LM learns the assistant turn of exactly this chat format (no speech).
    prompt: PromptConfig = field(default_factory=PromptConfig)
    max_tokens: int = 4096  # padded tokens per batch
    # Most sentences are packed back to back ("sentence<|im_end|>sentence<|im_end|>...") into rows of
    # pack_tokens, loss on every token: the language at full speed. A chat_fraction of them is laid out
    # as the SFT stages' chat turn (user: instruction, assistant: sentence), loss on the sentence, so the
    # LM knows where an answer starts and that it ends with <|im_end|>.
    pack_tokens: int = 128
    chat_fraction: float = 0.25
    spelled: SpelledSpeechConfig = field(default_factory=SpelledSpeechConfig)
    hypothesis: HypothesisCopyConfig = field(default_factory=HypothesisCopyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        if self.num_sentences < 0 or not 0.0 <= self.zh_fraction <= 1.0 or not 0.0 <= self.entity_rate <= 1.0:
            raise ValueError("num_sentences must be >= 0, zh_fraction and entity_rate in [0, 1]")
        if not 0 < self.min_target_seconds <= self.max_target_seconds:
            raise ValueError("0 < min_target_seconds <= max_target_seconds is required")
        if not 0.0 <= self.chat_fraction <= 1.0 or self.pack_tokens < 8 or self.pack_tokens > self.max_tokens:
            raise ValueError("chat_fraction must be in [0, 1] and 8 <= pack_tokens <= max_tokens")
        if self.chat_fraction + self.spelled.fraction + self.hypothesis.fraction > 1.0:
            raise ValueError("chat_fraction + spelled.fraction + hypothesis.fraction must be <= 1 (the rest is "
                             "packed plain text)")
        if self.hypothesis.fraction > 0 and not self.prompt.ctc_hypothesis:
            raise ValueError("hypothesis.fraction > 0 needs prompt.ctc_hypothesis: true (the SFT prompt it imitates)")
