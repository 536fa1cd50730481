"""Hybrid CTC/attention ASR model (Watanabe et al. 2017, §3; WeNet's ``ASRModel``, facts §2.6).

loss = ctc_weight * loss_ctc + (1 - ctc_weight) * loss_att, where loss_ctc is CTC over the encoder output
and loss_att the label-smoothed KL of the attention decoder on ``ys_out`` = y + [eos] (padded with -1),
fed with ``ys_in`` = [sos] + y (padded with eos). State-dict keys are WeNet's (``encoder.*``,
``decoder.*``, ``ctc.*``), so WeNet checkpoints load directly (see :mod:`.wenet_compat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.models.aed.cmvn import GlobalCMVN
from wenet_llm.models.aed.conformer_encoder import ConformerEncoder
from wenet_llm.models.aed.ctc import CTC
from wenet_llm.models.aed.losses import IGNORE_ID, LabelSmoothingLoss, th_accuracy
from wenet_llm.models.aed.transformer_decoder import TransformerDecoder


@dataclass
class AEDOutput:
    """Scalars; ``loss_att``/``acc`` are None when ctc_weight is 1, ``loss_ctc`` when it is 0."""

    loss: torch.Tensor
    loss_att: Optional[torch.Tensor]
    loss_ctc: Optional[torch.Tensor]
    acc: Optional[torch.Tensor]


def add_sos_eos(ys_pad: torch.Tensor, ys_lens: torch.Tensor, sos: int, eos: int,
                ignore_id: int = IGNORE_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """ys_pad (B, L) padded with ``ignore_id`` -> ys_in (B, L+1) = [sos]+y padded with eos,
    ys_out (B, L+1) = y+[eos] padded with ``ignore_id``."""
    b, length = ys_pad.shape
    pos = torch.arange(length + 1, device=ys_pad.device).unsqueeze(0)  # (1, L+1)
    lens = ys_lens.unsqueeze(1)
    body = torch.cat([ys_pad, ys_pad.new_full((b, 1), ignore_id)], dim=1)  # (B, L+1)
    ys_out = torch.where(pos < lens, body, torch.where(pos == lens, eos, ignore_id))
    shifted = torch.cat([ys_pad.new_full((b, 1), sos), ys_pad], dim=1)  # (B, L+1)
    ys_in = torch.where(pos <= lens, shifted, eos)
    return ys_in, ys_out


class ASRModel(nn.Module):
    """Conformer encoder + Transformer decoder + CTC.

    ``cmvn_mean``/``cmvn_istd`` (F,) set the encoder's GlobalCMVN; when omitted (the model is about to be
    loaded from a checkpoint, which holds them) they start as mean 0, istd 1.
    """

    def __init__(self, cfg: AEDModelConfig, cmvn_mean: Optional[torch.Tensor] = None,
                 cmvn_istd: Optional[torch.Tensor] = None):
        super().__init__()
        if cfg.vocab_size < 2:
            raise ValueError(f"vocab_size is {cfg.vocab_size}: set it, or build the model through the tokenizer")
        self.cfg = cfg
        d = cfg.encoder_conf.output_size
        cmvn = None
        if cfg.global_cmvn:
            mean = torch.zeros(cfg.input_dim) if cmvn_mean is None else cmvn_mean
            istd = torch.ones(cfg.input_dim) if cmvn_istd is None else cmvn_istd
            if mean.shape != (cfg.input_dim,) or istd.shape != (cfg.input_dim,):
                raise ValueError(f"CMVN stats of shape {tuple(mean.shape)}/{tuple(istd.shape)} do not match "
                                 f"input_dim {cfg.input_dim}")
            cmvn = GlobalCMVN(mean, istd)
        elif cmvn_mean is not None or cmvn_istd is not None:
            raise ValueError("CMVN stats were given but the config has global_cmvn: false")
        self.encoder = ConformerEncoder(cfg.input_dim, cfg.encoder_conf, cmvn)
        self.decoder = TransformerDecoder(cfg.vocab_size, d, cfg.decoder_conf)
        self.ctc = CTC(cfg.vocab_size, d, cfg.blank_id)
        self.criterion_att = LabelSmoothingLoss(cfg.vocab_size, cfg.model_conf.lsm_weight,
                                                cfg.model_conf.length_normalized_loss)
        self.vocab_size = cfg.vocab_size
        self.sos = cfg.sos
        self.eos = cfg.eos
        self.blank_id = cfg.blank_id
        self.ignore_id = IGNORE_ID
        self.ctc_weight = cfg.model_conf.ctc_weight

    def ctc_log_probs(self, encoder_out: torch.Tensor) -> torch.Tensor:
        """encoder_out (B, T', D) -> CTC log-probabilities (B, T', V)."""
        return self.ctc.log_softmax(encoder_out)

    def forward(self, feats: torch.Tensor, feats_lengths: torch.Tensor, text: torch.Tensor,
                text_lengths: torch.Tensor) -> AEDOutput:
        """feats (B, T, F) zero-padded, feats_lengths (B,), text (B, L) padded with -1, text_lengths (B,)."""
        encoder_out, encoder_mask = self.encoder(feats, feats_lengths)
        encoder_out_lens = encoder_mask.squeeze(1).sum(1)  # (B,)
        loss_att = acc = loss_ctc = None
        if self.ctc_weight != 1.0:
            ys_in, ys_out = add_sos_eos(text, text_lengths, self.sos, self.eos, self.ignore_id)
            logits = self.decoder(encoder_out, encoder_mask, ys_in, text_lengths + 1)  # (B, L+1, V)
            loss_att = self.criterion_att(logits, ys_out)
            acc = th_accuracy(logits.detach(), ys_out, self.ignore_id)
        if self.ctc_weight != 0.0:
            loss_ctc = self.ctc(encoder_out, encoder_out_lens, text, text_lengths)
        if loss_ctc is None:
            loss = loss_att
        elif loss_att is None:
            loss = loss_ctc
        else:
            loss = self.ctc_weight * loss_ctc + (1.0 - self.ctc_weight) * loss_att
        return AEDOutput(loss=loss, loss_att=loss_att, loss_ctc=loss_ctc, acc=acc)
