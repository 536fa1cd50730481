"""The generated bilingual demo corpus: espeak-ng speech, entity-rich hotword tests, noise.

No public speech corpus can be downloaded where the demo and the tests run, so the toolkit
synthesises one. Text comes from :mod:`wenet_llm.synth.demo_text`; English is read by espeak-ng's
English voices and Mandarin by ``cmn-latn-pinyin`` from tone-numbered pinyin (the plain ``cmn``
voice misreads Hanzi). Splits:

- train, dev, test: recordings (one speaker, one topic, several utterances); many train and dev
  sentences say a rare invented name (each at most twice in train), from a pool disjoint from
  the test entities, so that a contextual stage can learn to copy names from a hotword list;
- test_hotword: every utterance names one or two rare entities and carries a hotword list
  (its targets plus distractors);
- test_noisy: every test utterance at every configured SNR, mixed with white, pink or babble noise;
- noise_only: silence, noise, hum and tone clips with EMPTY transcripts;
- train_non_speech: more such clips, for training (their own seeds).

Beside the splits: ``noise_train/`` (noise clips for training augmentation, kinds without babble,
so that babble stays an unseen kind in test_noisy) and ``distractor_names.json`` (names spoken
nowhere, for the distractors of hotword lists).

Every split is written as a Kaldi data dir (wav.scp, text, utt2spk, spk2utt, utt2dur, utt2lang)
plus a WeNet raw ``data.list``. Output is a pure function of the config: planning uses one seeded
``random.Random`` and each audio job derives its own generator from (seed, job index), so the
result does not depend on the number of worker processes.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import random
import shutil
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import soundfile as sf

from wenet_llm.config import save_config
from wenet_llm.config.demo_corpus import SPLITS, DemoCorpusConfig
from wenet_llm.data import formats, mixing
from wenet_llm.synth import demo_text, noise
from wenet_llm.utils.fileio import atomic_open

logger = logging.getLogger(__name__)

ESPEAK_DEFAULT_WPM = 175  # demo_text estimates durations at espeak-ng's default rate
NOISE_SPEAKER = "noise"
EXTRA_SPLITS = ("test_noisy", "noise_only", "train_non_speech")  # made from or beside the speech splits
NOISE_TRAIN_DIR = "noise_train"  # folder of training noise clips (data.noise.noise_dir)


@dataclass(frozen=True)
class Speaker:
    spk_id: str
    lang: str
    voice: str  # espeak-ng voice with variant, e.g. "en-gb+m3"
    speed_wpm: int
    pitch: int


@dataclass
class Utterance:
    key: str
    split: str
    text: str
    lang: str
    spk_id: str
    wav: str = ""  # absolute path, filled once the audio is planned
    num_samples: int = 0
    rec_id: str = ""
    topic: str = ""
    speak_text: str = ""  # what espeak-ng reads
    entities: tuple[str, ...] = ()
    hotwords: tuple[str, ...] = ()
    noise: dict = field(default_factory=dict)  # how a non-clean clip was made

    def duration(self, sample_rate: int) -> float:
        return self.num_samples / sample_rate

    def to_list_entry(self, sample_rate: int) -> dict:
        """One WeNet raw-list line: key/wav/txt plus the fields later stages need."""
        entry = {"key": self.key, "wav": self.wav, "txt": self.text, "lang": self.lang, "spk": self.spk_id,
                 "duration": round(self.duration(sample_rate), 4)}
        if self.rec_id:
            entry["rec"] = self.rec_id
            entry["topic"] = self.topic
        if self.split == "test_hotword":
            entry["hotwords"] = list(self.hotwords)
        if self.lang != "none":
            entry["entities"] = list(self.entities)  # the names it says; [] says none
        if self.noise:
            entry["noise"] = self.noise
        return entry


def check_tools() -> None:
    """Fail early, with the fix, when the synthesis tools are missing."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"missing system tool(s) {missing} needed to synthesise the demo corpus; "
            "install them with: apt-get install -y espeak-ng sox libsox-fmt-all (or run: bash tools/install.sh)"
        )


