"""LLM-based ASR (the Index-ASR system): Conformer encoder -> adapter -> causal LLM decoder.

The encoder is the exported AED encoder (CMVN inside, its CTC layer kept for the consistency guard and
an optional auxiliary CTC loss). The adapter maps its frames to LLM positions; the speech embeddings
are placed, by plain concatenation in sequence order, between the prompt's prefix and suffix token
embeddings (see :mod:`wenet_llm.models.llm.prompt`), and the LLM writes the transcript.

Legend: B batch, T feature frames, F mel bins, T' encoder frames, N speech positions, L sequence
length, D encoder dim, E LLM hidden size, V LLM vocabulary. Masks: True / 1 = valid.

What trains is set by ``cfg.trainable`` (encoder, adapter, lora, llm); frozen modules keep
``requires_grad`` False, and a frozen encoder runs in eval mode under ``no_grad``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wenet_llm.config.llm import GenerationConfig, LLMASRModelConfig
from wenet_llm.models.aed.ctc import ctc_greedy_search
from wenet_llm.models.aed.export import ExportedEncoder
from wenet_llm.models.aed.subsampling import subsampled_length
from wenet_llm.models.llm.adapter import (AdapterOutput, build_adapter, downsampled_length, unit_embedding_matrix,
                                          unit_token_ids)
from wenet_llm.models.llm.decoder import apply_lora, is_peft
from wenet_llm.models.llm.prompt import IGNORE_INDEX, PromptPieces

logger = logging.getLogger(__name__)


@dataclass
class LLMASROutput:
    loss: torch.Tensor  # scalar: (1 - ctc_weight) * loss_llm + ctc_weight * loss_ctc
    loss_llm: torch.Tensor  # mean cross-entropy per target token
    acc: torch.Tensor  # next-token accuracy on the target tokens
    loss_ctc: Optional[torch.Tensor] = None  # auxiliary CTC loss per target unit


@dataclass(frozen=True)
class SpeechLength:
    """Feature frames -> LLM speech positions (encoder subsampling, then the adapter's ceil(T'/k)).
    A plain picklable object, so that DataLoader workers can lay out prompts."""

    input_layer: str
    downsample: int

    def __call__(self, num_frames: int) -> int:
        return int(downsampled_length(max(0, subsampled_length(num_frames, self.input_layer)), self.downsample))


class LLMASRModel(nn.Module):
    def __init__(self, encoder: ExportedEncoder, llm: nn.Module, cfg: LLMASRModelConfig, tokenizer=None,
                 units: Optional[Sequence[str]] = None, english_case: str = "keep",
                 hypothesis_ids: Optional[Callable[[list[int]], list[int]]] = None):
        """``units`` (the encoder's CTC units) with ``tokenizer`` start a ctc_posterior adapter's unit embeddings
        at the LLM's token embeddings of the units' texts (cased as the prompt's ``english_case`` says).

        ``hypothesis_ids`` (CTC unit ids -> LLM ids, e.g. the units tokenizer's decode followed by
        :meth:`PromptBuilder.hypothesis_ids`) puts the CTC greedy hypothesis after the speech positions."""
        super().__init__()
        self.cfg = cfg
        self.hypothesis_ids = hypothesis_ids
        self.encoder = encoder
        self.adapter = build_adapter(encoder.output_size, llm.config.hidden_size, cfg.adapter, encoder.cfg.vocab_size,
                                     encoder.ctc.blank_id)
        if cfg.lora.enabled and not is_peft(llm):
            llm = apply_lora(llm, cfg.lora)
        self.llm = llm
        self.trainable = tuple(cfg.trainable)
        if tokenizer is not None:
            check_agreement(self, tokenizer)
            if units is not None and hasattr(self.adapter, "init_unit_embeddings"):
                table = unit_embedding_matrix(unit_token_ids(units, tokenizer, english_case), self.embedding.weight)
                self.adapter.init_unit_embeddings(table)
        self._set_trainable()

    # -- set-up -------------------------------------------------------------------------------
    def _set_trainable(self) -> None:
        for name, p in self.named_parameters():
            p.requires_grad_(self.module_of(name) in self.trainable)
        if "encoder" in self.trainable and self.cfg.encoder_dropout >= 0:
            for m in self.encoder.modules():
                if isinstance(m, nn.Dropout):
                    m.p = self.cfg.encoder_dropout
        self.train(self.training)

    @staticmethod
    def module_of(param_name: str) -> str:
        """encoder / adapter / lora / llm: the trainable-module name a parameter belongs to."""
        top = param_name.split(".", 1)[0]
        if top == "llm":
            return "lora" if ".lora_" in param_name else "llm"
        return top

    def parameter_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Every module group (frozen ones too) with its parameters, for per-module optimizer settings."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {"encoder": [], "adapter": [], "lora": [], "llm": []}
        for name, p in self.named_parameters():
            groups[self.module_of(name)].append((name, p))
        if not self.cfg.lora.enabled:
            del groups["lora"]
        return groups

    def train(self, mode: bool = True) -> "LLMASRModel":
        super().train(mode)
        # Frozen parts stay in eval mode (no dropout, BatchNorm statistics fixed).
        if "encoder" not in self.trainable:
            self.encoder.eval()
        if "llm" not in self.trainable and "lora" not in self.trainable:
            self.llm.eval()
        return self

    @property
    def speech_length(self) -> SpeechLength:
        """Feature frames -> speech positions (an upper estimate for a CTC-compressing adapter)."""
        return SpeechLength(self.encoder.cfg.encoder_conf.input_layer, self.cfg.adapter.downsample)

    @property
    def embedding(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    # -- forward ------------------------------------------------------------------------------
    def encode_speech(self, feats: torch.Tensor, feats_lengths: torch.Tensor):
        """feats (B, T, F), feats_lengths (B,) -> (AdapterOutput (B, N, E), encoder_out (B, T', D), T' lengths)."""
        if "encoder" in self.trainable:
            enc = self.encoder(feats, feats_lengths)
        else:
            with torch.no_grad():
                enc = self.encoder(feats, feats_lengths)
        mask = enc.encoder_mask.squeeze(1)  # (B, T')
        lengths = mask.sum(1)
        hidden = enc.encoder_out * mask.unsqueeze(-1).to(enc.encoder_out.dtype)  # padded frames zeroed
        if getattr(self.adapter, "uses_ctc", False):
            speech = self.adapter(hidden, lengths, enc.ctc_log_probs)
        else:
            speech = self.adapter(hidden, lengths)
        if self.hypothesis_ids is not None:
            speech = self.append_hypothesis(speech, enc.ctc_log_probs, lengths)
        return speech, enc, lengths

    def append_hypothesis(self, speech: AdapterOutput, ctc_log_probs: torch.Tensor,
                          lengths: torch.Tensor) -> AdapterOutput:
        """Speech positions (B, N, E) followed by the token embeddings of each utterance's CTC greedy
        hypothesis (from ctc_log_probs (B, T', V_ctc)) as ``hypothesis_ids`` lays it out: (B, N + H, E)."""
        embed = self.embedding
        device = speech.embeds.device
        rows = []
        for b, ctc_ids in enumerate(ctc_greedy_search(ctc_log_probs, lengths, self.encoder.ctc.blank_id)):
            ids = torch.tensor(self.hypothesis_ids(ctc_ids), dtype=torch.long, device=device)
            rows.append(torch.cat([speech.embeds[b, : int(speech.lengths[b])], embed(ids).to(speech.embeds.dtype)]))
        embeds, mask = pad_rows(rows)
        return AdapterOutput(embeds, mask.sum(1))

    def assemble(self, speech: AdapterOutput, prefix: torch.Tensor, prefix_lengths: torch.Tensor,
                 suffix: torch.Tensor, suffix_lengths: torch.Tensor, target: torch.Tensor,
                 target_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training inputs, right-padded: each row is prefix, its speech positions, suffix, target.

        prefix / suffix / target (B, L_*) padded id runs with their lengths (B,); speech (B, N, E) with
        lengths. Returns (inputs_embeds (B, L, E), attention_mask (B, L), labels (B, L): the target ids at
        their positions, -100 elsewhere).
        """
        embed = self.embedding
        pre, suf, tgt = embed(prefix), embed(suffix), embed(target)  # (B, L_*, E)
        rows, label_rows = [], []
        for b in range(prefix.shape[0]):
            p, n = int(prefix_lengths[b]), int(speech.lengths[b])
            s, t = int(suffix_lengths[b]), int(target_lengths[b])
            rows.append(torch.cat([pre[b, :p], speech.embeds[b, :n].to(pre.dtype), suf[b, :s], tgt[b, :t]]))
            label_rows.append(torch.cat([torch.full((p + n + s,), IGNORE_INDEX, dtype=target.dtype,
                                                    device=target.device), target[b, :t]]))
        inputs, mask = pad_rows(rows)  # (B, L, E), (B, L)
        labels, _ = pad_rows(label_rows, fill=IGNORE_INDEX)  # (B, L)
        return inputs, mask, labels

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor, prefix: torch.Tensor,
                prefix_lengths: torch.Tensor, suffix: torch.Tensor, suffix_lengths: torch.Tensor,
                target: torch.Tensor, target_lengths: torch.Tensor, ctc_tokens: Optional[torch.Tensor] = None,
                ctc_token_lengths: Optional[torch.Tensor] = None) -> LLMASROutput:
        """feats (B, T, F), feats_lengths (B,); the prompt's prefix / suffix / target id runs (B, L_*) with
        their lengths (B,) (see :mod:`wenet_llm.models.llm.prompt`); ctc_tokens (B, U) padded with -1 (the
        encoder's CTC units, for the auxiliary CTC loss)."""
        speech, enc, enc_lengths = self.encode_speech(feats, feats_lengths)
        inputs_embeds, attention_mask, labels = self.assemble(speech, prefix, prefix_lengths, suffix, suffix_lengths,
                                                              target, target_lengths)
        # The output layer runs only where a target token is predicted: with Qwen3's 151,936-entry vocabulary,
        # logits at every speech and prompt position would cost more memory and time than the decoder itself.
        hidden = self.llm.get_decoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                        use_cache=False).last_hidden_state  # (B, L, E)
        shift_labels = labels[:, 1:]  # position t predicts token t+1
        predicted = shift_labels != IGNORE_INDEX  # (B, L-1)
        logits = self.llm.get_output_embeddings()(hidden[:, :-1][predicted]).float()  # (N_target, V)
        gold = shift_labels[predicted]
        num_targets = predicted.sum().clamp(min=1)
        loss_llm = F.cross_entropy(logits, gold, reduction="sum") / num_targets
        acc = (logits.argmax(-1) == gold).sum() / num_targets
        loss, loss_ctc = loss_llm, None
        if self.cfg.ctc_weight > 0 and ctc_tokens is not None:
            log_probs = enc.ctc_log_probs.float().transpose(0, 1)  # (T', B, V_ctc)
            valid = torch.arange(ctc_tokens.shape[1], device=ctc_tokens.device)[None, :] < ctc_token_lengths[:, None]
            loss_ctc = F.ctc_loss(log_probs, ctc_tokens[valid].long(), enc_lengths.long(), ctc_token_lengths.long(),
                                  blank=self.encoder.ctc.blank_id, reduction="sum", zero_infinity=True)
            loss_ctc = loss_ctc / ctc_token_lengths.sum().clamp(min=1)
            loss = (1.0 - self.cfg.ctc_weight) * loss_llm + self.cfg.ctc_weight * loss_ctc
        return LLMASROutput(loss=loss, loss_llm=loss_llm.detach(), acc=acc.detach(),
                            loss_ctc=None if loss_ctc is None else loss_ctc.detach())

    # -- generation ---------------------------------------------------------------------------
    def prompt_rows(self, speech: AdapterOutput, prompts: Sequence[PromptPieces]) -> list[torch.Tensor]:
        """Each utterance's prompt embeddings, unpadded: prefix, its speech positions, suffix (L_i, E)."""
        device = speech.embeds.device
        embed = self.embedding
        rows = []
        for i, p in enumerate(prompts):
            n = int(speech.lengths[i])
            prefix = embed(torch.tensor(p.prefix, dtype=torch.long, device=device))
            suffix = embed(torch.tensor(p.suffix, dtype=torch.long, device=device))
            rows.append(torch.cat([prefix, speech.embeds[i, :n].to(prefix.dtype), suffix], dim=0))
        return rows

    def prompt_embeds(self, speech: AdapterOutput, prompts: Sequence[PromptPieces]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded generation inputs: (inputs_embeds (B, L, E), attention_mask (B, L))."""
        return pad_rows(self.prompt_rows(speech, prompts), left=True)

    @torch.no_grad()
    def score_targets(self, speech: AdapterOutput, prompts: Sequence[PromptPieces], utterances: Sequence[int],
                      targets: Sequence[Sequence[int]], max_rows: int = 64) -> torch.Tensor:
        """Teacher-forced log-prob of each target after its utterance's prompt: (N,) float32.

        speech (B, S, E) from ``encode_speech``; ``prompts`` one per utterance; row i scores ``targets[i]``
        (LLM ids, end token included) after prompt and speech of utterance ``utterances[i]``. Rows are
        right-padded and run ``max_rows`` at a time."""
        embed = self.embedding
        device = speech.embeds.device
        heads = self.prompt_rows(speech, prompts)  # (P_i, E)
        scores = torch.zeros(len(targets), dtype=torch.float32, device=device)
        for start in range(0, len(targets), max_rows):
            rows, spans = [], []
            for j in range(start, min(start + max_rows, len(targets))):
                head = heads[utterances[j]]
                ids = torch.tensor(list(targets[j]), dtype=torch.long, device=device)
                rows.append(torch.cat([head, embed(ids).to(head.dtype)]))
                spans.append((head.shape[0], ids))
            inputs, mask = pad_rows(rows)
            log_probs = self.llm(inputs_embeds=inputs, attention_mask=mask).logits.float().log_softmax(-1)
            for k, (p, ids) in enumerate(spans):
                # position p - 1 + t predicts target token t
                picked = log_probs[k, p - 1: p - 1 + ids.shape[0]].gather(1, ids.unsqueeze(1))
                scores[start + k] = picked.sum()
        return scores

    @torch.no_grad()
    def generate(self, feats: torch.Tensor, feats_lengths: torch.Tensor, prompts: Sequence[PromptPieces],
                 gen: GenerationConfig, eos_ids: Sequence[int], pad_id: int,
                 max_new_tokens: Optional[Sequence[int]] = None, stopping_criteria=None) -> list[list[int]]:
        """Generated ids per utterance (end token excluded). ``max_new_tokens`` caps each utterance."""
        speech, _, _ = self.encode_speech(feats, feats_lengths)
        return self.generate_from_speech(speech, prompts, gen, eos_ids, pad_id, max_new_tokens, stopping_criteria)

    @torch.no_grad()
    def generate_from_speech(self, speech: AdapterOutput, prompts: Sequence[PromptPieces], gen: GenerationConfig,
                             eos_ids: Sequence[int], pad_id: int, max_new_tokens: Optional[Sequence[int]] = None,
                             stopping_criteria=None) -> list[list[int]]:
        """``generate`` from ``encode_speech``'s adapter output, so that a caller can also use the encoder
        output (the decoding guards' CTC check). ``stopping_criteria``: extra callables
        ``(input_ids (R, L), scores) -> (R,) bool``, R = rows of the search (utterances x beams)."""
        from transformers import StoppingCriteriaList

        inputs, mask = self.prompt_embeds(speech, prompts)
        caps = list(max_new_tokens) if max_new_tokens is not None else [gen.max_new_tokens] * len(prompts)
        criteria = StoppingCriteriaList([_PerRowCap(caps)] + list(stopping_criteria or []))
        out = self.llm.generate(inputs_embeds=inputs, attention_mask=mask, max_new_tokens=max(caps),
                                num_beams=gen.num_beams, do_sample=False, eos_token_id=list(eos_ids),
                                pad_token_id=pad_id, stopping_criteria=criteria, use_cache=True,
                                temperature=None, top_p=None, top_k=None)
        ids = out.sequences if hasattr(out, "sequences") else out
        result = []
        eos = set(eos_ids)
        for i, row in enumerate(ids.tolist()):
            seq = []
            for t in row[: caps[i]]:
                if t in eos:
                    break
                seq.append(t)
            result.append(seq)
        return result


def pad_rows(rows: Sequence[torch.Tensor], fill: float = 0, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows (L_i, *) -> (padded (B, L, *) filled with ``fill`` on the right, or on the left with ``left``
    (generation), attention mask (B, L) long, 1 = valid)."""
    length = max(r.shape[0] for r in rows)
    out = rows[0].new_full((len(rows), length) + tuple(rows[0].shape[1:]), fill)
    mask = torch.zeros(len(rows), length, dtype=torch.long, device=rows[0].device)
    for b, r in enumerate(rows):
        span = slice(length - r.shape[0], length) if left else slice(0, r.shape[0])
        out[b, span] = r
        mask[b, span] = 1
    return out, mask


class _PerRowCap:
    """Stops each sequence at its own new-token cap (generate only has a global one).

    The rows come utterance by utterance, each with the same number of candidates (1 in greedy search;
    in beam search twice the beams or more, which is why the count is read from the input)."""

    def __init__(self, caps: Sequence[int]):
        self.caps = torch.tensor(list(caps), dtype=torch.long)
        self.start: Optional[int] = None

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        if self.start is None:
            self.start = input_ids.shape[1] - 1  # the first call comes after the first new token
        produced = input_ids.shape[1] - self.start
        per_utt = input_ids.shape[0] // self.caps.shape[0]
        return produced >= self.caps.to(input_ids.device).repeat_interleave(per_utt)


def check_agreement(model: LLMASRModel, tokenizer) -> None:
    """Encoder, adapter, LLM and tokenizer sizes agree; the message names the one that does not."""
    d, k = model.encoder.output_size, model.cfg.adapter.downsample
    adapter = model.adapter
    stack = getattr(adapter, "residual", adapter)
    frames = 1 if model.cfg.adapter.type == "ctc_compress" else k  # a compressing adapter reads one (mean) frame
    if hasattr(stack, "linear1") and stack.linear1.in_features != d * frames:
        raise ValueError(f"adapter input {stack.linear1.in_features} != encoder output size {d} x {frames} frames")
    if hasattr(adapter, "conv") and adapter.conv.in_channels != d:
        raise ValueError(f"adapter input {adapter.conv.in_channels} != encoder output size {d}")
    hidden = model.llm.config.hidden_size
    out = [m for m in adapter.modules() if isinstance(m, nn.Linear)][-1].out_features
    if out != hidden:
        raise ValueError(f"adapter output {out} != LLM hidden size {hidden}")
    if hasattr(adapter, "unit_embed") and tuple(adapter.unit_embed.shape) != (model.encoder.cfg.vocab_size, hidden):
        raise ValueError(f"adapter unit embeddings {tuple(adapter.unit_embed.shape)} != (CTC units "
                         f"{model.encoder.cfg.vocab_size}, LLM hidden size {hidden})")
    rows = model.embedding.weight.shape[0]
    if len(tokenizer) > rows:
        raise ValueError(f"the tokenizer has {len(tokenizer)} entries but the LLM embedding only {rows} rows: "
                         f"tokenizer and model come from different checkpoints")
    for name in ("eos_token_id", "pad_token_id"):
        value = getattr(tokenizer, name)
        if value is not None and value >= rows:
            raise ValueError(f"tokenizer {name} {value} is outside the LLM embedding ({rows} rows)")
