"""Tests for wenet_llm.data.noisy_set and ``python -m wenet_llm.bin.make_noisy_set``."""

import json

import numpy as np
import pytest
import soundfile as sf

from wenet_llm.bin import make_noisy_set as cli
from wenet_llm.data import formats
from wenet_llm.data.noisy_set import make_noisy_sets

SR = 16000


def _speech(seconds, freq, level):
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture
def test_set(tmp_path):
    (tmp_path / "wav").mkdir()
    (tmp_path / "noise" / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    # A long noise file and one shorter than every utterance (tiled).
    sf.write(tmp_path / "noise" / "long.wav", (0.1 * rng.standard_normal(3 * SR)).astype(np.float32), SR,
             subtype="FLOAT")
    sf.write(tmp_path / "noise" / "sub" / "short.flac", (0.05 * rng.standard_normal(SR // 4)).astype(np.float32), SR)
    entries = []
    for i, (sec, freq) in enumerate([(1.0, 220), (0.7, 330), (1.2, 440)]):
        path = tmp_path / "wav" / f"u{i}.wav"
        sf.write(path, _speech(sec, freq, 0.05), SR, subtype="FLOAT")
        entries.append({"key": f"u{i}", "wav": str(path), "txt": f"文本 {i}", "lang": "zh", "spk": "s1"})
    entries[2].update(start=0.2, end=1.0)  # a segment: 0.8 s of the 1.2 s file
    formats.write_data_list(entries, tmp_path / "data.list")
    return tmp_path


def _read(path):
    return {e["key"]: e for e in formats.read_data_list(path)}


def _wav(path):
    return sf.read(path, dtype="float64")[0]


def test_noisy_copies_and_noise_only_hand_checked(test_set):
    out = test_set / "out"
    summary = make_noisy_sets(test_set / "data.list", test_set / "noise", out, snrs_db=[0, 10, 20], seed=3)
    assert sorted(summary["sets"]) == ["noise_only", "snr0", "snr10", "snr20"]
    assert summary["noise_files"] == 2 and summary["sets"]["snr10"]["utts"] == 3
    assert json.loads((out / "summary.json").read_text()) == summary
    for name in ("snr0", "snr10", "snr20", "noise_only"):
        assert (out / name / "wav.scp").is_file() and (out / name / "text").is_file()
        assert formats.detect_format(out / name) == "kaldi"
    snr10 = _read(out / "snr10" / "data.list")
    assert sorted(snr10) == ["u0-snr10db", "u1-snr10db", "u2-snr10db"]
    e = snr10["u2-snr10db"]
    assert (e["txt"], e["lang"], e["spk"], e["clean_key"], e["snr_db"]) == ("文本 2", "zh", "s1", "u2", 10.0)
    assert "start" not in e and "end" not in e and e["duration"] == pytest.approx(0.8)
    assert e["noise"].endswith((".wav", ".flac"))
    clean = {k: _speech(s, f, 0.05).astype(np.float64) for k, s, f in [("u0", 1.0, 220), ("u1", 0.7, 330)]}
    clean["u2"] = _speech(1.2, 440, 0.05).astype(np.float64)[int(0.2 * SR):SR]
    noise_part = {}
    for snr in (0, 10, 20):
        entries = _read(out / f"snr{snr}" / "data.list")
        for key, speech in clean.items():
            mix = _wav(entries[f"{key}-snr{snr}db"]["wav"])
            assert mix.shape == speech.shape
            # No peak scaling at these levels, so mix - speech is the added noise (up to 16-bit rounding).
            noise = mix - speech
            measured = 10 * np.log10(np.mean(speech ** 2) / np.mean(noise ** 2))
            assert measured == pytest.approx(snr, abs=0.05), (key, snr)
            noise_part.setdefault(key, []).append(noise / np.sqrt(np.mean(noise ** 2)))
    for key, parts in noise_part.items():  # the same noise crop at every SNR of one utterance
        assert np.corrcoef(parts[0], parts[2])[0, 1] > 0.999, key
    only = _read(out / "noise_only" / "data.list")
    assert sorted(only) == ["u0-noise", "u1-noise", "u2-noise"]
    o = only["u1-noise"]
    assert set(o) == {"key", "wav", "txt", "duration", "clean_key", "noise", "snr_db"} and o["txt"] == ""
    level = 10 * np.log10(np.mean(clean["u1"] ** 2) / np.mean(_wav(o["wav"]) ** 2))
    assert level == pytest.approx(10.0, abs=0.05)
    assert (out / "noise_only" / "text").read_text().splitlines() == ["u0-noise", "u1-noise", "u2-noise"]


def test_deterministic_order_independent_and_seeded(test_set):
    a = make_noisy_sets(test_set / "data.list", test_set / "noise", test_set / "a", snrs_db=[5], seed=1)
    entries = list(formats.read_data_list(test_set / "data.list"))
    formats.write_data_list(entries[::-1], test_set / "reversed.list")
    make_noisy_sets(test_set / "reversed.list", test_set / "noise", test_set / "b", snrs_db=[5], seed=1)
    make_noisy_sets(test_set / "data.list", test_set / "noise", test_set / "c", snrs_db=[5], seed=2)
    assert a["sets"]["snr5"]["utts"] == 3
    for name, key in (("snr5", "u1-snr5db"), ("noise_only", "u1-noise")):
        a_bytes = (test_set / "a" / name / "wav" / f"{key}.wav").read_bytes()
        assert (test_set / "b" / name / "wav" / f"{key}.wav").read_bytes() == a_bytes
        assert (test_set / "c" / name / "wav" / f"{key}.wav").read_bytes() != a_bytes


def test_parallel_workers_give_the_same_files(test_set):
    make_noisy_sets(test_set / "data.list", test_set / "noise", test_set / "one", snrs_db=[0], seed=4)
    make_noisy_sets(test_set / "data.list", test_set / "noise", test_set / "two", snrs_db=[0], seed=4, num_workers=2)
    for name, key in (("snr0", "u0-snr0db"), ("snr0", "u2-snr0db"), ("noise_only", "u2-noise")):
        assert (test_set / "one" / name / "wav" / f"{key}.wav").read_bytes() == \
            (test_set / "two" / name / "wav" / f"{key}.wav").read_bytes()


def test_silent_speech_is_copied_and_counted_and_kaldi_input(test_set, tmp_path):
    silent = tmp_path / "wav" / "silent.wav"
    sf.write(silent, np.zeros(SR // 2, dtype=np.float32), SR)
    entries = list(formats.read_data_list(test_set / "data.list"))[:1]
    entries.append({"key": "z9", "wav": str(silent), "txt": ""})
    formats.write_kaldi_dir(entries, tmp_path / "kaldi")
    s = make_noisy_sets(tmp_path / "kaldi", test_set / "noise", tmp_path / "out", snrs_db=[10], noise_only=False)
    assert sorted(s["sets"]) == ["snr10"] and s["sets"]["snr10"]["noise_skipped"] == 1
    z = _read(tmp_path / "out" / "snr10" / "data.list")["z9-snr10db"]
    assert z["noise_skipped"] == "silent speech" and not np.any(_wav(z["wav"]))


def test_errors(test_set, capsys):
    with pytest.raises(FileNotFoundError, match="noise folder .* does not exist"):
        make_noisy_sets(test_set / "data.list", test_set / "nope", test_set / "o")
    with pytest.raises(ValueError, match="finite and distinct"):
        make_noisy_sets(test_set / "data.list", test_set / "noise", test_set / "o", snrs_db=[5, 5])
    with pytest.raises(ValueError, match="nothing to make"):
        make_noisy_sets(test_set / "data.list", test_set / "noise", test_set / "o", snrs_db=[], noise_only=False)
    bad = test_set / "bad.list"
    bad.write_text(json.dumps({"key": "x", "wav": str(test_set / "missing.wav"), "txt": "a"}) + "\n")
    with pytest.raises(RuntimeError, match="utterance x: cannot read"):
        make_noisy_sets(bad, test_set / "noise", test_set / "o")
    assert cli.main(["--in", str(test_set / "data.list"), "--noise-dir", str(test_set / "nope"),
                     "--out", str(test_set / "o")]) == 1
    assert "make_noisy_set:" in capsys.readouterr().err


def test_cli_defaults(test_set):
    assert cli.main(["--in", str(test_set / "data.list"), "--noise-dir", str(test_set / "noise"),
                     "--out", str(test_set / "cli"), "--seed", "7"]) == 0
    assert sorted(p.name for p in (test_set / "cli").iterdir()) == [
        "noise_only", "snr0", "snr10", "snr20", "snr5", "summary.json"]
    assert cli.get_parser().parse_args(["--in", "a", "--noise-dir", "b", "--out", "c"]).snrs == [0.0, 5.0, 10.0, 20.0]