def make_speakers(cfg: DemoCorpusConfig, rng: random.Random) -> dict[str, list[Speaker]]:
    speakers: dict[str, list[Speaker]] = {}
    for lang, voices in (("en", cfg.en_voices), ("zh", cfg.zh_voices)):
        pool = []
        for i in range(cfg.num_speakers_per_lang):
            voice = voices[i % len(voices)]
            variant = rng.choice(cfg.variants)
            pool.append(Speaker(
                spk_id=f"{lang}{i:03d}",
                lang=lang,
                voice=f"{voice}+{variant}" if variant else voice,
                speed_wpm=rng.randint(cfg.min_speed_wpm, cfg.max_speed_wpm),
                pitch=rng.randint(cfg.min_pitch, cfg.max_pitch),
            ))
        speakers[lang] = pool
    return speakers


def split_sizes(cfg: DemoCorpusConfig) -> dict[str, int]:
    sizes = {
        "dev": max(1, round(cfg.num_utts * cfg.dev_fraction)),
        "test": max(1, round(cfg.num_utts * cfg.test_fraction)),
        "test_hotword": max(1, round(cfg.num_utts * cfg.test_hotword_fraction)),
    }
    sizes["train"] = cfg.num_utts - sum(sizes.values())
    return {s: sizes[s] for s in SPLITS}


# Mandarin names have at most 4 characters (a brand pair + a 2-character suffix); substrings of
# spoken text up to this length, with room to spare, tell whether a name was spoken.
_ZH_MAX_NAME_CHARS = 8


