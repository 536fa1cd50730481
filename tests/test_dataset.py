"""The one dataset: AED and LLM batches, augmentation off in eval, skipped items, sampler state."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wenet_llm.config import load_config
from wenet_llm.config.data import DataConfig
from wenet_llm.data import features, formats
from wenet_llm.data.dataset import IGNORE_ID, DataStream, SpeechDataset, load_cut_set, training_cuts
from wenet_llm.data.tokenizer import build_char_units, load_tokenizer


def data_cfg(small_corpus: Path, *overrides: str) -> DataConfig:
    base = [f"train={small_corpus / 'train' / 'data.list'}", "sampler.max_duration=40", "num_workers=0"]
    return load_config(DataConfig, None, base + list(overrides))


def stream_for(cfg: DataConfig, train: bool = True, tokenizer=None, **kw) -> DataStream:
    cuts = training_cuts(cfg) if train else load_cut_set(cfg.train)
    return DataStream(cuts, SpeechDataset(cfg, train=train, tokenizer=tokenizer), cfg, shuffle=train, **kw)


@pytest.fixture(scope="module")
def char_tokenizer(small_corpus, tmp_path_factory):
    units = tmp_path_factory.mktemp("lang") / "units.txt"
    texts = [e["txt"] for e in formats.read_data_list(small_corpus / "train" / "data.list")]
    build_char_units(texts, units)
    return load_tokenizer(units)


def test_aed_batches(small_corpus, char_tokenizer):
    cfg = data_cfg(small_corpus)
    seen = []
    for batch in stream_for(cfg, tokenizer=char_tokenizer):
        B, T, F = batch.feats.shape
        assert F == 80 and B == len(batch.keys) == len(batch.texts)
        assert T == int(batch.feats_lengths.max())
        assert torch.all(batch.feats_lengths[:-1] >= batch.feats_lengths[1:])  # longest first
        for i, text in enumerate(batch.texts):
            ids = char_tokenizer.encode(text)
            n = int(batch.token_lengths[i])
            assert batch.tokens[i, :n].tolist() == ids
            assert torch.all(batch.tokens[i, n:] == IGNORE_ID)
            assert torch.all(batch.feats[i, int(batch.feats_lengths[i]):] == 0)  # zero padding
        seen += batch.keys
    train_keys = [e["key"] for e in formats.read_data_list(small_corpus / "train" / "data.list")]
    assert sorted(seen) == sorted(train_keys)  # one epoch sees every utterance once


def test_llm_batches_carry_text_and_context(small_corpus):
    cfg = data_cfg(small_corpus, f"train={small_corpus / 'test_hotword' / 'data.list'}")
    entries = {e["key"]: e for e in formats.read_data_list(small_corpus / "test_hotword" / "data.list")}
    for batch in stream_for(cfg, train=False):
        assert batch.tokens is None and batch.token_lengths is None
        for key, text, lang, ctx in zip(batch.keys, batch.texts, batch.langs, batch.context):
            assert text == entries[key]["txt"] and lang == entries[key]["lang"]
            assert ctx["hotwords"] == entries[key]["hotwords"] and ctx["topic"] == entries[key]["topic"]


def test_eval_has_no_augmentation(small_corpus):
    cfg = data_cfg(small_corpus, "speed_perturb.enabled=true", "fbank.dither=1.0")
    batch = next(iter(stream_for(cfg, train=False)))
    entries = {e["key"]: e for e in formats.read_data_list(small_corpus / "train" / "data.list")}
    for i, key in enumerate(batch.keys):
        audio, sr = sf.read(entries[key]["wav"], dtype="float32")
        expected = features.compute_fbank(audio, sr, cfg.fbank, dither=0.0)
        assert torch.equal(batch.feats[i, : expected.shape[0]], expected)
        assert int(batch.feats_lengths[i]) == features.num_frames(len(audio), cfg.fbank)


def test_training_augmentation_is_deterministic_per_item(small_corpus):
    cfg = data_cfg(small_corpus, "speed_perturb.enabled=true", f"noise.noise_dir={small_corpus / 'wav' / 'noise_only'}",
                   "noise.enabled=true", "noise.prob=1.0")
    first = next(iter(stream_for(cfg)))
    again = next(iter(stream_for(cfg, num_workers=2)))  # another process builds it: same result
    assert first.keys == again.keys and torch.equal(first.feats, again.feats)
    plain = next(iter(stream_for(data_cfg(small_corpus, "spec_aug.enabled=false", "fbank.dither=0"))))
    assert sorted(first.keys) == sorted(plain.keys)  # the sampler does not depend on augmentation
    augmented = dict(zip(first.keys, first.feats_lengths.tolist()))
    clean = dict(zip(plain.keys, plain.feats_lengths.tolist()))
    assert augmented != clean  # speed perturbation changed some lengths


def write_bad_list(small_corpus: Path, tmp_path: Path) -> tuple[Path, int]:
    good = list(formats.read_data_list(small_corpus / "dev" / "data.list"))
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....WAVEfmt garbage" * 10)
    long_wav = tmp_path / "long.wav"
    sf.write(long_wav, np.zeros(16000 * 11, dtype=np.float32), 16000)
    bad = [
        {"key": "bad-missing", "wav": str(tmp_path / "nowhere.wav"), "txt": "HELLO", "duration": 2.0},
        {"key": "bad-corrupt", "wav": str(corrupt), "txt": "HELLO", "duration": 2.0},
        {"key": "bad-long", "wav": str(long_wav), "txt": "HELLO"},
    ]
    path = tmp_path / "data.list"
    path.write_text("".join(json.dumps(e) + "\n" for e in good + bad), encoding="utf-8")
    return path, len(good)


def test_bad_items_are_skipped_and_counted(small_corpus, tmp_path):
    path, num_good = write_bad_list(small_corpus, tmp_path)
    # Missing and corrupt files cannot become cuts; the dataset must survive them at load time,
    # so build the cuts for the good and the long entries, then point two at broken files.
    entries = list(formats.read_data_list(path))
    ok = [e for e in entries if not e["key"].startswith(("bad-missing", "bad-corrupt"))]
    cuts = formats.entries_to_cuts(ok)
    broken = [c for c in cuts if not c.id.startswith("bad-")][:2]
    broken[0].recording.sources[0].source = str(tmp_path / "nowhere.wav")
    Path(tmp_path / "corrupt2.wav").write_bytes(b"not audio at all" * 100)
    broken[1].recording.sources[0].source = str(tmp_path / "corrupt2.wav")
    cfg = data_cfg(small_corpus, "filter.max_seconds=10")  # the demo's longest speech is ~9 s
    stream = DataStream(cuts, SpeechDataset(cfg, train=True), cfg, shuffle=False)
    keys = [k for batch in stream for k in batch.keys]
    skipped = {b.id for b in broken} | {"bad-long"}
    assert sorted(keys) == sorted(c.id for c in cuts if c.id not in skipped)
    assert stream.skips.counts["load_error"] == 2
    assert stream.skips.counts["too_long"] == 1
    assert stream.skips.total() == len(skipped) and "load_error: 2" in stream.skips.summary()


def test_non_speech_mixed_in_with_empty_targets(small_corpus, char_tokenizer):
    cfg = data_cfg(small_corpus, "non_speech.enabled=true", f"non_speech.cuts={small_corpus / 'noise_only' / 'data.list'}",
                   "non_speech.rate=0.2")
    batches = list(stream_for(cfg, tokenizer=char_tokenizer))
    non_speech = [(k, t) for b in batches for k, t in zip(b.keys, b.texts) if k.startswith("noise-")]
    speech = [k for b in batches for k in b.keys if not k.startswith("noise-")]
    assert len(speech) == 48  # all of train
    assert non_speech and all(t == "" for _, t in non_speech)
    assert 0.05 < len(non_speech) / (len(non_speech) + len(speech)) < 0.4
    for b in batches:
        for i, k in enumerate(b.keys):
            if k.startswith("noise-"):
                assert int(b.token_lengths[i]) == 0


def test_noise_and_non_speech_start_at_their_epoch(small_corpus, char_tokenizer, tmp_path):
    # Clean speech only before start_epoch (the alignment forms first), both augmentations from it on.
    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "white.wav", np.random.default_rng(0).uniform(-0.5, 0.5, 32000).astype(np.float32), 16000)
    cfg = data_cfg(small_corpus, "non_speech.enabled=true", f"non_speech.cuts={small_corpus / 'noise_only' / 'data.list'}",
                   "non_speech.rate=0.2", "non_speech.start_epoch=2", "noise.enabled=true", f"noise.noise_dir={noise}",
                   "noise.prob=1.0", "noise.start_epoch=2", "noise.min_snr_db=0", "noise.max_snr_db=0",
                   "fbank.dither=0")
    clean = data_cfg(small_corpus, "fbank.dither=0")
    stream = DataStream(training_cuts(cfg, 0), SpeechDataset(cfg, train=True, tokenizer=char_tokenizer),
                        cfg, shuffle=False)
    reference = stream_for(clean, tokenizer=char_tokenizer, num_workers=0)
    reference.shuffle = False
    for epoch in range(3):
        stream.set_epoch(epoch)
        reference.set_epoch(epoch)
        got = {k: f[: int(n)] for b in stream for k, f, n in zip(b.keys, b.feats, b.feats_lengths)}
        want = {k: f[: int(n)] for b in reference for k, f, n in zip(b.keys, b.feats, b.feats_lengths)}
        non_speech = [k for k in got if k.startswith("noise-")]
        if epoch < 2:
            assert not non_speech and sorted(got) == sorted(want)
            assert all(torch.equal(got[k], want[k]) for k in want)
        else:
            assert non_speech
            assert not any(torch.equal(got[k], want[k]) for k in want)  # every utterance got its 0 dB noise


def test_non_speech_with_transcript_is_rejected(small_corpus):
    cfg = data_cfg(small_corpus, "non_speech.enabled=true", f"non_speech.cuts={small_corpus / 'dev' / 'data.list'}")
    with pytest.raises(ValueError, match="target must be empty"):
        training_cuts(cfg)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_continues_at_the_next_batch(small_corpus, num_workers):
    cfg = data_cfg(small_corpus, "sampler.max_duration=20", f"num_workers={num_workers}")
    full = stream_for(cfg)
    full.set_epoch(1)
    reference = [(b.keys, b.feats) for b in full]
    assert len(reference) > 5

    first = stream_for(cfg)
    first.set_epoch(1)
    taken = []
    for batch in first:
        taken.append((batch.keys, batch.feats))
        if len(taken) == 3:
            break  # the workers had already prefetched more: the state must not count those
    state = json.loads(json.dumps(first.state_dict()))  # survives a round trip through a checkpoint
    assert state["batches_done"] == 3 and state["epoch"] == 1
    resumed = stream_for(cfg)
    resumed.load_state_dict(state)
    taken += [(b.keys, b.feats) for b in resumed]
    assert [k for k, _ in taken] == [k for k, _ in reference]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(taken, reference))


def test_epochs_reshuffle(small_corpus):
    # Two buckets: with ten, each bucket of the 48-utterance set is about one batch, lhotse picks
    # buckets with an epoch-independent generator, and the epochs can come out the same.
    cfg = data_cfg(small_corpus, "sampler.num_buckets=2")
    stream = stream_for(cfg)
    epoch0 = [b.keys for b in stream]
    stream.set_epoch(1)
    epoch1 = [b.keys for b in stream]
    assert sorted(sum(epoch0, [])) == sorted(sum(epoch1, [])) and epoch0 != epoch1


def test_ranks_split_the_data(small_corpus):
    cfg = data_cfg(small_corpus, "sampler.max_duration=20")
    per_rank = []
    for rank in (0, 1):
        per_rank.append([b.keys for b in stream_for(cfg, rank=rank, world_size=2)])
    assert len(per_rank[0]) == len(per_rank[1])  # equal step counts keep DDP ranks in lock-step
    # lhotse may repeat a cut or two (id suffix _dupN) to even out the last batch
    keys0, keys1 = ({k.split("_dup")[0] for k in sum(keys, [])} for keys in per_rank)
    train_keys = {e["key"] for e in formats.read_data_list(small_corpus / "train" / "data.list")}
    assert keys0 | keys1 == train_keys
    assert len(keys0 & keys1) <= 2


def test_shar_and_raw_give_the_same_batches(small_corpus, tmp_path):
    raw_cfg = data_cfg(small_corpus, f"train={small_corpus / 'dev' / 'data.list'}")
    formats.export_shar(load_cut_set(raw_cfg.train), tmp_path / "shar", shard_size=4)
    shar_cfg = data_cfg(small_corpus, f"train={tmp_path / 'shar'}", "format=shar")
    raw = {k: f for b in stream_for(raw_cfg, train=False) for k, f in zip(b.keys, b.feats)}
    shar = {k: f for b in stream_for(shar_cfg, train=False) for k, f in zip(b.keys, b.feats)}
    assert raw.keys() == shar.keys()
    for k in raw:
        n = min(raw[k].shape[0], shar[k].shape[0])
        assert torch.allclose(raw[k][:n], shar[k][:n], atol=1e-3), k


class CountingProcessor:
    """A text processor like the LLM prompt builder: one id per character, speech positions = frames // 4."""

    pad_values = {"input_ids": -7, "speech_mask": 0}

    def __call__(self, text, context, num_frames):
        n = num_frames // 4
        ids = [ord(c) % 100 for c in text] + [len(context.get("hotwords") or [])]
        return {"input_ids": [0] * n + ids, "speech_mask": [1] * n + [0] * len(ids)}

    def num_tokens(self, duration, text, context):
        return int(duration * 100) // 4 + len(text) + 1


