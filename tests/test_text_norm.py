"""Tests for wenet_llm.data.text_norm."""

import pytest

from wenet_llm.data.text_norm import has_hanzi, is_hanzi, normalize, normalize_en, normalize_zh


@pytest.mark.parametrize("raw, expected", [
    ("我用 iPhone 打电话", "我用IPHONE打电话"),
    ("hello world你好", "HELLO WORLD你好"),
    ("你好，世界！", "你好世界"),
    ("“引号”（括号）《书名》【注】、；：‘单引’…—·", "引号括号书名注单引"),
    ("迈克尔·杰克逊", "迈克尔杰克逊"),
    ("他 说 ， 好 的 。", "他说好的"),
    ("Ｈｅｌｌｏ　ＷＯＲＬＤ，１２３号", "HELLO WORLD 123号"),  # full-width letters, digits, space
    ("在2024年3月", "在2024年3月"),
    ("A 你 B", "A你B"),
    ("我说hello,world!再见", "我说HELLO WORLD再见"),
    ("Don't 担心", "DON'T担心"),
    ("", ""),
    ("，。！", ""),
])
def test_normalize_zh(raw, expected):
    assert normalize_zh(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Hello, world!", "HELLO WORLD"),
    ("Don't stop.", "DON'T STOP"),
    ("James' car", "JAMES' CAR"),
    ("the boys' toys", "THE BOYS' TOYS"),
    ("don’t", "DON'T"),  # curly apostrophe
    ("'yes' he said", "YES HE SAID"),  # quotes are not apostrophes
    ("'tis a well-known fact", "TIS A WELL KNOWN FACT"),
    ("  multiple   spaces\tand\nlines ", "MULTIPLE SPACES AND LINES"),
    ('He said: "No -- never" (twice); ok?', "HE SAID NO NEVER TWICE OK"),
    ("ＦＵＬＬ　ｗｉｄｔｈ", "FULL WIDTH"),
    ("room 101", "ROOM 101"),
    ("café naïve", "CAFÉ NAÏVE"),
    ("zero\u200bwidth", "ZERO WIDTH"),
    ("a\u2581b", "A B"),  # the tokenizers' space mark never survives
])
def test_normalize_en(raw, expected):
    assert normalize_en(raw) == expected


def test_en_keeps_hanzi_spacing():
    # Only zh drops spaces next to Hanzi.
    assert normalize_en("hi 你 好") == "HI 你 好"
    assert normalize_zh("hi 你 好") == "HI你好"


@pytest.mark.parametrize("text", ["我用 iPhone 打电话，好吗？", "Don't stop—James’ car!",
                                  "'yes' it's the boys' toys"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_idempotent(text, lang):
    once = normalize(text, lang)
    assert normalize(once, lang) == once


def test_auto_dispatch():
    assert normalize("你好 world", "auto") == "你好WORLD"
    assert normalize("hello 1 world", "auto") == "HELLO 1 WORLD"
    assert normalize("a 〇 b", "auto") == "A〇B"  # 〇 counts as Hanzi


def test_unknown_lang_lists_valid():
    with pytest.raises(ValueError, match="auto, en, zh"):
        normalize("x", "fr")


def test_hanzi_predicates():
    assert is_hanzi("中") and is_hanzi("\u3400") and is_hanzi("\U00020000")
    assert not is_hanzi("A") and not is_hanzi("，") and not is_hanzi("あ")
    assert has_hanzi("abc中") and not has_hanzi("abc")