class _EntityPlanner:
    """Decides which name each sentence says: entities rare in train, rare names, never-spoken distractors.

    Four pools per language, from one :class:`demo_text.NameMaker` so that they share no text and no
    name core: the entity pool (its "seen" half may occur in train and dev, the rest only in test
    and test_hotword), rare training names (new ones drawn as train needs them, each used at most
    ``max_rare_name_count`` times), rare dev names (each used once) and distractors (never spoken).
    Mandarin text is also checked for names formed by accident across word boundaries: a sentence
    that says a name it was not asked to is redrawn, and a new name that some planned sentence
    already says is refused, so every count below is exact.
    """

    def __init__(self, cfg: DemoCorpusConfig, rng: random.Random):
        self.cfg = cfg
        self.rng = rng
        self.makers = {lang: demo_text.NameMaker(lang, cfg.seed) for lang in demo_text.LANGS}
        self.pool = {lang: self.makers[lang].pool("entities", cfg.entities_per_kind) for lang in demo_text.LANGS}
        self.seen: dict[str, list[demo_text.Entity]] = {}
        for lang, entities in self.pool.items():
            shuffled = list(entities)
            rng.shuffle(shuffled)
            self.seen[lang] = shuffled[: max(1, round(len(shuffled) * cfg.seen_entity_fraction))]
        self.train_count: Counter = Counter()
        self.hotword_count: Counter = Counter()
        self.rare: dict[str, dict] = {}  # text -> {text, kind, lang, split, count}
        self.reusable: dict[str, list[demo_text.Entity]] = {lang: [] for lang in demo_text.LANGS}
        self.names = {lang: {e.text for e in pool} for lang, pool in self.pool.items()}
        self.spoken_zh: set[str] = set()  # substrings of the Mandarin sentences planned so far
        self.distractors: list[demo_text.Entity] = []

    def for_plain_sentence(self, split: str, lang: str) -> list[demo_text.Entity]:
        draw = self.rng.random()
        if draw < self.cfg.train_entity_rate:
            if split == "train":
                choices = [e for e in self.seen[lang] if self.train_count[e.text] < self.cfg.max_train_count_per_entity]
                if not choices:
                    return []
                entity = self.rng.choice(choices)
                self.train_count[entity.text] += 1
                return [entity]
            # dev selects models for the hotword test: it must not say the test's unseen names either.
            return [self.rng.choice(self.seen[lang] if split == "dev" else self.pool[lang])]
        if split in ("train", "dev") and draw < self.cfg.train_entity_rate + self.cfg.rare_name_rate:
            return [self._rare_name(split, lang)]
        return []

    def _rare_name(self, split: str, lang: str) -> demo_text.Entity:
        reusable = self.reusable[lang]
        if split == "train" and reusable and self.rng.random() < self.cfg.rare_name_repeat_rate:
            name = self.rng.choice(reusable)
        else:
            kind = self.rng.choice(demo_text.ENTITY_KINDS)
            avoid = (lambda text: text in self.spoken_zh) if lang == "zh" else None
            name = self.makers[lang].new(split, kind, avoid=avoid)
            self.names[lang].add(name.text)
            self.rare[name.text] = {**asdict(name), "split": split, "count": 0}
            if split == "train":
                reusable.append(name)
        self.rare[name.text]["count"] += 1
        if split == "train" and self.rare[name.text]["count"] >= self.cfg.max_rare_name_count:
            reusable.remove(name)
        return name

    def for_hotword_sentence(self, lang: str) -> list[demo_text.Entity]:
        count = self.rng.choice((1, 1, 2))
        picked = self.rng.sample(self.pool[lang], count)
        if count == 2 and picked[0].kind == picked[1].kind:
            picked = picked[:1]  # templates slot two entities of different kinds
        for e in picked:
            self.hotword_count[e.text] += 1
        return picked

    def hotword_list(self, lang: str, targets: Sequence[str]) -> tuple[str, ...]:
        others = [e.text for e in self.pool[lang] if e.text not in targets]
        terms = list(targets) + self.rng.sample(others, min(self.cfg.hotword_distractors, len(others)))
        self.rng.shuffle(terms)
        return tuple(terms)

    def says_other_names(self, sentence: demo_text.Sentence) -> bool:
        """Whether a Mandarin sentence says a name it was not asked to (an accident of adjacent words).

        English cannot: a name's core is an invented word that no vocabulary word equals.
        """
        if sentence.lang != "zh":
            return False
        text, named = sentence.text, set(sentence.entities)
        return any(text[i:j] in self.names["zh"] and text[i:j] not in named
                   for i in range(len(text)) for j in range(i + 2, min(len(text), i + _ZH_MAX_NAME_CHARS) + 1))

    def planned(self, sentence: demo_text.Sentence) -> None:
        """Record a sentence as said, so that no later name is one it already says."""
        if sentence.lang == "zh":
            text = sentence.text
            self.spoken_zh.update(text[i:j] for i in range(len(text))
                                  for j in range(i + 2, min(len(text), i + _ZH_MAX_NAME_CHARS) + 1))

    def make_distractors(self) -> None:
        """Names never spoken anywhere in the corpus, for hotword lists built later (after all speech)."""
        if self.cfg.distractor_names_per_kind == 0:
            return
        for lang in demo_text.LANGS:
            avoid = (lambda text: text in self.spoken_zh) if lang == "zh" else None
            self.distractors += self.makers[lang].pool("distractors", self.cfg.distractor_names_per_kind, avoid=avoid)

    def report(self) -> list[dict]:
        seen = {e.text for lang in self.seen for e in self.seen[lang]}
        return [
            {**asdict(e), "seen_in_train": e.text in seen, "train_count": self.train_count[e.text],
             "test_hotword_count": self.hotword_count[e.text]}
            for lang in demo_text.LANGS for e in self.pool[lang]
        ]

    def rare_report(self) -> list[dict]:
        return sorted(self.rare.values(), key=lambda r: (r["split"], r["lang"], r["kind"], r["text"]))


