"""Global CMVN applied inside the encoder, before subsampling (WeNet facts §2.1.2, §3).

The statistics are buffers ``mean`` and ``istd`` (1/std) so that they travel in the checkpoint, which is
authoritative; reading a CMVN file is the loader's job, not the model's.
"""

from __future__ import annotations

import torch
from torch import nn


class GlobalCMVN(nn.Module):
    """``x -> (x - mean) * istd`` on every frame, padded ones included (their outputs are masked later)."""

    def __init__(self, mean: torch.Tensor, istd: torch.Tensor):
        super().__init__()
        if mean.shape != istd.shape or mean.dim() != 1:
            raise ValueError(f"CMVN mean and istd must be equal 1-D shapes, got {tuple(mean.shape)} and "
                             f"{tuple(istd.shape)}")
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("istd", istd.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, F) -> (B, T, F)."""
        return (x - self.mean) * self.istd
