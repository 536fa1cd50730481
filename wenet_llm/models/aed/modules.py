"""Feed-forward and convolution modules of the Conformer block (Gulati et al. 2020, §2.2-2.3; facts §2.2, §2.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wenet_llm.models.aed.dropout import Dropout

ACTIVATIONS = {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU}


def make_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation_type {name!r}; valid: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class PositionwiseFeedForward(nn.Module):
    """``w_2(dropout(act(w_1 x)))``; keys ``w_1``, ``w_2``."""

    def __init__(self, d_model: int, hidden: int, dropout_rate: float, activation: nn.Module):
        super().__init__()
        self.w_1 = nn.Linear(d_model, hidden)
        self.activation = activation
        self.dropout = Dropout(dropout_rate)
        self.w_2 = nn.Linear(hidden, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> (B, T, D)."""
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


class ConvolutionModule(nn.Module):
    """Pointwise(C->2C) -> GLU -> depthwise(k) -> BatchNorm|LayerNorm -> act -> pointwise(C->C).

    Padded frames are zeroed before and after, as WeNet does. pointwise_conv1 has a bias, so padded
    frames are no longer zero when they reach the depthwise convolution and leak into the last
    (kernel-1)/2 valid frames: an utterance then decodes slightly differently alone and in a padded
    batch. ``mask_after_glu`` (a wenet_llm extension, off for WeNet checkpoints) zeroes them again
    before the depthwise convolution, which makes the module exactly padding invariant.
    """

    def __init__(self, channels: int, kernel_size: int, activation: nn.Module, norm: str = "batch_norm",
                 mask_after_glu: bool = False):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"cnn_module_kernel must be odd, got {kernel_size}")
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, 1)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=channels)
        if norm == "batch_norm":
            self.norm: nn.Module = nn.BatchNorm1d(channels)
        elif norm == "layer_norm":
            self.norm = nn.LayerNorm(channels)
        else:
            raise ValueError(f"unknown cnn_module_norm {norm!r}; valid: ['batch_norm', 'layer_norm']")
        self.use_layer_norm = norm == "layer_norm"
        self.pointwise_conv2 = nn.Conv1d(channels, channels, 1)
        self.activation = activation
        self.mask_after_glu = mask_after_glu

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, T', C), mask (B, 1, T') bool -> (B, T', C) with padded frames zero.

        The pointwise convolutions run as matrix products on (B, T', C), their natural layout, which
        avoids two layout conversions per call (about 1.5x faster on CPU); the weights keep WeNet's
        Conv1d shapes and names.
        """
        invalid = ~mask.transpose(1, 2)  # (B, T', 1)
        x = x.masked_fill(invalid, 0.0)
        x = F.glu(F.linear(x, self.pointwise_conv1.weight.squeeze(-1), self.pointwise_conv1.bias), dim=-1)
        if self.mask_after_glu:
            x = x.masked_fill(invalid, 0.0)
        x = self.depthwise_conv(x.transpose(1, 2))  # (B, C, T')
        if self.use_layer_norm:
            x = self.activation(self.norm(x.transpose(1, 2)))  # (B, T', C)
        else:
            x = self.activation(self.norm(x)).transpose(1, 2)
        x = F.linear(x, self.pointwise_conv2.weight.squeeze(-1), self.pointwise_conv2.bias)
        return x.masked_fill(invalid, 0.0)