def _plan_sentence(rng: random.Random, entities: _EntityPlanner, lang: str, topic: str, target: float,
                   named: Sequence[demo_text.Entity]) -> demo_text.Sentence:
    for _ in range(100):
        sentence = demo_text.make_sentence(rng, lang, topic, target, named)
        if not entities.says_other_names(sentence):
            entities.planned(sentence)
            return sentence
    raise RuntimeError(f"every {lang} sentence drawn for {[e.text for e in named]} said another name by accident")


def _recording_language(cfg: DemoCorpusConfig, made_by_lang: dict[str, int], rng: random.Random) -> str:
    """A recording goes to the language behind its share of the split so far; a tie (the first) is drawn.

    So every split holds ``zh_fraction`` Mandarin utterances up to one recording, and a small test split
    (a smoke corpus' 10 utterances) is never monolingual by chance.
    """
    zh_behind = cfg.zh_fraction * sum(made_by_lang.values()) - made_by_lang["zh"]
    if zh_behind == 0:
        return "zh" if rng.random() < cfg.zh_fraction else "en"
    return "zh" if zh_behind > 0 else "en"


def plan_speech(cfg: DemoCorpusConfig, rng: random.Random) -> tuple[list[Utterance], _EntityPlanner, dict]:
    """Texts, speakers, recordings and hotword lists of every speech utterance (no audio yet)."""
    speakers = make_speakers(cfg, rng)
    entities = _EntityPlanner(cfg, rng)
    utts: list[Utterance] = []
    recordings: dict[str, dict] = {}
    rec_index = 0
    for split, size in split_sizes(cfg).items():
        made_by_lang = {"en": 0, "zh": 0}
        while (made := sum(made_by_lang.values())) < size:
            lang = _recording_language(cfg, made_by_lang, rng)
            spk = rng.choice(speakers[lang])
            topic = rng.choice(demo_text.topics(lang))
            rec_id = f"{spk.spk_id}-r{rec_index:05d}"
            rec_index += 1
            room = size - made
            if made == 0 and 0.0 < cfg.zh_fraction < 1.0 and size >= 2:
                room -= 1  # leave the split's second recording to the other language
            count = min(rng.randint(cfg.min_utts_per_recording, cfg.max_utts_per_recording), room)
            recordings[rec_id] = {"split": split, "lang": lang, "topic": topic, "spk": spk.spk_id, "utts": []}
            # espeak reads faster than its default at speed > 175 wpm: ask for more text to keep durations.
            rate = spk.speed_wpm / ESPEAK_DEFAULT_WPM
            for i in range(count):
                target = rng.uniform(cfg.min_target_seconds, cfg.max_target_seconds) * rate
                if split == "test_hotword":
                    named = entities.for_hotword_sentence(lang)
                else:
                    named = entities.for_plain_sentence(split, lang)
                sentence = _plan_sentence(rng, entities, lang, topic, target, named)
                utt = Utterance(
                    key=f"{rec_id}-{i:02d}", split=split, text=sentence.text, lang=lang, spk_id=spk.spk_id,
                    rec_id=rec_id, topic=topic, speak_text=sentence.speak_text, entities=sentence.entities,
                )
                if split == "test_hotword":
                    utt.hotwords = entities.hotword_list(lang, sentence.entities)
                utts.append(utt)
                recordings[rec_id]["utts"].append(utt.key)
            made_by_lang[lang] += count
    entities.make_distractors()
    speaker_table = {s.spk_id: asdict(s) for pool in speakers.values() for s in pool}
    return utts, entities, {"recordings": recordings, "speakers": speaker_table}


# ----------------------------------------------------------------------------- audio jobs
# Jobs are plain tuples so they pickle cheaply to worker processes.


