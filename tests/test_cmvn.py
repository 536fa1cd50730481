"""Tests for wenet_llm.data.cmvn and the compute_cmvn entry point."""

import json
import logging
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from wenet_llm.bin import compute_cmvn as compute_cmvn_bin
from wenet_llm.config.data import FbankConfig
from wenet_llm.data.cmvn import CmvnStats, compute_cmvn_from_list, load_cmvn, save_cmvn_json
from wenet_llm.data.features import compute_fbank

# 4 frames x 3 bins; column 2 is constant, so its variance is 0 and must hit the floor.
MATRIX = torch.tensor(
    [[1.0, 2.0, 5.0], [3.0, -2.0, 5.0], [5.0, 4.0, 5.0], [7.0, 0.0, 5.0]],
    dtype=torch.float32,
)
EXPECTED_MEAN = [4.0, 1.0, 5.0]
EXPECTED_VAR = [5.0, 5.0, 0.0]  # (Σx²/N - mean²): (84/4 - 16), (24/4 - 1), (100/4 - 25)


def _stats():
    s = CmvnStats()
    s.add(MATRIX[:1])
    s.add(MATRIX[1:])
    return s


def _write_kaldi_text(path, mean_stat, var_stat, count):
    with open(path, "w") as f:
        f.write(" [\n  " + " ".join(f"{v:g}" for v in mean_stat) + f" {count:g}\n")
        f.write("  " + " ".join(f"{v:g}" for v in var_stat) + " 0 ]\n")


def test_json_dict_exact():
    d = _stats().to_json_dict()
    assert d == {"mean_stat": [16.0, 4.0, 20.0], "var_stat": [84.0, 24.0, 100.0], "frame_num": 4}


def test_load_json_exact_mean_istd(tmp_path):
    path = tmp_path / "global_cmvn"
    save_cmvn_json(_stats(), path)
    mean, istd = load_cmvn(path)
    assert mean.dtype == istd.dtype == torch.float32
    assert mean.tolist() == EXPECTED_MEAN
    expected_istd = [1.0 / math.sqrt(v if v >= 1e-20 else 1e-20) for v in EXPECTED_VAR]
    assert istd.tolist() == torch.tensor(expected_istd, dtype=torch.float32).tolist()
    assert istd[2].item() == pytest.approx(1e10, rel=1e-6)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_wenet_reference_math_on_random_stats(tmp_path):
    # Same result as WeNet's loop in Python floats, bit for bit after the float32 cast.
    rng = np.random.default_rng(0)
    feats = torch.from_numpy(rng.normal(8.0, 3.0, size=(500, 80)).astype(np.float32))
    s = CmvnStats()
    s.add(feats)
    d = s.to_json_dict()
    mean_ref, istd_ref = [], []
    for m, v in zip(d["mean_stat"], d["var_stat"]):
        m = m / d["frame_num"]
        v = v / d["frame_num"] - m * m
        v = max(v, 1.0e-20)
        mean_ref.append(m)
        istd_ref.append(1.0 / math.sqrt(v))
    path = tmp_path / "cmvn.json"
    save_cmvn_json(s, path)
    mean, istd = load_cmvn(path)
    assert torch.equal(mean, torch.tensor(mean_ref, dtype=torch.float32))
    assert torch.equal(istd, torch.tensor(istd_ref, dtype=torch.float32))
    np.testing.assert_allclose(mean.numpy(), feats.double().mean(0).numpy(), rtol=1e-6)


def test_kaldi_text_equals_json(tmp_path):
    s = _stats()
    d = s.to_json_dict()
    save_cmvn_json(s, tmp_path / "a.json")
    _write_kaldi_text(tmp_path / "cmvn.ark", d["mean_stat"], d["var_stat"], d["frame_num"])
    for a, b in zip(load_cmvn(tmp_path / "a.json"), load_cmvn(tmp_path / "cmvn.ark")):
        assert torch.equal(a, b)


def test_merge_equals_single_pass():
    rng = np.random.default_rng(1)
    parts = [torch.from_numpy(rng.normal(size=(n, 5)).astype(np.float32)) for n in (3, 7, 11)]
    whole = CmvnStats()
    for p in parts:
        whole.add(p)
    a, b = CmvnStats(), CmvnStats()
    a.add(parts[0])
    b.add(parts[1])
    b.add(parts[2])
    merged = CmvnStats().merge(a).merge(b)
    assert merged.frame_num == 21 and merged.num_utts == 3
    np.testing.assert_allclose(merged.sum, whole.sum, rtol=1e-12)
    np.testing.assert_allclose(merged.sum_sq, whole.sum_sq, rtol=1e-12)


def test_dim_mismatch_errors():
    s = _stats()
    with pytest.raises(ValueError, match="dim"):
        s.add(torch.zeros(2, 4))
    other = CmvnStats()
    other.add(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="merge"):
        s.merge(other)


