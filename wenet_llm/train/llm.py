"""Stages 4-6: the LLM-ASR SFT stages (Index-ASR section 3) on the shared trainer.

One function trains any of them; the stage YAML says what trains (``model.trainable``) and where it
starts (``train.init_from``: stage 5 from stage 4, stage 6 from stage 5; stage 4 from the exported
encoder and the base LLM alone). Checkpoints hold only the weights of the trainable modules
(``{tag}/adapter.safetensors``, ``encoder.safetensors``, ``lora/`` in PEFT's adapter format,
``llm.safetensors`` for a fully trained LLM) plus the training state; loading a trained stage
follows its ``init_from`` chain, so each module comes from the last stage that trained it.

The feature settings come from the encoder export (the features the encoder was trained on); a
stage config that asks for other ones is an error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Optional

import torch

from wenet_llm.config import load_config
from wenet_llm.config.data import FbankConfig
from wenet_llm.config.llm import LLMExperimentConfig
from wenet_llm.data.dataset import DataStream, SpeechDataset, load_cut_set, training_cuts
from wenet_llm.data.tokenizer import load_tokenizer as load_unit_tokenizer
from wenet_llm.data.tokenizer import read_units
from wenet_llm.models.aed.export import load_encoder, load_encoder_meta
from wenet_llm.models.llm.decoder import check_llm_dir, load_llm, load_lora_weights, load_tokenizer, save_lora
from wenet_llm.models.llm.llm_asr import LLMASRModel
from wenet_llm.models.llm.prompt import PromptBuilder, ctc_hypothesis_ids
from wenet_llm.train.checkpoint import DirectoryWeights
from wenet_llm.train.engine import dist_env
from wenet_llm.train.trainer import Trainer, init_weights, resolve_init_from, seed_everything

logger = logging.getLogger(__name__)

WEIGHTS_MARKER = "weights.json"
_FEATURE_FIELDS = ("num_mel_bins", "frame_length_ms", "frame_shift_ms", "sample_rate")


def with_data_dir(cfg: LLMExperimentConfig, data_dir: str | Path, data_format: str = "raw",
                  train_split: str = "train", dev_split: str = "dev") -> LLMExperimentConfig:
    """Point the config at a recipe's data dir (``<data>/{train,dev}/data.list`` or ``.../shar``, or other
    splits such as stage 6's ``train_ctx``; and the training noise / non-speech clips of stage 0 when it
    made them)."""
    from wenet_llm.train.experiments import split_paths, with_augmentation_data

    train, dev = split_paths(data_dir, data_format, (train_split, dev_split))
    data = with_augmentation_data(dataclasses.replace(cfg.data, train=train, dev=dev, format=data_format), data_dir)
    return dataclasses.replace(cfg, data=data)


def set_paths(cfg: LLMExperimentConfig, encoder_dir: str | Path | None = None, llm_path: str | Path | None = None,
              init_from: str | Path | None = None) -> LLMExperimentConfig:
    """Set the encoder export, the LLM directory and init_from (when given), all made absolute so that
    the saved config still finds them from another working directory; each must exist."""
    model = cfg.model
    encoder_dir = encoder_dir or model.encoder_dir
    llm_path = llm_path or model.llm.path
    init_from = init_from if init_from is not None else cfg.train.init_from
    load_encoder_meta(encoder_dir)  # a clear error when it is not an export
    check_llm_dir(llm_path)
    model = dataclasses.replace(model, encoder_dir=str(Path(encoder_dir).resolve()),
                                llm=dataclasses.replace(model.llm, path=str(Path(llm_path).resolve())))
    if init_from:
        if not Path(init_from).exists():
            raise FileNotFoundError(f"init_from {init_from} does not exist; train the previous stage first")
        init_from = str(Path(init_from).resolve())
    return dataclasses.replace(cfg, model=model, train=dataclasses.replace(cfg.train, init_from=init_from or ""))


def resolve_features(cfg: LLMExperimentConfig) -> LLMExperimentConfig:
    """Take the fbank settings from the encoder export; a config asking for other ones is an error."""
    meta = load_encoder_meta(cfg.model.encoder_dir)
    exported: Optional[FbankConfig] = meta["fbank"]
    if exported is None:
        logger.warning("%s records no fbank settings (an old export); using the stage config's",
                       cfg.model.encoder_dir)
        return cfg
    default, mine = FbankConfig(), cfg.data.fbank
    for name in _FEATURE_FIELDS:
        value, want = getattr(mine, name), getattr(exported, name)
        if value != want and value != getattr(default, name):
            raise ValueError(f"data.fbank.{name} is {value} but the encoder in {cfg.model.encoder_dir} was trained "
                             f"with {want}; remove data.fbank.{name} from the stage config (it is taken from the "
                             f"export)")
    fbank = dataclasses.replace(exported, dither=mine.dither)
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, fbank=fbank))


def build_model(cfg: LLMExperimentConfig, gradient_checkpointing: bool = False):
    """(model, LLM tokenizer) of a stage config: exported encoder, base LLM from its local directory,
    adapter and LoRA freshly initialised (``init_from`` loads trained weights afterwards)."""
    encoder = load_encoder(cfg.model.encoder_dir)
    tokenizer = load_tokenizer(cfg.model.llm.path)
    llm = load_llm(cfg.model.llm, gradient_checkpointing)
    if "llm" in cfg.model.trainable and cfg.model.llm.dtype != "fp32":
        raise ValueError(f"trainable names llm but model.llm.dtype is {cfg.model.llm.dtype}: trained weights must "
                         f"be fp32 (mixed precision comes from train.precision); set model.llm.dtype: fp32")
    meta = load_encoder_meta(cfg.model.encoder_dir)
    hypothesis_ids = None
    if cfg.prompt.ctc_hypothesis:
        hypothesis_ids = ctc_hypothesis_ids(PromptBuilder(tokenizer, cfg.prompt),
                                            load_unit_tokenizer(meta["units"], meta["bpe_model"]).decode)
    model = LLMASRModel(encoder, llm, cfg.model, tokenizer, units=read_units(meta["units"]),
                        english_case=cfg.prompt.english_case, hypothesis_ids=hypothesis_ids)
    return model, tokenizer


def llm_step(model: torch.nn.Module, batch) -> dict[str, torch.Tensor]:
    """The trainer's step function: the LLM-ASR losses of one batch."""
    t = batch.text_inputs
    out = model(batch.feats, batch.feats_lengths, t["prefix"], t["prefix_lengths"], t["suffix"], t["suffix_lengths"],
                t["target"], t["target_lengths"], batch.tokens, batch.token_lengths)
    parts = {"loss": out.loss, "loss_llm": out.loss_llm, "acc": out.acc, "loss_ctc": out.loss_ctc}
    return {k: v for k, v in parts.items() if v is not None}


