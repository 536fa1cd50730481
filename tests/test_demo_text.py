"""Tests for the synthetic bilingual corpus text generator."""

import itertools
import random
import re
import shutil
import struct
import subprocess

import pytest

from wenet_llm.synth import demo_text as dt

pypinyin = pytest.importorskip("pypinyin")
from pypinyin import Style, lazy_pinyin, pinyin  # noqa: E402

EN_TEXT_RE = re.compile(r"^[A-Z']+( [A-Z']+)*$")
ZH_TEXT_RE = re.compile(r"^[\u4e00-\u9fff]+$")
PINYIN_SYL = r"[a-z]+[1-5]"
PINYIN_SYL_RE = re.compile(PINYIN_SYL)
ZH_SPEAK_RE = re.compile(rf"^(?:{PINYIN_SYL})+(?: (?:{PINYIN_SYL})+)*$")
EN_SPEAK_RE = re.compile(r"^[a-z']+( [a-z']+)*$")

# Known polyphones (or sandhi words) used in the vocabulary, with the reading
# the context requires.  If pypinyin changes its mind, the speech would no
# longer match the transcript.
EXPECTED_ZH = {
    "银行": "yin2hang2",
    "行李箱": "xing2li3xiang1",
    "自行车": "zi4xing2che1",
    "重启": "chong2qi3",
    "严重": "yan2zhong4",
    "觉得": "jue2de5",
    "记得": "ji4de5",
    "赢得": "ying2de2",
    "商场": "shang1chang3",
    "体育场": "ti3yu4chang3",
    "背包": "bei1bao1",
    "处方": "chu3fang1",
    "相机": "xiang4ji1",
    "相当": "xiang1dang1",
    "更新": "geng1xin1",
    "更": "geng4",
    "便宜": "pian2yi5",
    "便携": "bian4xie2",
    "干燥": "gan1zao4",
    "出差": "chu1chai1",
    "都": "dou1",
    "这个": "zhe4ge5",
    "一起": "yi4qi3",
    "教练": "jiao4lian4",
    "拍摄": "pai1she4",
    "暖和": "nuan3huo5",
    "温和": "wen1he2",
    "大家": "da4jia1",
    "了": "le5",
    "的": "de5",
    "奶酪": "nai3lao4",
    "血压": "xue4ya1",
    "应用": "ying4yong4",
    "应该": "ying1gai1",
    "会": "hui4",
    "要": "yao4",
}

# Words whose reading pypinyin cannot know from the word alone (particles,
# 一/不 sandhi, context-dependent polyphones): they must not be vocabulary
# words on their own.
FORBIDDEN_ZH = {"一样", "得", "地", "着", "还", "长", "重", "行", "东西", "不", "一", "切", "了解"}


def _zh_pinyin(word):
    return lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)


def _sample(lang, seed, n=40, n_entities=0, targets=(2.5, 8.0)):
    rng = random.Random(seed)
    pool = dt.entity_pool(lang, seed)
    out = []
    for _ in range(n):
        topic = rng.choice(dt.topics(lang))
        target = rng.uniform(*targets)
        ents = rng.sample(pool, n_entities)
        out.append((target, ents, dt.make_sentence(rng, lang, topic, target, ents)))
    return out


# --- API / validation --------------------------------------------------------


def test_topics():
    for lang in dt.LANGS:
        ts = dt.topics(lang)
        assert 6 <= len(ts) <= 10
        assert len(set(ts)) == len(ts)


@pytest.mark.parametrize(
    "call",
    [
        lambda: dt.topics("fr"),
        lambda: dt.entity_pool("fr", 0),
        lambda: dt.estimate_duration("HELLO", "fr"),
        lambda: dt.to_speak_text(["HELLO"], "fr"),
        lambda: dt.make_sentence(random.Random(0), "fr", "weather", 3.0),
        lambda: dt.make_sentence(random.Random(0), "en", "astrology", 3.0),
        lambda: dt.make_sentence(
            random.Random(0), "en", "weather", 3.0, [dt.Entity("ZORVATH", "pet", "en")]
        ),
    ],
)
def test_unknown_values_raise_listing_valid(call):
    with pytest.raises(ValueError) as exc:
        call()
    msg = str(exc.value)
    assert "valid" in msg
    assert any(v in msg for v in dt.LANGS + dt.ENTITY_KINDS + ("weather",))


