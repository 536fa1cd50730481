"""Sinusoidal position encodings (Vaswani et al. 2017, §3.5) as WeNet uses them (facts §2.1.4, §2.5).

- :class:`PositionalEncoding` (decoder, ``decoder.embed.1``): ``x * sqrt(D) + pe[:L]``, absolute and added.
- :class:`RelPositionalEncoding` (encoder ``rel_pos``, ``encoder.embed.pos_enc``): ``x * sqrt(D)``; the rows
  ``pe[:T']`` are returned as ``pos_emb`` for the attention and **not** added.

Both keep ``pe`` (1, 5000, D) as a persistent buffer, as WeNet >= v3.1.0 saves it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wenet_llm.models.aed.dropout import Dropout

MAX_LEN = 5000  # WeNet's table length: about 200 s after 4x subsampling


def sinusoid_table(max_len: int, d_model: int) -> torch.Tensor:
    """(1, max_len, D) float32: pe[p, 2i] = sin(p * exp(2i * -ln(10000)/D)), pe[p, 2i+1] = cos(same)."""
    position = torch.arange(0, max_len, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, d_model, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


class _SinusoidBase(nn.Module):
    def __init__(self, d_model: int, dropout_rate: float, max_len: int = MAX_LEN):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.max_len = max_len
        self.dropout = Dropout(dropout_rate)
        self.register_buffer("pe", sinusoid_table(max_len, d_model))

    def reset_pe(self) -> None:
        """Recompute the table (checkpoints before WeNet v3.1.0 do not hold it)."""
        self.pe.copy_(sinusoid_table(self.max_len, self.d_model).to(self.pe.device))

    def position_encoding(self, length: int) -> torch.Tensor:
        if length > self.max_len:
            raise ValueError(
                f"sequence of {length} positions exceeds the position table ({self.max_len}); "
                f"split the input into shorter segments"
            )
        return self.pe[:, :length]


class PositionalEncoding(_SinusoidBase):
    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """x (B, L, D) at positions offset..offset+L-1 -> (B, L, D) = dropout(x * sqrt(D) + pe[offset:offset+L])."""
        pos = self.position_encoding(offset + x.size(1))[:, offset:].to(x.dtype)
        return self.dropout(x * self.xscale + pos)


class RelPositionalEncoding(_SinusoidBase):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T', D) -> (dropout(x * sqrt(D)) (B, T', D), dropout(pe[:T']) (1, T', D))."""
        pos_emb = self.position_encoding(x.size(1)).to(x.dtype)
        return self.dropout(x * self.xscale), self.dropout(pos_emb)