def plain_llm_key(name: str) -> str:
    """A parameter name of the LLM as Hugging Face writes it, without peft's LoRA wrapping
    (``base_model.model.`` prefix, ``.base_layer`` of a wrapped linear layer)."""
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    return name.replace(".base_layer.", ".")


def weights_format(model: LLMASRModel) -> DirectoryWeights:
    """Checkpoint weights as one directory per checkpoint, a file per trained module."""
    from safetensors.torch import load_file, save_file

    def writer(weights: dict[str, torch.Tensor], out: Path) -> None:
        by_module: dict[str, dict[str, torch.Tensor]] = {}
        params = dict(model.named_parameters())
        for key, value in weights.items():
            by_module.setdefault(model.module_of(key), {})[key] = value
        written = []
        for module, entries in sorted(by_module.items()):
            # Buffers of untrained modules (e.g. a frozen encoder's BatchNorm statistics) are not saved.
            if not any(k in params for k in entries):
                continue
            if module == "lora":
                save_lora(model.llm, {k[len("llm."):]: v for k, v in entries.items()}, out / "lora")
            elif module == "llm":  # the Hugging Face names, also from under a LoRA wrapper
                save_file({plain_llm_key(k[len("llm."):]): v.contiguous().clone() for k, v in entries.items()},
                          str(out / "llm.safetensors"))
            else:
                prefix = f"{module}."
                save_file({k[len(prefix):]: v.contiguous().clone() for k, v in entries.items()},
                          str(out / f"{module}.safetensors"))
            written.append(module)
        (out / WEIGHTS_MARKER).write_text(json.dumps({"modules": written}) + "\n", encoding="utf-8")

    def reader(path: Path) -> dict[str, torch.Tensor]:
        modules = json.loads((path / WEIGHTS_MARKER).read_text(encoding="utf-8"))["modules"]
        out: dict[str, torch.Tensor] = {}
        for module in modules:
            if module == "lora":
                out.update({f"llm.{k}": v for k, v in load_lora_weights(path / "lora", model.llm).items()})
            elif module == "llm":  # a fully trained LLM, read into this model's LLM with or without LoRA
                own = {plain_llm_key(k): k for k, _ in model.llm.state_dict().items()}
                out.update({f"llm.{own.get(k, k)}": v for k, v in load_file(str(path / "llm.safetensors")).items()})
            else:
                out.update({f"{module}.{k}": v for k, v in load_file(str(path / f"{module}.safetensors")).items()})
        return out

    return DirectoryWeights(writer, reader, WEIGHTS_MARKER)


