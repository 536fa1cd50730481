"""Stage 7: decode every test set with the AED and each finished LLM stage, score them with one scorer.

The test sets are named (``<data_dir>/<set>/data.list``; a missing one is reported and left out); the
first is the primary one, whose figures are the top-level results (``aed``, ``llm_sft1``, ...). What a
set holds decides what else is measured on it with the final LLM stage (the last finished one):

- entries with ``hotwords``: also decoded with their lists in the prompt; hotword recall, B-WER and
  U-WER without and with, split into names seen and never seen in training (the ``entities`` of the
  training list);
- entries with ``noise`` (``kind``, ``snr_db``, ``seen_in_train``): rates per SNR and per noise kind, and
  of the kinds never seen in training;
- only empty references (noise, silence): the share of empty outputs, with the guards on and off;
- the primary set: also with the hallucination guards off (the LLM alone: no guard, no rescoring), and
  with distractor-only lists (pool names none of which is spoken) for the share of utterances that gain
  a list name.

Every stage whose config decodes with the joint CTC + LLM rescoring is also decoded without it on the
primary set (``no_rescoring``), and the share of its outputs taken from the CTC n-best is reported
(``rescored_from_ctc_rate``).

The AED's figures come from stage 3's decodes (``exp/aed/decode_<set>/<method>/text``; ``attention`` on
the primary set is decoded here when stage 3 did not). Everything is scored by
:func:`wenet_llm.score.report.score_system` (MER tokens; English WER and Mandarin CER are its clusters).
:func:`evaluate` returns the results (rates in percent) and writes ``<out>/results.json`` and
``<out>/results.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from pathlib import Path
from typing import Optional, Sequence

from wenet_llm.data import formats
from wenet_llm.score.report import SystemScore, score_system
from wenet_llm.score.wer import read_kaldi_text
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

LLM_STAGES = ("llm_sft1", "llm_sft2", "llm_ctx")
AED_METHODS_SHOWN = ("ctc_greedy_search", "ctc_prefix_beam_search", "attention", "attention_rescoring")
DISTRACTORS_PER_UTT = 5
DEMO_TEST_SETS = ("test", "test_noisy", "test_hotword", "noise_only")


def lang_rates(s: SystemScore) -> dict[str, Optional[float]]:
    """English WER and Mandarin CER (percent, None for a language the set lacks) of a scored set."""
    en, zh = s.result.clusters["English"], s.result.clusters["Mandarin"]
    return {"en_wer": round(en.wer, 2) if en.n else None, "zh_cer": round(zh.wer, 2) if zh.n else None}


def _score(name: str, hyp_path: Path, refs: dict[str, str], **kwargs) -> SystemScore:
    return score_system(name, str(hyp_path), refs, read_kaldi_text(hyp_path), **kwargs)


def read_entries(data_dir: Path, name: str) -> Optional[list[dict]]:
    path = data_dir / name / "data.list"
    return list(formats.read_data_list(path)) if path.is_file() else None


def refs_of(entries: Sequence[dict]) -> dict[str, str]:
    return {e["key"]: e.get("txt", "") for e in entries}


def seen_terms(train_entries: Sequence[dict]) -> list[str]:
    """The names spoken in training (the ``entities`` of the training entries)."""
    return sorted({str(t) for e in train_entries for t in (e.get("entities") or [])})


def distractor_context(entries: Sequence[dict], pool: Sequence[str], per_utt: int = DISTRACTORS_PER_UTT,
                       seed: int = 0) -> dict[str, dict]:
    """Per utterance, ``per_utt`` pool names absent from its transcript (deterministic for ``seed``)."""
    rng = random.Random(seed)
    out = {}
    for e in entries:
        text = e.get("txt", "").upper()
        choices = [p for p in rng.sample(list(pool), min(len(pool), per_utt * 4)) if p.upper() not in text]
        out[e["key"]] = {"hotwords": choices[:per_utt]}
    return out


def read_pool(path: Path) -> list[str]:
    """Names of a pool file: JSON list of strings or of {text, ...}, or one name per line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [x["text"] if isinstance(x, dict) else str(x) for x in json.loads(text)]
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclasses.dataclass
class LLMDecoder:
    """Decodes test lists with one trained LLM stage (loaded once)."""

    stage_dir: Path
    device: str = "cpu"

    def __post_init__(self) -> None:
        from wenet_llm.api import Recognizer
        from wenet_llm.train.llm import load_trained

        model, cfg, tokenizer = load_trained(self.stage_dir, None)
        model.to(self.device)
        self.recognizer = Recognizer(model, cfg, tokenizer, self.device)

    @property
    def rescores(self) -> bool:
        """Whether the stage's config decodes with the joint CTC + LLM rescoring."""
        return self.recognizer.cfg.decode.rescoring.enabled

    def __call__(self, test_list: Path, out_dir: Path, context=None, guards: Optional[bool] = None,
                 rescoring: Optional[bool] = None) -> Path:
        """Decode with the stage's decode config; ``guards=False``: the LLM alone (no guard and no rescoring);
        ``rescoring`` switches the rescoring (None: as configured)."""
        from wenet_llm.decode.guards import switch_guards
        from wenet_llm.decode.llm_decode import decode_llm

        r = self.recognizer
        if guards is False:
            rescoring = False
        gen = dataclasses.replace(r.cfg.decode, guards=switch_guards(r.cfg.decode.guards, enabled=guards))
        if rescoring is not None:
            gen = dataclasses.replace(gen, rescoring=dataclasses.replace(gen.rescoring, enabled=rescoring))
        decode_llm(r.model, r.tokenizer, r.builder, gen, test_list, r.cfg.data, out_dir, context, self.device)
        return out_dir / "text"


