"""Stage 2: train the Conformer AED (CTC + attention) with the shared trainer.

Builds the tokenizer, the model (vocabulary from units.txt, global CMVN from the stage-1 stats) and
the data streams from one :class:`AEDExperimentConfig`, checks at start-up that they agree, and runs
:class:`wenet_llm.train.trainer.Trainer`. The resolved config, with the vocabulary filled in, is what
decoding and export read back from ``exp_dir/train.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import torch

from wenet_llm.config import load_config
from wenet_llm.config.decode import AED_METHODS
from wenet_llm.config.experiment import AEDExperimentConfig
from wenet_llm.data.dataset import DataStream, SpeechDataset, load_cut_set, training_cuts
from wenet_llm.data.tokenizer import load_tokenizer
from wenet_llm.decode.aed_decode import decode_aed, decode_device
from wenet_llm.models.aed import ASRModel
from wenet_llm.models.aed.export import export_encoder
from wenet_llm.train.average import average_model, select_checkpoints
from wenet_llm.train.engine import dist_env
from wenet_llm.train.experiments import split_paths, with_augmentation_data
from wenet_llm.train.trainer import Trainer, seed_everything
from wenet_llm.utils.cmvn_stats import load_cmvn

logger = logging.getLogger(__name__)


def with_data_dir(cfg: AEDExperimentConfig, data_dir: str | Path, data_format: str = "raw") -> AEDExperimentConfig:
    """Point the config at a recipe's data dir: the standard layout of stages 0-1.

    ``<data>/{train,dev}/data.list`` (or ``<data>/{train,dev}/shar`` with data_format shar),
    ``<data>/lang/units.txt`` (+ ``bpe.model`` when stage 1 made one), ``<data>/train/global_cmvn``,
    and where stage 0 made them the training noise and non-speech clips (:func:`with_augmentation_data`).
    """
    data = Path(data_dir)
    train, dev = split_paths(data, data_format, ("train", "dev"))
    bpe = data / "lang" / "bpe.model"
    return dataclasses.replace(
        cfg,
        data=with_augmentation_data(dataclasses.replace(cfg.data, train=train, dev=dev, format=data_format), data),
        tokenizer=dataclasses.replace(cfg.tokenizer, units=str(data / "lang" / "units.txt"),
                                      bpe_model=str(bpe) if bpe.is_file() else None),
        cmvn=str(data / "train" / "global_cmvn"),
    )


def resolve_model_config(cfg: AEDExperimentConfig, tokenizer) -> AEDExperimentConfig:
    """Fill the vocabulary from the tokenizer and check that tokenizer, features and model agree."""
    model = cfg.model
    if model.vocab_size and model.vocab_size != tokenizer.vocab_size:
        raise ValueError(f"model.vocab_size {model.vocab_size} != {tokenizer.vocab_size} units in "
                         f"{cfg.tokenizer.units}; set model.vocab_size: 0 to take it from units.txt")
    model = dataclasses.replace(model, vocab_size=tokenizer.vocab_size)
    if (model.sos, model.eos, model.blank_id) != (tokenizer.sos_id, tokenizer.eos_id, tokenizer.blank_id):
        raise ValueError(f"model sos/eos/blank {model.sos}/{model.eos}/{model.blank_id} differ from "
                         f"{cfg.tokenizer.units}: {tokenizer.sos_id}/{tokenizer.eos_id}/{tokenizer.blank_id}")
    if model.input_dim != cfg.data.fbank.num_mel_bins:
        raise ValueError(f"model.input_dim {model.input_dim} != data.fbank.num_mel_bins {cfg.data.fbank.num_mel_bins}")
    if cfg.train.gradient_checkpointing:
        model = dataclasses.replace(
            model,
            encoder_conf=dataclasses.replace(model.encoder_conf, gradient_checkpointing=True),
            decoder_conf=dataclasses.replace(model.decoder_conf, gradient_checkpointing=True),
        )
    model.validate()
    return dataclasses.replace(cfg, model=model)


def build_model(cfg: AEDExperimentConfig) -> ASRModel:
    """The model of a resolved config with the global CMVN of ``cfg.cmvn``."""
    mean, istd = load_cmvn(cfg.cmvn)
    if mean.shape != (cfg.model.input_dim,):
        raise ValueError(f"{cfg.cmvn} has {mean.numel()} dims, the model expects input_dim {cfg.model.input_dim}")
    return ASRModel(cfg.model, mean, istd)


def aed_step(model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
    """The trainer's step function: the AED losses of one batch."""
    out = model(batch.feats, batch.feats_lengths, batch.tokens, batch.token_lengths)
    parts = {"loss": out.loss, "loss_att": out.loss_att, "loss_ctc": out.loss_ctc, "acc": out.acc}
    return {k: v for k, v in parts.items() if v is not None}


def train_aed(cfg: AEDExperimentConfig, exp_dir: str | Path) -> None:
    rank, world_size, _ = dist_env()
    seed_everything(cfg.train.seed)
    tokenizer = load_tokenizer(cfg.tokenizer.units, cfg.tokenizer.bpe_model)
    cfg = resolve_model_config(cfg, tokenizer)
    model = build_model(cfg)
    data = cfg.data
    train_stream = DataStream(training_cuts(data, cfg.train.seed),
                              SpeechDataset(data, train=True, tokenizer=tokenizer, seed=cfg.train.seed),
                              data, shuffle=data.sampler.shuffle, rank=rank, world_size=world_size)
    dev_stream = DataStream(load_cut_set(data.dev, data.format), SpeechDataset(data, train=False, tokenizer=tokenizer),
                            data, shuffle=False, rank=rank, world_size=world_size)
    Trainer(model, aed_step, cfg.train, exp_dir, config=cfg).fit(train_stream, dev_stream)


