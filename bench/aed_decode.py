"""Time stage 3's decoding of a test set with the code before the batched AED decoding and with this checkout.

Each run is a fresh process that loads the model, then times ``decode_aed`` (data loading, features, the
chosen methods, scoring) on the test set; runs alternate old, new, old, new, ... so that a background load
hits both alike. The old code is the package at ``--old-rev`` (extracted with ``git archive``) or a
directory given with ``--old-src``; it always decodes on the CPU (it has no device option). Prints every
run, the medians, the speed-up, and per method whether old and new wrote the same hypotheses (the
attention beam search was changed on purpose, so it differs).

Usage (from the repository root):
    python bench/aed_decode.py --exp-dir examples/demo/s0/exp/aed --checkpoint examples/demo/s0/exp/aed/avg_3.pt \\
        --test examples/demo/s0/data/test/data.list --repeats 3 --threads 2 --device auto
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ("ctc_greedy_search", "ctc_prefix_beam_search", "attention", "attention_rescoring")
# The last commit before the batched decoding (its CTC prefix beam search and rescoring loop per utterance).
OLD_REV = "04bfa35"


def child(args: argparse.Namespace) -> None:
    """One timed run in this process, with whichever wenet_llm PYTHONPATH selects."""
    import inspect

    import torch

    import wenet_llm
    from wenet_llm.data.tokenizer import load_tokenizer
    from wenet_llm.decode.aed_decode import decode_aed
    from wenet_llm.train.aed import load_trained

    tree = Path(args.child_tree).resolve()
    if tree not in Path(wenet_llm.__file__).resolve().parents:
        sys.exit(f"bench child: imported {wenet_llm.__file__}, not the package under {tree}; "
                 "an installed wenet_llm shadows PYTHONPATH")
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model, cfg = load_trained(config_for_this_code(Path(args.exp_dir), Path(tmp)), args.checkpoint)
    tokenizer = load_tokenizer(cfg.tokenizer.units, cfg.tokenizer.bpe_model)
    has_device = "device" in inspect.signature(decode_aed).parameters
    extra = {"device": args.device} if has_device else {}
    start = time.perf_counter()
    decode_aed(model, tokenizer, args.test, cfg.data, args.child_out, args.methods, args.beam_size, args.ctc_weight,
               **extra)
    if has_device and args.device != "cpu" and torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "device": args.device if has_device else "cpu"}))


def known_keys_only(cls: type, data: dict, where: str, dropped: list[str]) -> dict:
    """``data`` without the keys the config dataclass ``cls`` (and its nested ones) does not have."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    out = {}
    for key, value in data.items():
        if key not in hints:
            dropped.append(f"{where}{key}")
        elif dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            out[key] = known_keys_only(hints[key], value, f"{where}{key}.", dropped)
        else:
            out[key] = value
    return out


def config_for_this_code(exp_dir: Path, tmp: Path) -> Path:
    """``exp_dir``, or a directory holding its train.yaml without the settings the imported (older)
    wenet_llm does not know: the old code must read an experiment trained by the new one. The dropped
    keys are printed; whether they matter shows in the hypotheses comparison."""
    import yaml

    from wenet_llm.config.experiment import AEDExperimentConfig

    data = yaml.safe_load((exp_dir / "train.yaml").read_text(encoding="utf-8"))
    dropped: list[str] = []
    pruned = known_keys_only(AEDExperimentConfig, data, "", dropped)
    if not dropped:
        return exp_dir
    print(f"bench child: settings this code does not know, left out: {', '.join(dropped)}", file=sys.stderr)
    (tmp / "train.yaml").write_text(yaml.safe_dump(pruned, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return tmp


def old_tree(args: argparse.Namespace, tmp: Path) -> Path:
    if args.old_src:
        return Path(args.old_src).resolve()
    out = tmp / "old"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", args.old_rev, "wenet_llm"], capture_output=True)
    if archive.returncode:
        sys.exit(f"git archive {args.old_rev} failed in {REPO}: {archive.stderr.decode().strip()}; pass --old-rev "
                 "with the commit before 'AED decoding: CTC prefix beam search vectorised ...', or --old-src DIR")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def run_once(args: argparse.Namespace, tree: Path, out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-tree", str(tree), "--child-out", str(out),
           "--exp-dir", args.exp_dir, "--checkpoint", args.checkpoint, "--test", args.test,
           "--beam-size", str(args.beam_size), "--ctc-weight", str(args.ctc_weight), "--threads", str(args.threads),
           "--device", args.device, "--methods", *args.methods]
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"bench run with {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def same_text(a: Path, b: Path) -> str:
    old = dict(line.rstrip("\n").partition(" ")[::2] for line in a.read_text(encoding="utf-8").splitlines())
    new = dict(line.rstrip("\n").partition(" ")[::2] for line in b.read_text(encoding="utf-8").splitlines())
    differ = sum(old.get(k) != new.get(k) for k in old.keys() | new.keys())
    return "same" if not differ else f"{differ} of {len(old.keys() | new.keys())} utterances differ"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="a trained AED dir (its train.yaml is read)")
    p.add_argument("--checkpoint", required=True, help="a .pt of that dir, e.g. avg_3.pt")
    p.add_argument("--test", required=True, help="data.list of the test set")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--beam-size", type=int, default=10)
    p.add_argument("--ctc-weight", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=3, help="runs of each code (alternating)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every run (0: torch's default)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="device of the new code")
    p.add_argument("--old-rev", default=OLD_REV, help="git revision of the old code")
    p.add_argument("--old-src", help="a directory holding the old wenet_llm package (instead of --old-rev)")
    p.add_argument("--child-tree", help=argparse.SUPPRESS)
    p.add_argument("--child-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child_tree:
        child(args)
        return
    for path in (args.exp_dir, args.checkpoint, args.test):
        if not Path(path).exists():
            sys.exit(f"{path} does not exist; train the AED first (bash run.sh --stage 2 --stop_stage 2 in the recipe)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"old": old_tree(args, tmp), "new": REPO}
        times: dict[str, list[float]] = {"old": [], "new": []}
        for r in range(args.repeats):
            for name in ("old", "new"):
                result = run_once(args, trees[name], tmp / name)
                times[name].append(result["seconds"])
                print(f"run {r + 1} {name} ({result['device']}): {result['seconds']:.2f} s", flush=True)
        old_s, new_s = statistics.median(times["old"]), statistics.median(times["new"])
        print(f"methods: {' '.join(args.methods)}; beam {args.beam_size}; threads {args.threads or 'default'}")
        print(f"median of {args.repeats}: old {old_s:.2f} s, new {new_s:.2f} s, speed-up {old_s / new_s:.1f}x")
        for method in args.methods:
            print(f"hypotheses {method}: {same_text(tmp / 'old' / method / 'text', tmp / 'new' / method / 'text')}")


if __name__ == "__main__":
    main()
