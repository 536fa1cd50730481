"""Masks shared by the AED modules. Convention everywhere: True = valid (attend / keep)."""

from __future__ import annotations

import torch


def valid_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True where t < length."""
    max_len = int(lengths.max().item()) if max_len is None else max_len
    t = torch.arange(max_len, device=lengths.device)
    return t.unsqueeze(0) < lengths.unsqueeze(1)


def causal_mask(size: int, device: torch.device | None = None) -> torch.Tensor:
    """(L, L) bool lower-triangular: query i may attend keys j <= i."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()