def make_streams(cfg: LLMExperimentConfig, model: LLMASRModel, tokenizer, rank: int = 0, world_size: int = 1):
    """(train stream, dev stream) with prompt building in the DataLoader workers."""
    data = cfg.data
    meta = load_encoder_meta(cfg.model.encoder_dir)
    units = load_unit_tokenizer(meta["units"], meta["bpe_model"]) if cfg.model.ctc_weight > 0 else None
    builder = PromptBuilder(tokenizer, cfg.prompt, model.speech_length, data.fbank.frame_shift_ms)
    train = DataStream(training_cuts(data, cfg.train.seed),
                       SpeechDataset(data, train=True, tokenizer=units, seed=cfg.train.seed, text_processor=builder),
                       data, shuffle=data.sampler.shuffle, rank=rank, world_size=world_size)
    dev = DataStream(load_cut_set(data.dev, data.format),
                     SpeechDataset(data, train=False, tokenizer=units, text_processor=builder),
                     data, shuffle=False, rank=rank, world_size=world_size)
    return train, dev


def train_llm(cfg: LLMExperimentConfig, exp_dir: str | Path) -> None:
    """Train one LLM-ASR stage into ``exp_dir`` (resuming from it when it holds a checkpoint)."""
    rank, world_size, _ = dist_env()
    seed_everything(cfg.train.seed)
    cfg = resolve_features(cfg)
    model, tokenizer = build_model(cfg, cfg.train.gradient_checkpointing)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, save_trainable_only=True))
    train_stream, dev_stream = make_streams(cfg, model, tokenizer, rank, world_size)
    Trainer(model, llm_step, cfg.train, exp_dir, config=cfg, weights_format=weights_format(model)).fit(
        train_stream, dev_stream)


def load_trained(exp_dir: str | Path, checkpoint: str | Path | None = None):
    """(model in eval mode, resolved config, LLM tokenizer) of a trained stage.

    ``checkpoint`` is a checkpoint directory of ``exp_dir`` (default: its final one). The weights of
    the stages it was initialised from are loaded first, along the ``init_from`` chain.
    """
    exp = Path(exp_dir)
    cfg = load_config(LLMExperimentConfig, exp / "train.yaml")
    model, tokenizer = build_model(cfg)
    fmt = weights_format(model)
    for source in reversed(_init_chain(cfg, fmt)):
        init_weights(model, source, fmt)
    init_weights(model, checkpoint if checkpoint is not None else resolve_init_from(exp, fmt), fmt)
    return model.eval(), cfg, tokenizer


def _init_chain(cfg: LLMExperimentConfig, fmt: DirectoryWeights, max_depth: int = 16) -> list[Path]:
    """The checkpoints this stage was initialised from, nearest first."""
    chain: list[Path] = []
    source = cfg.train.init_from
    while source and len(chain) < max_depth:
        path = resolve_init_from(source, fmt)
        chain.append(path)
        parent = _exp_dir_of(path)
        source = load_config(LLMExperimentConfig, parent / "train.yaml").train.init_from if parent else ""
    return chain


def _exp_dir_of(checkpoint: Path) -> Optional[Path]:
    parent = Path(checkpoint).resolve().parent
    return parent if (parent / "train.yaml").is_file() else None
