"""Conformer encoder (Gulati et al. 2020, §2) in WeNet's layout and math (facts §1, §2.1-2.4).

Pipeline: GlobalCMVN -> Conv2d subsampling (4x/6x/8x) -> x * sqrt(D) with rel-pos rows -> N Conformer
blocks -> ``after_norm``. Each block with ``normalize_before`` (pre-LN), macaron FFNs (scale 0.5) and
the convolution module:

    x = x + 0.5 * dropout(FFN_mac(LN_ff_macaron(x)))
    x = x + dropout(RelMHSA(LN_mha(x), pos_emb, mask))
    x = x + dropout(Conv(LN_conv(x), mask))
    x = x + 0.5 * dropout(FFN(LN_ff(x)))
    x = LN_final(x)

Without macaron the FFN scale is 1.0; without the conv module there is no ``norm_conv``/``norm_final``.
With ``normalize_before`` false each LayerNorm moves after its residual add (post-LN). Padded output
frames are not zeroed; the returned mask says which frames are valid.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from wenet_llm.config.aed import ConformerEncoderConfig
from wenet_llm.models.aed.attention import RelPositionMultiHeadedAttention
from wenet_llm.models.aed.cmvn import GlobalCMVN
from wenet_llm.models.aed.dropout import Dropout
from wenet_llm.models.aed.embedding import RelPositionalEncoding
from wenet_llm.models.aed.masks import valid_mask
from wenet_llm.models.aed.modules import ConvolutionModule, PositionwiseFeedForward, make_activation
from wenet_llm.models.aed.subsampling import Conv2dSubsampling


@contextlib.contextmanager
def _no_running_stats_update(module: nn.Module) -> Iterator[None]:
    """While a checkpointed block is recomputed in backward, BatchNorm must not update its running stats
    a second time. Momentum 0 keeps them (batch statistics are still used, so the recomputation is
    identical); the step counter is restored on exit."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(bns, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


class ConformerEncoderLayer(nn.Module):
    def __init__(self, cfg: ConformerEncoderConfig):
        super().__init__()
        d = cfg.output_size
        self.self_attn = RelPositionMultiHeadedAttention(cfg.attention_heads, d, cfg.attention_dropout_rate,
                                                         cfg.use_sdpa)
        self.feed_forward = PositionwiseFeedForward(d, cfg.linear_units, cfg.dropout_rate,
                                                    make_activation(cfg.activation_type))
        self.feed_forward_macaron = (
            PositionwiseFeedForward(d, cfg.linear_units, cfg.dropout_rate, make_activation(cfg.activation_type))
            if cfg.macaron_style else None
        )
        self.conv_module = (
            ConvolutionModule(d, cfg.cnn_module_kernel, make_activation(cfg.activation_type), cfg.cnn_module_norm,
                              mask_after_glu=cfg.conv_mask_after_glu)
            if cfg.use_cnn_module else None
        )
        # Registration order = WeNet's state_dict order.
        self.norm_ff = nn.LayerNorm(d, eps=1e-5)
        self.norm_mha = nn.LayerNorm(d, eps=1e-5)
        if cfg.macaron_style:
            self.norm_ff_macaron = nn.LayerNorm(d, eps=1e-5)
        if cfg.use_cnn_module:
            self.norm_conv = nn.LayerNorm(d, eps=1e-5)
            self.norm_final = nn.LayerNorm(d, eps=1e-5)
        self.ff_scale = 0.5 if cfg.macaron_style else 1.0
        self.normalize_before = cfg.normalize_before
        self.dropout = Dropout(cfg.dropout_rate)

    def _residual(self, x: torch.Tensor, norm: nn.Module, fn, scale: float = 1.0) -> torch.Tensor:
        # add(alpha=) fuses the scaling into the residual sum (scale is 0.5 or 1: exact either way).
        if self.normalize_before:
            return torch.add(x, self.dropout(fn(norm(x))), alpha=scale)
        return norm(torch.add(x, self.dropout(fn(x)), alpha=scale))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, pos_emb: torch.Tensor) -> torch.Tensor:
        """x (B, T', D), mask (B, 1, T') bool, pos_emb (1, T', D) -> (B, T', D)."""
        if self.feed_forward_macaron is not None:
            x = self._residual(x, self.norm_ff_macaron, self.feed_forward_macaron, self.ff_scale)
        x = self._residual(x, self.norm_mha, lambda y: self.self_attn(y, mask, pos_emb))
        if self.conv_module is not None:
            x = self._residual(x, self.norm_conv, lambda y: self.conv_module(y, mask))
        x = self._residual(x, self.norm_ff, self.feed_forward, self.ff_scale)
        if self.conv_module is not None:
            x = self.norm_final(x)
        return x


class ConformerEncoder(nn.Module):
    """WeNet ``encoder: conformer``; ``cmvn`` is None when the model has no global CMVN."""

    def __init__(self, input_dim: int, cfg: ConformerEncoderConfig, cmvn: Optional[GlobalCMVN] = None):
        super().__init__()
        d = cfg.output_size
        self.global_cmvn = cmvn
        self.embed = Conv2dSubsampling(
            cfg.input_layer, input_dim, d, RelPositionalEncoding(d, cfg.positional_dropout_rate)
        )
        self.after_norm = nn.LayerNorm(d, eps=1e-5)  # kept (and saved) even when post-LN, as WeNet does
        self.encoders = nn.ModuleList(ConformerEncoderLayer(cfg) for _ in range(cfg.num_blocks))
        self.normalize_before = cfg.normalize_before
        self.gradient_checkpointing = cfg.gradient_checkpointing
        self.output_size = d

    def forward(self, xs: torch.Tensor, xs_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """xs (B, T, F) zero-padded features, xs_lens (B,) -> encoder_out (B, T', D), mask (B, 1, T') bool."""
        mask = valid_mask(xs_lens, xs.size(1)).unsqueeze(1)  # (B, 1, T)
        if self.global_cmvn is not None:
            xs = self.global_cmvn(xs)
        xs, pos_emb, mask = self.embed(xs, mask)
        for layer in self.encoders:
            if self.gradient_checkpointing and self.training:
                xs = checkpoint(layer, xs, mask, pos_emb, use_reentrant=False,
                                context_fn=lambda layer=layer: (contextlib.nullcontext(),
                                                                _no_running_stats_update(layer)))
            else:
                xs = layer(xs, mask, pos_emb)
        if self.normalize_before:
            xs = self.after_norm(xs)
        return xs, mask
