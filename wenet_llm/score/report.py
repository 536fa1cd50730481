"""Score hypothesis files against one reference and write the reports of ``python -m wenet_llm.bin.score``.

Each hypothesis file is a *system* with a name (e.g. ``without`` / ``with`` context), scored with the same
normalizer, in MER tokens (Hanzi characters + words, ``wenet_llm.score.wer``), against the same biasing
lists when a context file is given. Written under ``out_dir``:

- ``wer``: WeNet compute-wer's verbose report (per-utterance alignments, ``Overall -> ...``, the Mandarin /
  English / Number / Other lines), one per system; with several systems in ``out_dir/<name>/wer``;
- ``details.jsonl`` (beside each ``wer``): one line per reference utterance: ``key``, ``ref`` and ``hyp``
  (scoring tokens joined by spaces), ``n c s d i``, ``err`` (%), ``missing_hyp``, ``overlong`` (true/false,
  null for an empty reference), ``loop`` (``{"start", "period", "repeats"}`` in hypothesis tokens, or null)
  and, with a context file, ``hotwords`` (``terms tp fp fn b_errors b_n distractor_only``);
- ``score.json``: ``{"ref", "context", "seen", "normalize", "systems": {name: {...}}, "order": [names]}``;
  each system: ``hyp`` (path), ``summary`` (the Overall line), ``mer``, ``cer``, ``wer`` (%, null when the
  references hold no token of that kind), ``n c s d i``, ``utts``, ``missing_hyps``, ``extra_hyps`` (counts),
  ``clusters`` ({name: {rate, n, c, s, d, i}}), ``hallucination`` (``HallucinationStats`` fields) and, with
  a context file, ``hotword`` (recall, precision, f1, tp, fp, fn, bwer, uwer, biased, unbiased, list_utts,
  distractor_utts, distractor_insert_utts, distractor_insert_rate; with a seen-terms file also ``seen`` and
  ``unseen`` holding the same keys). Rates are percentages, null when undefined;
- ``score.md``: the same figures as a markdown table, one column per system (side by side).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from wenet_llm.score.hallucination import OVERLONG_RATIO, HallucinationStats, UttFlags, hallucination_stats, \
    utterance_flags
from wenet_llm.score.hotword import HotwordReport, hotword_report
from wenet_llm.score.wer import Counts, Result, read_kaldi_text, score
from wenet_llm.utils.fileio import atomic_open

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass
class SystemScore:
    name: str
    hyp_path: str
    result: Result
    hallucination: HallucinationStats
    flags: list[UttFlags]
    hotwords: Optional[HotwordReport] = None

    def to_dict(self) -> dict:
        t = self.result.total
        out = {"hyp": self.hyp_path, "summary": self.result.summary_line(), **self.result.error_rates(),
               "n": t.n, "c": t.c, "s": t.s, "d": t.d, "i": t.i, "utts": len(self.result.utts),
               "missing_hyps": len(self.result.missing_hyps), "extra_hyps": len(self.result.extra_hyps),
               "clusters": {k: _counts(c) for k, c in self.result.clusters.items()},
               "hallucination": self.hallucination.to_dict()}
        if self.hotwords is not None:
            out["hotword"] = self.hotwords.to_dict()
        return out

    def details(self) -> list[dict]:
        rows = []
        for k, u in enumerate(self.result.utts):
            f = self.flags[k]
            loop = None if f.loop is None else {"start": f.loop.start, "period": f.loop.period,
                                                "repeats": f.loop.repeats}
            row = {"key": u.key,
                   "ref": " ".join(r for _, r, _ in u.alignment if r is not None),
                   "hyp": " ".join(h for _, _, h in u.alignment if h is not None),
                   **{x: getattr(u.counts, x) for x in ("n", "c", "s", "d", "i")},
                   "err": round(u.counts.wer, 4), "missing_hyp": u.missing_hyp, "overlong": f.overlong, "loop": loop}
            if self.hotwords is not None:
                row["hotwords"] = self.hotwords.utts[k].to_dict()
            rows.append(row)
        return rows


def _counts(c: Counts) -> dict:
    return {"rate": c.wer if c.n else None, "n": c.n, "c": c.c, "s": c.s, "d": c.d, "i": c.i}


def score_system(name: str, hyp_path: str, refs: dict[str, str], hyps: dict[str, str],
                 hotwords: Optional[dict[str, list[str]]] = None, seen_terms: Optional[Sequence[str]] = None,
                 normalize: str = "auto", overlong_ratio: float = OVERLONG_RATIO, **loop_kwargs) -> SystemScore:
    """Score one system in MER tokens, with its hallucination metrics and, given lists, its hotword metrics."""
    result = score(refs, hyps, char_mode=True, normalize=normalize)
    flags = [utterance_flags(u, overlong_ratio, **loop_kwargs) for u in result.utts]
    hall = hallucination_stats(result, overlong_ratio, flags)
    hw = hotword_report(result, hotwords, seen_terms) if hotwords is not None else None
    return SystemScore(name, hyp_path, result, hall, flags, hw)


def _fmt(x, digits: int = 2) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def markdown_table(systems: Sequence[SystemScore]) -> str:
    """One row per figure, one column per system; rows undefined for every system are left out."""
    def hw(s: SystemScore, part: Optional[str], attr: str):
        if s.hotwords is None:
            return None
        stats = s.hotwords.all if part is None else getattr(s.hotwords, part)
        return None if stats is None else getattr(stats, attr)

    h0 = systems[0].hallucination if systems else None
    rows = [
        ("utterances", lambda s: len(s.result.utts)),
        ("MER % (all tokens)", lambda s: s.result.error_rates()["mer"]),
        ("CER % (Mandarin)", lambda s: s.result.error_rates()["cer"]),
        ("WER % (English)", lambda s: s.result.error_rates()["wer"]),
        ("missing hypotheses", lambda s: len(s.result.missing_hyps)),
        ("insertion rate %", lambda s: s.hallucination.insertion_rate),
        (f"overlong (> {_fmt(h0.overlong_ratio if h0 else OVERLONG_RATIO, 1)}x ref) %",
         lambda s: s.hallucination.overlong_rate),
        ("repetition loops %", lambda s: s.hallucination.loop_rate),
        ("empty ref: non-empty output %", lambda s: s.hallucination.empty_ref_nonempty_rate),
        ("empty ref: mean tokens out", lambda s: s.hallucination.empty_ref_mean_tokens),
        ("hotword recall %", lambda s: hw(s, None, "recall")),
        ("hotword precision %", lambda s: hw(s, None, "precision")),
        ("hotword F1 %", lambda s: hw(s, None, "f1")),
        ("B-WER %", lambda s: hw(s, None, "bwer")),
        ("U-WER %", lambda s: hw(s, None, "uwer")),
        ("hotword recall % (seen in training)", lambda s: hw(s, "seen", "recall")),
        ("hotword recall % (unseen)", lambda s: hw(s, "unseen", "recall")),
        ("B-WER % (seen in training)", lambda s: hw(s, "seen", "bwer")),
        ("B-WER % (unseen)", lambda s: hw(s, "unseen", "bwer")),
        ("distractor-only lists: inserted %", lambda s: hw(s, None, "distractor_insert_rate")),
    ]
    lines = ["| figure | " + " | ".join(s.name for s in systems) + " |",
             "|---|" + "---:|" * len(systems)]
    for label, get in rows:
        values = [get(s) for s in systems]
        if all(v is None for v in values):
            continue
        lines.append(f"| {label} | " + " | ".join(_fmt(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def read_refs(path: str | os.PathLike) -> dict[str, str]:
    """References from a Kaldi ``text`` file, a Kaldi data dir (its ``text``) or a WeNet data.list (``txt``)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "text").is_file():
            raise ValueError(f"{path} is a directory without a 'text' file; give a Kaldi text file, "
                             "a Kaldi data dir or a data.list")
        return read_kaldi_text(path / "text")
    with open(path, "rb") as f:
        first = next((line for line in f if line.strip()), b"")
    if first.lstrip().startswith(b"{"):
        from wenet_llm.data.formats import read_data_list  # lhotse import: only when needed

        refs: dict[str, str] = {}
        for e in read_data_list(path):
            if e["key"] in refs:
                raise ValueError(f"{path}: duplicate key {e['key']!r}")
            refs[e["key"]] = e["txt"]
        return refs
    return read_kaldi_text(path)


