"""Small fake copies of AISHELL-2, AISHELL-1 and LibriSpeech for the data-preparation tests.

Each builder writes the real folder layout and transcript format (as lhotse's recipes read them)
with short synthetic audio: 16 kHz, 16-bit, 0.5-1.5 s of a few tones plus noise. The text content
exercises normalisation: punctuation, full-width characters, embedded English words.

Every builder returns a :class:`FakeCorpus` saying what it wrote, so tests compare against it
instead of repeating the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000

# Raw AISHELL-2 transcripts and what they become after lhotse's and our normalisation.
AISHELL2_TEXTS = (
    ("今天天气很好，我们去公园。", "今天天气很好我们去公园"),
    ("我用iPhone打电话！", "我用IPHONE打电话"),
    ("播放ｈｅｌｌｏ　ｗｏｒｌｄ", "播放HELLO WORLD"),  # full-width letters and space
    ("价格是３５元吗？", "价格是35元吗"),
    ("听beat it", "听BEAT IT"),
    ("“明天”会下雨；带伞", "明天会下雨带伞"),
    ("打开空调", "打开空调"),
)
# AISHELL-1 transcripts are space-separated words; lhotse removes the spaces.
AISHELL1_TEXTS = (
    ("而 对 楼市 成交 抑制 作用 最 大 的 限 购", "而对楼市成交抑制作用最大的限购"),
    ("也 成为 ｋ ｔ ｖ 的 主要 客户", "也成为KTV的主要客户"),
    ("一 直 到 二 零 一 五 年", "一直到二零一五年"),
    ("北京 上海 广州 深圳", "北京上海广州深圳"),
)
LIBRISPEECH_TEXTS = (
    "ALSO A POPULAR CONTRIVANCE",
    "HARANGUE THE TIRESOME PRODUCT OF A TIRELESS TONGUE",
    "ANGOR PAIN PAINFUL TO HEAR",
    "HE DIDN'T KNOW WHERE THE ROAD WENT",
    "THE OLD MAN'S HORSES STOOD IN THE RAIN",
    "SHE SAID THAT THE WATER WAS COLD AND CLEAR",
    "WE WALKED ALONG THE RIVER UNTIL THE EVENING",
)
LIBRISPEECH_PARTS = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")


@dataclass
class FakePart:
    """What one part holds: utterance id -> expected normalised text, id -> speaker, orphan audio."""

    texts: dict[str, str] = field(default_factory=dict)
    speakers: dict[str, str] = field(default_factory=dict)
    audio_without_transcript: list[str] = field(default_factory=list)


@dataclass
class FakeCorpus:
    root: Path
    parts: dict[str, FakePart]


def write_audio(path: Path, seed: int) -> None:
    """0.5-1.5 s of two or three tones plus noise, 16 kHz 16-bit; the format follows the suffix."""
    rng = np.random.default_rng(seed)
    n = int(rng.uniform(0.5, 1.5) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    audio = 0.02 * rng.standard_normal(n)
    for freq in rng.uniform(150.0, 3000.0, size=rng.integers(2, 4)):
        audio += 0.2 * np.sin(2 * np.pi * freq * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1.0, 1.0).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def make_fake_aishell2(root: str | Path, spk_per_part: int = 2, utts_per_spk: int = 3) -> FakeCorpus:
    """``root/AISHELL-2/iOS/{data,dev,test}/{wav/<spk>/<utt>.wav,trans.txt}``.

    Ids follow the corpus: speaker ``C0001`` (train), ``D0001`` (dev), ``T0001`` (test); utterance
    ``I<spk>W<nnnn>``. trans.txt lines are ``<utt>\\t<text>``. The last utterance of train's first
    speaker has no transcript line (real AISHELL-2 has such files).
    """
    root = Path(root)
    parts = {}
    seed = 0
    for part, folder, prefix in (("train", "data", "C"), ("dev", "dev", "D"), ("test", "test", "T")):
        base = root / "AISHELL-2" / "iOS" / folder
        fake = FakePart()
        lines = []
        for s in range(spk_per_part):
            spk = f"{prefix}{s + 1:04d}"
            for u in range(utts_per_spk):
                utt = f"I{spk}W{u + 1:04d}"
                write_audio(base / "wav" / spk / f"{utt}.wav", seed)
                raw, norm = AISHELL2_TEXTS[seed % len(AISHELL2_TEXTS)]
                seed += 1
                if part == "train" and s == 0 and u == utts_per_spk - 1:
                    fake.audio_without_transcript.append(utt)
                    continue
                lines.append(f"{utt}\t{raw}\n")
                fake.texts[utt] = norm
                fake.speakers[utt] = spk
        (base / "trans.txt").write_text("".join(lines), encoding="utf-8")
        parts[part] = fake
    return FakeCorpus(root, parts)


def make_fake_aishell1(root: str | Path, spk_per_part: int = 2, utts_per_spk: int = 2) -> FakeCorpus:
    """``root/data_aishell/{wav/{train,dev,test}/<spk>/<utt>.wav,transcript/aishell_transcript_v0.8.txt}``.

    Speakers ``S0002``...; utterances ``BAC009<spk>W<nnnn>``; the transcript holds space-separated
    words. The last train utterance has no transcript line, as some in the real corpus.
    """
    root = Path(root)
    parts = {}
    lines = []
    seed = 100
    for p, part in enumerate(("train", "dev", "test")):
        fake = FakePart()
        for s in range(spk_per_part):
            spk = f"S{p * 100 + s + 2:04d}"
            for u in range(utts_per_spk):
                utt = f"BAC009{spk}W{u + 1:04d}"
                write_audio(root / "data_aishell" / "wav" / part / spk / f"{utt}.wav", seed)
                raw, norm = AISHELL1_TEXTS[seed % len(AISHELL1_TEXTS)]
                seed += 1
                if part == "train" and s == spk_per_part - 1 and u == utts_per_spk - 1:
                    fake.audio_without_transcript.append(utt)
                    continue
                lines.append(f"{utt} {raw}\n")
                fake.texts[utt] = norm
                fake.speakers[utt] = spk
        parts[part] = fake
    transcript = root / "data_aishell" / "transcript" / "aishell_transcript_v0.8.txt"
    transcript.parent.mkdir(parents=True, exist_ok=True)
    transcript.write_text("".join(sorted(lines)), encoding="utf-8")
    return FakeCorpus(root, parts)


def make_fake_librispeech(root: str | Path, parts: tuple[str, ...] = LIBRISPEECH_PARTS,
                          spk_per_part: int = 2, utts_per_chapter: int = 3) -> FakeCorpus:
    """``root/<part>/<spk>/<chapter>/{<spk>-<chapter>-<nnnn>.flac,<spk>-<chapter>.trans.txt}``.

    One chapter per speaker; trans.txt lines are ``<utt> <UPPERCASE TEXT>``. The first part's first
    chapter has one extra flac without a transcript line.
    """
    root = Path(root)
    out = {}
    seed = 200
    for p, part in enumerate(parts):
        fake = FakePart()
        for s in range(spk_per_part):
            spk, chapter = str(100 * (p + 1) + s), str(1000 * (p + 1) + 10 * s)
            chapter_dir = root / part / spk / chapter
            lines = []
            for u in range(utts_per_chapter):
                utt = f"{spk}-{chapter}-{u:04d}"
                write_audio(chapter_dir / f"{utt}.flac", seed)
                text = LIBRISPEECH_TEXTS[seed % len(LIBRISPEECH_TEXTS)]
                seed += 1
                lines.append(f"{utt} {text}\n")
                fake.texts[utt] = text
                fake.speakers[utt] = spk
            if p == 0 and s == 0:
                orphan = f"{spk}-{chapter}-{utts_per_chapter:04d}"
                write_audio(chapter_dir / f"{orphan}.flac", seed)
                fake.audio_without_transcript.append(orphan)
            (chapter_dir / f"{spk}-{chapter}.trans.txt").write_text("".join(lines), encoding="utf-8")
        out[part] = fake
    return FakeCorpus(root, out)
