"""Multi-head attention of WeNet's Transformer decoder and Conformer encoder (facts §2.3, §2.5).

:class:`MultiHeadedAttention` is scaled dot-product attention (Vaswani et al. 2017, §3.2.2) with biases on
q, k, v and out. :class:`RelPositionMultiHeadedAttention` is WeNet's ``rel_selfattn`` (Conformer, Gulati et
al. 2020, §2.1, with Transformer-XL's u/v biases, Dai et al. 2019, §3.3) **without rel_shift**:

    ac = (q + pos_bias_u) k^T,  bd = (q + pos_bias_v) p^T,  p = linear_pos(pos_emb) (no bias)
    scores = (ac + bd) / sqrt(d_k)

so bd depends on the absolute key position. Only keys are masked: masked scores are -inf, the softmax
runs in (at least) float32 and masked probabilities are then set to 0, so a fully masked row is zeros.
With ``use_sdpa`` the same math runs through ``F.scaled_dot_product_attention`` with bd (and the mask)
as an additive float bias.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from wenet_llm.models.aed.dropout import Dropout


def _masked_softmax_(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """scores (B, H, Lq, Lk), mask broadcastable bool (True = valid) -> probabilities in scores' dtype.

    Masks ``scores`` in place (callers pass a fresh matmul output, which autograd does not keep).
    """
    # float32 at least (fp16/bf16 scores), but never downcast float64.
    dtype = torch.promote_types(scores.dtype, torch.float32)
    invalid = ~mask
    probs = torch.softmax(scores.masked_fill_(invalid, float("-inf")).to(dtype), dim=-1)
    # exp(-inf) is already 0 wherever a row has a valid key; only fully masked rows (NaN) need the fill.
    if not bool(mask.any(dim=-1).all()):
        probs = probs.masked_fill(invalid, 0.0)
    return probs.to(scores.dtype)


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    # A large finite negative (not -inf) keeps a fully masked row finite in SDPA.
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


class MultiHeadedAttention(nn.Module):
    def __init__(self, n_head: int, n_feat: int, dropout_rate: float, use_sdpa: bool = False):
        super().__init__()
        if n_feat % n_head:
            raise ValueError(f"model dim {n_feat} is not divisible by {n_head} heads")
        self.h = n_head
        self.d_k = n_feat // n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout_rate = dropout_rate
        self.dropout = Dropout(dropout_rate)
        self.use_sdpa = use_sdpa

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.h, self.d_k).transpose(1, 2)  # (B, T, D) -> (B, H, T, d_k)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = x.shape
        return self.linear_out(x.transpose(1, 2).reshape(b, t, self.h * self.d_k))  # (B, H, T, d_k) -> (B, T, D)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                pos: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> torch.Tensor:
        """q (B, H, Lq, d_k) (u-bias already added), k/v (B, H, Lk, d_k), mask (B, 1|Lq, Lk),
        pos = (q_v (B, H, Lq, d_k), p (1, H, Lk, d_k)) for the positional term bd = q_v p^T, or None
        -> merged output (B, Lq, D)."""
        mask = mask.unsqueeze(1)  # (B, 1, 1|Lq, Lk): broadcast over heads
        if self.use_sdpa:
            attn_bias = _additive_mask(mask, q.dtype)
            if pos is not None:
                q_v, p = pos
                attn_bias = attn_bias + torch.matmul(q_v, p.transpose(-2, -1)) / math.sqrt(self.d_k)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_bias, dropout_p=self.dropout_rate if self.training else 0.0,
                scale=1.0 / math.sqrt(self.d_k),
            )
            empty_rows = ~mask.any(dim=-1, keepdim=True)  # SDPA spreads such a row evenly; WeNet zeroes it
            if bool(empty_rows.any()):
                out = out.masked_fill(empty_rows, 0.0)
            return self._merge(out)
        if pos is None:
            scores = torch.matmul(q, k.transpose(-2, -1))  # (B, H, Lq, Lk)
        else:
            # ac + bd = [q_u, q_v] [k, p]^T: one matmul over 2 d_k instead of two and an add.
            q_v, p = pos
            scores = torch.matmul(torch.cat([q, q_v], dim=-1),
                                  torch.cat([k, p.expand_as(k)], dim=-1).transpose(-2, -1))
        probs = _masked_softmax_(scores.div_(math.sqrt(self.d_k)), mask)
        return self._merge(torch.matmul(self.dropout(probs), v))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """query (B, Lq, D), key/value (B, Lk, D), mask (B, 1|Lq, Lk) bool -> (B, Lq, D)."""
        q = self._heads(self.linear_q(query))
        k = self._heads(self.linear_k(key))
        v = self._heads(self.linear_v(value))
        return self._attend(q, k, v, mask)

    def key_value(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, Lk, D) -> key and value heads (B, H, Lk, d_k), for :meth:`attend` (incremental decoding)."""
        return self._heads(self.linear_k(x)), self._heads(self.linear_v(x))

    def attend(self, query: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """query (B, Lq, D) against heads from :meth:`key_value`, mask (B|1, 1|Lq, Lk) bool -> (B, Lq, D)."""
        return self._attend(self._heads(self.linear_q(query)), k, v, mask)


class RelPositionMultiHeadedAttention(MultiHeadedAttention):
    def __init__(self, n_head: int, n_feat: int, dropout_rate: float, use_sdpa: bool = False):
        super().__init__(n_head, n_feat, dropout_rate, use_sdpa)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.empty(self.h, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        """Self-attention. x (B, T', D), mask (B, 1, T') bool, pos_emb (1, T', D) -> (B, T', D)."""
        q = self._heads(self.linear_q(x))
        k = self._heads(self.linear_k(x))
        v = self._heads(self.linear_v(x))
        p = self._heads(self.linear_pos(pos_emb))  # (1, H, T', d_k)
        q_u = q + self.pos_bias_u.unsqueeze(1)  # (H, 1, d_k) broadcast over positions
        q_v = q + self.pos_bias_v.unsqueeze(1)
        return self._attend(q_u, k, v, mask, pos=(q_v, p))  # bd = q_v p^T: no rel_shift (WeNet)