def _noisy_breakdown(s: SystemScore, entries: Sequence[dict]) -> dict:
    """Rates per SNR and per noise kind of a scored noisy set (entries carry ``noise``: kind, snr_db)."""
    by_key = {e["key"]: e.get("noise") or {} for e in entries}
    groups: dict[tuple[str, str], list] = {}
    for u in s.result.utts:
        noise = by_key.get(u.key, {})
        if "snr_db" in noise:
            groups.setdefault(("snr", f"{float(noise['snr_db']):g}"), []).append(u)
        if "kind" in noise:
            groups.setdefault(("kind", str(noise["kind"])), []).append(u)
    out: dict = {"snr": {}, "kind": {}}
    for (what, name), utts in sorted(groups.items()):
        out[what][name] = _rates_of_ops([(op, r if r is not None else h) for u in utts for op, r, h in u.alignment])
    return out


def _rates_of_ops(ops: Sequence[tuple[str, str]]) -> dict[str, Optional[float]]:
    from wenet_llm.score.wer import Counts, token_cluster

    counts = {"English": Counts(), "Mandarin": Counts()}
    for op, token in ops:
        cluster = token_cluster(token)
        if cluster in counts:
            counts[cluster].add(op)
    en, zh = counts["English"], counts["Mandarin"]
    return {"en_wer": round(en.wer, 2) if en.n else None, "zh_cer": round(zh.wer, 2) if zh.n else None}


def _mer(s: SystemScore) -> Optional[float]:
    """None on a set whose references are all empty (noise only): a rate over no reference token is undefined."""
    total = s.result.total
    return round(total.wer, 2) if total.n else None


def _per_utt(decode_dir: Path, field: str, default=None) -> Optional[list]:
    """One field of every utterance record of an LLM decode (its ``results.jsonl``); None for a decode
    without per-utterance records (the AED's)."""
    path = decode_dir / "results.jsonl"
    if not path.is_file():
        return None
    return [json.loads(line).get(field, default) for line in path.open(encoding="utf-8") if line.strip()]


def _guard_flags(decode_dir: Path) -> Optional[list[dict]]:
    """Per utterance, which guard fired in an LLM decode; None without per-utterance records."""
    return _per_utt(decode_dir, "flags", {})


def _percent(records: Optional[list], hit) -> Optional[float]:
    return round(100.0 * sum(bool(hit(r)) for r in records) / len(records), 2) if records else None


def _ctc_fallback_rate(decode_dir: Path) -> Optional[float]:
    """Percent of a decode's utterances whose output is the CTC hypothesis (the consistency guard fell back):
    how much of an LLM figure is the encoder's CTC head rather than the LLM. None without per-utterance records."""
    return _percent(_guard_flags(decode_dir), lambda f: f.get("ctc_fallback"))


