"""Adapters: encoder frames -> LLM input positions (Index-ASR, section 2: temporal downsampling by frame
stacking, then a projection into the LLM's embedding space).

Legend: B batch, T' encoder frames (40 ms with a 4x conv front end), N = ceil(T' / k) LLM positions,
D encoder dim, H adapter hidden size, E LLM hidden size.

- :class:`StackAdapter`: concatenate k consecutive frames (the last group zero-padded), Linear -> ReLU ->
  Linear. k=2 turns 40 ms frames into 80 ms positions.
- :class:`Conv1dAdapter`: a Conv1d with kernel = stride = k (a learned frame stacking), ReLU, Linear.
- :class:`CTCPosteriorAdapter`: the encoder's CTC posteriors times an embedding per CTC unit (initialised
  from the LLM's token embeddings of the unit's text, as in LegoSLM, Ma et al. 2025), summed over k
  frames, plus a stack adapter on the hidden states whose output layer starts at zero. At the start the
  LLM reads the units the encoder heard, spelled out; training then moves both branches.
- :class:`CTCCompressAdapter`: the same, one position per run of frames with one non-blank CTC argmax
  (CTC compression): a position is one heard unit, in order; blank frames (silence) give none.

Both return positions for every frame group that holds at least one valid frame, with the mask of
valid positions (True = valid); padded positions are zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


class CTCPosteriorAdapter(nn.Module):
    uses_ctc = True  # forward needs the encoder's CTC log-posteriors

    def __init__(self, input_size: int, output_size: int, cfg: AdapterConfig, num_units: int):
        super().__init__()
        self.k = cfg.downsample
        self.temperature = cfg.posterior_temperature
        self.unit_embed = nn.Parameter(torch.zeros(num_units, output_size))  # see init_unit_embeddings
        self.residual = StackAdapter(input_size, output_size, cfg)
        nn.init.zeros_(self.residual.linear2.weight)
        nn.init.zeros_(self.residual.linear2.bias)

    @torch.no_grad()
    def init_unit_embeddings(self, table: torch.Tensor) -> None:
        """Start each unit's embedding at ``table`` (V_ctc, E), e.g. :func:`unit_embedding_matrix`."""
        if table.shape != self.unit_embed.shape:
            raise ValueError(f"unit embedding table {tuple(table.shape)} != adapter's {tuple(self.unit_embed.shape)}")
        self.unit_embed.copy_(table)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, ctc_log_probs: torch.Tensor) -> AdapterOutput:
        """x (B, T', D) and ctc_log_probs (B, T', V_ctc) with padded frames zeroed, lengths (B,)."""
        b, t, _ = x.shape
        n = (t + self.k - 1) // self.k
        post = torch.softmax(ctc_log_probs.float() / self.temperature, dim=-1)  # (B, T', V_ctc)
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
        units = (post * valid.unsqueeze(-1)) @ self.unit_embed  # (B, T', E): the expected unit embedding
        if n * self.k != t:
            units = nn.functional.pad(units, (0, 0, 0, n * self.k - t))  # (B, N*k, E)
        units = units.reshape(b, n, self.k, -1).sum(2)  # (B, N, E): the frames of a position add up
        res = self.residual(x, lengths)
        return AdapterOutput(_zero_padding(units.to(res.embeds.dtype) + res.embeds, res.lengths), res.lengths)


