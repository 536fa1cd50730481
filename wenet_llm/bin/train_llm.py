"""Stages 4-6: train one LLM-ASR stage (SFT 1, SFT 2 or contextual SFT) with the shared trainer.

Resumes from the latest checkpoint of --exp-dir when there is one; otherwise starts from the exported
encoder and the base LLM, plus the weights of ``train.init_from`` (--init-from) when set.

Single process:  python -m wenet_llm.bin.train_llm --config conf/llm_sft1.yaml --exp-dir exp/llm_sft1 \\
                     --data-dir data --encoder-dir exp/aed/encoder --llm-path /models/Qwen3-8B
Several GPUs:    torchrun --nproc_per_node 8 -m wenet_llm.bin.train_llm ... (DDP or DeepSpeed, as the config says)
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--config", required=True, help="YAML instance of LLMExperimentConfig (one SFT stage)")
    p.add_argument("--exp-dir", required=True, help="checkpoints, logs and the resolved config")
    p.add_argument("--data-dir", default=None, help="a recipe's data dir: sets data.train/dev to <dir>/{train,dev}")
    p.add_argument("--data-format", default="raw", choices=["raw", "shar"], help="with --data-dir: lists or Shar")
    p.add_argument("--train-split", default="train", help="with --data-dir: the training split (e.g. train_ctx)")
    p.add_argument("--dev-split", default="dev", help="with --data-dir: the validation split (e.g. dev_ctx)")
    p.add_argument("--encoder-dir", default=None, help="sets model.encoder_dir (stage 3's export)")
    p.add_argument("--llm-path", default=None, help="sets model.llm.path (a local Hugging Face model directory)")
    p.add_argument("--init-from", default=None, help="sets train.init_from (the previous stage's exp dir)")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. train.max_epoch=2 (repeatable)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from wenet_llm.config import ConfigError, load_config
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.train.engine import shutdown_distributed
    from wenet_llm.train.llm import set_paths, train_llm, with_data_dir
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    overrides = list(args.override)
    try:
        cfg = load_config(LLMExperimentConfig, args.config, overrides)
    except ConfigError as e:
        print(f"train_llm: {e}", file=sys.stderr)
        return 2
    if args.data_dir:
        cfg = with_data_dir(cfg, args.data_dir, args.data_format, args.train_split, args.dev_split)
    try:
        cfg = set_paths(cfg, args.encoder_dir, args.llm_path, args.init_from)
    except (ValueError, FileNotFoundError) as e:
        print(f"train_llm: {e}", file=sys.stderr)
        return 2
    train_llm(cfg, args.exp_dir)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