def _from_ctc_rate(decode_dir: Path) -> Optional[float]:
    """Percent of a decode's utterances whose output the joint rescoring took from the CTC n-best."""
    return _percent(_per_utt(decode_dir, "rescoring"), lambda p: p and p["source"].startswith("ctc_"))


def _guard_figures(test: SystemScore, decode_dir: Path) -> dict:
    h = test.hallucination
    return {"mer": _mer(test), **lang_rates(test), "insertion_rate": _round(h.insertion_rate),
            "loop_rate": _round(h.loop_rate), "overlong_rate": _round(h.overlong_rate),
            "ctc_fallback_rate": _ctc_fallback_rate(decode_dir)}


def _empty_rate(s: SystemScore) -> Optional[float]:
    h = s.hallucination
    if not h.empty_ref_utts:
        return None
    return round(100.0 * (h.empty_ref_utts - h.empty_ref_nonempty_utts) / h.empty_ref_utts, 2)


def _round(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 2)


def _aed_results(exp: Path, data_dir: Path, sets: dict[str, list[dict]], primary: str, device: str) -> dict:
    """Scores of every AED method stage 3 decoded, per set; ``attention`` on the primary set decoded here
    when stage 3 did not."""
    aed = exp / "aed"
    if not (aed / f"decode_{primary}" / "attention" / "text").is_file():
        averaged = sorted(aed.glob("avg_*.pt"))
        if averaged:
            from wenet_llm.train.aed import decode_trained

            logger.info("AED attention search on %s (stage 3 did not run it)", primary)
            decode_trained(aed, averaged[-1], data_dir / primary / "data.list", aed / f"decode_{primary}",
                           ["attention"], device=device)
    out: dict = {}
    for name, entries in sets.items():
        for method in AED_METHODS_SHOWN:
            hyp = aed / f"decode_{name}" / method / "text"
            if hyp.is_file():
                out.setdefault(name, {})[method] = _score(f"aed_{method}", hyp, refs_of(entries))
    return out


def set_kind(entries: Sequence[dict]) -> str:
    """``non_speech`` (only empty references), ``hotword`` (lists), ``noisy`` (noise fields) or ``plain``."""
    if entries and all(not e.get("txt") for e in entries):
        return "non_speech"
    if any(e.get("hotwords") for e in entries):
        return "hotword"
    if any(isinstance(e.get("noise"), dict) and "snr_db" in e["noise"] for e in entries):
        return "noisy"
    return "plain"


