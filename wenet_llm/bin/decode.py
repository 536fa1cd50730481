"""Decode test sets with an LLM-ASR model (a training dir or an export) and score them.

Examples:
  python -m wenet_llm.bin.decode --model exp/llm_sft2 --test data/test/data.list --out exp/llm_sft2/decode_test
  python -m wenet_llm.bin.decode --model exp/llm_ctx/export --test data/test_hotword/data.list \\
      --out exp/llm_ctx/decode_test_hotword_ctx --context-from-list
  python -m wenet_llm.bin.decode --model DIR --test LIST --out OUT --hotwords "Zorvath,Kavanok"
  python -m wenet_llm.bin.decode --model DIR --test LIST --out OUT_noguards --guards off
  python -m wenet_llm.bin.decode --model DIR --test LIST --out OUT --ctc-guard flag --vad-gate on
  python -m wenet_llm.bin.decode --model DIR --test LIST --out OUT --rescoring on --ctc-weight 1.0

Writes OUT/{text,results.jsonl,wer,summary.json} and prints the real-time factor. The hallucination
guards (docs/guards.md) default to the model config's decode.guards; --guards off turns all of them off,
the per-guard switches change one each. The joint CTC + LLM rescoring (docs/llm.md) defaults to the
config's decode.rescoring; --rescoring, --ctc-weight and --ctc-beam change it.
"""

from __future__ import annotations

import sys

from wenet_llm.utils.cli import ArgumentParser


def get_parser() -> ArgumentParser:
    p = ArgumentParser(__name__, __doc__)
    p.add_argument("--model", required=True, help="an LLM training dir (train.yaml) or an export dir")
    p.add_argument("--checkpoint", default=None, help="with a training dir: a checkpoint dir of it (default: final)")
    p.add_argument("--test", required=True, help="data.list / Kaldi dir of the test set")
    p.add_argument("--out", required=True, help="output dir")
    p.add_argument("--num-beams", type=int, default=None, help="beam size (default: the model config's decode.num_beams)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="hard cap on generated tokens (default: config)")
    p.add_argument("--max-duration", type=float, default=None, help="seconds of audio per batch (default: config)")
    p.add_argument("--hotwords", default=None, help='one hotword list for every utterance, e.g. "a,b"')
    p.add_argument("--hotwords-file", default=None, help="one hotword per line, for every utterance")
    p.add_argument("--context", default=None,
                   help='per-utterance context, JSON lines {"key": ..., "hotwords": [...], "summary": ...}')
    p.add_argument("--context-from-list", action="store_true",
                   help="use each test entry's own hotwords / summary fields as its context")
    p.add_argument("--guards", choices=["on", "off"], default=None,
                   help="all hallucination guards on (with the config's per-guard settings) or off "
                        "(default: the config's decode.guards.enabled)")
    p.add_argument("--length-cap", choices=["on", "off"], default=None,
                   help="the new-token cap from the audio duration (default: config)")
    p.add_argument("--repetition-guard", choices=["on", "off"], default=None,
                   help="stop and trim repetition loops (default: config)")
    p.add_argument("--ctc-guard", choices=["off", "flag", "fallback"], default=None,
                   help="compare with the encoder's CTC hypothesis: off, flag mismatches, or flag and fall back "
                        "to the CTC text (default: config)")
    p.add_argument("--vad-gate", choices=["on", "off"], default=None,
                   help="output empty without decoding when the energy gate finds no speech (default: config)")
    p.add_argument("--rescoring", choices=["on", "off"], default=None,
                   help="joint CTC + LLM rescoring of the LLM output and the CTC n-best (default: the config's "
                        "decode.rescoring.enabled)")
    p.add_argument("--ctc-weight", type=float, default=None,
                   help="weight of the CTC log-likelihood in the rescoring (default: config)")
    p.add_argument("--ctc-beam", type=int, default=None, help="CTC n-best size of the rescoring (default: config)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--num-threads", type=int, default=0, help="torch threads (0: torch's default)")
    return p


def _on(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    import dataclasses

    import torch

    from wenet_llm.api import load
    from wenet_llm.config.llm import GuardsConfig, RescoringConfig
    from wenet_llm.decode.guards import switch_guards
    from wenet_llm.decode.llm_decode import ContextSource, decode_llm, read_context_jsonl
    from wenet_llm.models.llm.prompt import hotword_list
    from wenet_llm.utils.logging import setup_logging

    setup_logging()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    hotwords = hotword_list(args.hotwords)
    switches = {"enabled": _on(args.guards), "length_cap": _on(args.length_cap),
                "repetition": _on(args.repetition_guard), "ctc": args.ctc_guard, "vad": _on(args.vad_gate)}
    rescoring = {k: v for k, v in (("enabled", _on(args.rescoring)), ("ctc_weight", args.ctc_weight),
                                   ("ctc_beam", args.ctc_beam)) if v is not None}
    try:
        switch_guards(GuardsConfig(), **switches)  # contradicting switches fail before the model loads
        dataclasses.replace(RescoringConfig(), **rescoring).validate()  # so do bad rescoring values
        if args.hotwords_file:
            with open(args.hotwords_file, encoding="utf-8") as f:
                hotwords += [line.strip() for line in f if line.strip()]
        per_utt = read_context_jsonl(args.context) if args.context else {}
        recognizer = load(args.model, args.checkpoint, args.device)
        gen = recognizer.cfg.decode
        changes = {k: v for k, v in (("num_beams", args.num_beams), ("max_new_tokens", args.max_new_tokens),
                                     ("max_duration", args.max_duration)) if v is not None}
        changes["guards"] = switch_guards(gen.guards, **switches)
        changes["rescoring"] = dataclasses.replace(gen.rescoring, **rescoring)
        gen = dataclasses.replace(gen, **changes)
        gen.validate()
    except (OSError, ValueError) as e:
        print(f"decode: {e}", file=sys.stderr)
        return 2
    context = ContextSource(hotwords=hotwords, per_utt=per_utt, from_list=args.context_from_list)
    decode_llm(recognizer.model, recognizer.tokenizer, recognizer.builder, gen, args.test, recognizer.cfg.data,
               args.out, context, args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
