"""Experiment types and the stage glue they share.

Each trained experiment directory holds its resolved config in ``train.yaml``; its ``experiment`` key
names the type (an AED config has none: WeNet's layout). :data:`EXPERIMENTS` maps a type to its
config schema and to the functions that train it and load a trained one, imported on use so that
``--help`` stays fast and the AED path never imports transformers.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from wenet_llm.config.data import DataConfig
from wenet_llm.data.prepare import NOISE_TRAIN_DIR, TRAIN_NON_SPEECH


@dataclass(frozen=True)
class ExperimentType:
    config: str  # "module:Class" of the schema
    train: str  # "module:function(cfg, exp_dir)"
    load: str  # "module:function(exp_dir, checkpoint) -> (model, cfg, ...)"
    with_data_dir: str  # "module:function(cfg, data_dir, data_format) -> cfg"

    @staticmethod
    def resolve(spec: str):
        module, name = spec.split(":")
        return getattr(importlib.import_module(module), name)


EXPERIMENTS = {
    "aed": ExperimentType("wenet_llm.config.experiment:AEDExperimentConfig", "wenet_llm.train.aed:train_aed",
                          "wenet_llm.train.aed:load_trained", "wenet_llm.train.aed:with_data_dir"),
    "llm_asr": ExperimentType("wenet_llm.config.llm:LLMExperimentConfig", "wenet_llm.train.llm:train_llm",
                              "wenet_llm.train.llm:load_trained", "wenet_llm.train.llm:with_data_dir"),
}


def experiment(name: str) -> ExperimentType:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment type {name!r}; valid: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def experiment_type(exp_dir: str | Path) -> str:
    """The type of a trained experiment dir, from its train.yaml."""
    path = Path(exp_dir) / "train.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {exp_dir} is not a trained experiment dir "
                                f"(train it first, or check the path)")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return str(data.get("experiment", "aed"))


def load_trained(exp_dir: str | Path, checkpoint: str | Path | None = None):
    """Load a trained experiment of any type (see each type's ``load`` function for what it returns)."""
    kind = experiment(experiment_type(exp_dir))
    return ExperimentType.resolve(kind.load)(exp_dir, checkpoint)


def split_paths(data_dir: str | Path, data_format: str, splits: Sequence[str]) -> list[str]:
    """The list (raw: ``<data>/<split>/data.list``) or Shar dir (``<data>/<split>/shar``) of each split."""
    if data_format not in ("raw", "shar"):
        raise ValueError(f"unknown data format {data_format!r}; valid formats: ['raw', 'shar']")
    leaf = "shar" if data_format == "shar" else "data.list"
    return [str(Path(data_dir) / split / leaf) for split in splits]


def with_augmentation_data(data: DataConfig, data_dir: str | Path) -> DataConfig:
    """Point ``data.noise.noise_dir`` and ``data.non_speech.cuts`` at the data dir's training noise
    (``<data>/noise_train``) and non-speech list (``<data>/train_non_speech/data.list``) where stage 0
    made them; the config's own paths stay where it did not. Whether they are used is the config's
    ``enabled`` switches."""
    noise_dir = Path(data_dir) / NOISE_TRAIN_DIR
    non_speech = Path(data_dir) / TRAIN_NON_SPEECH / "data.list"
    if noise_dir.is_dir():
        data = dataclasses.replace(data, noise=dataclasses.replace(data.noise, noise_dir=str(noise_dir)))
    if non_speech.is_file():
        data = dataclasses.replace(data, non_speech=dataclasses.replace(data.non_speech, cuts=str(non_speech)))
    return data
