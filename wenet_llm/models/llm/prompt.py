"""The one place where the LLM-ASR prompt is built (Index-ASR's prompt: instruction, optional context, speech).

The sequence is the LLM tokenizer's own chat template (Qwen3: thinking disabled, which writes an empty
think block at the start of the assistant turn), rendered for::

    [system turn, when configured]
    user:      [context block] instruction <speech>
    assistant: transcript <|im_end|>

The rendered text is split at the speech marker; the two halves are tokenized separately, and the
speech embeddings go between them at model time. So an utterance is four id runs::

    prefix (…user\\n[context]instruction)  speech (N positions)  suffix (<|im_end|>\\n<|im_start|>assistant\\n
    <think>\\n\\n</think>\\n\\n)  target (transcript ids + the end-of-turn id)

With ``ctc_hypothesis`` on, the encoder's CTC greedy hypothesis follows the speech positions in the user
turn (:meth:`PromptBuilder.hypothesis_ids`: the label line, then the hypothesis tokenized exactly as a
transcript is, so that a right hypothesis is the target's own ids); the model computes it from the
encoder output and puts it between the speech and the suffix.

In the data pipeline (DataLoader workers) an utterance becomes its ``prefix``, ``suffix`` and ``target``
id runs, padded per run by the collator with their lengths beside them; the model joins them around the
speech embeddings once it knows how many speech positions the utterance has (a CTC-compressing adapter
decides that from the audio), right-padded for training, with the loss on the target alone; left-padded
without the target for generation (see :class:`~wenet_llm.models.llm.llm_asr.LLMASRModel`).

:meth:`PromptBuilder.layout` gives the same sequence flat (``input_ids`` with N placeholder ids,
``labels`` IGNORE (-100) except the target, ``speech_mask``, ``attention_mask``) for text-only training
with a known number of speech positions.

The context block holds a hotword list and/or a paragraph summary; an empty context gives no block, so
a context-free prompt is the same whether or not a context field exists.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from wenet_llm.config.llm import PromptConfig

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # HF's label padding: no loss
SPEECH_MARKER = "\ue000speech\ue000"  # private-use characters: never in a transcript or a template
_LATIN_RE = re.compile(r"[A-Za-z]")


@dataclass
class PromptPieces:
    prefix: list[int]
    suffix: list[int]
    target: list[int]  # empty at inference
    truncated: str = ""  # what the context caps removed, for a warning


class PromptBuilder:
    """Builds the ids of one utterance's prompt; picklable, so it runs in DataLoader workers.

    ``speech_length(num_frames)`` gives the number of speech positions the encoder + adapter produce
    for ``num_frames`` feature frames (from :meth:`LLMASRModel.speech_length`).
    """

    pad_values = {"prefix": 0, "suffix": 0, "target": 0}  # the collator pads each run; lengths say where

    def __init__(self, tokenizer, cfg: PromptConfig, speech_length: Callable[[int], int] | None = None,
                 frame_shift_ms: float = 10.0):
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.speech_length = speech_length
        self.frame_shift_ms = frame_shift_ms
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the LLM tokenizer has no eos token (Qwen3: <|im_end|>); check its tokenizer_config.json")
        self.eos_id = int(eos)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
        self.pad_values = {key: self.pad_id for key in self.pad_values}
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the LLM tokenizer has no chat template; a chat model directory (e.g. Qwen3-8B) ships "
                             "one in tokenizer_config.json or chat_template.jinja")
        self._cache: dict[str, tuple[list[int], list[int]]] = {}
        self._hypothesis_label = (tokenizer.encode("\n" + cfg.ctc_hypothesis_label + "\n", add_special_tokens=False)
                                  if cfg.ctc_hypothesis else [])

    # -- text ---------------------------------------------------------------------------------
    def target_text(self, text: str) -> str:
        """The transcript as the LLM learns it (English lower-cased with english_case: lower)."""
        return apply_case(text, self.cfg.english_case)

    def output_text(self, text: str) -> str:
        """A generated transcript in the corpus convention (upper-cased English with english_case: lower)."""
        text = text.strip()
        return _LATIN_RE.sub(lambda m: m.group(0).upper(), text) if self.cfg.english_case == "lower" else text

    def context_block(self, context: dict | None) -> tuple[str, str]:
        """(block text, what was truncated) for the hotwords and summary of ``context``."""
        context = context or {}
        hotwords = [str(h).strip() for h in (context.get("hotwords") or []) if str(h).strip()]
        summary = str(context.get("summary") or "").strip()
        cut = []
        if len(hotwords) > self.cfg.max_hotwords:
            cut.append(f"{len(hotwords) - self.cfg.max_hotwords} of {len(hotwords)} hotwords")
            hotwords = hotwords[: self.cfg.max_hotwords]
        lines = []
        if hotwords:
            lines.append(self.cfg.hotwords_prefix + self.cfg.hotword_separator.join(
                self.target_text(h) for h in hotwords))
        if summary:
            lines.append(self.cfg.summary_prefix + summary)
        block = "\n".join(lines)
        if block:
            ids = self.tokenizer.encode(block, add_special_tokens=False)
            if len(ids) > self.cfg.max_context_tokens:
                cut.append(f"context cut from {len(ids)} to {self.cfg.max_context_tokens} tokens")
                block = self.tokenizer.decode(ids[: self.cfg.max_context_tokens])
        return block, "; ".join(cut)

    def user_text(self, block: str) -> str:
        return (block + "\n" if block else "") + self.cfg.instruction + SPEECH_MARKER

    # -- ids ----------------------------------------------------------------------------------
    def _prefix_suffix(self, block: str) -> tuple[list[int], list[int]]:
        cached = self._cache.get(block)
        if cached is not None:
            return cached
        messages = ([{"role": "system", "content": self.cfg.system}] if self.cfg.system else []) + [
            {"role": "user", "content": self.user_text(block)}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True,
                                                  enable_thinking=False)
        if text.count(SPEECH_MARKER) != 1:
            raise ValueError("the chat template lost or repeated the speech marker; it must copy the user "
                             "message content unchanged")
        before, after = text.split(SPEECH_MARKER)
        pieces = (self.tokenizer.encode(before, add_special_tokens=False),
                  self.tokenizer.encode(after, add_special_tokens=False))
        if not block:
            self._cache[block] = pieces  # the context-free prompt is the same for every utterance
        return pieces

    def build(self, text: str | None, context: dict | None = None) -> PromptPieces:
        """The id runs of one utterance; ``text`` None (inference) gives an empty target."""
        block, truncated = self.context_block(context)
        prefix, suffix = self._prefix_suffix(block)
        target = []
        if text is not None:
            target = self.tokenizer.encode(self.target_text(text), add_special_tokens=False) + [self.eos_id]
        return PromptPieces(list(prefix), list(suffix), target, truncated)

    def hypothesis_ids(self, text: str) -> list[int]:
        """The ids that follow the speech positions: the label line and the first-pass hypothesis ``text``
        (cut to ``max_hypothesis_tokens``); [] when ``ctc_hypothesis`` is off."""
        if not self.cfg.ctc_hypothesis:
            return []
        ids = self.tokenizer.encode(self.target_text(" ".join(text.split())), add_special_tokens=False)
        return self._hypothesis_label + ids[: self.cfg.max_hypothesis_tokens]

    def layout(self, pieces: PromptPieces, num_speech: int, hypothesis: Sequence[int] = ()) -> dict[str, list[int]]:
        """Training inputs of one utterance (unpadded): input_ids, labels, speech_mask, attention_mask.
        ``hypothesis``: ids from :meth:`hypothesis_ids`, placed after the speech positions."""
        pad = self.pad_id
        head = pieces.prefix
        body = [pad] * num_speech + list(hypothesis) + pieces.suffix
        input_ids = head + body + pieces.target
        labels = [IGNORE_INDEX] * (len(head) + len(body)) + pieces.target
        speech_mask = [0] * len(head) + [1] * num_speech + [0] * (len(body) - num_speech + len(pieces.target))
        return {"input_ids": input_ids, "labels": labels, "speech_mask": speech_mask,
                "attention_mask": [1] * len(input_ids)}

    # -- the data pipeline's text-processor interface -------------------------------------------
    def __call__(self, text: str, context: dict, num_frames: int) -> dict[str, list[int]]:
        pieces = self.build(text, context)
        return {"prefix": pieces.prefix, "suffix": pieces.suffix, "target": pieces.target}

    def num_tokens(self, duration: float, text: str, context: dict) -> int:
        """Estimated sequence length of an utterance (for batching by tokens)."""
        frames = int(duration * 1000.0 / self.frame_shift_ms)
        speech = self.speech_length(frames) if self.speech_length is not None else frames
        pieces = self.build(text, context)
        # A CTC hypothesis is about as long as the transcript.
        hypothesis = len(self._hypothesis_label) + len(pieces.target) if self.cfg.ctc_hypothesis else 0
        return len(pieces.prefix) + speech + hypothesis + len(pieces.suffix) + len(pieces.target)


def apply_case(text: str, english_case: str) -> str:
    """``text`` as the LLM reads and writes it: lower-cased with english_case "lower", else unchanged."""
    return text.lower() if english_case == "lower" else text


def hotword_list(value: str | Sequence[str] | None) -> list[str]:
    """A hotword list from ``"a,b"`` or a sequence; empty entries dropped."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [h.strip() for h in items if h and h.strip()]


def ctc_hypothesis_ids(builder: PromptBuilder, ctc_decode: Callable[[list[int]], str]) -> Callable[[list[int]], list[int]]:
    """CTC unit ids -> the ids after the speech positions (``ctc_decode``: the CTC units tokenizer's decode)."""
    def hypothesis_ids(ctc_ids: list[int]) -> list[int]:
        return builder.hypothesis_ids(ctc_decode(ctc_ids))
    return hypothesis_ids
