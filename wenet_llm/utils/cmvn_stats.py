"""Read a WeNet global CMVN file into (mean, istd) without the data pipeline (for ``models/`` loaders).

WeNet JSON ``{"mean_stat", "var_stat", "frame_num"}`` or Kaldi text ``compute-cmvn-stats --binary=false``;
mean = Σx/n, var = max(Σx²/n - mean², 1e-20), istd = 1/sqrt(var), in float64 then float32 (facts §3).
``wenet_llm.data.cmvn.load_cmvn`` implements the same math with fuller checks; this copy exists because
``models/`` may not import ``data/``. Keep the two in agreement (tests compare them).
"""

from __future__ import annotations

import json
import math
import os

import torch

_VAR_FLOOR = 1.0e-20


def cmvn_from_stats(mean_stat: list[float], var_stat: list[float],
                    frame_num: float) -> tuple[torch.Tensor, torch.Tensor]:
    if len(mean_stat) != len(var_stat) or not mean_stat or not frame_num > 0:
        raise ValueError("CMVN stats need equal-length non-empty mean_stat/var_stat and frame_num > 0")
    mean = [float(m) / frame_num for m in mean_stat]  # Python floats: float64 as in WeNet
    var = [max(float(v) / frame_num - m * m, _VAR_FLOOR) for v, m in zip(var_stat, mean)]
    istd = [1.0 / math.sqrt(v) for v in var]
    return (torch.tensor(mean, dtype=torch.float64).float(), torch.tensor(istd, dtype=torch.float64).float())


def read_cmvn(path: str | os.PathLike, is_json: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, istd) float32 (F,) from a WeNet JSON (``is_json``) or Kaldi text CMVN file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"missing CMVN file {path}") from None
    except UnicodeDecodeError:
        raise ValueError(f"CMVN file {path} is not text (binary Kaldi is not supported)") from None
    if is_json:
        try:
            d = json.loads(text)
            return cmvn_from_stats(d["mean_stat"], d["var_stat"], float(d["frame_num"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{path} is not a WeNet JSON CMVN file ({type(e).__name__}: {e})") from None
    tokens = text.split()
    if len(tokens) < 6 or tokens[0] != "[" or tokens[-1] != "]" or tokens[-2] not in ("0", "0.0") \
            or (len(tokens) - 4) % 2:
        raise ValueError(f"{path} is not a Kaldi text CMVN file ('[ m_0 .. count v_0 .. 0 ]')")
    dim = (len(tokens) - 4) // 2
    values = [float(t) for t in tokens[1:-1]]
    return cmvn_from_stats(values[:dim], values[dim + 1:2 * dim + 1], values[dim])
