"""Attention-decoder loss and accuracy as WeNet computes them (facts §2.6).

Label smoothing (Szegedy et al. 2016, §7) in WeNet's KL form: the target puts 1-eps on the true class
and eps/(V-1) on every other class (not torch's 1-eps+eps/V and eps/V), and the loss is
KL(target || softmax(logits)) summed over non-ignored positions, divided by the batch size (or by the
number of tokens with ``normalize_length``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_ID = -1


class LabelSmoothingLoss(nn.Module):
    def __init__(self, size: int, smoothing: float, normalize_length: bool = False, ignore_id: int = IGNORE_ID):
        super().__init__()
        self.size = size
        self.smoothing = smoothing
        self.confidence = 1.0 - smoothing
        self.normalize_length = normalize_length
        self.ignore_id = ignore_id

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, L, V), target (B, L) with ``ignore_id`` padding -> loss (scalar)."""
        batch_size = logits.size(0)
        logits = logits.reshape(-1, self.size)  # (B*L, V)
        target = target.reshape(-1)
        ignore = target == self.ignore_id
        true_dist = torch.full_like(logits, self.smoothing / (self.size - 1))
        true_dist.scatter_(1, target.masked_fill(ignore, 0).unsqueeze(1), self.confidence)
        # kl_div uses xlogy, so a zero target probability (smoothing 0) contributes 0, not NaN.
        kl = F.kl_div(torch.log_softmax(logits, dim=-1), true_dist, reduction="none")
        denom = (~ignore).sum() if self.normalize_length else batch_size
        return kl.masked_fill(ignore.unsqueeze(1), 0.0).sum() / denom


def th_accuracy(logits: torch.Tensor, target: torch.Tensor, ignore_id: int = IGNORE_ID) -> torch.Tensor:
    """Argmax accuracy over non-ignored positions (eos included). logits (B, L, V), target (B, L) -> 0-dim."""
    valid = target != ignore_id
    correct = (logits.argmax(dim=-1) == target) & valid
    return correct.sum().float() / valid.sum().clamp(min=1).float()
