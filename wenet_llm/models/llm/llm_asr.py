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
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wenet_llm.config.llm import GenerationConfig, LLMASRModelConfig
from wenet_llm.models.aed.export import ExportedEncoder
from wenet_llm.models.aed.subsampling import subsampled_length
from wenet_llm.models.llm.adapter import AdapterOutput, build_adapter, downsampled_length
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
    def __init__(self, encoder: ExportedEncoder, llm: nn.Module, cfg: LLMASRModelConfig, tokenizer=None):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.adapter = build_adapter(encoder.output_size, llm.config.hidden_size, cfg.adapter)
        if cfg.lora.enabled and not is_peft(llm):
            llm = apply_lora(llm, cfg.lora)
        self.llm = llm
        self.trainable = tuple(cfg.trainable)
        if tokenizer is not None:
            check_agreement(self, tokenizer)
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
        speech = self.adapter(hidden, lengths)
        return speech, enc, lengths

    def splice(self, input_ids: torch.Tensor, speech_mask: torch.Tensor, speech: AdapterOutput) -> torch.Tensor:
        """Token embeddings of input_ids (B, L) with the speech embeddings (B, N, E) at speech_mask (B, L)."""
        embeds = self.embedding(input_ids)  # (B, L, E)
        speech_mask = speech_mask.bool()
        counts = speech_mask.sum(1)
        if not torch.equal(counts.cpu(), speech.lengths.cpu()):
            raise RuntimeError(f"speech positions in the prompt {counts.tolist()} != adapter outputs "
                               f"{speech.lengths.tolist()}: the prompt layout and the model disagree on the "
                               f"encoder/adapter downsampling")
        valid = torch.arange(speech.embeds.shape[1], device=counts.device)[None, :] < speech.lengths[:, None]
        values = speech.embeds[valid].to(embeds.dtype)  # (sum N, E), in row order as masked_scatter fills
        return embeds.masked_scatter(speech_mask.unsqueeze(-1), values)

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor, input_ids: torch.Tensor,
                labels: torch.Tensor, speech_mask: torch.Tensor, attention_mask: torch.Tensor,
                ctc_tokens: Optional[torch.Tensor] = None, ctc_token_lengths: Optional[torch.Tensor] = None
                ) -> LLMASROutput:
        """feats (B, T, F), feats_lengths (B,), input_ids / labels / speech_mask / attention_mask (B, L)
        right-padded (labels -100 outside the target), ctc_tokens (B, U) padded with -1 (AED units)."""
        speech, enc, enc_lengths = self.encode_speech(feats, feats_lengths)
        inputs_embeds = self.splice(input_ids, speech_mask, speech)
        # The output layer runs only where a target token is predicted: with Qwen3's 151,936-entry vocabulary,
        # logits at every speech and prompt position would cost more memory and time than the decoder itself.
        hidden = self.llm.get_decoder()(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                        use_cache=False).last_hidden_state  # (B, L, E)
        shift_labels = labels[:, 1:]  # position t predicts token t+1
        target = shift_labels != IGNORE_INDEX  # (B, L-1)
        logits = self.llm.get_output_embeddings()(hidden[:, :-1][target]).float()  # (N_target, V)
        gold = shift_labels[target]
        num_targets = target.sum().clamp(min=1)
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
    def prompt_embeds(self, speech: AdapterOutput, prompts: Sequence[PromptPieces]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded generation inputs: (inputs_embeds (B, L, E), attention_mask (B, L))."""
        device = speech.embeds.device
        embed = self.embedding
        rows = []
        for i, p in enumerate(prompts):
            n = int(speech.lengths[i])
            prefix = embed(torch.tensor(p.prefix, dtype=torch.long, device=device))
            suffix = embed(torch.tensor(p.suffix, dtype=torch.long, device=device))
            rows.append(torch.cat([prefix, speech.embeds[i, :n].to(prefix.dtype), suffix], dim=0))  # (L_i, E)
        length = max(r.shape[0] for r in rows)
        e = rows[0].shape[1]
        inputs = rows[0].new_zeros(len(rows), length, e)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        for i, r in enumerate(rows):
            inputs[i, length - r.shape[0]:] = r
            mask[i, length - r.shape[0]:] = 1
        return inputs, mask

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
    d = model.encoder.output_size
    first = next(iter(model.adapter.parameters()))
    k = model.cfg.adapter.downsample
    expected_in = d * k if model.cfg.adapter.type == "stack" else d
    got_in = first.shape[1] if first.dim() == 2 else first.shape[1]
    if got_in != expected_in:
        raise ValueError(f"adapter input {got_in} != encoder output size {d} (x{k} stacked frames)")
    hidden = model.llm.config.hidden_size
    out = [m for m in model.adapter.modules() if isinstance(m, nn.Linear)][-1].out_features
    if out != hidden:
        raise ValueError(f"adapter output {out} != LLM hidden size {hidden}")
    rows = model.embedding.weight.shape[0]
    if len(tokenizer) > rows:
        raise ValueError(f"the tokenizer has {len(tokenizer)} entries but the LLM embedding only {rows} rows: "
                         f"tokenizer and model come from different checkpoints")
    for name in ("eos_token_id", "pad_token_id"):
        value = getattr(tokenizer, name)
        if value is not None and value >= rows:
            raise ValueError(f"tokenizer {name} {value} is outside the LLM embedding ({rows} rows)")