def _synthesize(job: tuple) -> int:
    """espeak-ng -> sox (22.05 kHz -> 16 kHz, 16-bit mono). Returns the number of samples."""
    wav_path, voice, speed, pitch, speak_text, sample_rate = job
    espeak = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout"],
        input=speak_text.encode("utf-8"), capture_output=True, check=False,
    )
    if espeak.returncode != 0 or len(espeak.stdout) < 100:
        raise RuntimeError(f"espeak-ng failed for {wav_path} (voice {voice}): {espeak.stderr.decode(errors='replace')}")
    # -G guards against clipping in the rate conversion; -R makes sox's dither repeatable.
    sox = subprocess.run(
        ["sox", "-q", "-R", "-G", "-t", "wav", "-", "-r", str(sample_rate), "-c", "1", "-b", "16", wav_path],
        input=espeak.stdout, capture_output=True, check=False,
    )
    if sox.returncode != 0:
        raise RuntimeError(f"sox failed for {wav_path}: {sox.stderr.decode(errors='replace')}")
    return sf.info(wav_path).frames


def _job_rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])


def _write_wav(path: str, audio: np.ndarray, sample_rate: int) -> int:
    sf.write(path, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")
    return len(audio)


def _read_wav(path: str) -> np.ndarray:
    audio, _ = sf.read(path, dtype="float32")
    return audio


# Streams of _job_rng: each kind of clip draws from its own, so training clips never repeat test ones.
_STREAM_NOISY, _STREAM_NOISE_ONLY, _STREAM_TRAIN_NON_SPEECH, _STREAM_NOISE_TRAIN = 1, 2, 3, 4


def _make_noisy(job: tuple) -> int:
    """Mix one clean test utterance with white, pink or babble noise at an exact SNR."""
    seed, index, clean_path, out_path, kind, snr_db, babble_paths, sample_rate = job
    rng = _job_rng(seed, _STREAM_NOISY, index)
    speech = _read_wav(clean_path)
    if kind == "babble":
        background = noise.babble([_read_wav(p) for p in babble_paths], len(speech), rng)
    else:
        background = noise.non_speech(kind, len(speech), rng, sample_rate)
    return _write_wav(out_path, mixing.mix_at_snr(speech, background, snr_db, rng), sample_rate)


def _make_non_speech(job: tuple) -> int:
    seed, stream, index, out_path, kind, seconds, sample_rate = job
    rng = _job_rng(seed, stream, index)
    return _write_wav(out_path, noise.non_speech(kind, int(seconds * sample_rate), rng, sample_rate), sample_rate)


class _Workers:
    """One process pool for every audio job of a run (each spawned worker pays the imports once)."""

    def __init__(self, num_jobs: int):
        self.num_jobs = num_jobs
        # "spawn" avoids forking a parent that may hold torch threads.
        self.pool = multiprocessing.get_context("spawn").Pool(num_jobs) if num_jobs > 1 else None

    def run(self, fn, jobs: list[tuple], what: str) -> list[int]:
        logger.info("%s: %d clips on %d processes", what, len(jobs), self.num_jobs)
        if self.pool is None:
            return [fn(j) for j in jobs]
        return self.pool.map(fn, jobs, chunksize=max(1, len(jobs) // (self.num_jobs * 8)))

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.terminate()


# ----------------------------------------------------------------------------- writing


def write_split(utts: Sequence[Utterance], split_dir: Path, sample_rate: int) -> None:
    """Kaldi data dir + WeNet data.list for one split (extra fields become utt2<field> files)."""
    entries = [u.to_list_entry(sample_rate) for u in sorted(utts, key=lambda u: u.key)]
    formats.write_data_list(entries, split_dir / "data.list")
    formats.write_kaldi_dir(entries, split_dir)


def _duration_stats(utts: Sequence[Utterance], sample_rate: int) -> dict:
    durs = np.array([u.duration(sample_rate) for u in utts]) if utts else np.zeros(1)
    return {"utts": len(utts), "hours": round(float(durs.sum()) / 3600, 4), "min_s": round(float(durs.min()), 2),
            "mean_s": round(float(durs.mean()), 2), "max_s": round(float(durs.max()), 2)}


def _non_speech_clips(cfg: DemoCorpusConfig, rng: random.Random, split: str, count: int, kinds: Sequence[str],
                      key_prefix: str, wav_dir: Path, stream: int) -> tuple[list[Utterance], list[tuple]]:
    """Non-speech clips with empty transcripts (noise_only, train_non_speech) and their audio jobs."""
    utts, jobs = [], []
    wav_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        seconds = rng.uniform(cfg.min_noise_only_seconds, cfg.max_noise_only_seconds)
        key = f"{key_prefix}{kind}-{i:04d}"
        utt = Utterance(key=key, split=split, text="", lang="none", spk_id=NOISE_SPEAKER,
                        wav=str(wav_dir / f"{key}.wav"), noise={"kind": kind})
        utts.append(utt)
        jobs.append((cfg.seed, stream, i, utt.wav, kind, seconds, cfg.sample_rate))
    return utts, jobs


def generate(cfg: DemoCorpusConfig, out_dir: str | Path, num_jobs: int = 1) -> dict:
    """Generate the whole corpus under ``out_dir``; returns the summary also written to summary.json."""
    check_tools()
    for name in ("noise_only_kinds", "train_non_speech_kinds"):
        unknown = sorted(set(getattr(cfg, name)) - set(noise.NON_SPEECH_KINDS))
        if unknown:
            raise ValueError(f"{name} {unknown} unknown; valid kinds: {list(noise.NON_SPEECH_KINDS)}")
    out_dir = Path(out_dir).resolve()
    for split in (*SPLITS, *EXTRA_SPLITS):
        # Audio of an earlier, different corpus in the same place must not linger.
        shutil.rmtree(out_dir / "wav" / split, ignore_errors=True)
    shutil.rmtree(out_dir / NOISE_TRAIN_DIR, ignore_errors=True)
    rng = random.Random(cfg.seed)
    utts, entities, tables = plan_speech(cfg, rng)
    sr = cfg.sample_rate

    with _Workers(num_jobs) as workers:
        by_split: dict[str, list[Utterance]] = {s: [] for s in SPLITS}
        speakers = tables["speakers"]
        jobs = []
        for u in utts:
            wav_dir = out_dir / "wav" / u.split
            wav_dir.mkdir(parents=True, exist_ok=True)
            u.wav = str(wav_dir / f"{u.key}.wav")
            spk = speakers[u.spk_id]
            jobs.append((u.wav, spk["voice"], spk["speed_wpm"], spk["pitch"], u.speak_text, sr))
            by_split[u.split].append(u)
        for u, n in zip(utts, workers.run(_synthesize, jobs, "speech synthesis")):
            u.num_samples = n

        # test_noisy: every test utterance at every SNR (each SNR level is a whole test set); the kind
        # cycles over the utterances, shifted per SNR so that an utterance meets different kinds.
        babble_pool = by_split["train"]
        noisy, jobs = [], []
        (out_dir / "wav" / "test_noisy").mkdir(parents=True, exist_ok=True)
        for level, snr in enumerate(cfg.noisy_snrs_db):
            for i, clean in enumerate(sorted(by_split["test"], key=lambda u: u.key)):
                kind = cfg.noisy_kinds[(i + level) % len(cfg.noisy_kinds)]
                key = f"{clean.key}-{kind}{snr:g}db"
                talkers = [u for u in babble_pool if u.spk_id != clean.spk_id] or babble_pool
                babble_paths = []
                if kind == "babble":
                    babble_paths = [u.wav for u in rng.sample(talkers, min(cfg.babble_talkers, len(talkers)))]
                utt = Utterance(key=key, split="test_noisy", text=clean.text, lang=clean.lang, spk_id=clean.spk_id,
                                rec_id=clean.rec_id, topic=clean.topic, entities=clean.entities,
                                wav=str(out_dir / "wav" / "test_noisy" / f"{key}.wav"),
                                noise={"kind": kind, "snr_db": snr, "clean_key": clean.key,
                                       "seen_in_train": kind in cfg.train_noise_kinds})
                jobs.append((cfg.seed, len(noisy), clean.wav, utt.wav, kind, snr, babble_paths, sr))
                noisy.append(utt)
        for u, n in zip(noisy, workers.run(_make_noisy, jobs, "test_noisy mixing")):
            u.num_samples = n
        by_split["test_noisy"] = noisy

        num_noise = max(cfg.min_noise_only, round(cfg.num_utts * cfg.noise_only_fraction))
        noise_utts, jobs = _non_speech_clips(cfg, rng, "noise_only", num_noise, cfg.noise_only_kinds,
                                             f"{NOISE_SPEAKER}-", out_dir / "wav" / "noise_only", _STREAM_NOISE_ONLY)
        num_train = max(cfg.min_noise_only, round(cfg.num_utts * cfg.train_non_speech_fraction))
        train_utts, train_jobs = _non_speech_clips(
            cfg, rng, "train_non_speech", num_train, cfg.train_non_speech_kinds, f"{NOISE_SPEAKER}-train-",
            out_dir / "wav" / "train_non_speech", _STREAM_TRAIN_NON_SPEECH)
        for u, n in zip(noise_utts + train_utts, workers.run(_make_non_speech, jobs + train_jobs, "non-speech clips")):
            u.num_samples = n
        by_split["noise_only"] = noise_utts
        by_split["train_non_speech"] = train_utts

        # The training noise folder: plain wavs for data.noise, named by kind (no list: a noise folder
        # such as MUSAN's is just audio files).
        noise_dir = out_dir / NOISE_TRAIN_DIR
        noise_dir.mkdir(parents=True)
        jobs = [(cfg.seed, _STREAM_NOISE_TRAIN, i, str(noise_dir / f"{kind}-{n:03d}.wav"), kind,
                 cfg.train_noise_seconds, sr)
                for i, (kind, n) in enumerate((k, n) for k in cfg.train_noise_kinds
                                              for n in range(cfg.train_noise_clips_per_kind))]
        workers.run(_make_non_speech, jobs, "training noise clips")

    for split, split_utts in by_split.items():
        write_split(split_utts, out_dir / split, sr)
    tables["entities"] = entities.report()
    tables["rare_names"] = entities.rare_report()
    tables["distractor_names"] = [asdict(e) for e in entities.distractors]
    for name in ("recordings", "speakers", "entities", "rare_names", "distractor_names"):
        with atomic_open(out_dir / f"{name}.json") as f:
            json.dump(tables[name], f, ensure_ascii=False, indent=1)
    save_config(cfg, out_dir / "corpus_config.yaml")
    summary = {split: _duration_stats(split_utts, sr) for split, split_utts in by_split.items()}
    summary["entities"] = {
        "pool": len(tables["entities"]),
        "train_occurrences": sum(entities.train_count.values()),
        "test_hotword_occurrences": sum(entities.hotword_count.values()),
    }
    for split in ("train", "dev"):
        names = [r for r in tables["rare_names"] if r["split"] == split]
        summary[f"rare_names_{split}"] = {"names": len(names), "occurrences": sum(r["count"] for r in names),
                                          "utts_with_one": sum(bool(set(u.entities) & entities.rare.keys())
                                                               for u in by_split[split])}
    summary["distractor_names"] = len(tables["distractor_names"])
    clips = len(cfg.train_noise_kinds) * cfg.train_noise_clips_per_kind
    summary["noise_train"] = {"clips": clips, "seconds": round(clips * cfg.train_noise_seconds, 1),
                              "kinds": list(cfg.train_noise_kinds),
                              "test_noisy_unseen_kinds": [k for k in cfg.noisy_kinds if k not in cfg.train_noise_kinds]}
    with atomic_open(out_dir / "summary.json") as f:
        json.dump(summary, f, indent=1)
    return summary
