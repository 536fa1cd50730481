"""PNG pictures of a recipe's runs: training curves from TensorBoard logs and error rates from a results JSON.

- Training curves: every training stage writes TensorBoard scalars under ``<exp dir>/tensorboard/``
  (``train/loss``, ``train/acc`` every few steps, ``cv/loss``, ``cv/acc`` at each checkpoint, and more).
  One PNG per stage shows loss and accuracy against the optimizer step, train and cv together.
- Error rates: a results JSON whose top-level values of the form ``{"en_wer": float, "zh_cer": float}``
  (percent, on the ``test`` split) are systems (``aed``, ``llm_sft1``, ...) becomes one grouped bar chart,
  the systems in the file's order; every other key (``commit``, ``hotword``, ``noisy`` ...) is left out.

Figures are drawn on matplotlib's Agg canvas (``matplotlib.figure.Figure``, never ``pyplot``), so nothing
needs a display and no global backend state is touched.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

from wenet_llm.utils.fileio import atomic_open

CURVE_TAGS = ("train/loss", "cv/loss", "train/acc", "cv/acc")
RATE_KEYS = (("en_wer", "English WER"), ("zh_cer", "Mandarin CER"))

Series = list[tuple[int, float]]


class PlotError(ValueError):
    """Input that cannot be plotted; the message names the file and how to fix it."""


def read_scalars(log_dir: str | os.PathLike, tags: Sequence[str] = CURVE_TAGS) -> dict[str, Series]:
    """The ``(step, value)`` series of each tag of ``tags`` found in the event files under ``log_dir``.

    A resumed run appends a new event file that logs again the steps after its checkpoint; for a step
    logged more than once the value written last (by wall time) is kept, so a curve never zigzags.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = Path(log_dir)
    if not log_dir.is_dir() or not any(p.name.startswith("events.out.tfevents") for p in log_dir.iterdir()):
        raise PlotError(f"{log_dir}: no TensorBoard event files; train the stage with train.tensorboard: true "
                        f"(the default) or leave its exp dir out")
    found: dict[str, dict[int, tuple[float, float]]] = {}
    # File by file, with the newest value per step chosen here by wall time: what is kept does not depend
    # on the order the files are read in.
    for path in sorted(log_dir.glob("events.out.tfevents*")):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0}, purge_orphaned_data=False)
        acc.Reload()
        for tag in set(tags) & set(acc.Tags()["scalars"]):
            by_step = found.setdefault(tag, {})
            for e in acc.Scalars(tag):
                if e.step not in by_step or e.wall_time >= by_step[e.step][0]:
                    by_step[e.step] = (e.wall_time, e.value)
    return {tag: sorted((step, v) for step, (_, v) in found[tag].items()) for tag in tags if tag in found}


def _save(fig, out_path: Path) -> Path:
    with atomic_open(out_path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return out_path


def plot_training_curves(scalars: Mapping[str, Series], title: str, out_path: str | os.PathLike) -> Path:
    """Loss (left) and accuracy (right) against the step, train as a line, cv as dots; a PNG at ``out_path``."""
    from matplotlib.figure import Figure

    if not any(scalars.get(t) for t in CURVE_TAGS):
        raise PlotError(f"{title}: none of the scalars {', '.join(CURVE_TAGS)} was logged; nothing to plot")
    fig = Figure(figsize=(10, 4))
    for ax, kind, label in zip(fig.subplots(1, 2), ("loss", "acc"), ("loss", "token accuracy")):
        for split, style in (("train", {"linewidth": 1.5}), ("cv", {"marker": "o", "linewidth": 1})):
            points = scalars.get(f"{split}/{kind}", [])
            if points:
                steps, values = zip(*points)
                ax.plot(steps, values, label=split, **style)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {label} logged", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Path(out_path))


def _is_rate(value) -> bool:
    """A finite number or null (the scorer's rate when the references hold no token of that language)."""
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))


