"""Make noisy copies of a test set at fixed SNRs, and a noise-only set, from a folder of noise files.

Example:
  python -m wenet_llm.bin.make_noisy_set --in data/test --noise-dir /data/musan/noise --out data/test_noisy
  -> data/test_noisy/{snr0,snr5,snr10,snr20,noise_only}/{data.list, wav.scp, text, ..., wav/}, summary.json

--in takes a WeNet data.list, a Kaldi data dir or a lhotse manifest. Mixing is the training pipeline's
(wenet_llm.data.augment.add_noise) at exactly each SNR; noise-only clips have empty transcripts and the
noise level of the copy at --noise-only-snr. Deterministic for a --seed. See docs/scoring.md.
"""

from __future__ import annotations

import json
import logging
import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--in", dest="inp", required=True, metavar="DATA",
                   help="test set: data.list, Kaldi data dir or lhotse manifest")
    p.add_argument("--noise-dir", required=True, metavar="DIR",
                   help="folder of noise files, searched recursively for *.wav and *.flac")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder: one data dir per SNR (snr<S>/) and noise_only/")
    p.add_argument("--snrs", type=float, nargs="*", default=[0.0, 5.0, 10.0, 20.0], metavar="DB",
                   help="SNRs of the noisy copies, in dB (none: only the noise-only set)")
    p.add_argument("--noise-only-snr", type=float, default=10.0, metavar="DB",
                   help="noise-only clips get the noise level of the copy at this SNR")
    p.add_argument("--no-noise-only", action="store_true", help="do not make the noise-only set")
    p.add_argument("--seed", type=int, default=0, help="random seed (noise file and crop per utterance)")
    p.add_argument("--sample-rate", type=int, default=16000, help="sample rate of the written wavs")
    p.add_argument("--num-workers", type=int, default=1, help="threads reading, mixing and writing audio")
    return p


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    from wenet_llm.data.noisy_set import make_noisy_sets
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    try:
        summary = make_noisy_sets(args.inp, args.noise_dir, args.out, snrs_db=args.snrs,
                                  noise_only=not args.no_noise_only, noise_only_snr_db=args.noise_only_snr,
                                  seed=args.seed, sample_rate=args.sample_rate, num_workers=args.num_workers)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"make_noisy_set: {e}", file=sys.stderr)
        return 1
    logging.info("noisy sets written to %s:\n%s", args.out, json.dumps(summary["sets"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
