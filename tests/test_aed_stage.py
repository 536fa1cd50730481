"""Stages 2-3 of the AED end to end on the tiny demo corpus: train, resume, average, decode, export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from wenet_llm.bin import average_model, decode_aed, export_encoder, finish_aed, train_aed
from wenet_llm.config.data import FbankConfig
from wenet_llm.data import formats
from wenet_llm.data.cmvn import compute_cmvn_from_list, save_cmvn_json
from wenet_llm.data.tokenizer import make_tokenizer
from wenet_llm.models.aed.export import load_encoder
from wenet_llm.train.aed import load_trained

TINY = """
model:
  encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 2, cnn_module_kernel: 5,
                 conv_mask_after_glu: true}
  decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
data:
  sampler: {max_duration: 60, num_buckets: 2}
  num_workers: 0
train:
  max_epoch: 2
  accum_grad: 2
  log_interval: 1
  progress_bar: false
  tensorboard: false
  optim: {lr: 0.001}
  scheduler: {warmup_steps: 5}
"""


@pytest.fixture(scope="module")
def aed_setup(small_corpus, tmp_path_factory):
    """A recipe-like data dir (what stages 0-1 leave) and a tiny AED config."""
    root = tmp_path_factory.mktemp("aed")
    data = root / "data"
    for split in ("train", "dev", "test"):
        (data / split).mkdir(parents=True)
        (data / split / "data.list").write_bytes((small_corpus / split / "data.list").read_bytes())
    train = data / "train" / "data.list"
    texts = [e["txt"] for e in formats.read_data_list(train)]
    make_tokenizer(texts, "mixed", data / "lang", vocab_size=60)
    save_cmvn_json(compute_cmvn_from_list(train, FbankConfig()), data / "train" / "global_cmvn")
    conf = root / "aed.yaml"
    conf.write_text(TINY)
    return root, conf


def test_train_resume_average_decode_export(aed_setup, small_corpus):
    root, conf = aed_setup
    exp = root / "exp"
    data = ["--data-dir", str(root / "data")]
    assert train_aed.main(["--config", str(conf), "--exp-dir", str(exp), *data, "--override", "train.max_epoch=1"]) == 0
    assert (exp / "epoch_0.pt").is_file() and (exp / "epoch_0.yaml").is_file()
    # Rerunning with more epochs continues from epoch_0 instead of starting again.
    assert train_aed.main(["--config", str(conf), "--exp-dir", str(exp), *data]) == 0
    info = yaml.safe_load((exp / "epoch_1.yaml").read_text())
    assert info["epoch"] == 1 and info["step"] > 0 and "loss" in info["loss_dict"]
    assert (exp / "final.pt").resolve() == (exp / "epoch_1.pt").resolve()

    avg = exp / "avg_2.pt"
    assert average_model.main(["--dst_model", str(avg), "--src_path", str(exp), "--num", "2", "--val_best"]) == 0
    model, cfg = load_trained(exp, avg)
    assert cfg.model.vocab_size == len((root / "data" / "lang" / "units.txt").read_text().splitlines())

    out = exp / "decode_test"
    test = root / "data" / "test" / "data.list"
    assert decode_aed.main(["--exp-dir", str(exp), "--checkpoint", str(avg), "--test", str(test),
                            "--out", str(out), "--beam-size", "3", "--device", "auto"]) == 0
    keys = sorted(e["key"] for e in formats.read_data_list(test))
    for method in ("ctc_greedy_search", "ctc_prefix_beam_search", "attention", "attention_rescoring"):
        lines = (out / method / "text").read_text(encoding="utf-8").splitlines()
        assert [line.split(" ", 1)[0] for line in lines] == keys
        assert re.search(r"^Overall -> \d+\.\d\d % N=\d+ C=\d+ S=\d+ D=\d+ I=\d+$",
                         (out / method / "wer").read_text(encoding="utf-8"), re.M)

    enc_dir = exp / "encoder"
    assert export_encoder.main(["--exp-dir", str(exp), "--checkpoint", str(avg), "--out", str(enc_dir)]) == 0
    encoder = load_encoder(enc_dir)
    feats = torch.randn(2, 120, 80)
    lens = torch.tensor([120, 90])
    with torch.no_grad():
        expected, mask = model.encoder(feats, lens)
        got = encoder(feats, lens)
    assert torch.equal(got.encoder_out, expected) and torch.equal(got.encoder_mask, mask)
    assert (enc_dir / "bpe.model").is_file() and (enc_dir / "units.txt").is_file()


def test_stage3_tools_explain_a_missing_exp_dir(tmp_path, capsys):
    missing = tmp_path / "no_such_exp"
    assert decode_aed.main(["--exp-dir", str(missing), "--checkpoint", str(missing / "avg_5.pt"),
                            "--test", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert export_encoder.main(["--exp-dir", str(missing), "--checkpoint", "x.pt", "--out", str(tmp_path / "e")]) == 1
    assert finish_aed.main(["--exp-dir", str(missing), "--num", "2", "--data-dir", str(tmp_path),
                            "--test-sets", "test"]) == 1
    err = capsys.readouterr().err
    for tool in ("decode_aed", "export_encoder", "finish_aed"):
        assert f"{tool}: experiment dir {missing} does not exist; train it with stage 2" in err
    assert "Traceback" not in err


def test_finish_aed_stage(aed_setup, capsys):
    root, conf = aed_setup
    exp = root / "exp_finish"
    data = root / "data"
    assert train_aed.main(["--config", str(conf), "--exp-dir", str(exp), "--data-dir", str(data)]) == 0
    # Every input is checked before any work: a mistyped test set costs no averaging or decoding.
    assert finish_aed.main(["--exp-dir", str(exp), "--num", "2", "--data-dir", str(data), "--test-sets", "test",
                            "tset", "--methods", "ctc_greedy_search"]) == 1
    err = capsys.readouterr().err
    assert "finish_aed: test set(s) ['tset'] have no" in err and "'dev'" in err and "--test_sets" in err
    assert not (exp / "avg_2.pt").exists() and not (exp / "decode_test").exists()
    assert finish_aed.main(["--exp-dir", str(exp), "--num", "9", "--data-dir", str(data), "--test-sets", "test"]) == 1
    assert "found 2 checkpoint(s) with a CV loss" in capsys.readouterr().err
    assert decode_aed.main(["--exp-dir", str(exp), "--checkpoint", str(exp / "avg_9.pt"), "--test",
                            str(data / "test" / "data.list"), "--out", str(root / "out")]) == 1
    assert "decode_aed: checkpoint " + str(exp / "avg_9.pt") + " does not exist; " in capsys.readouterr().err
    assert finish_aed.main(["--exp-dir", str(exp), "--num", "2", "--data-dir", str(data), "--test-sets", "test",
                            "dev", "--methods", "ctc_greedy_search", "attention_rescoring", "--beam-size", "2"]) == 0
    assert (exp / "avg_2.pt").is_file() and (exp / "encoder" / "model.safetensors").is_file()
    for name in ("test", "dev"):
        for method in ("ctc_greedy_search", "attention_rescoring"):
            assert (exp / f"decode_{name}" / method / "wer").read_text().count("Overall -> ") == 1


def test_vocabulary_mismatch_is_caught_at_start_up(aed_setup, tmp_path):
    root, conf = aed_setup
    with pytest.raises(ValueError, match="model.vocab_size 7 !="):
        train_aed.main(["--config", str(conf), "--exp-dir", str(tmp_path), "--data-dir", str(root / "data"),
                        "--override", "model.vocab_size=7"])


def test_bad_override_is_a_clear_error(aed_setup, tmp_path, capsys):
    _, conf = aed_setup
    assert train_aed.main(["--config", str(conf), "--exp-dir", str(tmp_path), "--override", "train.max_epochs=3"]) == 2
    assert "unknown key 'train.max_epochs'" in capsys.readouterr().err


def test_decode_bench_runs_old_and_new_code(aed_setup, tmp_path):
    import subprocess
    import sys

    root, conf = aed_setup
    exp = tmp_path / "exp"
    assert train_aed.main(["--config", str(conf), "--exp-dir", str(exp), "--data-dir", str(root / "data"),
                           "--override", "train.max_epoch=1"]) == 0
    repo = Path(__file__).resolve().parents[1]
    # HEAD as the "old" code: the mechanics (git archive, alternating processes, comparison) without
    # depending on an old commit.
    proc = subprocess.run([sys.executable, "bench/aed_decode.py", "--exp-dir", str(exp), "--checkpoint",
                           str(exp / "epoch_0.pt"), "--test", str(root / "data" / "test" / "data.list"),
                           "--old-rev", "HEAD", "--repeats", "1", "--threads", "1", "--beam-size", "2",
                           "--methods", "ctc_greedy_search", "ctc_prefix_beam_search"],
                          cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("run 1 ") for line in lines) == 2
    assert re.search(r"^median of 1: old \d+\.\d\d s, new \d+\.\d\d s, speed-up \d+\.\dx$", proc.stdout, re.M)
    assert "hypotheses ctc_prefix_beam_search: same" in lines