def test_empty_stats_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        save_cmvn_json(CmvnStats(), tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "content,msg",
    [
        ('{"mean_stat": [1, 2], "var_stat": [1, 2]', "malformed JSON"),
        ('{"mean_stat": [1, 2], "var_stat": [1, 2]}', "frame_num"),
        ('{"mean_stat": [1, 2], "var_stat": [1], "frame_num": 3}', "equal-length"),
        ('{"mean_stat": [1, 2], "var_stat": [1, 2], "frame_num": 0}', "must be > 0"),
        ('{"mean_stat": ["a", 2], "var_stat": [1, 2], "frame_num": 3}', "non-numeric"),
        ("[ 1 2 3 4 5 6 0 ]", "tokens"),  # 2F+4 tokens cannot be odd
        ("[ 1 2 3\n 4 5 1 ]", "must be 0"),
        ("[ 1 x 3\n 4 5 0 ]", "Kaldi"),
        ("1 2 3 4 5 6", "neither"),
        ("", "neither"),
    ],
)
def test_malformed_files_error_naming_path(tmp_path, content, msg):
    path = tmp_path / "bad_cmvn"
    path.write_text(content)
    with pytest.raises(ValueError, match=msg) as e:
        load_cmvn(path)
    assert str(path) in str(e.value)


def test_binary_kaldi_rejected(tmp_path):
    path = tmp_path / "cmvn.bin"
    path.write_bytes(b"\0BDM \x04\x02\x00\x00\x00")
    with pytest.raises(ValueError, match="binary"):
        load_cmvn(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="compute_cmvn"):
        load_cmvn(tmp_path / "nope")


# --------------------------------------------------------------------------
# stats over a data.list


def _make_list(tmp_path, num_good=5, bad=True):
    rng = np.random.default_rng(0)
    entries, audios = [], {}
    for i in range(num_good):
        key = f"utt{i}"
        x = (0.1 * rng.standard_normal(16000 + 1000 * i)).astype(np.float32)
        path = tmp_path / f"{key}.wav"
        sf.write(path, x, 16000, subtype="FLOAT")
        entries.append({"key": key, "wav": str(path), "txt": "a"})
        audios[key] = x
    # An 8 kHz stereo file and a segment of a longer file exercise resampling, down-mixing and start/end.
    st = (0.1 * rng.standard_normal((8000, 2))).astype(np.float32)
    sf.write(tmp_path / "st.wav", st, 8000, subtype="FLOAT")
    entries.append({"key": "stereo8k", "wav": str(tmp_path / "st.wav"), "txt": "b"})
    entries.append({"key": "seg", "wav": str(tmp_path / "utt0.wav"), "txt": "c", "start": 0.25, "end": 0.75})
    if bad:
        (tmp_path / "broken.wav").write_bytes(b"not a wav")
        entries.append({"key": "broken", "wav": str(tmp_path / "broken.wav"), "txt": "d"})
        entries.append({"key": "missing", "wav": str(tmp_path / "missing.wav"), "txt": "e"})
        sf.write(tmp_path / "short.wav", np.zeros(100, dtype=np.float32), 16000)
        entries.append({"key": "short", "wav": str(tmp_path / "short.wav"), "txt": "f"})
    list_path = tmp_path / "data.list"
    list_path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return list_path, audios


def test_compute_from_list_matches_direct_and_skips_bad(tmp_path, caplog):
    list_path, audios = _make_list(tmp_path)
    cfg = FbankConfig()
    with caplog.at_level(logging.WARNING):
        stats = compute_cmvn_from_list(list_path, cfg, num_workers=1)
    assert stats.num_utts == 7
    expected = CmvnStats()
    for x in audios.values():
        expected.add(compute_fbank(x, 16000, cfg, dither=0.0))
    seg = compute_fbank(audios["utt0"][4000:12000], 16000, cfg, dither=0.0)
    expected.add(seg)
    assert stats.frame_num == expected.frame_num + 98  # + the 1 s stereo file
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "skipped 3 of 10" in warning
    for key in ("broken", "missing", "short"):
        assert key in warning


def test_compute_from_list_same_with_workers(tmp_path, monkeypatch):
    from wenet_llm.data import cmvn

    monkeypatch.setattr(cmvn, "_CHUNK_UTTS", 3)  # several chunks, so the pool really splits the work
    list_path, _ = _make_list(tmp_path, num_good=6, bad=True)
    one = compute_cmvn_from_list(list_path, FbankConfig(), num_workers=1)
    two = compute_cmvn_from_list(list_path, FbankConfig(), num_workers=2)
    assert one.to_json_dict() == two.to_json_dict()


def test_all_bad_list_errors(tmp_path):
    (tmp_path / "data.list").write_text(json.dumps({"key": "x", "wav": str(tmp_path / "no.wav"), "txt": ""}) + "\n")
    with pytest.raises(ValueError, match="no usable audio"):
        compute_cmvn_from_list(tmp_path / "data.list", FbankConfig(), num_workers=1)


def test_malformed_list_line(tmp_path):
    (tmp_path / "data.list").write_text('{"key": "a", "wav": "a.wav", "txt": "x"}\nnot json\n')
    with pytest.raises(ValueError, match="data.list:2"):
        compute_cmvn_from_list(tmp_path / "data.list", FbankConfig(), num_workers=1)


def test_cli_writes_loadable_json(tmp_path):
    list_path, _ = _make_list(tmp_path, num_good=2, bad=False)
    out = tmp_path / "out" / "global_cmvn"
    rc = compute_cmvn_bin.main(["--data", str(list_path), "--out", str(out), "--num-workers", "1"])
    assert rc == 0
    d = json.loads(out.read_text())
    assert len(d["mean_stat"]) == 80 and d["frame_num"] > 0
    mean, istd = load_cmvn(out)
    assert mean.shape == istd.shape == (80,) and torch.all(istd > 0)


def test_cli_missing_list(tmp_path, capsys):
    rc = compute_cmvn_bin.main(["--data", str(tmp_path / "nope.list"), "--out", str(tmp_path / "c")])
    assert rc == 1
    assert "missing data list" in capsys.readouterr().err
