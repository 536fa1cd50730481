"""Tests for wenet_llm.data.formats: data.list <-> Kaldi dir <-> lhotse cuts <-> Shar."""

import json

import numpy as np
import pytest
import soundfile as sf
from lhotse import CutSet

from wenet_llm.data import formats
from wenet_llm.data.formats import (
    cuts_to_entries,
    entries_to_cuts,
    export_shar,
    iter_entries,
    load_cuts,
    load_shar,
    write_data_list,
    write_kaldi_dir,
)

SR = 16000


def _wav(path, seconds=1.0, seed=0, channels=1, sr=SR):
    rng = np.random.default_rng(seed)
    shape = (int(seconds * sr),) if channels == 1 else (int(seconds * sr), channels)
    sf.write(path, (rng.uniform(-0.5, 0.5, shape)).astype(np.float32), sr, subtype="PCM_16")
    return str(path)


@pytest.fixture
def corpus(tmp_path):
    """Entries shaped like the demo corpus's data.list (extras of several JSON types)."""
    a = _wav(tmp_path / "a.wav", 1.0, 0)
    b = _wav(tmp_path / "b.wav", 0.5, 1)
    return [
        {"key": "u1", "wav": a, "txt": "hello world", "lang": "en", "spk": "en000", "duration": 1.0,
         "rec": "en000-r00001", "topic": "travel", "hotwords": ["Zanzibar", "Ofelia"], "entities": ["Zanzibar"],
         "noise": {"kind": "white", "snr_db": 5}},
        {"key": "u2", "wav": b, "txt": "你好 世界", "lang": "zh", "spk": "zh001", "duration": 0.5, "topic": "42"},
        {"key": "noise-0", "wav": a, "txt": "", "lang": "none", "spk": "noise", "duration": 1.0},
    ]


def _by_key(entries):
    return {e["key"]: e for e in entries}


def test_data_list_round_trip_keeps_extra_fields(tmp_path, corpus):
    write_data_list(corpus, tmp_path / "data.list")
    lines = (tmp_path / "data.list").read_text(encoding="utf-8").splitlines()
    assert "你好" in lines[1]  # ensure_ascii=False
    assert list(iter_entries(tmp_path / "data.list")) == corpus


def test_kaldi_round_trip_keeps_extra_fields(tmp_path, corpus):
    write_kaldi_dir(corpus, tmp_path / "kd")
    kd = tmp_path / "kd"
    assert (kd / "text").read_text(encoding="utf-8").splitlines() == ["noise-0", "u1 hello world", "u2 你好 世界"]
    assert (kd / "spk2utt").read_text().splitlines() == ["en000 u1", "noise noise-0", "zh001 u2"]
    assert (kd / "utt2dur").read_text().splitlines()[1] == "u1 1.0000"
    assert not (kd / "segments").exists()
    back = _by_key(iter_entries(kd))
    for e in corpus:
        assert back[e["key"]] == e, e["key"]
    assert isinstance(back["u2"]["topic"], str)  # "42" must not come back as a number


def test_kaldi_utt2spk_defaults_to_key(tmp_path):
    wav = _wav(tmp_path / "a.wav")
    write_kaldi_dir([{"key": "k1", "wav": wav, "txt": "x"}], tmp_path / "kd")
    assert (tmp_path / "kd" / "utt2spk").read_text() == "k1 k1\n"
    assert list(iter_entries(tmp_path / "kd")) == [{"key": "k1", "wav": wav, "txt": "x"}]


def test_cuts_round_trip_keeps_extra_fields(corpus):
    cuts = entries_to_cuts(corpus)
    u1 = cuts["u1"]
    sup = u1.supervisions[0]
    assert (sup.id, sup.text, sup.speaker, sup.language) == ("u1", "hello world", "en000", "en")
    assert sup.custom["hotwords"] == ["Zanzibar", "Ofelia"] and sup.custom["noise"]["snr_db"] == 5
    assert u1.duration == pytest.approx(1.0) and u1.load_audio().shape == (1, SR)
    assert list(cuts_to_entries(cuts)) == corpus