class CTCCompressAdapter(nn.Module):
    """One position per run of frames with the same non-blank CTC argmax (CTC compression, Gaido et al.
    2021): the run's mean posteriors times the unit embeddings, plus an MLP on the run's mean hidden state
    whose output layer starts at zero."""

    uses_ctc = True

    def __init__(self, input_size: int, output_size: int, cfg: AdapterConfig, num_units: int, blank_id: int = 0):
        super().__init__()
        self.temperature = cfg.posterior_temperature
        self.blank_id = blank_id
        self.unit_embed = nn.Parameter(torch.zeros(num_units, output_size))  # see init_unit_embeddings
        self.linear1 = nn.Linear(input_size, cfg.hidden_size)
        self.activation = nn.ReLU()
        self.dropout = nn.Dropout(cfg.dropout)
        self.linear2 = nn.Linear(cfg.hidden_size, output_size)
        nn.init.zeros_(self.linear2.weight)
        nn.init.zeros_(self.linear2.bias)

    init_unit_embeddings = CTCPosteriorAdapter.init_unit_embeddings

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, ctc_log_probs: torch.Tensor) -> AdapterOutput:
        """x (B, T', D), ctc_log_probs (B, T', V_ctc), lengths (B,) -> N = the most runs in the batch."""
        b, t, _ = x.shape
        post = torch.softmax(ctc_log_probs.float() / self.temperature, dim=-1)  # (B, T', V_ctc)
        best = post.argmax(-1)  # (B, T')
        valid = torch.arange(t, device=x.device)[None, :] < lengths[:, None]
        keep = valid & (best != self.blank_id)
        before = torch.cat([torch.full_like(best[:, :1], -1), best[:, :-1]], dim=1)
        kept_before = torch.cat([torch.zeros_like(keep[:, :1]), keep[:, :-1]], dim=1)
        starts = keep & ((best != before) | ~kept_before)  # the first frame of each run
        counts = starts.sum(1)  # (B,) runs = speech positions
        n = int(counts.max()) if b else 0
        run = torch.where(keep, starts.long().cumsum(1) - 1, torch.full_like(best, n))  # (B, T'); n = dropped
        sizes = torch.zeros(b, n + 1, device=x.device).scatter_add_(1, run, keep.float())[:, :n]  # (B, N)
        frame_units = post @ self.unit_embed  # (B, T', E): the expected unit embedding of each frame
        units = torch.zeros(b, n + 1, frame_units.shape[-1], device=x.device, dtype=frame_units.dtype)
        units = units.scatter_add_(1, run.unsqueeze(-1).expand_as(frame_units), frame_units)[:, :n]  # (B, N, E)
        hidden = torch.zeros(b, n + 1, x.shape[-1], device=x.device, dtype=x.dtype)
        hidden = hidden.scatter_add_(1, run.unsqueeze(-1).expand_as(x), x)[:, :n]  # (B, N, D)
        scale = 1.0 / sizes.clamp(min=1.0).unsqueeze(-1)  # run means
        res = self.linear2(self.dropout(self.activation(self.linear1(hidden * scale.to(x.dtype)))))  # (B, N, E)
        return AdapterOutput(_zero_padding(units * scale + res.to(units.dtype), counts), counts)


def unit_texts(units: Sequence[str], english_case: str = "keep") -> list[str]:
    """The text each CTC unit stands for: "▁" is a space, <...> specials stand for nothing ("")."""
    out = []
    for u in units:
        if u.startswith("<") and u.endswith(">"):
            out.append("")
        elif u == "\u2581":
            out.append(" ")
        else:
            text = u.replace("\u2581", " ")
            out.append(text.lower() if english_case == "lower" else text)
    return out


def unit_token_ids(units: Sequence[str], tokenizer, english_case: str = "keep") -> list[list[int]]:
    """The LLM token ids of each CTC unit's text (empty for specials)."""
    return [tokenizer.encode(t, add_special_tokens=False) if t else [] for t in unit_texts(units, english_case)]


def unit_mixing_matrix(token_ids: Sequence[Sequence[int]], vocab_size: int) -> torch.Tensor:
    """(V_units, V_llm): row u averages the token embeddings of unit u's text (all zero for specials)."""
    m = torch.zeros(len(token_ids), vocab_size)
    for u, ids in enumerate(token_ids):
        for i in ids:
            m[u, i] += 1.0 / len(ids)
    return m


def unit_embedding_matrix(token_ids: Sequence[Sequence[int]], embedding: torch.Tensor) -> torch.Tensor:
    """(V_units, E): each unit's mean LLM token embedding (zeros for specials such as blank)."""
    return unit_mixing_matrix(token_ids, embedding.shape[0]).to(embedding.dtype) @ embedding.detach()


ADAPTERS = {"stack": StackAdapter, "conv1d": Conv1dAdapter, "ctc_posterior": CTCPosteriorAdapter,
            "ctc_compress": CTCCompressAdapter}


def build_adapter(input_size: int, output_size: int, cfg: AdapterConfig, num_units: int = 0,
                  blank_id: int = 0) -> nn.Module:
    if cfg.type not in ADAPTERS:
        raise ValueError(f"unknown adapter type {cfg.type!r}; valid: {sorted(ADAPTERS)}")
    if cfg.type in ("ctc_posterior", "ctc_compress"):
        if num_units < 2:
            raise ValueError(f"the {cfg.type} adapter needs the encoder's CTC units (an export with its CTC layer)")
        if cfg.type == "ctc_compress":
            return CTCCompressAdapter(input_size, output_size, cfg, num_units, blank_id)
        return CTCPosteriorAdapter(input_size, output_size, cfg, num_units)
    return ADAPTERS[cfg.type](input_size, output_size, cfg)