def test_text_processor_runs_per_item_and_pads(small_corpus):
    cfg = data_cfg(small_corpus, f"train={small_corpus / 'test_hotword' / 'data.list'}")
    cuts = load_cut_set(cfg.train)
    stream = DataStream(cuts, SpeechDataset(cfg, train=False, text_processor=CountingProcessor()), cfg, shuffle=False)
    for batch in stream:
        ids, mask = batch.text_inputs["input_ids"], batch.text_inputs["speech_mask"]
        assert ids.shape == mask.shape and ids.shape[0] == len(batch)
        lengths = []
        for i, (text, ctx) in enumerate(zip(batch.texts, batch.context)):
            n = int(batch.feats_lengths[i]) // 4
            row = CountingProcessor()(text, ctx, int(batch.feats_lengths[i]))["input_ids"]
            assert ids[i, : len(row)].tolist() == row and torch.all(ids[i, len(row):] == -7)
            assert int(mask[i].sum()) == n
            lengths.append(len(row))
        assert batch.text_inputs["input_ids_lengths"].tolist() == lengths
        assert batch.text_inputs["speech_mask_lengths"].tolist() == lengths
        assert batch.num_tokens == 2 * sum(lengths)  # every id of every key


def test_batches_bounded_by_tokens(small_corpus):
    from wenet_llm.data.dataset import DurationTokenConstraint, cut_token_counter, make_sampler

    cfg = data_cfg(small_corpus, "sampler.max_duration=1000", "sampler.max_tokens=400", "sampler.num_buckets=2")
    counter = cut_token_counter(CountingProcessor())
    cuts = load_cut_set(cfg.train)
    sampler = make_sampler(cuts, cfg.sampler, shuffle=False, count_tokens=counter)
    batches = list(sampler)
    assert sum(len(b) for b in batches) == len(cuts) and len(batches) > 1
    for b in batches:  # padded size (batch size x the longest item) within the bound before the last item
        items = list(b)
        assert len(items) == 1 or (len(items) - 1) * max(counter(c) for c in items[:-1]) <= 400
    constraint = DurationTokenConstraint(10.0, 100, lambda c: c.tokens)

    class Item:
        def __init__(self, duration, tokens):
            self.duration, self.tokens = duration, tokens

    constraint.add(Item(2.0, 30))
    assert not constraint.exceeded() and not constraint.close_to_exceeding()
    constraint.add(Item(3.0, 40))
    assert constraint.close_to_exceeding() and not constraint.exceeded()  # 3 x 40 tokens would pass 100
    constraint.add(Item(1.0, 10))
    assert constraint.exceeded()  # 3 x 40 > 100 (3 x 3 s < 10 s)


