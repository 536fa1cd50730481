"""Build an LLM-ASR stage configuration at full size on the meta device (no memory, nothing downloaded) and
print its trainable / frozen parameters per module and an estimate of one GPU's memory under DeepSpeed.

Example (the corpus recipes' SFT stages with Qwen3-8B's architecture):
  python -m wenet_llm.bin.model_report --encoder-config conf/aed_conformer_large.yaml \\
      --stage sft1=conf/llm_sft1.yaml --stage sft2=conf/llm_sft2.yaml --num-gpus 8
The memory estimate is for the last --stage; see wenet_llm.models.llm.sizing.memory_estimate for the model.
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--encoder-config", required=True, help="the AED config whose encoder the stages use")
    p.add_argument("--stage", action="append", required=True, metavar="NAME=YAML",
                   help="an LLM stage config (LLMExperimentConfig); repeatable")
    p.add_argument("--units", type=int, default=5000, help="CTC units of the encoder (its vocab_size)")
    p.add_argument("--num-gpus", type=int, default=8, help="GPUs the optimizer state and gradients are sharded over")
    p.add_argument("--batch-tokens", type=int, default=0,
                   help="LLM positions per GPU batch (0: from the config: data.sampler.max_tokens)")
    p.add_argument("--target-tokens", type=int, default=0,
                   help="predicted transcript tokens per GPU batch (0: a fifth of --batch-tokens)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    import dataclasses

    from wenet_llm.config import ConfigError, load_config
    from wenet_llm.config.experiment import AEDExperimentConfig
    from wenet_llm.config.llm import LLMExperimentConfig
    from wenet_llm.models.llm.sizing import build_on_meta, memory_estimate, report

    try:
        aed = load_config(AEDExperimentConfig, args.encoder_config)
        stages = {}
        for spec in args.stage:
            name, _, path = spec.partition("=")
            if not path:
                raise ConfigError(f"--stage {spec!r}: expected NAME=YAML")
            stages[name] = load_config(LLMExperimentConfig, path)
    except ConfigError as e:
        print(f"model_report: {e}", file=sys.stderr)
        return 2
    encoder_cfg = dataclasses.replace(aed.model, vocab_size=aed.model.vocab_size or args.units)
    models = {name: build_on_meta(cfg.model, encoder_cfg) for name, cfg in stages.items()}
    last = list(stages.values())[-1]
    batch_tokens = args.batch_tokens or last.data.sampler.max_tokens or 4000
    estimate = memory_estimate(list(models.values())[-1], world_size=args.num_gpus,
                               zero_stage=last.train.deepspeed_stage if last.train.engine == "deepspeed" else 0,
                               frozen_bytes=2 if last.model.llm.dtype != "fp32" else 4, batch_tokens=batch_tokens,
                               target_tokens=args.target_tokens or batch_tokens // 5,
                               gradient_checkpointing=last.train.gradient_checkpointing,
                               encoder_frames=int(last.data.sampler.max_duration * 25))
    print(report(models, estimate, args.num_gpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
