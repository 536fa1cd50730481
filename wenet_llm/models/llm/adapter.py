"""Adapters: encoder frames -> LLM input positions (Index-ASR, section 2: temporal downsampling by frame
stacking, then a projection into the LLM's embedding space).

Legend: B batch, T' encoder frames (40 ms with a 4x conv front end), N = ceil(T' / k) LLM positions,
D encoder dim, H adapter hidden size, E LLM hidden size.

- :class:`StackAdapter`: concatenate k consecutive frames (the last group zero-padded), Linear -> ReLU ->
  Linear. k=2 turns 40 ms frames into 80 ms positions.
- :class:`Conv1dAdapter`: a Conv1d with kernel = stride = k (a learned frame stacking), ReLU, Linear.

Both return positions for every frame group that holds at least one valid frame, with the mask of
valid positions (True = valid); padded positions are zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wenet_llm.config.llm import AdapterConfig


@dataclass
class AdapterOutput:
    embeds: torch.Tensor  # (B, N, E)
    lengths: torch.Tensor  # (B,)


def downsampled_length(lengths: torch.Tensor | int, k: int):
    """ceil(T' / k): a trailing partial group still becomes a position."""
    return (lengths + k - 1) // k


class StackAdapter(nn.Module):
    def __init__(self, input_size: int, output_size: int, cfg: AdapterConfig):
        super().__init__()
        self.k = cfg.downsample
        self.linear1 = nn.Linear(input_size * self.k, cfg.hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.hidden_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> AdapterOutput:
        """x (B, T', D) with padded frames zeroed, lengths (B,)."""
        b, t, d = x.shape
        n = (t + self.k - 1) // self.k
        if n * self.k != t:
            x = nn.functional.pad(x, (0, 0, 0, n * self.k - t))  # (B, N*k, D)
        x = x.reshape(b, n, self.k * d)  # (B, N, k*D): frames t*k .. t*k+k-1 side by side
        out_lengths = downsampled_length(lengths, self.k)
        y = self.linear2(self.dropout(self.activation(self.linear1(x))))  # (B, N, E)
        return AdapterOutput(_zero_padding(y, out_lengths), out_lengths)


class Conv1dAdapter(nn.Module):
    def __init__(self, input_size: int, output_size: int, cfg: AdapterConfig):
        super().__init__()
        self.k = cfg.downsample
        self.conv = nn.Conv1d(input_size, cfg.hidden_size, kernel_size=self.k, stride=self.k)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear = nn.Linear(cfg.hidden_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> AdapterOutput:
        """x (B, T', D) with padded frames zeroed, lengths (B,)."""
        t = x.shape[1]
        n = (t + self.k - 1) // self.k
        if n * self.k != t:
            x = nn.functional.pad(x, (0, 0, 0, n * self.k - t))  # (B, N*k, D)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # (B, N, H)
        out_lengths = downsampled_length(lengths, self.k)
        y = self.linear(self.dropout(self.activation(h)))  # (B, N, E)
        return AdapterOutput(_zero_padding(y, out_lengths), out_lengths)


def _zero_padding(y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    valid = torch.arange(y.shape[1], device=y.device)[None, :] < lengths[:, None]  # (B, N)
    return y * valid.unsqueeze(-1).to(y.dtype)


ADAPTERS = {"stack": StackAdapter, "conv1d": Conv1dAdapter}


def build_adapter(input_size: int, output_size: int, cfg: AdapterConfig) -> nn.Module:
    if cfg.type not in ADAPTERS:
        raise ValueError(f"unknown adapter type {cfg.type!r}; valid: {sorted(ADAPTERS)}")
    return ADAPTERS[cfg.type](input_size, output_size, cfg)
