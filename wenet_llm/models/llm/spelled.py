"""Spelled speech: text-only training of an LLM to read the input a CTC-posterior adapter gives it.

A :class:`~wenet_llm.models.llm.adapter.CTCPosteriorAdapter` feeds the LLM, at each speech position, the
sum over its encoder frames of the CTC posteriors times an embedding per CTC unit, which starts as the
mean of the LLM's token embeddings of the unit's text. A position is then (about) the embedding of the
character heard there, or nothing where the CTC layer says blank. An LLM that has never seen such input
has to learn to read it from the speech data alone; on the demo's 2,400 utterances a small one does not
get there in minutes (it stays on its language-model prior).

The same input can be made from text: spell a sentence into CTC units, spread them over frames with
blanks between them (about the rate of speech), add recognition-like errors, group the frames into
positions and mix the units' token embeddings with their weights. :class:`SpelledSpeechLM` trains an
LLM on such "spelled speech" samples in the SFT stages' chat layout (the transcript as the answer), so
that it can read speech from the first step of SFT 1, the way a large LLM copes with its speech
adapter's output. Each sample carries, per position, up to ``S`` (unit id, weight) slots.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wenet_llm.models.llm.adapter import unit_mixing_matrix
from wenet_llm.models.llm.prompt import IGNORE_INDEX

SLOTS = 4  # (unit, weight) pairs per position: two frames, each with its unit and one confusable unit


def slot_keys(slots: int = SLOTS) -> list[str]:
    return [f"unit{i}" for i in range(slots)] + [f"weight{i}" for i in range(slots)]


class SpelledSpeechLM(nn.Module):
    """A causal LM whose speech positions are mixtures of CTC units' token embeddings.

    ``unit_token_ids[u]`` are the LLM token ids of unit u's text (empty for blank and other specials).
    The units' embeddings are recomputed from the LLM's current token embeddings at every step, so the
    LM learns to read exactly what the adapter will give it at the start of SFT 1.
    """

    def __init__(self, llm: nn.Module, unit_token_ids: Sequence[Sequence[int]]):
        super().__init__()
        self.llm = llm
        vocab = llm.get_input_embeddings().weight.shape[0]
        self.register_buffer("mixing", unit_mixing_matrix(unit_token_ids, vocab), persistent=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                speech_mask: torch.Tensor | None = None, units: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """input_ids / attention_mask / labels / speech_mask (B, L); units (B, L, S) with -1 for an empty
        slot and weights (B, L, S). A speech position becomes the weighted sum of its units' embeddings
        (zero when it has none: what the adapter gives where the CTC layer says blank)."""
        table = self.llm.get_input_embeddings().weight  # (V, E)
        embeds = table[input_ids]  # (B, L, E)
        if speech_mask is not None and units is not None and self.mixing.shape[0] > 0:  # no units: no spelling
            unit_table = self.mixing.to(table.dtype) @ table  # (V_units, E)
            present = units >= 0
            mixed = (unit_table[units.clamp(min=0)] * (weights * present).unsqueeze(-1).to(table.dtype)).sum(2)
            embeds = torch.where(speech_mask.bool().unsqueeze(-1), mixed, embeds)
        hidden = self.llm.get_decoder()(inputs_embeds=embeds, attention_mask=attention_mask,
                                        use_cache=False).last_hidden_state  # (B, L, E)
        shift_labels = labels[:, 1:]
        target = shift_labels != IGNORE_INDEX
        logits = self.llm.get_output_embeddings()(hidden[:, :-1][target]).float()  # (N_target, V)
        gold = shift_labels[target]
        n = target.sum().clamp(min=1)
        loss = F.cross_entropy(logits, gold, reduction="sum") / n
        return {"loss": loss, "acc": ((logits.argmax(-1) == gold).sum() / n).detach()}