def test_segments_through_every_format(tmp_path):
    rec = _wav(tmp_path / "session.wav", 3.0)
    entries = [
        {"key": "s-1", "wav": rec, "txt": "one", "start": 0.25, "end": 1.5, "spk": "A"},
        {"key": "s-2", "wav": rec, "txt": "two", "start": 1.5, "end": 2.75, "spk": "B"},
    ]
    cuts = entries_to_cuts(entries)
    assert len({c.recording.id for c in cuts}) == 1  # one Recording shared by both segments
    audio = cuts["s-2"].load_audio()
    full, _ = sf.read(rec, dtype="float32")
    np.testing.assert_array_equal(audio[0], full[int(1.5 * SR):int(2.75 * SR)])
    back = [{k: v for k, v in e.items() if k != "duration"} for e in cuts_to_entries(cuts)]
    assert back == entries

    kd = tmp_path / "kd"
    write_kaldi_dir(entries, kd)
    assert (kd / "wav.scp").read_text() == f"session {rec}\n"
    assert (kd / "segments").read_text().splitlines() == ["s-1 session 0.25 1.5", "s-2 session 1.5 2.75"]
    assert list(iter_entries(kd)) == [dict(e, duration=pytest.approx(1.25)) for e in entries]

    write_data_list(entries, tmp_path / "data.list")
    assert [c.duration for c in load_cuts(tmp_path / "data.list")] == pytest.approx([1.25, 1.25])


def test_kaldi_reader_text_edge_cases(tmp_path):
    wav = _wav(tmp_path / "a.wav")
    kd = tmp_path / "kd"
    kd.mkdir()
    (kd / "wav.scp").write_text(f"a {wav}\nb {wav}\nc {wav}\n")
    (kd / "text").write_bytes("a\nb  two  spaces\n".encode() + b"c caf\xe9\n")
    (kd / "utt2lang").write_text("a en\nb zh\nc fr\n")
    got = _by_key(iter_entries(kd))
    assert got["a"]["txt"] == "" and got["a"]["lang"] == "en"
    assert got["b"]["txt"] == "two  spaces"
    assert got["c"]["_error"] == "non_utf8_text" and got["c"]["txt"].startswith("caf")


def test_piped_wav_scp_is_rejected(tmp_path):
    kd = tmp_path / "kd"
    kd.mkdir()
    (kd / "wav.scp").write_text("a /x/a.wav\nb sox /x/b.flac -t wav - |\n")
    (kd / "text").write_text("a x\nb y\n")
    with pytest.raises(ValueError, match=r"wav\.scp:2: b .*command"):
        list(iter_entries(kd))


def test_segments_with_unknown_recording(tmp_path):
    kd = tmp_path / "kd"
    kd.mkdir()
    (kd / "wav.scp").write_text("r1 /x/r1.wav\n")
    (kd / "segments").write_text("u1 r1 0 1\nu2 r9 0 1\n")
    (kd / "text").write_text("u1 a\nu2 b\n")
    with pytest.raises(ValueError, match=r"segments:2: recording 'r9'"):
        list(iter_entries(kd))


@pytest.mark.parametrize("line, match", [
    ('{"key": "a", "wav": "a.wav", "txt": "x"', "not a JSON object"),
    ('["a", "a.wav", "x"]', "expected a JSON object"),
    ('{"key": "a", "txt": "x"}', r"missing field\(s\) \['wav'\]"),
    ('{"key": "a", "wav": "a.wav", "txt": 3}', "field 'txt' must be a string"),
    ('{"key": "a", "wav": "a.wav", "txt": "x", "start": "0.5"}', "field 'start' must be a number"),
])
def test_malformed_data_list_line_names_file_and_line(tmp_path, line, match):
    p = tmp_path / "data.list"
    p.write_text('{"key": "ok", "wav": "ok.wav", "txt": "fine"}\n\n' + line + "\n")
    with pytest.raises(ValueError, match=rf"data\.list:3: {match}"):
        list(iter_entries(p))


def test_malformed_kaldi_line_names_file_and_line(tmp_path):
    kd = tmp_path / "kd"
    kd.mkdir()
    (kd / "wav.scp").write_text("a /x/a.wav\nb\n")
    (kd / "text").write_text("a x\n")
    with pytest.raises(ValueError, match=r"wav\.scp:2"):
        list(iter_entries(kd))


def test_non_utf8_data_list_line_is_marked_not_raised(tmp_path):
    p = tmp_path / "data.list"
    p.write_bytes(b'{"key": "a", "wav": "a.wav", "txt": "ok"}\n{"key": "b", "wav": "b.wav", "txt": "bad \xff\xfe"}\n')
    a, b = iter_entries(p)
    assert "_error" not in a
    assert b["key"] == "b" and b["_error"] == "non_utf8_text"


def test_any_file_name_with_json_lines_is_a_data_list(tmp_path, corpus):
    write_data_list(corpus, tmp_path / "train.jsonl")
    assert formats.detect_format(tmp_path / "train.jsonl") == "data_list"
    assert [e["key"] for e in iter_entries(tmp_path / "train.jsonl")] == ["u1", "u2", "noise-0"]