def evaluate(data_dir: str | Path, exp_dir: str | Path, out_dir: str | Path,
             test_sets: Sequence[str] = DEMO_TEST_SETS, distractor_pool: Optional[str | Path] = None,
             device: str = "cpu", stages: Sequence[str] = LLM_STAGES, extra: Optional[dict] = None,
             own_stage: Optional[str] = None) -> dict:
    """Decode and score every test set with every finished system; returns (and writes) the results,
    ``extra`` (e.g. :func:`provenance`) included. ``own_stage`` (the recipe stage this runs as) adds this
    evaluation's own seconds to ``stage_seconds`` and ``wall_seconds``, which the stage-times file cannot
    hold yet."""
    started = time.monotonic()
    data, exp, out = Path(data_dir), Path(exp_dir), Path(out_dir)
    if not test_sets:
        raise ValueError("no test set given")
    sets = {name: e for name in test_sets if (e := read_entries(data, name)) is not None}
    missing_sets = [n for n in test_sets if n not in sets]
    primary = test_sets[0]
    if primary not in sets:
        raise FileNotFoundError(f"{data}/{primary}/data.list does not exist: the first test set is the primary one")
    if missing_sets:
        logger.warning("test sets not prepared, not evaluated: %s", ", ".join(missing_sets))
    finished = [s for s in stages if (exp / s / "train.yaml").is_file() and (exp / s / "final").exists()]
    results: dict = {**(extra or {}), "primary_set": primary, "missing_sets": missing_sets,
                     "final_stage": finished[-1] if finished else None, "systems": {}}
    scores: dict[str, dict[str, SystemScore]] = {}

    aed = _aed_results(exp, data, sets, primary, device)
    for name, by_method in aed.items():
        for method, s in by_method.items():
            scores.setdefault(f"aed {method}", {})[name] = s
    if primary in aed:
        by_method = aed[primary]
        best = min(by_method, key=lambda m: by_method[m].result.total.wer)
        results["aed"] = {**lang_rates(by_method[best]), "method": best}
        for method, key in (("attention", "aed_attention"), ("ctc_greedy_search", "aed_ctc_greedy")):
            if method in by_method:
                results[key] = lang_rates(by_method[method])
    for name, entries in sets.items():
        if set_kind(entries) == "noisy" and "ctc_greedy_search" in aed.get(name, {}):
            breakdown = _noisy_breakdown(aed[name]["ctc_greedy_search"], entries)
            _merge_by_lang(results.setdefault("aed_ctc_greedy_noisy", {"en_wer": {}, "zh_cer": {}}), breakdown["snr"])

    for stage in finished:
        decoder = LLMDecoder(exp / stage, device)
        final = stage == finished[-1]
        for name, entries in sets.items():
            if not final and name != primary:
                continue
            s = _score(stage, decoder(data / name / "data.list", out / stage / name), refs_of(entries))
            scores.setdefault(stage, {})[name] = s
            if name == primary:
                results[stage] = lang_rates(s)
                results.setdefault("ctc_fallback_rate", {})[stage] = _ctc_fallback_rate(out / stage / name)
                if decoder.rescores:  # the same stage without the rescoring: what the LLM alone writes
                    plain = _score(stage, decoder(data / name / "data.list", out / stage / f"{name}_no_rescoring",
                                                  rescoring=False), refs_of(entries))
                    scores[stage][f"{name} no rescoring"] = plain
                    results.setdefault("no_rescoring", {})[stage] = lang_rates(plain)
                    results.setdefault("rescored_from_ctc_rate", {})[stage] = _from_ctc_rate(out / stage / name)
            if final:
                _final_measures(decoder, stage, data, name, entries, s, primary, out / stage, results, scores,
                                distractor_pool)
    if "guards" in results and "noise_only_empty_rate" in results:
        results["guards"]["on"]["noise_only_empty_rate"] = results["noise_only_empty_rate"]
        results["guards"]["off"]["noise_only_empty_rate"] = results["noise_only_empty_rate_guards_off"]
    results["systems"] = {system: {name: {**lang_rates(s), "mer": _mer(s)}
                                   for name, s in per_set.items()} for system, per_set in scores.items()}
    if own_stage is not None and "stage_seconds" in results:
        results["stage_seconds"] = {**results["stage_seconds"], own_stage: round(time.monotonic() - started)}
        results["wall_seconds"] = sum(results["stage_seconds"].values())
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "results.json") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with atomic_open(out / "results.md") as f:
        f.write(results_markdown(results))
    return results


def read_stage_times(path: str | Path) -> dict[str, int]:
    """Seconds per stage from a recipe's stage-times file; a part redone later replaces its earlier time."""
    parts: dict[tuple[str, str], int] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) == 3 and fields[2].isdigit():
            parts[(fields[0], fields[1])] = int(fields[2])
    out: dict[str, int] = {}
    for (stage, _), seconds in parts.items():
        out[stage] = out.get(stage, 0) + seconds
    return dict(sorted(out.items()))


def provenance(stage_times: Optional[str | Path], configs: Sequence[str | Path]) -> dict:
    """``commit`` (of the toolkit's git checkout, ``+dirty`` with uncommitted changes), ``config_digest``
    (of the given config files), ``stage_seconds`` and ``wall_seconds`` (their sum)."""
    import hashlib
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    digest = hashlib.sha256()
    for path in sorted(str(c) for c in configs):
        digest.update(path.encode() + b"\0" + Path(path).read_bytes())
    out: dict = {"commit": commit, "config_digest": digest.hexdigest()[:16]}
    if stage_times is not None and Path(stage_times).is_file():
        out["stage_seconds"] = read_stage_times(stage_times)
        out["wall_seconds"] = sum(out["stage_seconds"].values())
    return out


def _merge_by_lang(into: dict[str, dict], per_snr: dict[str, dict]) -> None:
    """Add {"10": {en_wer, zh_cer}, ...} to {"en_wer": {"10": ..}, "zh_cer": {"10": ..}}."""
    for lang in ("en_wer", "zh_cer"):
        into[lang].update({snr: rates[lang] for snr, rates in per_snr.items()})


