"""Transformer attention decoder (Vaswani et al. 2017, §3.1) in WeNet's layout and math (facts §1, §2.5).

``Embedding(V, D)(ys) * sqrt(D) + pe[:L]`` -> N blocks (pre-LN with ``normalize_before``):

    x = x + dropout(SelfAttn(LN1(x), causal & padding mask))
    x = x + dropout(SrcAttn(LN2(x), memory, memory_mask))
    x = x + dropout(FFN_relu(LN3(x)))

-> ``after_norm`` -> ``output_layer`` (raw logits). The input ``ys_in`` is [sos] + y padded with eos.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from wenet_llm.config.aed import TransformerDecoderConfig
from wenet_llm.models.aed.attention import MultiHeadedAttention
from wenet_llm.models.aed.dropout import Dropout
from wenet_llm.models.aed.embedding import PositionalEncoding
from wenet_llm.models.aed.masks import causal_mask, valid_mask
from wenet_llm.models.aed.modules import PositionwiseFeedForward


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, cfg: TransformerDecoderConfig):
        super().__init__()
        self.self_attn = MultiHeadedAttention(cfg.attention_heads, d_model, cfg.self_attention_dropout_rate,
                                              cfg.use_sdpa)
        self.src_attn = MultiHeadedAttention(cfg.attention_heads, d_model, cfg.src_attention_dropout_rate,
                                             cfg.use_sdpa)
        self.feed_forward = PositionwiseFeedForward(d_model, cfg.linear_units, cfg.dropout_rate, nn.ReLU())
        self.norm1 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(d_model, eps=1e-5)
        self.norm3 = nn.LayerNorm(d_model, eps=1e-5)
        self.dropout = Dropout(cfg.dropout_rate)
        self.normalize_before = cfg.normalize_before

    def forward(self, x: torch.Tensor, tgt_mask: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor,
                cache: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x (B, L, D), tgt_mask (B|1, L, L), memory (B, T', D), memory_mask (B, 1, T') -> (B, L, D).

        With ``cache`` (B, L-1, D), this layer's outputs for the first L-1 positions, only the last
        position is computed and the result is cache + it (B, L, D).
        """
        residual = x
        x_norm = self.norm1(x) if self.normalize_before else x
        if cache is None:
            q, q_res, q_mask = x_norm, residual, tgt_mask
        else:
            q, q_res, q_mask = x_norm[:, -1:], residual[:, -1:], tgt_mask[:, -1:]
        y = q_res + self.dropout(self.self_attn(q, x_norm, x_norm, q_mask))
        if not self.normalize_before:
            y = self.norm1(y)

        y_in = self.norm2(y) if self.normalize_before else y
        y = y + self.dropout(self.src_attn(y_in, memory, memory, memory_mask))
        if not self.normalize_before:
            y = self.norm2(y)

        y_in = self.norm3(y) if self.normalize_before else y
        y = y + self.dropout(self.feed_forward(y_in))
        if not self.normalize_before:
            y = self.norm3(y)
        return y if cache is None else torch.cat([cache, y], dim=1)


class TransformerDecoder(nn.Module):
    """WeNet ``decoder: transformer``."""

    def __init__(self, vocab_size: int, d_model: int, cfg: TransformerDecoderConfig):
        super().__init__()
        # ModuleList (not Sequential) only for the WeNet key names embed.0 / embed.1.
        self.embed = nn.ModuleList([nn.Embedding(vocab_size, d_model),
                                    PositionalEncoding(d_model, cfg.positional_dropout_rate)])
        # The embedding is scaled by sqrt(d_model) in PositionalEncoding. torch's default N(0, 1) init
        # (what WeNet keeps) then makes each token's embedding ~sqrt(d_model) times larger than what
        # attention adds to the residual stream, and the decoder stays near a bigram model for hundreds
        # of steps (a 2-layer decoder learning 16 sentences: 35 % accuracy after 150 steps, 94 % with
        # this init). N(0, 1/d_model) gives unit-scale inputs (Vaswani et al. 2017, §3.4). Init only:
        # checkpoints, including WeNet's, load unchanged.
        nn.init.normal_(self.embed[0].weight, std=d_model ** -0.5)
        self.after_norm = nn.LayerNorm(d_model, eps=1e-5)
        self.output_layer = nn.Linear(d_model, vocab_size)
        self.decoders = nn.ModuleList(DecoderLayer(d_model, cfg) for _ in range(cfg.num_blocks))
        self.normalize_before = cfg.normalize_before
        self.gradient_checkpointing = cfg.gradient_checkpointing

    def _embed(self, ys: torch.Tensor) -> torch.Tensor:
        return self.embed[1](self.embed[0](ys))

    def forward(self, memory: torch.Tensor, memory_mask: torch.Tensor, ys_in_pad: torch.Tensor,
                ys_in_lens: torch.Tensor) -> torch.Tensor:
        """memory (B, T', D), memory_mask (B, 1, T') bool, ys_in_pad (B, L) ids, ys_in_lens (B,)
        -> logits (B, L, V)."""
        length = ys_in_pad.size(1)
        tgt_mask = valid_mask(ys_in_lens, length).unsqueeze(1) & causal_mask(length, ys_in_pad.device)  # (B, L, L)
        x = self._embed(ys_in_pad)
        for layer in self.decoders:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, tgt_mask, memory, memory_mask, use_reentrant=False)
            else:
                x = layer(x, tgt_mask, memory, memory_mask)
        if self.normalize_before:
            x = self.after_norm(x)
        return self.output_layer(x)

    def forward_one_step(self, memory: torch.Tensor, memory_mask: torch.Tensor, ys: torch.Tensor,
                         cache: Optional[list[torch.Tensor]] = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Next-token scores for beam search.

        memory (B, T', D), memory_mask (B, 1, T'), ys (B, L) prefixes (all of length L, starting with sos),
        cache: None or the list returned by the previous step (per layer (B, L-1, D)).
        Returns log-probabilities of the next token (B, V) and the new cache (per layer (B, L, D)).
        """
        length = ys.size(1)
        tgt_mask = causal_mask(length, ys.device).unsqueeze(0)  # (1, L, L)
        x = self._embed(ys)
        new_cache = []
        for i, layer in enumerate(self.decoders):
            x = layer(x, tgt_mask, memory, memory_mask, None if cache is None else cache[i])
            new_cache.append(x)
        y = x[:, -1]
        if self.normalize_before:
            y = self.after_norm(y)
        return torch.log_softmax(self.output_layer(y), dim=-1), new_cache
