"""Small fake copies of AISHELL-2, AISHELL-1 and LibriSpeech for the data-preparation tests.

Each builder writes the real folder layout and transcript format (as lhotse's recipes read them)
with short synthetic audio: 16 kHz, 16-bit, 0.5-1.5 s of a few tones plus noise. The text content
exercises normalisation: punctuation, full-width characters, embedded English words.

Every builder returns a :class:`FakeCorpus` saying what it wrote, so tests compare against it
instead of repeating the numbers.
"""

from __future__ import annotations

import json
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


# SeACo-Paraformer's AISHELL-1 hotword subsets: hotword.txt terms (raw) and what they normalise to.
SEACO_HOTWORDS = (("楼市", "楼市"), ("深圳", "深圳"), ("ｋｔｖ", "KTV"), ("邬迪", "邬迪"), ("拓朗", "拓朗"))
SEACO_R1 = ("深圳",)


def make_fake_seaco_hotword(root: str | Path, aishell1: FakeCorpus) -> Path:
    """``root/data/{test,dev}/{uttid,hotword.txt}`` for a fake AISHELL-1 (the SeACo-Paraformer repository layout).

    uttid lists every utterance of the part plus ``BAC009S9999W0001``, which has no audio. test/ also has
    ``r1-hotword.txt`` and ``text`` (spaceless transcripts, as in the repository); dev/ has neither, so its
    transcripts come from AISHELL-1's own transcript file. Returns ``root/data``.
    """
    data = Path(root) / "data"
    for part in ("test", "dev"):
        d = data / part
        d.mkdir(parents=True, exist_ok=True)
        utts = sorted(aishell1.parts[part].texts)
        (d / "uttid").write_text("".join(f"{u}\n" for u in [*utts, "BAC009S9999W0001"]), encoding="utf-8")
        (d / "hotword.txt").write_text("".join(f"{raw}\n" for raw, _ in SEACO_HOTWORDS), encoding="utf-8")
        if part == "test":
            (d / "r1-hotword.txt").write_text("".join(f"{t}\n" for t in SEACO_R1), encoding="utf-8")
            (d / "text").write_text("".join(f"{u} {aishell1.parts[part].texts[u]}\n" for u in utts), encoding="utf-8")
    return data


# ContextASR-Speech items: (uniq_id, language, text, domain_label, entity_list, where the audio is).
# "listed": at the path the `audio` field names; "elsewhere": same file name, another folder; "missing": none.
CONTEXTASR_ITEMS = (
    ("BOSON-000001_EN", "English", "Dr. Collins met Zorblax Labs, then called Mia.", "Science; Tech",
     ["Zorblax Labs", "Mia", "Quintor"], "listed"),
    ("BOSON-000002_EN", "English", "The A M A's were great!", "Pop Culture", ["A M A's"], "elsewhere"),
    ("BOSON-000003_EN", "English", "No audio for this one.", "Misc", [], "missing"),
    ("MSRA-000001_ZH", "Chinese", "溥杰老先生掏出《清宫秘档》。", "历史研究", ["溥杰", "清宫秘档"], "listed"),
    ("MSRA-000002_ZH", "Chinese", "我们查 C 反应蛋白数值。", "医疗健康", ["C 反应蛋白数值"], "listed"),
)


def make_fake_contextasr(root: str | Path) -> Path:
    """A ContextASR-Bench root: ``ContextASR-Speech_{English,Mandarin}.jsonl`` and extracted audio under
    ``audio/ContextASR-Speech/<Language>/`` (one English file extracted one folder deeper). Returns the root."""
    root = Path(root)
    lines: dict[str, list[str]] = {"English": [], "Mandarin": []}
    for i, (uid, language, text, domain, entities, where) in enumerate(CONTEXTASR_ITEMS):
        subset = "English" if language == "English" else "Mandarin"
        rel = f"audio/ContextASR-Speech/{subset}/{uid}.wav"
        if where == "listed":
            write_audio(root / rel, 300 + i)
        elif where == "elsewhere":
            write_audio(root / "audio" / "ContextASR-Speech" / subset / "part2" / f"{uid}.wav", 300 + i)
        item = {"uniq_id": uid, "language": language, "duration": 1.0, "audio": rel, "text": text,
                "domain_label": domain, "entity_list": entities}
        lines[subset].append(json.dumps(item, ensure_ascii=False) + "\n")
    for subset, ls in lines.items():
        (root / f"ContextASR-Speech_{subset}.jsonl").write_text("".join(ls), encoding="utf-8")
    return root