def _final_measures(decoder: LLMDecoder, stage: str, data: Path, name: str, entries: Sequence[dict],
                    plain: SystemScore, primary: str, out: Path, results: dict, scores: dict,
                    distractor_pool: Optional[str | Path]) -> None:
    """What the final stage measures on one set beyond its plain decode (see the module docstring)."""
    from wenet_llm.decode.llm_decode import ContextSource

    test_list, refs, kind = data / name / "data.list", refs_of(entries), set_kind(entries)
    if kind == "non_speech":
        off = _score(stage, decoder(test_list, out / f"{name}_guards_off", guards=False), refs)
        scores[stage][f"{name} guards off"] = off
        flags = _guard_flags(out / name)
        if flags is None:
            raise FileNotFoundError(f"{out / name}/results.jsonl is missing: the LLM decode wrote no flags")
        results.setdefault("noise_only_empty_rate", _empty_rate(plain))
        results.setdefault("noise_only_empty_rate_guards_off", _empty_rate(off))
        results.setdefault("noise_only_over_cap", sum(bool(f.get("length_cap")) for f in flags))
    elif kind == "noisy":
        breakdown = _noisy_breakdown(plain, entries)  # several noisy sets (one per SNR) add up
        _merge_by_lang(results.setdefault("noisy", {"en_wer": {}, "zh_cer": {}}), breakdown["snr"])
        results.setdefault("noisy_by_kind", {}).update(breakdown["kind"])
        unseen = sorted({str(e["noise"].get("kind")) for e in entries
                         if isinstance(e.get("noise"), dict) and e["noise"].get("seen_in_train") is False})
        if unseen:
            results.setdefault("noisy_unseen_kind", {"kind": ",".join(unseen), **_merge_kinds(plain, entries, unseen)})
    elif kind == "hotword":
        lists = {e["key"]: list(e.get("hotwords") or []) for e in entries}
        seen = seen_terms(read_entries(data, "train") or [])
        without = _score(stage, out / name / "text", refs, hotwords=lists, seen_terms=seen)
        with_ctx = _score(stage, decoder(test_list, out / f"{name}_context", ContextSource(from_list=True)), refs,
                          hotwords=lists, seen_terms=seen)
        scores[stage][f"{name} +context"] = with_ctx
        w, c = without.hotwords, with_ctx.hotwords
        figures = {}
        for label, report in (("without", w), ("with", c)):
            figures.update({f"recall_{label}": _round(report.all.recall), f"bwer_{label}": _round(report.all.bwer),
                            f"uwer_{label}": _round(report.all.uwer)})
            if report.unseen is not None:
                figures.update({f"recall_unseen_{label}": _round(report.unseen.recall),
                                f"recall_seen_{label}": _round(report.seen.recall)})
        for label, s in (("without", without), ("with", with_ctx)):
            figures.update({f"{k}_{label}": v for k, v in lang_rates(s).items()})
        results.setdefault("hotword", {"set": name, **figures})
        results.setdefault("hotword_sets", {})[name] = figures
    if name != primary:
        return
    off = _score(stage, decoder(test_list, out / f"{name}_guards_off", guards=False), refs)
    scores[stage][f"{name} guards off"] = off
    results["guards"] = {"on": _guard_figures(plain, out / name),
                         "off": _guard_figures(off, out / f"{name}_guards_off")}
    if distractor_pool is not None:
        pool = read_pool(Path(distractor_pool))
        ctx = distractor_context(entries, pool)
        hyp = decoder(test_list, out / f"{name}_distractors", ContextSource(per_utt=ctx))
        s = _score(stage, hyp, refs, hotwords={k: v["hotwords"] for k, v in ctx.items()})
        scores[stage][f"{name} +distractors"] = s
        results["distractor_insert_rate"] = _round(s.hotwords.all.distractor_insert_rate)


def _merge_kinds(s: SystemScore, entries: Sequence[dict], kinds: Sequence[str]) -> dict:
    keys = {e["key"] for e in entries if str((e.get("noise") or {}).get("kind")) in kinds}
    return _rates_of_ops([(op, r if r is not None else h) for u in s.result.utts if u.key in keys
                          for op, r, h in u.alignment])


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.2f}" if isinstance(x, float) else str(x)


