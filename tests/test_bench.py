"""The benchmark scripts run and print their figures (tiny sizes here; the real figures are in RESULTS.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_aed_step_bench_prints_its_figures():
    proc = subprocess.run([sys.executable, "bench/aed_step.py", "--batch", "1", "--seconds", "1", "--repeats", "2",
                           "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "46.2M params" in proc.stdout
    for label in ("train step (forward + backward):", "encoder-only forward:"):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(label))
        assert "median of 2" in line and " s " in line


def test_score_speed_bench_prints_its_figures():
    proc = subprocess.run([sys.executable, "bench/score_speed.py", "--num-utts", "40", "--long-form", "1",
                           "--long-tokens", "60"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("set: 41 utterances (1 long-form of 60 tokens)")
    assert "result (identical for both): Overall -> " in proc.stdout
    for label in ("python aligner (old):", "kaldialign (new):", "hallucination metrics on top:"):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(label))
        assert line.endswith("median of 1")
    assert any(x.startswith("speed-up: ") and x.endswith("x") for x in proc.stdout.splitlines())


def test_llm_step_bench_prints_its_figures():
    proc = subprocess.run([sys.executable, "bench/llm_step.py", "--batch", "2", "--seconds", "1", "--tokens", "4",
                           "--repeats", "1", "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for stage in ("sft1", "sft2"):
        line = next(x for x in lines if x.startswith(f"{stage}: trainable "))
        assert "step " in line and "(median of 1;" in line and line.endswith("audio-s/s")