def test_rejects_wrong_language_entity_and_too_many():
    zh = dt.entity_pool("zh", 0)[0]
    with pytest.raises(ValueError):
        dt.make_sentence(random.Random(0), "en", "weather", 3.0, [zh])
    en = dt.entity_pool("en", 0)
    with pytest.raises(ValueError):
        dt.make_sentence(random.Random(0), "en", "weather", 5.0, en[:3])


def test_all_entity_kind_combinations_have_templates():
    for lang in dt.LANGS:
        for n in (1, 2):
            for kinds in itertools.combinations_with_replacement(dt.ENTITY_KINDS, n):
                assert tuple(sorted(kinds)) in dt._ENTITY_TEMPLATES[lang], (lang, kinds)


# --- determinism -------------------------------------------------------------


@pytest.mark.parametrize("lang", dt.LANGS)
def test_determinism(lang):
    a = _sample(lang, 5, n_entities=1)
    b = _sample(lang, 5, n_entities=1)
    c = _sample(lang, 6, n_entities=1)
    assert [s for _, _, s in a] == [s for _, _, s in b]
    assert [s.text for _, _, s in a] != [s.text for _, _, s in c]


@pytest.mark.parametrize("lang", dt.LANGS)
def test_entity_pool_deterministic(lang):
    assert dt.entity_pool(lang, 3) == dt.entity_pool(lang, 3)
    assert dt.entity_pool(lang, 3) != dt.entity_pool(lang, 4)


@pytest.mark.parametrize("lang", dt.LANGS)
def test_name_maker_keeps_pools_apart(lang):
    maker = dt.NameMaker(lang, 0)
    entities = maker.pool("entities", 40)
    assert entities == dt.entity_pool(lang, 0)  # the first pool is the entity pool
    train = [maker.new("train", kind) for kind in dt.ENTITY_KINDS for _ in range(100)]
    spoken = {"泽兰", "ZORVATH"}
    distractors = maker.pool("distractors", 200, avoid=lambda text: any(s in text for s in spoken))
    pools = [entities, train, distractors]
    texts = [e.text for pool in pools for e in pool]
    assert len(texts) == len(set(texts)) and not any(s in t for s in spoken for t in texts[-800:])

    def core(e):  # the invented English word; the Mandarin brand / place pair; a whole person name
        return e.text.split()[0] if lang == "en" else e.text if e.kind == "person" else e.text[:2]

    cores = [{core(e) for e in pool} for pool in pools]
    assert not (cores[0] & cores[1] or cores[0] & cores[2] or cores[1] & cores[2])
    if lang == "zh":
        assert not any(t != u and t in u for t in texts for u in texts)
    again = dt.NameMaker(lang, 0)
    again.pool("entities", 40)
    assert [again.new("train", kind) for kind in dt.ENTITY_KINDS for _ in range(100)] == train


def test_name_maker_says_when_names_run_out():
    maker = dt.NameMaker("zh", 0)
    with pytest.raises(ValueError, match="cannot make another distinct company name.*ask for fewer names"):
        maker.pool("distractors", 3000)


def test_global_random_untouched():
    random.seed(1234)
    expected = random.random()
    random.seed(1234)
    _sample("en", 1, n=5, n_entities=1)
    _sample("zh", 1, n=5, n_entities=2)
    dt.entity_pool("en", 9)
    assert random.random() == expected


# --- format --------------------------------------------------------------------


@pytest.mark.parametrize("n_entities", [0, 1, 2])
def test_format_en(n_entities):
    for _, _, s in _sample("en", 11, n=60, n_entities=n_entities):
        assert EN_TEXT_RE.match(s.text), s.text
        assert "  " not in s.text
        assert s.speak_text == s.text.lower()
        assert EN_SPEAK_RE.match(s.speak_text)
        assert s.lang == "en" and s.topic in dt.topics("en")


