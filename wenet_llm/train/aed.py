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

import torch

from wenet_llm.config import load_config
from wenet_llm.config.experiment import AEDExperimentConfig
from wenet_llm.data.dataset import DataStream, SpeechDataset, load_cut_set, training_cuts
from wenet_llm.data.tokenizer import load_tokenizer
from wenet_llm.decode.aed_decode import decode_aed
from wenet_llm.models.aed import ASRModel
from wenet_llm.models.aed.export import export_encoder
from wenet_llm.train.average import average_model
from wenet_llm.train.engine import dist_env
from wenet_llm.train.trainer import Trainer, seed_everything
from wenet_llm.utils.cmvn_stats import load_cmvn

logger = logging.getLogger(__name__)


def with_data_dir(cfg: AEDExperimentConfig, data_dir: str | Path, data_format: str = "raw") -> AEDExperimentConfig:
    """Point the config at a recipe's data dir: the standard layout of stages 0-1.

    ``<data>/{train,dev}/data.list`` (or ``<data>/{train,dev}/shar`` with data_format shar),
    ``<data>/lang/units.txt`` (+ ``bpe.model`` when stage 1 made one), ``<data>/train/global_cmvn``.
    """
    data = Path(data_dir)
    if data_format not in ("raw", "shar"):
        raise ValueError(f"unknown data format {data_format!r}; valid formats: ['raw', 'shar']")
    split = (lambda name: data / name / "shar") if data_format == "shar" else (lambda name: data / name / "data.list")
    bpe = data / "lang" / "bpe.model"
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, train=str(split("train")), dev=str(split("dev")), format=data_format),
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


def load_trained(exp_dir: str | Path, checkpoint: str | Path) -> tuple[ASRModel, AEDExperimentConfig]:
    """A trained (or averaged) checkpoint of ``exp_dir`` in eval mode, with its resolved config."""
    cfg = load_config(AEDExperimentConfig, Path(exp_dir) / "train.yaml")
    model = ASRModel(cfg.model)  # CMVN and every weight come from the checkpoint
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{checkpoint} does not match {exp_dir}/train.yaml: missing {missing}, "
                         f"unexpected {unexpected}")
    return model.eval(), cfg


def finish_aed(exp_dir: str | Path, num: int, data_dir: str | Path, test_sets: list[str],
               methods: list[str], beam_size: int = 10, ctc_weight: float = 0.3,
               device: str = "cpu") -> dict[str, dict[str, str]]:
    """Stage 3: avg_<num>.pt (best CV losses), decode_<set>/ per test set (on ``device``: cpu, cuda or
    auto), encoder/; returns the scores."""
    exp = Path(exp_dir)
    avg = exp / f"avg_{num}.pt"
    average_model(avg, exp, num, val_best=True)
    model, cfg = load_trained(exp, avg)
    tokenizer = load_tokenizer(cfg.tokenizer.units, cfg.tokenizer.bpe_model)
    scores = {}
    for name in test_sets:
        scores[name] = decode_aed(model, tokenizer, Path(data_dir) / name / "data.list", cfg.data,
                                  exp / f"decode_{name}", methods, beam_size, ctc_weight, device=device)
    export_encoder(model, exp / "encoder", cfg.tokenizer.units, cfg.tokenizer.bpe_model, source=str(avg))
    return scores
