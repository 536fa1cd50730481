"""Draw a recipe's training curves and error rates as PNG files (matplotlib, headless).

Example (the demo, after stage 7):
  python -m wenet_llm.bin.plot_results --exp-dirs exp/aed exp/llm_sft1 exp/llm_sft2 exp/llm_ctx \\
      --results ../../../results.json --out-dir exp/plots

Writes, under --out-dir:
  train_<name>.png   loss and token accuracy per step (train and cv) from <exp dir>/tensorboard/,
                     one per exp dir; <name> is the dir's last folder, or NAME from NAME=DIR
  error_rates.png    English WER and Mandarin CER (%) per system of the results JSON: its top-level
                     entries {"en_wer": .., "zh_cer": ..}; other keys are not systems and are skipped
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--exp-dirs", nargs="*", default=[], metavar="[NAME=]DIR",
                   help="training stage dirs whose tensorboard/ folder to plot")
    p.add_argument("--results", default=None, help="a results JSON to draw error rates from (none: no bar chart)")
    p.add_argument("--out-dir", required=True, help="where the PNG files go (created if needed)")
    p.add_argument("--allow-missing", action="store_true",
                   help="skip an exp dir without TensorBoard scalars, with a warning, instead of failing")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    if not args.exp_dirs and args.results is None:
        print("plot_results: nothing to plot; give --exp-dirs, --results or both", file=sys.stderr)
        return 2
    from wenet_llm.utils.plots import PlotError, plot_results

    try:
        written, warnings = plot_results(args.exp_dirs, args.results, args.out_dir, args.allow_missing)
    except PlotError as e:
        print(f"plot_results: {e}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"plot_results: warning: {warning}", file=sys.stderr)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
