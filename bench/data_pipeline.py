"""Training dataloader throughput: audio-seconds per wall-second, and peak memory.

The full training path of wenet_llm.data.dataset: load, speed perturbation, additive noise,
fbank (dither) and SpecAugment, in DataLoader worker processes. Target: >= 200x real time on
2 cores, so data loading never limits even a single GPU.

Usage:
  python bench/data_pipeline.py                       # generates a 300-utterance demo corpus in a temp dir
  python bench/data_pipeline.py --corpus examples/demo/s0/data/corpus --workers 2 --epochs 1
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from wenet_llm.config import load_config
from wenet_llm.config.data import DataConfig
from wenet_llm.config.demo_corpus import DemoCorpusConfig
from wenet_llm.data.dataset import DataStream, SpeechDataset, training_cuts
from wenet_llm.synth.demo_corpus import generate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", default=None, help="a generated demo corpus dir (default: make one)")
    p.add_argument("--num-utts", type=int, default=300, help="size of the corpus made when --corpus is absent")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-duration", type=float, default=200.0, help="seconds of audio per batch")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(args.corpus) if args.corpus else Path(tmp) / "corpus"
        if not args.corpus:
            generate(load_config(DemoCorpusConfig, None, [f"num_utts={args.num_utts}"]), corpus, num_jobs=2)
        cfg = load_config(DataConfig, None, [
            f"train={corpus / 'train' / 'data.list'}", f"num_workers={args.workers}",
            f"sampler.max_duration={args.max_duration}", "speed_perturb.enabled=true", "spec_aug.enabled=true",
            "noise.enabled=true", f"noise.noise_dir={corpus / 'wav' / 'noise_only'}", "noise.prob=1.0",
        ])
        torch.set_num_threads(1)
        stream = DataStream(training_cuts(cfg), SpeechDataset(cfg, train=True), cfg, shuffle=True)
        seconds = frames = batches = 0
        start = time.perf_counter()
        for epoch in range(args.epochs):
            stream.set_epoch(epoch)
            for batch in stream:
                seconds += batch.audio_seconds
                frames += int(batch.feats_lengths.sum())
                batches += 1
        wall = time.perf_counter() - start
    main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"workers={args.workers} batches={batches} audio={seconds / 3600:.3f} h frames={frames} wall={wall:.1f} s")
    print(f"throughput: {seconds / wall:.0f}x real time (target >= 200x)")
    print(f"peak RSS: main {main_rss:.0f} MiB, largest child {worker_rss:.0f} MiB")
    print(stream.skips.summary())


if __name__ == "__main__":
    main()
