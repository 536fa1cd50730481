"""average_model: best N by CV loss or last N, WeNet's arithmetic, clear errors, the CLI."""

from __future__ import annotations

import os

import pytest
import torch
import yaml

from wenet_llm.bin import average_model as cli
from wenet_llm.train.average import average_checkpoints, average_model, select_checkpoints

# tag -> (epoch, step, cv loss)
CKPTS = {
    "epoch_0": (0, 10, 5.0),
    "epoch_1": (1, 20, 3.0),
    "epoch_2": (2, 30, 4.0),
    "epoch_3": (3, 40, 1.0),
    "epoch_4": (4, 50, 2.0),
    "step_45": (4, 45, 0.5),
}


def weights(i: int) -> dict[str, torch.Tensor]:
    return {"w": torch.full((2, 3), float(i)), "half": torch.full((4,), float(i), dtype=torch.bfloat16),
            "bn.num_batches_tracked": torch.tensor(i * 10, dtype=torch.long)}


@pytest.fixture
def exp(tmp_path):
    for i, (tag, (epoch, step, loss)) in enumerate(CKPTS.items()):
        torch.save(weights(i), tmp_path / f"{tag}.pt")
        info = {"model": {"x": 1}, "epoch": epoch, "step": step, "tag": tag, "lrs": [0.001],
                "loss_dict": {"loss": loss, "acc": 0.5}, "save_time": "01/01/2026 00:00:00"}
        (tmp_path / f"{tag}.yaml").write_text(yaml.safe_dump(info))
    # not checkpoints: init, train.yaml, final.pt symlink, an earlier average
    torch.save(weights(100), tmp_path / "init.pt")
    (tmp_path / "init.yaml").write_text(yaml.safe_dump({"tag": "init", "epoch": 0, "step": 0, "loss_dict": {"loss": 0.0}}))
    (tmp_path / "train.yaml").write_text(yaml.safe_dump({"loss_dict": {"loss": -1.0}}))
    os.symlink("epoch_4.pt", tmp_path / "final.pt")
    torch.save(weights(200), tmp_path / "avg_3.pt")
    return tmp_path


def names(paths) -> list[str]:
    return [p.stem for p in paths]


def test_val_best_picks_lowest_cv_losses(exp):
    assert names(select_checkpoints(exp, 3, val_best=True)) == ["step_45", "epoch_3", "epoch_4"]
    assert names(select_checkpoints(exp, 3, val_best=True, mode="epoch")) == ["epoch_3", "epoch_4", "epoch_1"]
    assert names(select_checkpoints(exp, 2, val_best=True, mode="epoch", max_epoch=2)) == ["epoch_1", "epoch_2"]
    assert names(select_checkpoints(exp, 1, val_best=True, mode="step")) == ["step_45"]
    assert names(select_checkpoints(exp, 2, val_best=True, min_step=41)) == ["step_45", "epoch_4"]


def test_last_n_orders_by_step_not_files(exp):
    assert names(select_checkpoints(exp, 3, val_best=False)) == ["epoch_3", "step_45", "epoch_4"]
    assert names(select_checkpoints(exp, 2, val_best=False, mode="epoch")) == ["epoch_3", "epoch_4"]


def test_average_is_sum_divided_by_num(exp):
    paths = select_checkpoints(exp, 3, val_best=True)  # indices 5, 3, 4 in CKPTS
    avg = average_checkpoints(paths)
    assert torch.equal(avg["w"], torch.full((2, 3), 4.0))
    assert avg["half"].dtype == torch.bfloat16 and torch.equal(avg["half"], torch.full((4,), 4.0, dtype=torch.bfloat16))
    # integers become float through true_divide, as in WeNet
    assert avg["bn.num_batches_tracked"].dtype == torch.float32 and avg["bn.num_batches_tracked"].item() == 40.0
    # fp32 sums in the given order, like WeNet: a + b + c then / n
    a, b, c = (torch.load(p, weights_only=True)["w"] for p in paths)
    assert torch.equal(avg["w"], torch.true_divide(a + b + c, 3))


def test_too_few_checkpoints_is_a_clear_error(exp):
    with pytest.raises(ValueError, match=r"found 6 checkpoint\(s\) with a CV loss .* --num is 7"):
        select_checkpoints(exp, 7, val_best=True)
    with pytest.raises(ValueError, match="found 1 checkpoint"):
        select_checkpoints(exp, 2, val_best=False, mode="step")
    os.remove(exp / "epoch_3.pt")
    with pytest.raises(ValueError, match="without its model file"):
        select_checkpoints(exp, 3, val_best=True)


def test_mismatched_keys_are_an_error(tmp_path):
    torch.save({"a": torch.ones(1)}, tmp_path / "x.pt")
    torch.save({"b": torch.ones(1)}, tmp_path / "y.pt")
    with pytest.raises(ValueError, match="other keys"):
        average_checkpoints([tmp_path / "x.pt", tmp_path / "y.pt"])


def test_cli_writes_flat_dict_without_yaml(exp, tmp_path_factory):
    dst = tmp_path_factory.mktemp("avg") / "avg_2.pt"
    rc = cli.main(["--dst_model", str(dst), "--src_path", str(exp), "--num", "2", "--val_best", "--mode", "epoch"])
    assert rc == 0
    avg = torch.load(dst, weights_only=True)
    assert set(avg) == {"w", "half", "bn.num_batches_tracked"}
    assert torch.equal(avg["w"], torch.full((2, 3), 3.5))  # epoch_3 (3) and epoch_4 (4)
    assert not list(dst.parent.glob("*.yaml")) and not list(dst.parent.glob("*.tmp"))
    assert cli.main(["--dst_model", str(dst), "--src_path", str(exp), "--num", "9"]) == 1


def test_average_model_returns_the_files(exp):
    used = average_model(exp / "avg_best.pt", exp, 2, val_best=True)
    assert names(used) == ["step_45", "epoch_3"]
    assert torch.equal(torch.load(exp / "avg_best.pt", weights_only=True)["w"], torch.full((2, 3), 4.0))