def parse_hyp_arg(arg: str, index: int, total: int) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` (named ``hyp``, allowed only when it is the only hypothesis)."""
    name, sep, path = arg.partition("=")
    if sep and _NAME_RE.fullmatch(name) and path:
        return name, path
    if total > 1:
        raise ValueError(f"--hyp {arg!r}: name each of the {total} hypothesis files, e.g. "
                         "--hyp without=decode_noctx/text --hyp with=decode_ctx/text")
    return "hyp", arg


def score_files(ref: str | os.PathLike, hyps: Sequence[str], out_dir: str | os.PathLike,
                context: Optional[str | os.PathLike] = None, seen: Optional[str | os.PathLike] = None,
                normalize: str = "auto", overlong_ratio: float = OVERLONG_RATIO, **loop_kwargs) -> dict:
    """Score every ``[NAME=]PATH`` of ``hyps`` against ``ref`` and write the reports; returns score.json's content."""
    from wenet_llm.data.context import read_context, read_term_list

    if not hyps:
        raise ValueError("no hypothesis file given")
    named = [parse_hyp_arg(a, i, len(hyps)) for i, a in enumerate(hyps)]
    dup = sorted({n for n, _ in named if [m for m, _ in named].count(n) > 1})
    if dup:
        raise ValueError(f"hypothesis names must be unique, got {dup} more than once")
    if seen is not None and context is None:
        raise ValueError("--seen needs --context: the seen / unseen split is of the hotword metrics")
    refs = read_refs(ref)
    hotwords = None
    if context is not None:
        hotwords = {k: c.hotwords for k, c in read_context(context).items()}
    seen_terms = read_term_list(seen) if seen is not None else None
    systems = [score_system(name, path, refs, read_kaldi_text(path), hotwords, seen_terms, normalize,
                            overlong_ratio, **loop_kwargs) for name, path in named]
    out_dir = Path(out_dir)
    for s in systems:
        d = out_dir if len(systems) == 1 else out_dir / s.name
        with atomic_open(d / "wer") as f:
            f.write(s.result.report(verbose=True))
        with atomic_open(d / "details.jsonl") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in s.details())
    summary = {"ref": str(ref), "context": None if context is None else str(context),
               "seen": None if seen is None else str(seen), "normalize": normalize,
               "systems": {s.name: s.to_dict() for s in systems}, "order": [s.name for s in systems]}
    with atomic_open(out_dir / "score.json") as f:
        json.dump(summary, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with atomic_open(out_dir / "score.md") as f:
        f.write(markdown_table(systems))
    return summary
