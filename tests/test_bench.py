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


def test_decode_bench_hands_older_code_only_the_settings_it_knows(tmp_path):
    # The old code of bench/aed_decode.py reads an experiment trained by the new one: keys added since
    # (here two made-up ones) are left out of the train.yaml it gets; a config without them is used as is.
    import importlib.util

    import yaml

    from wenet_llm.config import load_config
    from wenet_llm.config.core import to_dict
    from wenet_llm.config.experiment import AEDExperimentConfig

    spec = importlib.util.spec_from_file_location("aed_decode_bench", REPO / "bench" / "aed_decode.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    exp = tmp_path / "exp"
    exp.mkdir()
    current = to_dict(AEDExperimentConfig())
    (exp / "train.yaml").write_text(yaml.safe_dump(current), encoding="utf-8")
    assert bench.config_for_this_code(exp, tmp_path) == exp
    newer = dict(current, later_section={"x": 1})
    newer["data"] = dict(current["data"], noise=dict(current["data"]["noise"], later_key=3))
    (exp / "train.yaml").write_text(yaml.safe_dump(newer), encoding="utf-8")
    out = tmp_path / "pruned"
    out.mkdir()
    assert bench.config_for_this_code(exp, out) == out
    assert yaml.safe_load((out / "train.yaml").read_text(encoding="utf-8")) == current
    load_config(AEDExperimentConfig, out / "train.yaml")
