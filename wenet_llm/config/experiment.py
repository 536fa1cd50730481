"""Schema of a whole AED training experiment: model, data, trainer and the stage-1 files it uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from wenet_llm.config.aed import AEDModelConfig
from wenet_llm.config.data import DataConfig
from wenet_llm.config.train import TrainConfig


@dataclass
class TokenizerFiles:
    units: str = "data/lang/units.txt"
    bpe_model: Optional[str] = None  # sentencepiece model for bpe / mixed units


@dataclass
class AEDExperimentConfig:
    model: AEDModelConfig = field(default_factory=AEDModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tokenizer: TokenizerFiles = field(default_factory=TokenizerFiles)
    cmvn: str = "data/train/global_cmvn"  # WeNet JSON; its values end up inside the encoder
