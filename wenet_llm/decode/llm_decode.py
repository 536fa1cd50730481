"""Batched LLM-ASR decoding of a test set: Kaldi ``text``, per-utterance JSON lines, the real-time factor
and the score.

Batches are bounded by total audio duration; the encoder and the adapter run once per batch; the
prompts are left-padded and the LLM generates with its KV cache (greedy or beam search through
Hugging Face ``generate`` on ``inputs_embeds``). Outputs in ``out_dir``:

- ``text``: ``key hypothesis`` per utterance (the corpus' casing, see ``prompt.english_case``);
- ``results.jsonl``: per utterance ``key``, ``hyp``, ``ref``, ``tokens`` (generated ids), ``num_tokens``,
  ``seconds`` (audio), ``decode_seconds`` (its share of its batch's wall time), ``context`` (what the
  prompt held), ``flags`` (which hallucination guard fired, :data:`wenet_llm.decode.guards.FLAGS`),
  ``guards`` (what each fired guard found and changed), ``ctc_hyp`` (the CTC greedy hypothesis when
  the CTC guard ran, else null) and ``rescoring`` (with the joint CTC + LLM rescoring on: the winning
  candidate's ``source``, ``llm``, ``ctc_<rank>`` or ``hotword``, its two scores and the number of candidates; else null);
- ``wer``: the scorer's report; ``summary.json``: the overall figures, the real-time factor,
  ``guards`` (which guards ran, and how many utterances each flag marked) and ``rescoring`` (its settings
  and how many outputs came from the CTC n-best).

The guards (docs/guards.md) run through :class:`wenet_llm.decode.guards.GuardedDecoder`.

Context (hotwords / summary) per utterance comes from a :class:`ContextSource`: none, one list for all
utterances, a JSON-lines file keyed by utterance id, or the test list's own fields.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Optional

import torch

from wenet_llm.config.data import DataConfig
from wenet_llm.config.llm import GenerationConfig
from wenet_llm.data import formats
from wenet_llm.data.dataset import DataStream, SpeechDataset, load_cut_set
from wenet_llm.decode.guards import FLAGS, GuardedDecoder
from wenet_llm.models.llm.prompt import PromptBuilder
from wenet_llm.score.wer import score
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ContextSource:
    """Where each utterance's prompt context comes from.

    ``hotwords`` applies to every utterance; ``per_utt`` maps an utterance id to a context dict
    (``hotwords`` list and/or ``summary``); ``from_list`` takes the test list's own context fields.
    An utterance's context is the per-utterance one when present, else the global hotwords.
    """

    hotwords: list[str] = dataclasses.field(default_factory=list)
    per_utt: dict[str, dict] = dataclasses.field(default_factory=dict)
    from_list: bool = False

    def for_utt(self, key: str, list_context: dict) -> dict:
        if key in self.per_utt:
            return self.per_utt[key]
        if self.from_list and (list_context.get("hotwords") or list_context.get("summary")):
            return {k: list_context[k] for k in ("hotwords", "summary") if list_context.get(k)}
        return {"hotwords": list(self.hotwords)} if self.hotwords else {}

    @property
    def empty(self) -> bool:
        return not (self.hotwords or self.per_utt or self.from_list)


def read_context_jsonl(path: str | Path) -> dict[str, dict]:
    """``{"key": id, "hotwords": [...], "summary": "..."}`` per line -> {id: context}."""
    out: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{number}: not valid JSON: {e}") from None
            if not isinstance(entry, dict) or "key" not in entry:
                raise ValueError(f"{path}:{number}: expected an object with a 'key', got {line.strip()[:80]!r}")
            hotwords = entry.get("hotwords") or []
            if isinstance(hotwords, str) or not all(isinstance(h, str) for h in hotwords):
                raise ValueError(f"{path}:{number}: 'hotwords' must be a list of strings")
            out[str(entry["key"])] = {k: entry[k] for k in ("hotwords", "summary") if entry.get(k)}
    return out


def rescoring_summary(gen: GenerationConfig, results) -> dict:
    """Whether the joint rescoring ran, its settings, and how many outputs it took from the CTC n-best."""
    cfg = gen.rescoring
    if not cfg.enabled:
        return {"enabled": False}
    picks = [r["rescoring"]["source"] for r in results if r.get("rescoring")]
    return {"enabled": True, "ctc_beam": cfg.ctc_beam, "ctc_weight": cfg.ctc_weight, "rescored": len(picks),
            "from_ctc_nbest": sum(p.startswith("ctc_") for p in picks)}


@torch.no_grad()
def decode_llm(model, tokenizer, builder: PromptBuilder, gen: GenerationConfig, test_list: str | Path,
               data_cfg: DataConfig, out_dir: str | Path, context: Optional[ContextSource] = None,
               device: str | torch.device = "cpu", progress: bool = True) -> dict:
    """Decode and score ``test_list``; returns the summary (also written to ``summary.json``)."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    context = context or ContextSource()
    device = torch.device(device)
    model.to(device).eval()
    eval_cfg = dataclasses.replace(
        data_cfg, sampler=dataclasses.replace(data_cfg.sampler, max_duration=gen.max_duration, max_tokens=0),
        filter=dataclasses.replace(data_cfg.filter, min_seconds=0.0, max_seconds=1e9))
    cuts = load_cut_set(str(test_list))
    stream = DataStream(cuts, SpeechDataset(eval_cfg, train=False), eval_cfg, shuffle=False)
    decoder = GuardedDecoder(model, tokenizer, builder, gen, data_cfg.fbank)
    results: dict[str, dict] = {}
    truncated = 0
    total_time = total_audio = 0.0
    bar = tqdm(total=len(cuts), unit="utt", desc=f"decode {Path(test_list).parent.name}", disable=not progress,
               leave=False)
    for batch in stream:
        start = time.perf_counter()
        ctxs = [context.for_utt(k, c) for k, c in zip(batch.keys, batch.context)]
        prompts = [builder.build(None, c) for c in ctxs]
        for key, p in zip(batch.keys, prompts):
            if p.truncated:
                truncated += 1
                logger.warning("%s: prompt context truncated: %s", key, p.truncated)
        seconds = [float(n) * data_cfg.fbank.frame_shift_ms / 1000.0 for n in batch.feats_lengths.tolist()]
        outputs = decoder(batch.feats.to(device), batch.feats_lengths.to(device), prompts,
                          [c.get("hotwords") or [] for c in ctxs])
        elapsed = time.perf_counter() - start
        total_time += elapsed
        total_audio += sum(seconds)
        batch_audio = max(sum(seconds), 1e-9)
        for key, out, ctx, sec in zip(batch.keys, outputs, ctxs, seconds):
            results[key] = {"key": key, "hyp": out.text, "tokens": out.tokens, "num_tokens": len(out.tokens),
                            "seconds": round(sec, 3), "decode_seconds": round(elapsed * sec / batch_audio, 4),
                            "context": ctx, "flags": out.flags, "guards": out.details, "ctc_hyp": out.ctc_text,
                            "rescoring": out.rescoring}
        bar.update(len(batch))
    bar.close()
    if stream.skips.total():
        logger.warning("%s: %s", test_list, stream.skips.summary())
    refs = {e["key"]: e["txt"] for e in formats.iter_entries(test_list)}
    hyps = {k: r["hyp"] for k, r in results.items()}
    with atomic_open(out_dir / "text") as f:
        f.writelines(f"{k} {hyps[k]}".rstrip() + "\n" for k in sorted(hyps))
    with atomic_open(out_dir / "results.jsonl") as f:
        for k in sorted(results):
            f.write(json.dumps({**results[k], "ref": refs.get(k, "")}, ensure_ascii=False) + "\n")
    result = score(refs, hyps, char_mode=True)
    with atomic_open(out_dir / "wer") as f:
        f.write(result.report(verbose=True))
    rtf = total_time / max(total_audio, 1e-9)
    summary = {"test_set": str(test_list), "utterances": len(results), "overall": result.summary_line(),
               "wer": result.total.wer, "en_wer": result.clusters["English"].wer,
               "zh_cer": result.clusters["Mandarin"].wer, "rtf": rtf, "decode_seconds": total_time, "audio_seconds": total_audio,
               "num_beams": gen.num_beams, "context_truncated": truncated,
               "length_cap_hits": sum(r["flags"]["length_cap"] for r in results.values()),
               "guards": {"active": decoder.active(),
                          "flagged": {f: sum(r["flags"][f] for r in results.values()) for f in FLAGS}},
               "rescoring": rescoring_summary(gen, results.values())}
    with atomic_open(out_dir / "summary.json") as f:
        json.dump(summary, f, indent=2)
    logger.info("%s: %s | RTF %.4f (%.1f s for %.1f s of audio)", test_list, summary["overall"], rtf, total_time,
                total_audio)
    return summary
