"""Tests for wenet_llm.data.validate and ``python -m wenet_llm.bin.validate``: one test per bad input."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from wenet_llm.bin import validate as validate_cli
from wenet_llm.config import load_config
from wenet_llm.config.data import ValidateConfig
from wenet_llm.data.formats import iter_entries, write_data_list, write_kaldi_dir
from wenet_llm.data.validate import KEEP_REASONS, MAX_EXAMPLES, REJECT_REASONS, probe_audio, validate_entries

SR = 16000


def _wav(path, seconds=1.0, sr=SR, channels=1, subtype="PCM_16", seed=0):
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    shape = (n,) if channels == 1 else (n, channels)
    sf.write(path, rng.uniform(-0.5, 0.5, shape).astype(np.float32), sr, subtype=subtype)
    return str(path)


def _entry(key, wav, txt="hello", **extra):
    return {"key": key, "wav": str(wav), "txt": txt, **extra}


def _run(entries, *overrides, units=None):
    cfg = load_config(ValidateConfig, None, overrides)
    return validate_entries(entries, cfg, units=units, num_workers=2)


def _counts(report):
    return {r: v["count"] for r, v in report["reasons"].items() if v["count"]}


def _assert_rejected_as(tmp_path, bad, reason, *overrides):
    """``bad`` is rejected under ``reason`` alone, and a good entry beside it is kept."""
    good = _entry("good", _wav(tmp_path / "good.wav"))
    clean, report = _run([good, bad], *overrides)
    assert [e["key"] for e in clean] == ["good"]
    assert _counts(report) == {reason: 1}
    assert report["reasons"][reason]["action"] == "rejected"
    assert report["reasons"][reason]["examples"][0]["key"] == bad["key"]
    assert report["totals"] == {"entries": 2, "kept": 1, "rejected": 1, "hours_kept": pytest.approx(1 / 3600)}
    return report["reasons"][reason]["examples"][0]["detail"]


def _assert_kept_as(tmp_path, entry, reason, *overrides, units=None):
    clean, report = _run([entry], *overrides, units=units)
    assert [e["key"] for e in clean] == [entry["key"]]
    assert _counts(report) == {reason: 1}
    assert report["reasons"][reason]["action"] == "kept"
    assert report["totals"]["rejected"] == 0
    return report["reasons"][reason]


def test_good_entry_is_kept_with_its_fields_and_duration(tmp_path):
    e = _entry("a", _wav(tmp_path / "a.wav", 1.5), lang="en", hotwords=["X"], _private=1)
    clean, report = _run([e])
    assert clean == [{"key": "a", "wav": e["wav"], "txt": "hello", "lang": "en", "hotwords": ["X"], "duration": 1.5}]
    assert _counts(report) == {}
    assert report["totals"]["hours_kept"] == pytest.approx(1.5 / 3600)


def test_missing_file(tmp_path):
    _assert_rejected_as(tmp_path, _entry("m", tmp_path / "nope.wav"), "missing_file")


def test_corrupt_audio(tmp_path):
    p = tmp_path / "noise.wav"
    p.write_bytes(np.random.default_rng(0).bytes(8000))
    _assert_rejected_as(tmp_path, _entry("c", p), "unreadable_audio")


def test_truncated_wav(tmp_path):
    p = tmp_path / "cut.wav"
    data = open(_wav(p, 1.0), "rb").read()
    p.write_bytes(data[: len(data) // 2])  # header still says 1 s
    assert sf.info(str(p)).frames > 0  # libsndfile alone does not notice
    detail = _assert_rejected_as(tmp_path, _entry("t", p), "unreadable_audio")
    assert "truncated" in detail


def test_truncated_flac(tmp_path):
    p = tmp_path / "cut.flac"
    sf.write(p, np.random.default_rng(0).uniform(-0.5, 0.5, 2 * SR).astype(np.float32), SR)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _assert_rejected_as(tmp_path, _entry("t", p), "unreadable_audio")


def test_zero_length_header_only(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros(0, np.float32), SR)
    _assert_rejected_as(tmp_path, _entry("z", p), "zero_length")


def test_zero_length_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    _assert_rejected_as(tmp_path, _entry("z", p), "zero_length")


def test_too_short(tmp_path):
    detail = _assert_rejected_as(tmp_path, _entry("s", _wav(tmp_path / "s.wav", 0.05)), "too_short")
    assert "0.050 s" in detail


def test_too_long(tmp_path):
    bad = _entry("l", _wav(tmp_path / "l.wav", 2.0))
    _assert_rejected_as(tmp_path, bad, "too_long", "max_seconds=1.5")


def test_wrong_sample_rate_is_kept_and_reported(tmp_path):
    info = _assert_kept_as(tmp_path, _entry("r", _wav(tmp_path / "r.wav", 1.0, sr=8000)), "resampled")
    assert "8000 Hz" in info["examples"][0]["detail"]


def test_multichannel_is_kept_and_reported(tmp_path):
    _assert_kept_as(tmp_path, _entry("st", _wav(tmp_path / "st.wav", 1.0, channels=2)), "downmixed")


def test_empty_text(tmp_path):
    _assert_rejected_as(tmp_path, _entry("e", _wav(tmp_path / "e.wav"), ""), "empty_text")


def test_whitespace_only_text(tmp_path):
    detail = _assert_rejected_as(tmp_path, _entry("w", _wav(tmp_path / "w.wav"), " \t "), "empty_text")
    assert "whitespace" in detail


def test_empty_text_allowed_for_non_speech_sets(tmp_path):
    clean, report = _run([_entry("e", _wav(tmp_path / "e.wav"), "")], "allow_empty_text=true")
    assert [e["key"] for e in clean] == ["e"] and _counts(report) == {}


def test_oov_chars_are_kept_and_reported(tmp_path):
    units = tmp_path / "units.txt"
    units.write_text("<blank> 0\n<unk> 1\nh 2\ne 3\nl 4\no 5\n\u2581 6\n<sos/eos> 7\n", encoding="utf-8")
    e = _entry("o", _wav(tmp_path / "o.wav"), "hello 世界 hello")
    info = _assert_kept_as(tmp_path, e, "oov_chars", units=str(units))
    assert info["examples"][0]["detail"] == "世界"
    assert info["chars"] == {"世": 1, "界": 1}
    # Spaces map to ▁, which is a unit here: a text of known characters is clean.
    clean, report = _run([_entry("ok", e["wav"], "hello hello")], units=str(units))
    assert len(clean) == 1 and _counts(report) == {}


def test_non_utf8_text_in_data_list(tmp_path):
    good = _wav(tmp_path / "good.wav")
    p = tmp_path / "data.list"
    p.write_bytes(json.dumps(_entry("good", good)).encode() + b"\n"
                  + b'{"key": "bad", "wav": "' + good.encode() + b'", "txt": "caf\xe9"}\n')
    clean, report = _run(iter_entries(p))
    assert [e["key"] for e in clean] == ["good"]
    assert _counts(report) == {"non_utf8_text": 1}
    assert report["reasons"]["non_utf8_text"]["examples"][0]["key"] == "bad"


def test_duplicate_key(tmp_path):
    wav = _wav(tmp_path / "good.wav")
    clean, report = _run([_entry("good", wav, "first"), _entry("good", wav, "second")])
    assert [e["txt"] for e in clean] == ["first"]
    assert _counts(report) == {"duplicate_key": 1}
    assert report["totals"]["rejected"] == 1


@pytest.mark.parametrize("start, end", [(0.5, 1.6), (0.8, 0.8), (0.9, 0.3), (-0.2, 0.5), (1.2, None)])
def test_bad_segment(tmp_path, start, end):
    seg = {"start": start} if end is None else {"start": start, "end": end}
    bad = _entry("seg", _wav(tmp_path / "rec.wav", 1.0), **seg)
    _assert_rejected_as(tmp_path, bad, "segment_out_of_range")


def test_good_segment_duration_is_the_segment(tmp_path):
    rec = _wav(tmp_path / "rec.wav", 3.0)
    clean, report = _run([_entry("a", rec, start=0.5, end=2.0), _entry("b", rec, start=2.0, end=2.05)])
    assert [(e["key"], e["duration"]) for e in clean] == [("a", 1.5)]
    assert _counts(report) == {"too_short": 1}


def test_examples_are_capped(tmp_path):
    entries = [_entry(f"m{i:02d}", tmp_path / f"m{i}.wav") for i in range(MAX_EXAMPLES + 5)]
    _, report = _run(entries)
    assert report["reasons"]["missing_file"]["count"] == MAX_EXAMPLES + 5
    assert len(report["reasons"]["missing_file"]["examples"]) == MAX_EXAMPLES


def _mixed_corpus(d):
    """One entry of every kind; returns (entries, keys that must be kept)."""
    good = _wav(d / "good.wav")
    rec = _wav(d / "rec.wav", 3.0)
    corrupt = d / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + os.urandom(300))
    sf.write(d / "zero.wav", np.zeros(0, np.float32), SR)
    entries = [
        _entry("a-good", good, spk="s1", lang="en"),
        _entry("b-missing", d / "missing.wav"),
        _entry("c-corrupt", corrupt),
        _entry("d-zero", d / "zero.wav"),
        _entry("e-short", _wav(d / "short.wav", 0.05)),
        _entry("f-long", _wav(d / "long.wav", 2.5)),
        _entry("g-8k", _wav(d / "8k.wav", 1.0, sr=8000)),
        _entry("h-stereo", _wav(d / "stereo.wav", 1.0, channels=2)),
        _entry("i-empty", good, ""),
        _entry("j-seg", rec, "ok", start=1.0, end=2.0),
        _entry("k-badseg", rec, "bad", start=2.5, end=3.5),
    ]
    return entries, {"a-good", "g-8k", "h-stereo", "j-seg"}


def test_every_entry_is_accounted_for(tmp_path):
    entries, keep = _mixed_corpus(tmp_path)
    clean, report = _run(entries + [dict(entries[0])], "max_seconds=2.0")
    t = report["totals"]
    assert {e["key"] for e in clean} == keep
    assert t["entries"] == len(entries) + 1
    assert t["kept"] + t["rejected"] == t["entries"]
    assert sum(report["reasons"][r]["count"] for r in REJECT_REASONS) == t["rejected"]
    assert set(report["reasons"]) == set(REJECT_REASONS + KEEP_REASONS)


def test_probe_audio_reads_the_header(tmp_path):
    info = probe_audio(_wav(tmp_path / "x.wav", 0.5, sr=22050, channels=3))
    assert (info.error, info.sample_rate, info.channels, info.frames) == (None, 22050, 3, 11025)


def test_cli_on_kaldi_dir(tmp_path, capsys):
    entries, keep = _mixed_corpus(tmp_path)
    write_kaldi_dir(entries, tmp_path / "kd")
    assert "i-empty\n" in (tmp_path / "kd" / "text").read_text()  # a key-only line: empty transcript
    (tmp_path / "conf.yaml").write_text("max_seconds: 5.0\nmin_seconds: 0.1\n")
    out, rep = tmp_path / "clean.list", tmp_path / "report.json"
    rc = validate_cli.main(["--in", str(tmp_path / "kd"), "--out", str(out), "--report", str(rep),
                            "--config", str(tmp_path / "conf.yaml"), "--override", "max_seconds=2.0"])
    assert rc == 0
    report = json.loads(rep.read_text())
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["key"] for e in kept} == keep
    assert next(e for e in kept if e["key"] == "a-good")["spk"] == "s1"  # extras survive
    assert next(e for e in kept if e["key"] == "j-seg")["start"] == 1.0
    t = report["totals"]
    assert t["entries"] == len(entries) and t["kept"] + t["rejected"] == t["entries"]
    assert report["reasons"]["empty_text"]["examples"][0]["key"] == "i-empty"
    assert report["config"]["max_seconds"] == 2.0 and report["input"] == str(tmp_path / "kd")
    assert report["reasons"]["too_long"]["count"] == 1 and report["reasons"]["resampled"]["count"] == 1
    printed = capsys.readouterr().out
    assert "too_long" in printed and "downmixed" in printed and f"kept {len(keep)}" in printed


def test_cli_allow_empty_text_and_bad_override(tmp_path, capsys):
    lst = tmp_path / "in.list"
    write_data_list([_entry("e", _wav(tmp_path / "e.wav"), "")], lst)
    args = ["--in", str(lst), "--out", str(tmp_path / "o.list"), "--report", str(tmp_path / "r.json")]
    assert validate_cli.main(args) == 1  # nothing passed
    assert validate_cli.main(args + ["--allow-empty-text"]) == 0
    assert json.loads((tmp_path / "o.list").read_text())["key"] == "e"
    assert validate_cli.main(args + ["--override", "max_secs=3"]) == 2
    assert "max_secs" in capsys.readouterr().err


def test_kaldi_text_without_audio_is_reported(tmp_path):
    # A text line whose key has no wav.scp line, and the reverse: both are counted, none vanish.
    kd = tmp_path / "kd"
    kd.mkdir()
    (kd / "wav.scp").write_text(f"a {_wav(tmp_path / 'a.wav')}\nb {_wav(tmp_path / 'b.wav')}\n")
    (kd / "text").write_text("a hello\nc no audio for me\n")
    clean, report = _run(iter_entries(kd))
    assert [e["key"] for e in clean] == ["a"]
    assert _counts(report) == {"empty_text": 1, "transcript_without_audio": 1}
    assert report["reasons"]["empty_text"]["examples"][0]["key"] == "b"
    assert report["reasons"]["transcript_without_audio"]["examples"][0]["key"] == "c"
    assert report["totals"]["entries"] == 3


def test_cli_empty_input_says_so(tmp_path, capsys):
    lst = tmp_path / "empty.list"
    lst.write_text("")
    rc = validate_cli.main(["--in", str(lst), "--out", str(tmp_path / "o.list"), "--report", str(tmp_path / "r.json")])
    assert rc == 1
    assert f"validate: {lst} holds no entries" in capsys.readouterr().err
    assert (tmp_path / "o.list").read_text() == ""


def test_cli_missing_input_has_one_prefix(tmp_path, capsys):
    rc = validate_cli.main(["--in", str(tmp_path / "nope"), "--out", str(tmp_path / "o.list"),
                            "--report", str(tmp_path / "r.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"validate: input {tmp_path / 'nope'} does not exist" in err and "validate: validate:" not in err


@pytest.mark.parametrize("kind", ["data.list", "kaldi"])
def test_relative_wav_paths_resolve_against_the_list(tmp_path, monkeypatch, kind):
    # The data dir moves with its audio beside it and is used from another directory.
    data = tmp_path / "moved" / "data"
    (data / "wavs").mkdir(parents=True)
    _wav(data / "wavs" / "a.wav")
    if kind == "data.list":
        (data / "data.list").write_text(json.dumps({"key": "a", "wav": "wavs/a.wav", "txt": "hi"}) + "\n")
        source = data / "data.list"
    else:
        (data / "wav.scp").write_text("a wavs/a.wav\n")
        (data / "text").write_text("a hi\n")
        source = data
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "wavs").mkdir(parents=True)
    _wav(elsewhere / "wavs" / "a.wav", seconds=0.05)  # too short: reading it instead rejects the entry
    monkeypatch.chdir(elsewhere)
    out = tmp_path / "clean.list"
    rc = validate_cli.main(["--in", str(source), "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert rc == 0
    kept = json.loads(out.read_text())
    assert kept["wav"] == str(data / "wavs" / "a.wav") and kept["duration"] == pytest.approx(1.0)
