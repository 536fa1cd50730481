"""AED decoding of a test set: Kaldi-style hypotheses per search method, scored like WeNet.

For each method, ``out_dir/<method>/text`` holds ``key hypothesis`` lines and ``out_dir/<method>/wer``
the scorer's verbose report, whose summary line is WeNet's ``Overall -> ...``. References come from
the test list itself, so an utterance that could not be decoded counts as deletions.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import torch

from wenet_llm.config.data import DataConfig
from wenet_llm.config.decode import AED_METHODS, DECODE_DEVICES
from wenet_llm.data import formats
from wenet_llm.data.dataset import DataStream, SpeechDataset, load_cut_set
from wenet_llm.decode.aed_search import (
    attention_beam_search,
    attention_rescoring,
    ctc_greedy_search,
    ctc_prefix_beam_search,
)
from wenet_llm.models.aed import ASRModel
from wenet_llm.score.wer import score
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

METHODS = AED_METHODS
DEVICES = DECODE_DEVICES


def decode_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (the current CUDA device) or ``auto`` (CUDA when one is visible, else the CPU)."""
    if name not in DEVICES:
        raise ValueError(f"unknown decoding device {name!r}; valid devices: {list(DEVICES)}")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("decoding device cuda was asked for but no CUDA device is visible; "
                           "pass --device cpu (or auto)")
    return torch.device("cuda")


@torch.no_grad()
def decode_batch(model: ASRModel, feats: torch.Tensor, feats_lengths: torch.Tensor, methods: Sequence[str],
                 beam_size: int, ctc_weight: float) -> dict[str, list[list[int]]]:
    """Token ids per method for one batch (B utterances) on the model's device (feats may be elsewhere)."""
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown decoding method(s) {unknown}; valid methods: {list(METHODS)}")
    device = next(model.parameters()).device
    enc, mask = model.encoder(feats.to(device), feats_lengths.to(device))  # (B, T', D), (B, 1, T')
    lengths = mask.squeeze(1).sum(1)
    log_probs = model.ctc_log_probs(enc)  # (B, T', V)
    out: dict[str, list[list[int]]] = {}
    if "ctc_greedy_search" in methods:
        out["ctc_greedy_search"] = ctc_greedy_search(log_probs, lengths, model.blank_id)
    if "attention" in methods:
        out["attention"] = attention_beam_search(model.decoder, enc, mask, beam_size, model.sos, model.eos)
    if "ctc_prefix_beam_search" in methods or "attention_rescoring" in methods:
        nbests = ctc_prefix_beam_search(log_probs, lengths, beam_size, model.blank_id)
        if "ctc_prefix_beam_search" in methods:
            out["ctc_prefix_beam_search"] = [list(nbest[0][0]) if nbest else [] for nbest in nbests]
        if "attention_rescoring" in methods:
            rescored = attention_rescoring(model.decoder, enc, mask, nbests, model.sos, model.eos, ctc_weight)
            out["attention_rescoring"] = [hyp for hyp, _ in rescored]
    return out


def decode_aed(model: ASRModel, tokenizer, test_list: str | Path, data_cfg: DataConfig, out_dir: str | Path,
               methods: Sequence[str] = METHODS, beam_size: int = 10, ctc_weight: float = 0.3,
               max_duration: float = 120.0, device: str = "cpu") -> dict[str, str]:
    """Decode ``test_list`` with every method on ``device`` (see :func:`decode_device`; the model is
    moved there); returns {method: Overall line}."""
    out_dir = Path(out_dir)
    model.to(decode_device(device))
    eval_cfg = dataclasses.replace(data_cfg, sampler=dataclasses.replace(data_cfg.sampler, max_duration=max_duration),
                                   filter=dataclasses.replace(data_cfg.filter, min_seconds=0.0, max_seconds=1e9))
    stream = DataStream(load_cut_set(str(test_list)), SpeechDataset(eval_cfg, train=False), eval_cfg, shuffle=False)
    hyps: dict[str, dict[str, str]] = {m: {} for m in methods}
    for batch in stream:
        for method, ids in decode_batch(model, batch.feats, batch.feats_lengths, methods, beam_size, ctc_weight).items():
            for key, seq in zip(batch.keys, ids):
                hyps[method][key] = tokenizer.decode(seq)
    if stream.skips.total():
        logger.warning("%s: %s", test_list, stream.skips.summary())
    refs = {e["key"]: e["txt"] for e in formats.iter_entries(test_list)}
    summary = {}
    for method in methods:
        with atomic_open(out_dir / method / "text") as f:
            f.writelines(f"{k} {hyps[method][k]}".rstrip() + "\n" for k in sorted(hyps[method]))
        result = score(refs, hyps[method], char_mode=True)
        with atomic_open(out_dir / method / "wer") as f:
            f.write(result.report(verbose=True))
        summary[method] = result.summary_line()
        logger.info("%s %s: %s", test_list, method, summary[method])
    return summary