def results_markdown(results: dict) -> str:
    """The tables of RESULTS.md from a results dict."""
    lines = ["| system | set | English WER % | Mandarin CER % | MER % |", "|---|---|---|---|---|"]
    for system, per_set in results["systems"].items():
        for name, r in per_set.items():
            lines.append(f"| {system} | {name} | {_fmt(r['en_wer'])} | {_fmt(r['zh_cer'])} | {_fmt(r['mer'])} |")
    if "noisy" in results:
        snrs = sorted(results["noisy"]["en_wer"], key=float, reverse=True)
        lines += ["", f"Noisy test ({results.get('final_stage')}; AED CTC greedy), English WER / Mandarin CER %:", "",
                  "| SNR dB | LLM en | LLM zh | AED en | AED zh |", "|---|---|---|---|---|"]
        aed = results.get("aed_ctc_greedy_noisy", {"en_wer": {}, "zh_cer": {}})
        for snr in snrs:
            lines.append(f"| {snr} | {_fmt(results['noisy']['en_wer'][snr])} | {_fmt(results['noisy']['zh_cer'][snr])} "
                         f"| {_fmt(aed['en_wer'].get(snr))} | {_fmt(aed['zh_cer'].get(snr))} |")
        if "noisy_unseen_kind" in results:
            u = results["noisy_unseen_kind"]
            lines.append(f"\nNoise kind never seen in training ({u['kind']}): English WER {_fmt(u['en_wer'])} %, "
                         f"Mandarin CER {_fmt(u['zh_cer'])} %.")
    if "guards" in results:
        lines += ["", f"Hallucination guards ({results.get('final_stage')}, `{results.get('primary_set')}` and the "
                      "non-speech set):", "",
                  "| guards | MER % | insertion rate % | loop rate % | overlong % | noise-only empty % "
                  "| CTC fallback % |",
                  "|---|---|---|---|---|---|---|"]
        for tag in ("on", "off"):
            g = results["guards"][tag]
            lines.append(f"| {tag} | {_fmt(g['mer'])} | {_fmt(g['insertion_rate'])} | {_fmt(g['loop_rate'])} "
                         f"| {_fmt(g['overlong_rate'])} | {_fmt(g.get('noise_only_empty_rate'))} "
                         f"| {_fmt(g.get('ctc_fallback_rate'))} |")
    if any(v is not None for v in results.get("ctc_fallback_rate", {}).values()):
        rates = ", ".join(f"{stage} {_fmt(rate)} %" for stage, rate in results["ctc_fallback_rate"].items())
        lines += ["", f"Outputs on `{results.get('primary_set')}` that are the CTC hypothesis (the consistency guard "
                      f"replaced the LLM's): {rates}."]
    if results.get("rescored_from_ctc_rate"):
        rates = ", ".join(f"{stage} {_fmt(rate)} %" for stage, rate in results["rescored_from_ctc_rate"].items())
        lines += ["", f"Outputs on `{results.get('primary_set')}` that the joint CTC + LLM rescoring took from the "
                      f"CTC n-best: {rates}."]
    if "hotword" in results:
        h = results["hotword"]
        lines += ["", f"Hotwords (`{h['set']}`, {results.get('final_stage')}), without / with the lists in the prompt:", "",
                  "| | without | with |", "|---|---|---|"]
        for label, key in (("recall %", "recall"), ("recall, names unseen in training %", "recall_unseen"),
                           ("recall, names seen in training %", "recall_seen"), ("B-WER %", "bwer"),
                           ("U-WER %", "uwer"), ("English WER %", "en_wer"), ("Mandarin CER %", "zh_cer")):
            lines.append(f"| {label} | {_fmt(h.get(key + '_without'))} | {_fmt(h.get(key + '_with'))} |")
    if "distractor_insert_rate" in results:
        lines.append(f"\nDistractor-only lists on `{results.get('primary_set')}` ({DISTRACTORS_PER_UTT} names none of "
                     "which is spoken): "
                     f"{_fmt(results['distractor_insert_rate'])} % of utterances gained a list name.")
    return "\n".join(lines) + "\n"