def test_lhotse_cut_manifest_and_pair(tmp_path, corpus):
    cuts = entries_to_cuts(corpus)
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    assert formats.detect_format(tmp_path / "cuts.jsonl.gz") == "lhotse_cuts"
    assert list(iter_entries(tmp_path / "cuts.jsonl.gz")) == corpus
    assert [c.id for c in load_cuts(tmp_path / "cuts.jsonl.gz")] == ["u1", "u2", "noise-0"]

    # A recordings + supervisions pair is named by its supervisions file.
    cuts.decompose(output_dir=tmp_path / "m", verbose=False)
    (tmp_path / "m" / "recordings.jsonl.gz").rename(tmp_path / "m" / "demo_recordings_train.jsonl.gz")
    (tmp_path / "m" / "supervisions.jsonl.gz").rename(tmp_path / "m" / "demo_supervisions_train.jsonl.gz")
    got = _by_key(iter_entries(tmp_path / "m" / "demo_supervisions_train.jsonl.gz"))
    assert got == _by_key(corpus)
    assert sorted(c.id for c in load_cuts(tmp_path / "m" / "demo_recordings_train.jsonl.gz")) == sorted(got)


def test_lhotse_supervisions_without_recordings_is_explained(tmp_path, corpus):
    entries_to_cuts(corpus).decompose(output_dir=tmp_path, verbose=False)
    (tmp_path / "recordings.jsonl.gz").unlink()
    with pytest.raises(ValueError, match="recordings.jsonl.gz does not exist"):
        list(iter_entries(tmp_path / "supervisions.jsonl.gz"))


def test_entries_to_cuts_multichannel_and_bad_audio(tmp_path):
    st = _wav(tmp_path / "st.wav", 0.5, channels=2)
    cut = entries_to_cuts([{"key": "s", "wav": st, "txt": "x"}])["s"]
    assert cut.num_channels == 2 and cut.load_audio().shape == (2, SR // 2)
    with pytest.raises(ValueError, match="entry m: cannot read audio"):
        entries_to_cuts([{"key": "m", "wav": str(tmp_path / "none.wav"), "txt": "x"}])
    with pytest.raises(ValueError, match="entry s: segment"):
        entries_to_cuts([{"key": "s", "wav": st, "txt": "x", "start": 0.2, "end": 0.9}])


@pytest.mark.parametrize("audio_format", ["flac", "wav"])
def test_shar_round_trip(tmp_path, corpus, audio_format):
    rec = _wav(tmp_path / "session.wav", 2.0, seed=7)
    corpus = corpus + [{"key": "seg", "wav": rec, "txt": "a segment", "start": 0.5, "end": 1.25, "topic": "t"}]
    cuts = entries_to_cuts(corpus)
    out = export_shar(cuts, tmp_path / "shar", shard_size=2, audio_format=audio_format)
    assert len(out["cuts"]) == 2 and len(out["recording"]) == 2
    assert formats.detect_format(tmp_path / "shar") == "shar"
    loaded = list(load_shar(tmp_path / "shar"))
    assert [c.id for c in loaded] == [c.id for c in cuts]
    for orig, got in zip(cuts, loaded):
        so, sg = orig.supervisions[0], got.supervisions[0]
        assert (sg.text, sg.speaker, sg.language, sg.custom) == (so.text, so.speaker, so.language, so.custom)
        np.testing.assert_array_equal(got.load_audio(), orig.load_audio())
    assert [c.id for c in load_cuts(tmp_path / "shar")] == [c.id for c in cuts]


def test_write_kaldi_dir_rejects_duplicate_keys(tmp_path):
    e = {"key": "a", "wav": "/x.wav", "txt": "x"}
    with pytest.raises(ValueError, match="duplicate keys"):
        write_kaldi_dir([e, dict(e)], tmp_path / "kd")


def test_write_data_list_drops_internal_fields(tmp_path):
    write_data_list([{"key": "a", "wav": "a.wav", "txt": "x", "_error": "non_utf8_text"}], tmp_path / "l")
    assert json.loads((tmp_path / "l").read_text()) == {"key": "a", "wav": "a.wav", "txt": "x"}


def test_load_cuts_is_a_cutset(tmp_path, corpus):
    write_kaldi_dir(corpus, tmp_path / "kd")
    cuts = load_cuts(tmp_path / "kd")
    assert isinstance(cuts, CutSet) and sorted(c.id for c in cuts) == ["noise-0", "u1", "u2"]


def test_kaldi_text_without_audio_fails_loading(tmp_path):
    kd = tmp_path / "kd"
    kd.mkdir()
    (kd / "wav.scp").write_text(f"a {_wav(tmp_path / 'a.wav')}\n")
    (kd / "text").write_text("a x\nz y\n")
    assert [(e["key"], e.get("_error")) for e in iter_entries(kd)] == [("a", None), ("z", "transcript_without_audio")]
    with pytest.raises(ValueError, match="entry z: transcript_without_audio; check the data with"):
        load_cuts(kd)
