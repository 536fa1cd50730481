"""Training curves and error-rate bars (wenet_llm.utils.plots, python -m wenet_llm.bin.plot_results)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from wenet_llm.bin import plot_results
from wenet_llm.utils.plots import error_rate_systems, read_scalars


def write_events(log_dir, steps, offset=0.0, cv_every=4, extra=True):
    """Scalars as the trainer logs them: train/* every step of ``steps``, cv/* every ``cv_every``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(log_dir))
    for step in steps:
        writer.add_scalar("train/loss", 100.0 / step + offset, step)
        writer.add_scalar("train/acc", 1.0 - 1.0 / step, step)
        if extra:
            writer.add_scalar("train/lr", 1e-3, step)
        if step % cv_every == 0:
            writer.add_scalar("cv/loss", 120.0 / step + offset, step)
            writer.add_scalar("cv/acc", 0.9 - 1.0 / step, step)
    writer.close()


def check_png(path, min_size=(300, 200)):
    """A readable PNG of at least ``min_size`` pixels with real drawing on it, not a blank canvas."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size[0] >= min_size[0] and im.size[1] >= min_size[1]
        pixels = np.asarray(im.convert("RGB"))
    not_white = (pixels < 245).any(axis=-1).mean()
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert 0.01 < not_white < 0.9, not_white
    assert colours > 20, colours
    return pixels


RESULTS = {"aed": {"en_wer": 12.3, "zh_cer": 4.0}, "llm_sft1": {"en_wer": 20.5, "zh_cer": 8.1},
           "llm_sft2": {"en_wer": 9.0, "zh_cer": None}, "llm_ctx": {"en_wer": 8.2, "zh_cer": 3.1},
           "noisy": {"en_wer": {"10": 15.0}, "zh_cer": {"10": 7.0}}, "hotword": {"recall_with": 90.0},
           "guards": {"on": {"en_wer": 9.0, "zh_cer": 3.0}}, "aed_text": {"en_wer": "12", "zh_cer": 4.0},
           "commit": "0123abc", "wall_seconds": 4000.0, "distractor_insert_rate": 0.5}


def test_error_rate_systems_keeps_only_en_zh_pairs():
    assert error_rate_systems(RESULTS) == {
        "aed": {"en_wer": 12.3, "zh_cer": 4.0}, "llm_sft1": {"en_wer": 20.5, "zh_cer": 8.1},
        "llm_sft2": {"en_wer": 9.0, "zh_cer": None}, "llm_ctx": {"en_wer": 8.2, "zh_cer": 3.1}}
    assert list(error_rate_systems(RESULTS)) == ["aed", "llm_sft1", "llm_sft2", "llm_ctx"]  # the file's order
    assert error_rate_systems({"x": {"en_wer": None, "zh_cer": None}, "y": {"en_wer": float("nan"), "zh_cer": 1}}) == {}


def test_read_scalars_keeps_the_last_value_of_a_step_logged_twice(tmp_path):
    write_events(tmp_path, range(1, 9))
    write_events(tmp_path, range(5, 13), offset=1000.0)  # a resumed run: steps 5-8 again, in a new file
    scalars = read_scalars(tmp_path)
    assert sorted(scalars) == ["cv/acc", "cv/loss", "train/acc", "train/loss"]  # train/lr is not asked for
    assert [s for s, _ in scalars["train/loss"]] == list(range(1, 13))
    assert dict(scalars["train/loss"])[4] == pytest.approx(25.0)
    assert dict(scalars["train/loss"])[5] == pytest.approx(1020.0)  # the resumed run's value
    assert [s for s, _ in scalars["cv/loss"]] == [4, 8, 12]


def test_plot_results_writes_curves_and_bars(tmp_path, capsys):
    for name, n in (("aed", 30), ("llm_sft1", 12), ("llm_sft2", 12), ("llm_ctx", 8)):
        write_events(tmp_path / "exp" / name / "tensorboard", range(1, n + 1))
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    out = tmp_path / "exp" / "plots"
    dirs = [str(tmp_path / "exp" / n) for n in ("aed", "llm_sft1", "llm_sft2", "llm_ctx")]
    assert plot_results.main(["--exp-dirs", *dirs, "--results", str(tmp_path / "results.json"),
                              "--out-dir", str(out)]) == 0
    names = ["train_aed.png", "train_llm_sft1.png", "train_llm_sft2.png", "train_llm_ctx.png", "error_rates.png"]
    assert capsys.readouterr().out.split() == [str(out / n) for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # no temporary file left behind
    for name in names:
        check_png(out / name)
    # Different data, different picture: the curves are drawn from the event files.
    assert not np.array_equal(check_png(out / "train_aed.png"), check_png(out / "train_llm_ctx.png"))


def test_plot_results_missing_logs(tmp_path, capsys):
    write_events(tmp_path / "aed" / "tensorboard", range(1, 9))
    (tmp_path / "llm_sft1").mkdir()
    args = ["--exp-dirs", str(tmp_path / "aed"), str(tmp_path / "llm_sft1"), "--out-dir", str(tmp_path / "plots")]
    assert plot_results.main(args) == 1
    err = capsys.readouterr().err
    assert f"plot_results: {tmp_path / 'llm_sft1' / 'tensorboard'}: no TensorBoard event files" in err
    assert not (tmp_path / "plots").exists()  # nothing is written when an input is missing
    assert plot_results.main([*args, "--allow-missing"]) == 0
    assert "warning: skipped llm_sft1" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["train_aed.png"]


def test_plot_results_bad_inputs(tmp_path, capsys):
    assert plot_results.main(["--out-dir", str(tmp_path)]) == 2
    assert "nothing to plot" in capsys.readouterr().err
    (tmp_path / "r.json").write_text(json.dumps({"commit": "x", "hotword": {"recall_with": 1.0}}))
    assert plot_results.main(["--results", str(tmp_path / "r.json"), "--out-dir", str(tmp_path / "p")]) == 1
    assert "no top-level entry of the form" in capsys.readouterr().err
    for d in ("a/aed", "b/aed"):
        write_events(tmp_path / d / "tensorboard", range(1, 3))
    dup = ["--exp-dirs", str(tmp_path / "a/aed"), str(tmp_path / "b/aed"), "--out-dir", str(tmp_path / "p")]
    assert plot_results.main(dup) == 1
    assert "name them: NAME=DIR" in capsys.readouterr().err
    assert plot_results.main(["--exp-dirs", f"aed_a={tmp_path / 'a/aed'}", f"aed_b={tmp_path / 'b/aed'}",
                              "--out-dir", str(tmp_path / "p")]) == 0
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["train_aed_a.png", "train_aed_b.png"]
