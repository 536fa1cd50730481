"""CTC head (Graves et al. 2006) as WeNet computes it (facts §2.6): ``ctc_lo`` then log-softmax;
``CTCLoss(blank, reduction='sum', zero_infinity=True)`` divided by the batch size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CTC(nn.Module):
    def __init__(self, vocab_size: int, d_model: int, blank_id: int = 0):
        super().__init__()
        self.ctc_lo = nn.Linear(d_model, vocab_size)
        self.blank_id = blank_id

    def log_softmax(self, hs: torch.Tensor) -> torch.Tensor:
        """hs (B, T', D) -> log-probabilities (B, T', V)."""
        return F.log_softmax(self.ctc_lo(hs), dim=-1)

    def forward(self, hs: torch.Tensor, hs_lens: torch.Tensor, ys_pad: torch.Tensor,
                ys_lens: torch.Tensor) -> torch.Tensor:
        """hs (B, T', D), hs_lens (B,), ys_pad (B, L) padded with -1, ys_lens (B,) -> loss (scalar)."""
        log_probs = self.log_softmax(hs).transpose(0, 1)  # (T', B, V) as CTCLoss wants
        # Concatenated targets: the -1 padding never reaches the loss.
        valid = torch.arange(ys_pad.size(1), device=ys_pad.device).unsqueeze(0) < ys_lens.unsqueeze(1)
        targets = ys_pad[valid]
        log_probs = log_probs.to(torch.promote_types(log_probs.dtype, torch.float32))
        loss = F.ctc_loss(log_probs, targets.long(), hs_lens.long(), ys_lens.long(),
                          blank=self.blank_id, reduction="sum", zero_infinity=True)
        return loss / hs.size(0)


def ctc_greedy_search(log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0) -> list[list[int]]:
    """log_probs (B, T', V), lengths (B,) -> one token list per utterance."""
    best = log_probs.argmax(dim=-1).cpu()  # (B, T')
    hyps = []
    for b in range(best.shape[0]):
        path = best[b, : int(lengths[b])].tolist()
        hyp, prev = [], None
        for token in path:
            if token != prev and token != blank_id:
                hyp.append(token)
            prev = token
        hyps.append(hyp)
    return hyps