@pytest.mark.parametrize("n_entities", [0, 1, 2])
def test_format_zh(n_entities):
    for _, _, s in _sample("zh", 12, n=60, n_entities=n_entities):
        assert ZH_TEXT_RE.match(s.text), s.text
        assert ZH_SPEAK_RE.match(s.speak_text), s.speak_text
        # One pinyin syllable per character: transcript and speech agree.
        assert len(PINYIN_SYL_RE.findall(s.speak_text)) == len(s.text)
        assert s.lang == "zh" and s.topic in dt.topics("zh")


def test_zh_speak_text_is_per_word_pinyin():
    assert (
        dt.to_speak_text(["我", "的", "朋友", "在", "银行", "工作"], "zh")
        == "wo3 de5 peng2you3 zai4 yin2hang2 gong1zuo4"
    )
    assert dt.to_speak_text(["I", "DON'T", "KNOW IT"], "en") == "i don't know it"


def test_en_articles():
    assert dt._resolve_articles(["A_AN", "ANCIENT", "HOTEL"]) == ["AN", "ANCIENT", "HOTEL"]
    assert dt._resolve_articles(["A_AN", "CHEAP", "HOTEL"]) == ["A", "CHEAP", "HOTEL"]
    for _, _, s in _sample("en", 13, n=200, targets=(2.5, 8.0)):
        assert not re.search(r"\bA [AEIO]", s.text), s.text
        assert "A_AN" not in s.text


# --- entities --------------------------------------------------------------


@pytest.mark.parametrize("lang", dt.LANGS)
@pytest.mark.parametrize("n_entities", [0, 1, 2])
def test_entities_placed_once_in_order(lang, n_entities):
    for _, ents, s in _sample(lang, 21, n=60, n_entities=n_entities):
        assert sorted(s.entities) == sorted(e.text for e in ents)
        padded = f" {s.text} " if lang == "en" else s.text
        positions = []
        for e in ents:
            needle = f" {e.text} " if lang == "en" else e.text
            assert padded.count(needle) == 1, (e.text, s.text)
            positions.append(padded.index(needle))
        # Sentence.entities lists them in text order.
        by_pos = [t for _, t in sorted(zip(positions, [e.text for e in ents]))]
        assert list(s.entities) == by_pos


@pytest.mark.parametrize("lang", dt.LANGS)
def test_every_kind_pair_works(lang):
    pool = dt.entity_pool(lang, 2)
    by_kind = {k: [e for e in pool if e.kind == k] for k in dt.ENTITY_KINDS}
    rng = random.Random(0)
    for k1, k2 in itertools.combinations_with_replacement(dt.ENTITY_KINDS, 2):
        ents = [by_kind[k1][0], by_kind[k2][1]]
        s = dt.make_sentence(rng, lang, dt.topics(lang)[0], 4.0, ents)
        assert set(s.entities) == {e.text for e in ents}
        for e in ents:
            assert e.text in s.text


@pytest.mark.parametrize("lang", dt.LANGS)
def test_entity_pool_unique_and_disjoint(lang):
    vocab = dt.vocabulary(lang)
    for seed in (0, 1, 2):
        pool = dt.entity_pool(lang, seed)
        assert len(pool) == 40 * len(dt.ENTITY_KINDS)
        for kind in dt.ENTITY_KINDS:
            assert sum(e.kind == kind for e in pool) == 40
        texts = [e.text for e in pool]
        assert len(set(texts)) == len(texts)
        assert all(e.lang == lang for e in pool)
        for t in texts:
            assert t not in vocab
            if lang == "en":
                assert EN_TEXT_RE.match(t)
                assert t.split()[0] not in vocab  # the invented core word
            else:
                assert ZH_TEXT_RE.match(t)
                # No name contains another (keeps "appears once" well defined).
                assert not any(t != u and t in u for u in texts)
    assert len(dt.entity_pool(lang, 0, size_per_kind=5)) == 20


def test_zh_entity_chars_have_single_reading():
    suffixes = {s for ss in dt._ZH_SUFFIXES.values() for s in ss if s}
    for seed in (0, 1):
        for e in dt.entity_pool("zh", seed):
            name = e.text
            for s in suffixes:
                if e.kind != "person" and name.endswith(s):
                    name = name[: -len(s)]
                    break
            for ch in name:
                readings = set(pinyin(ch, style=Style.TONE3, heteronym=True)[0])
                assert len(readings) == 1, (e.text, ch, readings)


# --- duration ----------------------------------------------------------------


