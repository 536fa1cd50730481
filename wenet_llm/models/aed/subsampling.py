"""Conv2d subsampling front ends of WeNet's encoder (``input_layer``; facts §2.1.3).

- ``conv2d`` (4x): Conv2d(1->D, k3, s2), ReLU, Conv2d(D->D, k3, s2), ReLU, then ``out.0`` Linear(D*F' -> D),
  F' = ((F-1)//2 - 1)//2. Keys ``embed.conv.0``, ``embed.conv.2``, ``embed.out.0``.
- ``conv2d6`` (6x): Conv2d(1->D, k3, s2), ReLU, Conv2d(D->D, k5, s3), ReLU, then ``linear`` Linear(D*F' -> D),
  F' = ((F-1)//2 - 2)//3. Keys ``embed.conv.0``, ``embed.conv.2``, ``embed.linear``.
- ``conv2d8`` (8x): three Conv2d(k3, s2) each followed by ReLU, then ``linear``,
  F' = (((F-1)//2 - 1)//2 - 1)//2. Keys ``embed.conv.0/.2/.4``, ``embed.linear``.

No padding anywhere. The (B, D, T', F') conv output is flattened channel-major to (B, T', D*F'). The
frame mask is subsampled by slicing: a k3/s2 conv keeps ``[2::2]``, a k5/s3 conv ``[4::3]`` (the index of
the last input frame each output frame sees). No dropout here; the position encoding (``embed.pos_enc``)
lives in this module as in WeNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from wenet_llm.models.aed.embedding import RelPositionalEncoding

# (kernel, stride) of each conv; the mask slice of a conv is [k-1::s].
_LAYERS = {
    "conv2d": ((3, 2), (3, 2)),
    "conv2d6": ((3, 2), (5, 3)),
    "conv2d8": ((3, 2), (3, 2), (3, 2)),
}
SUBSAMPLING_RATE = {"conv2d": 4, "conv2d6": 6, "conv2d8": 8}


def subsampled_length(length: int, input_layer: str) -> int:
    """Frames left after the front end's convolutions (also the valid output length of ``length`` frames)."""
    if input_layer not in _LAYERS:
        raise ValueError(f"unknown input_layer {input_layer!r}; valid: {sorted(_LAYERS)}")
    for k, s in _LAYERS[input_layer]:
        length = (length - k) // s + 1
    return length


class Conv2dSubsampling(nn.Module):
    """Subsampling by ``SUBSAMPLING_RATE[input_layer]`` along time (and frequency)."""

    def __init__(self, input_layer: str, idim: int, odim: int, pos_enc: RelPositionalEncoding):
        super().__init__()
        if input_layer not in _LAYERS:
            raise ValueError(f"unknown input_layer {input_layer!r}; valid: {sorted(_LAYERS)}")
        self.input_layer = input_layer
        self.layers = _LAYERS[input_layer]
        convs: list[nn.Module] = []
        in_ch = 1
        for k, s in self.layers:
            convs += [nn.Conv2d(in_ch, odim, k, s), nn.ReLU()]
            in_ch = odim
        self.conv = nn.Sequential(*convs)
        f_out = subsampled_length(idim, input_layer)
        if f_out < 1:
            raise ValueError(f"input dim {idim} is too small for {input_layer}")
        if input_layer == "conv2d":
            self.out = nn.Sequential(nn.Linear(odim * f_out, odim))  # key embed.out.0
        else:
            self.linear = nn.Linear(odim * f_out, odim)  # key embed.linear
        self.pos_enc = pos_enc

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, T, F), mask (B, 1, T) -> x (B, T', D), pos_emb (1, T', D), mask (B, 1, T')."""
        x = x.unsqueeze(1)  # (B, 1, T, F)
        if not torch.is_grad_enabled() and x.device.type == "cpu":
            x = self._channels_last_convs(x)
        else:
            x = self.conv(x)  # (B, D, T', F')
        b, c, t, f = x.shape
        x = x.transpose(1, 2).reshape(b, t, c * f)  # (B, T', D*F'), index c*F' + f
        x = self.out(x) if self.input_layer == "conv2d" else self.linear(x)
        x, pos_emb = self.pos_enc(x)
        for k, s in self.layers:
            mask = mask[:, :, k - 1::s]
        return x, pos_emb, mask

    def _channels_last_convs(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on CPU, (B, 1, T, F) -> (B, D, T', F') with channels-last strides.

        oneDNN's channels-last convolutions are ~1.5x faster than NCHW ones in inference (in training
        its NCHW backward is the faster one). The first, single-channel convolution is a patch matrix
        product, whose output is channels-last already, so no layout conversion of the largest
        activation is needed. Same result up to float rounding.
        """
        for layer in self.conv:
            if not isinstance(layer, nn.Conv2d):
                x = layer(x)
            elif layer.in_channels == 1:
                (k, _), (s, _) = layer.kernel_size, layer.stride
                patches = x[:, 0].unfold(1, k, s).unfold(2, k, s)  # (B, T1, F1, k, k)
                b, t, f = patches.shape[:3]
                out = torch.addmm(layer.bias, patches.reshape(b * t * f, k * k),
                                  layer.weight.reshape(layer.out_channels, k * k).t())
                x = out.view(b, t, f, layer.out_channels).permute(0, 3, 1, 2)
            else:
                weight = layer.weight.contiguous(memory_format=torch.channels_last)
                x = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, layer.bias, layer.stride)
        return x
