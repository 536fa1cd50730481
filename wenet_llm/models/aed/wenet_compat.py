"""Load a WeNet Conformer AED (``train.yaml`` + ``*.pt``) into :class:`ASRModel` (facts §1, §1a, §3, §5).

The checkpoint is WeNet's flat ``{key: tensor}`` state dict. Historical variants are handled and reported,
never silently: ``*.pe`` buffers absent before v3.1.0 are recomputed; legacy ``concat_linear*`` keys
(unused when concat_after is false) are ignored; float ``num_batches_tracked`` (averaged checkpoints)
becomes int64; CMVN missing from the checkpoint is read from ``cmvn_conf.cmvn_file``. Any other missing
or unexpected key is logged and listed in ``model.load_report`` (``strict=True`` makes it an error);
a shape mismatch or an unsupported config value is always an error naming the key.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import yaml

from wenet_llm.config import ConfigError, from_dict
from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.models.aed.asr_model import ASRModel
from wenet_llm.utils.cmvn_stats import load_cmvn

logger = logging.getLogger(__name__)

_LEGACY_RE = re.compile(r"\.concat_linear\d?\.(weight|bias)$")
_PE_KEYS = ("encoder.embed.pos_enc.pe", "decoder.embed.1.pe")
_CMVN_KEYS = ("encoder.global_cmvn.mean", "encoder.global_cmvn.istd")
_MAX_SHOWN = 10


class WenetCompatError(ValueError):
    """A WeNet model directory that cannot be loaded faithfully; the message names the key and file."""


@dataclass
class LoadReport:
    """What ``load_wenet`` did beyond a plain strict load."""

    missing: list[str] = field(default_factory=list)  # left at their initial values: the model is incomplete
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, unused
    recomputed: list[str] = field(default_factory=list)  # ``*.pe`` buffers
    ignored_legacy: list[str] = field(default_factory=list)  # ``concat_linear*`` keys
    converted: list[str] = field(default_factory=list)  # float ``num_batches_tracked`` -> int64
    cmvn_source: str = "checkpoint"  # "checkpoint", a CMVN file path, or "none"


def _shown(keys: list[str]) -> str:
    more = f" ... (+{len(keys) - _MAX_SHOWN} more)" if len(keys) > _MAX_SHOWN else ""
    return ", ".join(keys[:_MAX_SHOWN]) + more


def _require(value: Any, allowed: tuple, key: str, source: str, hint: str = "") -> None:
    if value not in allowed:
        raise WenetCompatError(f"{source}: {key}: {value!r} is not supported; supported: {list(allowed)}{hint}")


def config_from_wenet(raw: dict, source: str = "<train.yaml>") -> tuple[AEDModelConfig, Optional[dict]]:
    """Map a WeNet train.yaml (parsed) onto :class:`AEDModelConfig`.

    Returns the config and the CMVN spec ``{"cmvn_file": str|None, "is_json_cmvn": bool}`` (None: no CMVN).
    Keys outside the model sections (dataset_conf, optim, ...) are not read.
    """
    if not isinstance(raw, dict):
        raise WenetCompatError(f"{source}: the top level must be a mapping")
    _require(raw.get("model", "asr_model"), ("asr_model",), "model", source)
    _require(raw.get("encoder"), ("conformer",), "encoder", source)
    _require(raw.get("decoder"), ("transformer",), "decoder", source,
             " (bitransformer is the u2++ bidirectional decoder, not implemented)")
    _require(raw.get("ctc", "ctc"), ("ctc",), "ctc", source)
    if "input_dim" not in raw:
        raise WenetCompatError(f"{source}: missing input_dim (the fbank num_mel_bins WeNet writes into train.yaml)")
    out_dim, vocab = raw.get("output_dim"), raw.get("vocab_size")
    if out_dim is not None and vocab is not None and out_dim != vocab:
        raise WenetCompatError(f"{source}: output_dim {out_dim} != vocab_size {vocab}")
    vocab = vocab if vocab is not None else out_dim
    if vocab is None:
        raise WenetCompatError(f"{source}: missing output_dim / vocab_size")

    cfg: dict = {
        "input_dim": raw["input_dim"],
        "vocab_size": vocab,
        "encoder": raw["encoder"],
        "encoder_conf": raw.get("encoder_conf") or {},
        "decoder": raw["decoder"],
        "decoder_conf": raw.get("decoder_conf") or {},
        "model_conf": raw.get("model_conf") or {},
    }
    blank = (raw.get("ctc_conf") or {}).get("ctc_blank_id")
    special = (raw.get("tokenizer_conf") or {}).get("special_tokens")
    if special:
        # WeNet >= v3.0: ids from special_tokens; without it sos = eos = V-1 (our config default).
        if "<sos>" in special:
            cfg["sos_id"] = special["<sos>"]
        if "<eos>" in special:
            cfg["eos_id"] = special["<eos>"]
        if "<blank>" in special:
            if blank is not None and blank != special["<blank>"]:
                raise WenetCompatError(f"{source}: ctc_conf.ctc_blank_id {blank} != special_tokens <blank> "
                                       f"{special['<blank>']}")
            blank = special["<blank>"]
    if blank is not None:
        cfg["blank_id"] = blank

    # cmvn: global_cmvn + cmvn_conf (WeNet >= v3); top-level cmvn_file/is_json_cmvn (older).
    cmvn_conf = raw.get("cmvn_conf") or {}
    has_cmvn_key = "cmvn" in raw
    cmvn_kind = raw.get("cmvn")
    if has_cmvn_key and cmvn_kind is not None:
        _require(cmvn_kind, ("global_cmvn",), "cmvn", source)
    cmvn_file = cmvn_conf.get("cmvn_file", raw.get("cmvn_file"))
    is_json = cmvn_conf.get("is_json_cmvn", raw.get("is_json_cmvn", True))
    use_cmvn = cmvn_kind is not None if has_cmvn_key else cmvn_file is not None
    cfg["global_cmvn"] = use_cmvn
    try:
        model_cfg = from_dict(AEDModelConfig, cfg, source)
    except ConfigError as e:
        raise WenetCompatError(str(e)) from None
    return model_cfg, ({"cmvn_file": cmvn_file, "is_json_cmvn": bool(is_json)} if use_cmvn else None)


def _resolve(path: str, yaml_path: Path) -> Optional[Path]:
    p = Path(path)
    if p.is_absolute():
        return p if p.is_file() else None
    # WeNet writes recipe-relative paths (data/train/global_cmvn); train.yaml lives in exp/<name>/.
    for base in (Path.cwd(), yaml_path.parent, yaml_path.parent.parent, yaml_path.parent.parent.parent):
        if (base / p).is_file():
            return base / p
    return None


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"missing checkpoint {path}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with objects, a truncated file, ...
        raise WenetCompatError(f"cannot read checkpoint {path} as a plain state dict: {e}") from None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        kinds = sorted({type(v).__name__ for v in sd.values()}) if isinstance(sd, dict) else type(sd).__name__
        raise WenetCompatError(
            f"{path} is not a flat WeNet state dict {{key: tensor}} (found {kinds}); "
            f"WeNet's model.pt has no 'model'/'state_dict' wrapper"
        )
    return sd


def load_wenet(train_yaml: str | os.PathLike, checkpoint: str | os.PathLike, strict: bool = False,
               cmvn_file: Optional[str | os.PathLike] = None) -> ASRModel:
    """Build the model of a WeNet ``train.yaml`` and load ``checkpoint`` into it; returns it in eval mode.

    ``cmvn_file`` overrides ``cmvn_conf.cmvn_file``; it is read only when the checkpoint has no CMVN.
    ``strict`` turns missing/unexpected keys into an error. The report is ``model.load_report``.
    """
    yaml_path, ckpt_path = Path(train_yaml), Path(checkpoint)
    if not yaml_path.is_file():
        raise FileNotFoundError(f"missing WeNet config {yaml_path}")
    with open(yaml_path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise WenetCompatError(f"{yaml_path}: not valid YAML: {e}") from None
    cfg, cmvn_spec = config_from_wenet(raw, str(yaml_path))
    sd = _read_checkpoint(ckpt_path)
    model = ASRModel(cfg)
    expected = model.state_dict()
    report = LoadReport(cmvn_source="checkpoint" if cmvn_spec else "none")

    to_load: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key not in expected:
            (report.ignored_legacy if _LEGACY_RE.search(key) else report.unexpected).append(key)
            continue
        want = expected[key]
        if value.shape != want.shape:
            raise WenetCompatError(
                f"{ckpt_path}: {key} has shape {list(value.shape)} but the model of {yaml_path} expects "
                f"{list(want.shape)}; the yaml does not describe this checkpoint"
            )
        if key.endswith("num_batches_tracked") and value.is_floating_point():
            value = value.round().to(torch.int64)
            report.converted.append(key)
        to_load[key] = value

    missing = [k for k in expected if k not in to_load]
    report.recomputed = [k for k in missing if k in _PE_KEYS]  # the model computed them at construction
    cmvn_missing = [k for k in missing if k in _CMVN_KEYS]
    if cmvn_missing:
        assert cmvn_spec is not None  # the keys exist only with global_cmvn
        path = cmvn_file if cmvn_file is not None else cmvn_spec["cmvn_file"]
        resolved = _resolve(str(path), yaml_path) if path is not None else None
        if resolved is None:
            raise WenetCompatError(
                f"{ckpt_path} has no {', '.join(cmvn_missing)} and the CMVN file "
                f"{path!r} (cmvn_conf.cmvn_file of {yaml_path}) was not found; pass cmvn_file="
            )
        mean, istd = load_cmvn(resolved)  # JSON or Kaldi text, told apart by content
        if mean.shape != (cfg.input_dim,):
            raise WenetCompatError(f"{resolved}: CMVN dim {mean.numel()} != input_dim {cfg.input_dim}")
        to_load.setdefault("encoder.global_cmvn.mean", mean)
        to_load.setdefault("encoder.global_cmvn.istd", istd)
        report.cmvn_source = str(resolved)
    report.missing = [k for k in missing if k not in _PE_KEYS and k not in to_load]

    if strict and (report.missing or report.unexpected):
        raise WenetCompatError(
            f"{ckpt_path} does not match the model of {yaml_path}: missing [{_shown(report.missing)}], "
            f"unexpected [{_shown(report.unexpected)}]"
        )
    model.load_state_dict(to_load, strict=False)
    if report.missing:
        logger.warning("%s: %d missing key(s) left at initial values: %s", ckpt_path, len(report.missing),
                       _shown(report.missing))
    if report.unexpected:
        logger.warning("%s: %d unexpected key(s) ignored: %s", ckpt_path, len(report.unexpected),
                       _shown(report.unexpected))
    if report.recomputed:
        logger.info("%s: recomputed %s (checkpoint older than WeNet v3.1.0)", ckpt_path, _shown(report.recomputed))
    if report.ignored_legacy:
        logger.info("%s: ignored %d legacy concat_linear key(s) (concat_after is false)", ckpt_path,
                    len(report.ignored_legacy))
    if report.converted:
        logger.info("%s: converted %d float num_batches_tracked to int64", ckpt_path, len(report.converted))
    if report.cmvn_source not in ("checkpoint", "none"):
        logger.info("%s: CMVN read from %s (not in the checkpoint)", ckpt_path, report.cmvn_source)
    model.load_report = report
    return model.eval()
