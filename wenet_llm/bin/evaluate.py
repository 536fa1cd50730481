"""Stage 7: decode every test set with the AED and each finished LLM stage, score them, write the results.

Example (the demo):
  python -m wenet_llm.bin.evaluate --data-dir data --exp-dir exp --out exp/results \\
      --distractor-pool data/corpus/distractor_names.json

Reads stage 3's AED decodes (exp/aed/decode_<set>/<method>/text) and decodes the test sets with the LLM
stages found under --exp-dir (llm_sft1, llm_sft2, llm_ctx): the last finished one every set, the others
the first (primary) set. A set with hotword lists is also decoded with them in the prompt, a noisy set
is scored per SNR and noise kind, a non-speech set with the guards on and off, the primary set also with
the guards off and with distractor-only lists. Writes <out>/<stage>/<set>/ (text, results.jsonl, wer,
summary.json), <out>/results.json (rates in percent) and <out>/results.md (the tables).
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--data-dir", required=True, help="holds <set>/data.list for the test sets (and train/)")
    p.add_argument("--exp-dir", required=True, help="holds aed/ and the LLM stage dirs")
    p.add_argument("--out", required=True, help="output dir of the decodes and the results")
    p.add_argument("--test-sets", nargs="+", default=["test", "test_noisy", "test_hotword", "noise_only"],
                   metavar="SET", help="sets under --data-dir; the first is the primary one (top-level figures)")
    p.add_argument("--distractor-pool", default=None, metavar="FILE",
                   help="names for the distractor-only lists (JSON list or one per line; none: not measured)")
    p.add_argument("--stages", nargs="+", default=["llm_sft1", "llm_sft2", "llm_ctx"], metavar="STAGE",
                   help="LLM stage dirs under --exp-dir to evaluate when finished; the last finished is the final one")
    p.add_argument("--stage-times", default=None, metavar="FILE",
                   help="the recipe's stage times (STAGE<TAB>MARKER<TAB>SECONDS lines): stage_seconds and "
                        "wall_seconds in the results")
    p.add_argument("--stage", default=None, metavar="N",
                   help="the recipe stage this evaluation runs as: its own seconds join stage_seconds and "
                        "wall_seconds")
    p.add_argument("--configs", nargs="*", default=[], metavar="YAML",
                   help="the recipe's config files: their digest goes into the results (config_digest)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    import torch

    from wenet_llm.train.evaluate import evaluate, provenance
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    try:
        evaluate(args.data_dir, args.exp_dir, args.out, args.test_sets, args.distractor_pool, args.device, args.stages,
                 provenance(args.stage_times, args.configs), own_stage=args.stage)
    except (FileNotFoundError, ValueError) as e:
        print(f"evaluate: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
