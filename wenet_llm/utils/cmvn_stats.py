"""WeNet global CMVN files -> (mean, istd): the one reader, shared by the data pipeline and model loaders.

WeNet JSON ``{"mean_stat": Σx, "var_stat": Σx², "frame_num": n}`` or Kaldi text
(``compute-cmvn-stats --binary=false``): mean = Σx/n, var = max(Σx²/n - mean², 1e-20),
istd = 1/sqrt(var), in float64 then stored as float32, exactly as WeNet does. It lives in utils so
that ``models/`` loaders can read CMVN without importing ``data/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

VAR_FLOOR = 1.0e-20  # WeNet's floor before 1/sqrt


def mean_istd_from_stats(sum_: np.ndarray, sum_sq: np.ndarray, count: float) -> tuple[torch.Tensor, torch.Tensor]:
    # WeNet does this in Python floats (float64) and only then stores float32.
    mean = sum_.astype(np.float64) / count
    var = sum_sq.astype(np.float64) / count - mean * mean
    var = np.where(var < VAR_FLOOR, VAR_FLOOR, var)
    istd = 1.0 / np.sqrt(var)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(istd.astype(np.float32))


def _parse_json(text: str, path: str) -> tuple[np.ndarray, np.ndarray, float]:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON CMVN file {path}: {e}") from None
    if not isinstance(d, dict) or not {"mean_stat", "var_stat", "frame_num"} <= set(d):
        raise ValueError(f"JSON CMVN file {path} must be an object with mean_stat, var_stat and frame_num")
    try:
        mean = np.asarray(d["mean_stat"], dtype=np.float64)
        var = np.asarray(d["var_stat"], dtype=np.float64)
        count = float(d["frame_num"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"JSON CMVN file {path}: non-numeric stats ({e})") from None
    if mean.ndim != 1 or var.shape != mean.shape or mean.size == 0:
        raise ValueError(
            f"JSON CMVN file {path}: mean_stat and var_stat must be equal-length non-empty lists, "
            f"got {mean.shape} and {var.shape}"
        )
    return mean, var, count


def _parse_kaldi_text(text: str, path: str) -> tuple[np.ndarray, np.ndarray, float]:
    tokens = text.split()
    # '[' m_0..m_{F-1} count v_0..v_{F-1} 0 ']'
    if len(tokens) < 6 or tokens[0] != "[" or tokens[-1] != "]" or (len(tokens) - 4) % 2:
        raise ValueError(
            f"malformed Kaldi text CMVN file {path}: expected '[ m_0 .. m_F-1 count' and 'v_0 .. v_F-1 0 ]' "
            f"(output of compute-cmvn-stats --binary=false), got {len(tokens)} tokens"
        )
    dim = (len(tokens) - 4) // 2
    try:
        values = np.asarray([float(t) for t in tokens[1:-1]], dtype=np.float64)
    except ValueError as e:
        raise ValueError(f"malformed Kaldi text CMVN file {path}: {e}") from None
    if values[-1] != 0.0:
        raise ValueError(f"malformed Kaldi text CMVN file {path}: the last value before ']' must be 0")
    return values[:dim], values[dim + 1:2 * dim + 1], float(values[dim])


def load_cmvn(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, istd) float32 from a WeNet JSON or Kaldi text global CMVN file."""
    path = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"missing CMVN file {path}; compute it with: python -m wenet_llm.bin.compute_cmvn "
            f"--data <data.list> --out {path}"
        ) from None
    if raw.startswith(b"\0B"):
        raise ValueError(f"{path} is a binary Kaldi matrix; rewrite it with compute-cmvn-stats --binary=false")
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"CMVN file {path} is neither JSON nor Kaldi text (not UTF-8)") from None
    if text.startswith("{"):
        mean, var, count = _parse_json(text, path)
    elif text.startswith("["):
        mean, var, count = _parse_kaldi_text(text, path)
    else:
        raise ValueError(
            f"CMVN file {path} is neither WeNet JSON (starts with '{{') nor Kaldi text (starts with '[')"
        )
    if not count > 0:
        raise ValueError(f"CMVN file {path}: frame count must be > 0, got {count}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(var))):
        raise ValueError(f"CMVN file {path} contains NaN or inf")
    return mean_istd_from_stats(mean, var, count)
