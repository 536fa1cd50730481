"""Stage 2: train the Conformer AED. Resumes from the latest checkpoint of --exp-dir when there is one.

Single process:  python -m wenet_llm.bin.train_aed --config conf/aed_conformer.yaml --exp-dir exp/aed
Several GPUs:    torchrun --nproc_per_node 8 -m wenet_llm.bin.train_aed --config ... --exp-dir exp/aed
"""

from __future__ import annotations

import sys

from wenet_llm.config import ConfigError, load_config
from wenet_llm.config.experiment import AEDExperimentConfig
from wenet_llm.utils.cli import ArgumentParser
from wenet_llm.utils.logging import setup_logging


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--config", required=True, help="YAML instance of AEDExperimentConfig")
    p.add_argument("--exp-dir", required=True, help="checkpoints, logs and the resolved config")
    p.add_argument("--data-dir", default=None,
                   help="a recipe's data dir: sets data.train/dev, tokenizer and cmvn to its standard layout")
    p.add_argument("--data-format", default="raw", choices=["raw", "shar"],
                   help="with --data-dir: read <data-dir>/<split>/data.list (raw) or <data-dir>/<split>/shar")
    p.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                   help="set one config value, e.g. train.max_epoch=5; repeatable")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        cfg = load_config(AEDExperimentConfig, args.config, args.override)
    except ConfigError as e:
        print(f"train_aed: {e}", file=sys.stderr)
        return 2
    from wenet_llm.train.aed import train_aed, with_data_dir
    from wenet_llm.train.engine import shutdown_distributed

    if args.data_dir:
        cfg = with_data_dir(cfg, args.data_dir, args.data_format)
    train_aed(cfg, args.exp_dir)
    shutdown_distributed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
