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

    def forward(self, x: torch.Tensor, tgt_mask: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor) -> torch.Tensor:
        """x (B, L, D), tgt_mask (B|1, L, L), memory (B, T', D), memory_mask (B, 1, T') -> (B, L, D)."""
        residual = x
        x_norm = self.norm1(x) if self.normalize_before else x
        y = residual + self.dropout(self.self_attn(x_norm, x_norm, x_norm, tgt_mask))
        if not self.normalize_before:
            y = self.norm1(y)
        y_in = self.norm2(y) if self.normalize_before else y
        y = y + self.dropout(self.src_attn(y_in, memory, memory, memory_mask))
        return self._feed_forward(y)

    def forward_step(self, x: torch.Tensor, past: Optional[tuple[torch.Tensor, torch.Tensor]],
                     memory_kv: tuple[torch.Tensor, torch.Tensor],
                     memory_mask: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Incremental decoding: the Ln newest positions of R prefixes, the earlier Lp ones held in ``past``.

        x (R, Ln, D) their inputs; past None or this layer's self-attention keys and values of the Lp
        earlier positions ((R, H, Lp, d_k) each); memory_kv ``src_attn.key_value(memory)`` of U utterances
        ((U, H, T', d_k) each), R = U*W with rows u*W .. u*W+W-1 belonging to utterance u; memory_mask
        (U, 1, T') -> outputs (R, Ln, D) and the keys and values of all Lp+Ln positions.
        """
        residual = x
        x_norm = self.norm1(x) if self.normalize_before else x
        k, v = self.self_attn.key_value(x_norm)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        rows, new, dim = x.shape
        total = k.size(2)
        mask = causal_mask(total, x.device)[total - new :].unsqueeze(0)  # (1, Ln, Lp+Ln)
        y = residual + self.dropout(self.self_attn.attend(x_norm, k, v, mask))
        if not self.normalize_before:
            y = self.norm1(y)
        y_in = self.norm2(y) if self.normalize_before else y
        # The W prefixes of an utterance attend to the same memory: its W*Ln queries.
        utts = memory_kv[0].size(0)
        src = self.src_attn.attend(y_in.reshape(utts, -1, dim), *memory_kv, memory_mask)  # (U, W*Ln, D)
        y = y + self.dropout(src.view(rows, new, dim))
        return self._feed_forward(y), (k, v)

    def _feed_forward(self, y: torch.Tensor) -> torch.Tensor:
        if not self.normalize_before:
            y = self.norm2(y)
        y_in = self.norm3(y) if self.normalize_before else y
        y = y + self.dropout(self.feed_forward(y_in))
        if not self.normalize_before:
            y = self.norm3(y)
        return y


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

    def project_memory(self, memory: torch.Tensor) -> list[torch.Tensor]:
        """memory (U, T', D) -> per layer the source attention's keys and values ((U, H, T', d_k) each),
        for :meth:`forward_one_step`: a search computes them once instead of at every step."""
        return [t for layer in self.decoders for t in layer.src_attn.key_value(memory)]

    def forward_one_step(self, memory_kv: list[torch.Tensor], memory_mask: torch.Tensor, ys: torch.Tensor,
                         cache: Optional[list[torch.Tensor]] = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Next-token scores for beam search.

        memory_kv ``project_memory(memory)`` of U utterances, memory_mask (U, 1, T'), ys (U*W, L) W
        prefixes per utterance (rows u*W .. u*W+W-1 belong to utterance u), all of length L and starting
        with sos; cache None or the list returned for ``ys[:, :-1]`` (then only the last position is computed).
        Returns log-probabilities of the next token (U*W, V) and the new cache: per layer the self-attention
        keys and values of all L positions ((U*W, H, L, d_k) each), row-aligned with ``ys`` so that a search
        reorders it with its hypotheses.
        """
        start = 0 if cache is None else ys.size(1) - 1
        x = self.embed[1](self.embed[0](ys[:, start:]), offset=start)  # (U*W, L or 1, D)
        new_cache = []
        for i, layer in enumerate(self.decoders):
            past = None if cache is None else (cache[2 * i], cache[2 * i + 1])
            x, (k, v) = layer.forward_step(x, past, (memory_kv[2 * i], memory_kv[2 * i + 1]), memory_mask)
            new_cache += [k, v]
        y = x[:, -1]
        if self.normalize_before:
            y = self.after_norm(y)
        return torch.log_softmax(self.output_layer(y), dim=-1), new_cache