def test_estimate_duration_monotonic():
    for lang, short, long in (
        ("en", "THE SOUP IS HOT", "THE SOUP IS HOT AND THE BREAD IS FRESH"),
        ("zh", "汤很热", "汤很热而且面包很新鲜"),
    ):
        assert 0 < dt.estimate_duration(short, lang) < dt.estimate_duration(long, lang)
        assert dt.estimate_duration("", lang) == 0.0


@pytest.mark.parametrize("lang", dt.LANGS)
@pytest.mark.parametrize("n_entities", [0, 1, 2])
def test_target_durations_honoured(lang, n_entities):
    ratios = []
    for target, _, s in _sample(lang, 31, n=150, n_entities=n_entities):
        r = dt.estimate_duration(s.text, lang) / target
        assert 0.5 <= r <= 1.25, (target, s.text)
        ratios.append(r)
    # On average close to the target, not just inside the bounds.
    assert 0.8 <= sum(ratios) / len(ratios) <= 1.1


@pytest.mark.parametrize("lang", dt.LANGS)
def test_length_spread(lang):
    short = [len(s.text) for _, _, s in _sample(lang, 41, n=30, targets=(2.5, 2.5))]
    long = [len(s.text) for _, _, s in _sample(lang, 41, n=30, targets=(8.0, 8.0))]
    assert max(short) < min(long)


# --- vocabulary / pinyin -----------------------------------------------------


def test_vocabulary_sizes():
    assert len(dt.vocabulary("en")) >= 300
    zh = dt.vocabulary("zh")
    assert len(zh) >= 300
    assert sum(len(w) >= 2 for w in zh) >= 300


def test_en_vocabulary_format():
    for w in dt.vocabulary("en"):
        assert re.fullmatch(r"[A-Z]+('[A-Z]+)?", w), w


def test_zh_vocabulary_pinyin():
    words = set(dt.vocabulary("zh"))
    for seed in (0, 1):
        words.update(e.text for e in dt.entity_pool("zh", seed))
    for w in words:
        assert ZH_TEXT_RE.match(w), w
        syl = _zh_pinyin(w)
        assert len(syl) == len(w), (w, syl)
        for s in syl:
            assert PINYIN_SYL_RE.fullmatch(s), (w, syl)


def test_zh_expected_polyphone_readings():
    vocab = dt.vocabulary("zh")
    for word, reading in EXPECTED_ZH.items():
        assert word in vocab, word
        assert "".join(_zh_pinyin(word)) == reading, word
        assert dt.to_speak_text([word], "zh") == reading


def test_zh_avoids_ambiguous_words():
    vocab = dt.vocabulary("zh")
    assert not (vocab & FORBIDDEN_ZH)
    for w in vocab:
        assert "不" not in w, w
        # 一 only where pypinyin applies the tone change itself.
        if "一" in w:
            assert w in EXPECTED_ZH, w
    # Ambiguous pronouns (他/她 sound the same) are avoided: only 他们.
    assert not any("她" in w for w in vocab)


# --- espeak-ng ---------------------------------------------------------------


def _wav_seconds(data):
    # espeak-ng streams the WAV to stdout with a placeholder size in the
    # header, so derive the length from the byte count (16-bit mono).
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    channels = struct.unpack("<H", data[22:24])[0]
    rate = struct.unpack("<I", data[24:28])[0]
    bits = struct.unpack("<H", data[34:36])[0]
    return (len(data) - 44) / (rate * channels * bits // 8)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not on PATH")
@pytest.mark.parametrize("lang,voice", [("en", "en-us"), ("zh", "cmn-latn-pinyin")])
def test_espeak_duration_matches_estimate(lang, voice):
    for _, _, s in _sample(lang, 51, n=3, n_entities=1):
        # Note: "-q" together with "--stdout" writes nothing in espeak-ng 1.51.
        proc = subprocess.run(
            ["espeak-ng", "-v", voice, "--stdout", s.speak_text],
            capture_output=True,
            check=True,
            timeout=60,
        )
        seconds = _wav_seconds(proc.stdout)
        est = dt.estimate_duration(s.text, lang)
        assert seconds > 0.5
        assert est / 2 <= seconds <= est * 2, (s.text, seconds, est)