_TRAIN_HINT = "train it with stage 2 (bash run.sh --stage 2 --stop_stage 2) or pass the dir stage 2 wrote (--exp)"


def trained_config(exp_dir: str | Path) -> AEDExperimentConfig:
    """The resolved config of a stage-2 dir, after checking that the dir and the files it names exist."""
    exp = Path(exp_dir)
    if not exp.is_dir():
        raise FileNotFoundError(f"experiment dir {exp} does not exist; {_TRAIN_HINT}")
    if not (exp / "train.yaml").is_file():
        raise FileNotFoundError(f"{exp} has no train.yaml, so it is not a stage-2 training dir; {_TRAIN_HINT}")
    cfg = load_config(AEDExperimentConfig, exp / "train.yaml")
    needed = [("tokenizer.units", cfg.tokenizer.units), ("tokenizer.bpe_model", cfg.tokenizer.bpe_model)]
    missing = [f"{key}: {path}" for key, path in needed if path and not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"{exp}/train.yaml names stage-1 files that are missing ({'; '.join(missing)}); "
                                "rerun stage 1 or run from the recipe dir the training ran in")
    return cfg


def _check_checkpoint(exp_dir: Path, checkpoint: str | Path) -> None:
    if not Path(checkpoint).is_file():
        have = sorted(p.name for p in Path(exp_dir).glob("*.pt"))
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist; {exp_dir} holds: {have or 'no .pt files'}")


def load_trained(exp_dir: str | Path, checkpoint: str | Path) -> tuple[ASRModel, AEDExperimentConfig]:
    """A trained (or averaged) checkpoint of ``exp_dir`` in eval mode, with its resolved config."""
    cfg = trained_config(exp_dir)
    _check_checkpoint(Path(exp_dir), checkpoint)
    model = ASRModel(cfg.model)  # CMVN and every weight come from the checkpoint
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{checkpoint} does not match {exp_dir}/train.yaml: missing {missing}, "
                         f"unexpected {unexpected}")
    return model.eval(), cfg


def _check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in AED_METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown or no decoding method(s) {unknown}; valid methods: {list(AED_METHODS)}")


def _check_test_set(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"test set {path} does not exist; prepare it with stage 0 or fix the path")


def decode_trained(exp_dir: str | Path, checkpoint: str | Path, test: str | Path, out_dir: str | Path,
                   methods: Sequence[str] = AED_METHODS, beam_size: int = 10, ctc_weight: float = 0.3,
                   max_duration: float = 120.0, num_threads: int = 0, device: str = "cpu") -> dict[str, str]:
    """Decode and score one test set with a checkpoint of ``exp_dir`` on ``device`` (cpu, cuda or auto),
    every input checked first."""
    decode_device(device)  # an unusable device is an error before any loading
    _check_methods(methods)
    _check_test_set(Path(test))
    if num_threads:
        torch.set_num_threads(num_threads)
    model, cfg = load_trained(exp_dir, checkpoint)  # checks the dir and the checkpoint before loading
    tokenizer = load_tokenizer(cfg.tokenizer.units, cfg.tokenizer.bpe_model)
    return decode_aed(model, tokenizer, test, cfg.data, out_dir, methods, beam_size, ctc_weight, max_duration,
                      device)


def export_trained(exp_dir: str | Path, checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Export the encoder of a checkpoint of ``exp_dir`` (see :func:`wenet_llm.models.aed.export.export_encoder`)."""
    model, cfg = load_trained(exp_dir, checkpoint)
    return export_encoder(model, out_dir, cfg.tokenizer.units, cfg.tokenizer.bpe_model, source=str(checkpoint),
                          fbank=cfg.data.fbank)


def finish_aed(exp_dir: str | Path, num: int, data_dir: str | Path, test_sets: list[str],
               methods: list[str], beam_size: int = 10, ctc_weight: float = 0.3,
               device: str = "cpu") -> dict[str, dict[str, str]]:
    """Stage 3: avg_<num>.pt (best CV losses), decode_<set>/ per test set (on ``device``: cpu, cuda or
    auto), encoder/; returns the scores.

    Every input (the training dir, ``num`` checkpoints with a CV loss, each test set) is checked before
    any work, so a mistyped test set costs no averaging or decoding.
    """
    exp = Path(exp_dir)
    _check_methods(methods)
    decode_device(device)
    trained_config(exp)
    select_checkpoints(exp, num, val_best=True)  # raises when fewer than num have a CV loss
    lists = {name: Path(data_dir) / name / "data.list" for name in test_sets}
    missing = [name for name, path in lists.items() if not path.is_file()]
    if missing:
        have = sorted(p.parent.name for p in Path(data_dir).glob("*/data.list"))
        raise FileNotFoundError(f"test set(s) {missing} have no {Path(data_dir)}/<set>/data.list; sets there: "
                                f"{have or 'none'}. Fix --test_sets (run.sh) / --test-sets, or prepare them (stage 0)")
    avg = exp / f"avg_{num}.pt"
    average_model(avg, exp, num, val_best=True)
    model, cfg = load_trained(exp, avg)
    tokenizer = load_tokenizer(cfg.tokenizer.units, cfg.tokenizer.bpe_model)
    scores = {}
    for name, test_list in lists.items():
        scores[name] = decode_aed(model, tokenizer, test_list, cfg.data, exp / f"decode_{name}", methods, beam_size,
                                  ctc_weight, device=device)
    export_encoder(model, exp / "encoder", cfg.tokenizer.units, cfg.tokenizer.bpe_model, source=str(avg),
                   fbank=cfg.data.fbank)
    return scores