def error_rate_systems(results: Mapping) -> dict[str, dict[str, Optional[float]]]:
    """The systems of a results JSON: top-level keys whose value is a dict with an ``en_wer`` and a
    ``zh_cer`` entry (numbers or null, not both null), in the file's order. Everything else is skipped."""
    systems = {}
    for name, value in results.items():
        if not isinstance(value, Mapping) or not all(k in value and _is_rate(value[k]) for k, _ in RATE_KEYS):
            continue
        rates = {k: None if value[k] is None else float(value[k]) for k, _ in RATE_KEYS}
        if any(v is not None for v in rates.values()):
            systems[name] = rates
    return systems


def plot_error_rates(systems: Mapping[str, Mapping[str, Optional[float]]], out_path: str | os.PathLike,
                     title: str = "Error rate on test (%)") -> Path:
    """One group of bars per system (English WER, Mandarin CER), each bar labelled with its value; a missing
    rate is marked n/a."""
    from matplotlib.figure import Figure

    if not systems:
        raise PlotError("no system with en_wer and zh_cer to plot")
    names = list(systems)
    fig = Figure(figsize=(max(6.0, 1.3 * len(names) + 2), 4.5))
    ax = fig.subplots()
    width = 0.8 / len(RATE_KEYS)
    top = max(v for s in systems.values() for v in s.values() if v is not None)
    for i, (key, label) in enumerate(RATE_KEYS):
        xs = [n + (i - (len(RATE_KEYS) - 1) / 2) * width for n in range(len(names))]
        values = [systems[name].get(key) for name in names]
        bars = ax.bar(xs, [v or 0.0 for v in values], width, label=label)
        ax.bar_label(bars, labels=["n/a" if v is None else f"{v:.1f}" for v in values], padding=2, fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("%")
    ax.set_ylim(0, top * 1.15 + 1e-9 if top > 0 else 1.0)
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, Path(out_path))


def stage_name(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` or ``DIR`` (named after its last folder) -> (name, dir)."""
    name, sep, path = spec.partition("=")
    if sep and name and path:
        return name, Path(path)
    return Path(spec).name, Path(spec)


def plot_results(exp_dirs: Sequence[str], results: Optional[str | os.PathLike], out_dir: str | os.PathLike,
                 allow_missing: bool = False) -> tuple[list[Path], list[str]]:
    """Write ``train_<name>.png`` for each exp dir and ``error_rates.png`` for ``results`` under ``out_dir``.

    Returns the PNGs written and the warnings about inputs skipped (only with ``allow_missing``: an exp
    dir without TensorBoard scalars); any other problem raises PlotError before a file is written.
    """
    out_dir = Path(out_dir)
    stages = [stage_name(spec) for spec in exp_dirs]
    names = [name for name, _ in stages]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PlotError(f"several exp dirs are named {', '.join(duplicates)}; name them: NAME=DIR")
    curves, warnings = [], []
    for name, exp_dir in stages:
        try:
            scalars = read_scalars(exp_dir / "tensorboard")
            if not scalars:
                raise PlotError(f"{exp_dir / 'tensorboard'}: none of the scalars {', '.join(CURVE_TAGS)} was logged")
        except PlotError as e:
            if not allow_missing:
                raise
            warnings.append(f"skipped {name}: {e}")
            continue
        curves.append((name, exp_dir, scalars))
    systems = None
    if results is not None:
        try:
            data = json.loads(Path(results).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise PlotError(f"{results}: cannot read the results JSON: {e}") from e
        if not isinstance(data, dict):
            raise PlotError(f"{results}: expected a JSON object of systems, got {type(data).__name__}")
        systems = error_rate_systems(data)
        if not systems:
            raise PlotError(f"{results}: no top-level entry of the form {{\"en_wer\": .., \"zh_cer\": ..}}; "
                            f"keys: {', '.join(data) or 'none'}")
    written = [plot_training_curves(scalars, f"{name} ({exp_dir})", out_dir / f"train_{name}.png")
               for name, exp_dir, scalars in curves]
    if systems is not None:
        written.append(plot_error_rates(systems, out_dir / "error_rates.png"))
    return written, warnings