def test_bad_noise_file_is_reported_as_such(small_corpus, tmp_path):
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "broken.wav").write_bytes(b"RIFF not really a wav file")
    cfg = data_cfg(small_corpus, "noise.enabled=true", f"noise.noise_dir={noise}", "noise.prob=1.0")
    stream = stream_for(cfg)
    keys = [k for batch in stream for k in batch.keys]
    assert len(keys) == len(list(formats.read_data_list(small_corpus / "train" / "data.list")))  # nobody skipped
    assert stream.skips.total() == 0
    assert stream.skips.counts["augment:noise_file_unreadable"] == len(keys)
    assert "broken.wav" in stream.skips.summary() and "kept without it" in stream.skips.summary()


def test_text_stream_batches_resume_and_shard():
    from wenet_llm.data.text_data import TextStream

    samples = [{"input_ids": list(range(n)), "labels": [-100] + list(range(1, n))} for n in (3, 9, 5, 7, 2, 8)]
    stream = TextStream(samples, max_tokens=16, pad_id=99, seed=1, window=3)
    batches = list(stream)
    assert sorted(i for b in stream.batches() for i in b) == list(range(6))
    for batch in batches:
        assert batch.input_ids.numel() <= 16 or len(batch) == 1
        assert batch.num_tokens == int(batch.attention_mask.sum())
        assert torch.all(batch.input_ids[batch.attention_mask == 0] == 99)
        assert torch.all(batch.labels[batch.attention_mask == 0] == -100)
    again = TextStream(samples, max_tokens=16, pad_id=99, seed=1, window=3)
    it = iter(again)
    next(it)
    resumed = TextStream(samples, max_tokens=16, pad_id=99, seed=1, window=3)
    resumed.load_state_dict(again.state_dict())
    assert [b.input_ids.tolist() for b in resumed] == [b.input_ids.tolist() for b in batches[1:]]
    shards = [TextStream(samples, 16, 99, seed=1, window=3, rank=r, world_size=2).batches() for r in (0, 1)]
    assert sorted(i for s in shards for b in s for i in b) == list(range(6))
    with pytest.raises(ValueError, match="does not fit"):
        TextStream(samples, max_tokens=4, pad_id=0)
