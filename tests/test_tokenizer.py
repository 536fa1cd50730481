"""Tests for wenet_llm.data.tokenizer and the make_tokenizer entry point."""

import json
import random

import pytest
import sentencepiece as spm

from wenet_llm.bin import make_tokenizer as make_tokenizer_bin
from wenet_llm.data.tokenizer import (
    SPACE,
    BpeTokenizer,
    CharTokenizer,
    TokenizerError,
    build_bpe_units,
    build_char_units,
    load_tokenizer,
    make_tokenizer,
    read_data_list_texts,
    read_units,
    train_bpe,
    write_units,
)

ZH_TEXTS = ["今天天气很好", "我们去公园", "天气预报说明天下雨"]
WORDS = ("the of and to in was he that it his had with as for you she her not but at be on him this by "
         "which have from or all were one my are they so said an when there no if would me what could up "
         "speech recognition model decoder encoder listen attend spell token beam search data train "
         "test hello world quick brown fox jumps over lazy dog don't james' can't").split()


def _english_sentences(n=400, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).upper() for _ in range(n)]


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


# ---------------------------------------------------------------- char


def test_char_units_file_format(tmp_path):
    path = tmp_path / "units.txt"
    units = build_char_units(["天气 好", "好天", "A B"], path)
    lines = _lines(path)
    assert lines == ["<blank> 0", "<unk> 1", "A 2", "B 3", f"{SPACE} 4", "天 5", "好 6", "气 7", "<sos/eos> 8"]
    assert units == [line.split()[0] for line in lines]
    # Characters sorted by code point, ids consecutive.
    chars = units[2:-1]
    assert chars == sorted(chars)
    assert [int(line.split()[1]) for line in lines] == list(range(len(lines)))


def test_char_tokenizer_ids_and_round_trip(tmp_path):
    path = tmp_path / "units.txt"
    build_char_units(ZH_TEXTS + ["HELLO WORLD"], path)
    tok = CharTokenizer(path)
    assert (tok.blank_id, tok.unk_id) == (0, 1)
    assert tok.sos_id == tok.eos_id == tok.vocab_size - 1
    assert tok.tokenize("  天气  HE ") == ["天", "气", SPACE, "H", "E"]
    for text in ZH_TEXTS + ["HELLO WORLD", "今天 HELLO"]:
        ids = tok.encode(text)
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text
    # blank and sos/eos are skipped on decode, as CTC/attention outputs contain them.
    ids = tok.encode("今天")
    assert tok.decode([tok.sos_id, tok.blank_id, *ids, tok.eos_id]) == "今天"


def test_char_unknown_and_oov(tmp_path):
    path = tmp_path / "units.txt"
    build_char_units(ZH_TEXTS, path)
    tok = CharTokenizer(path)
    ids = tok.encode("今天晴朗")
    assert ids[2:] == [tok.unk_id, tok.unk_id]
    assert ids[:2] != [tok.unk_id, tok.unk_id]
    assert tok.oov_chars("今天晴朗 天") == {"晴", "朗", SPACE}
    assert tok.oov_chars("今天") == set()
    assert tok.decode(ids) == "今天<unk><unk>"
    with pytest.raises(TokenizerError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])


# ---------------------------------------------------------------- units.txt reader/writer


@pytest.mark.parametrize("content, message", [
    ("<blank> 0\n<unk>\n", r"units.txt:2: expected 'symbol id'"),
    ("<blank> 0\n<unk> 1 2\n", r"units.txt:2: expected"),
    ("<blank> 0\n<unk> x\n", r"units.txt:2: expected"),
    ("<blank> 0\n<unk> -1\n", r"units.txt:2: expected"),
    ("<blank> 0\n\n<unk> 1\n", r"units.txt:2: expected"),
    ("<blank> 0\n<unk> 1\na 2\na 3\n", r"units.txt:4: symbol 'a' already defined on line 3"),
    ("<blank> 0\n<unk> 1\na 1\n", r"units.txt:3: id 1 already used by '<unk>' on line 2"),
    ("<blank> 0\n<unk> 1\na 3\n", r"missing id 2"),
    ("", r"empty units file"),
])
def test_malformed_units(tmp_path, content, message):
    path = tmp_path / "units.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerError, match=message):
        read_units(path)


def test_units_missing_special_or_file(tmp_path):
    path = tmp_path / "units.txt"
    write_units(["<blank>", "<unk>", "a"], path)
    with pytest.raises(TokenizerError, match="missing special symbol.*<sos/eos>"):
        CharTokenizer(path)
    with pytest.raises(TokenizerError, match="missing units file"):
        CharTokenizer(tmp_path / "nope.txt")


def test_write_units_rejects_bad_symbols(tmp_path):
    with pytest.raises(TokenizerError, match="twice"):
        write_units(["<blank>", "a", "a"], tmp_path / "u.txt")
    with pytest.raises(TokenizerError, match="whitespace"):
        write_units(["<blank>", "a b"], tmp_path / "u.txt")
    assert not (tmp_path / "u.txt").exists()


def test_wenet_v3_units_layout(tmp_path):
    # WeNet >= v3 writes <sos/eos> 2; sos/eos is read from the file, not assumed to be V-1.
    path = tmp_path / "units.txt"
    path.write_text("<blank> 0\n<unk> 1\n<sos/eos> 2\n天 3\n气 4\n", encoding="utf-8")
    tok = CharTokenizer(path)
    assert tok.sos_id == tok.eos_id == 2
    assert tok.encode("天气") == [3, 4]


# ---------------------------------------------------------------- BPE


@pytest.fixture(scope="module")
def bpe_lang(tmp_path_factory):
    out = tmp_path_factory.mktemp("bpe")
    texts = _english_sentences() + ["今天HELLO WORLD天气", "我们 LISTEN 公园"]
    model = train_bpe(texts, out / "bpe", vocab_size=100)
    units = build_bpe_units(model, texts, out / "units.txt")
    return out, model, units, texts


def test_bpe_units_consistent_with_model(bpe_lang):
    out, model, units, _ = bpe_lang
    sp = spm.SentencePieceProcessor(model_file=str(model))
    assert sp.get_piece_size() == 100
    pieces = [sp.id_to_piece(i) for i in range(3, 100)]  # after sentencepiece's <unk>, <s>, </s>
    assert units[:2] == ["<blank>", "<unk>"] and units[-1] == "<sos/eos>"
    assert units[2:2 + len(pieces)] == pieces  # sentencepiece id order
    cjk = units[2 + len(pieces):-1]
    assert cjk == sorted(set("今天天气我们公园"))
    assert not any(ch in p for p in pieces for ch in cjk)  # CJK never reached sentencepiece
    assert _lines(out / "units.txt") == [f"{u} {i}" for i, u in enumerate(units)]
    assert (out / "bpe.vocab").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_bpe_round_trip_and_upper_casing(bpe_lang):
    out, model, _, texts = bpe_lang
    tok = load_tokenizer(out / "units.txt", model)
    assert isinstance(tok, BpeTokenizer)
    assert tok.sos_id == tok.eos_id == tok.vocab_size - 1
    for text in texts[:50]:
        ids = tok.encode(text)
        assert tok.unk_id not in ids
        assert tok.decode(ids) == text
    assert tok.encode("hello world don't") == tok.encode("HELLO WORLD DON'T")
    assert tok.decode(tok.encode("hello world")) == "HELLO WORLD"
    assert all(p.startswith(SPACE) or p[0].isupper() or not p[0].isalpha() for p in tok.tokenize("quick brown"))


def test_bpe_mixed_round_trip(bpe_lang):
    out, model, _, _ = bpe_lang
    tok = load_tokenizer(out / "units.txt", model)
    tokens = tok.tokenize("今天hello world天气")
    assert tokens[:2] == ["今", "天"] and tokens[-2:] == ["天", "气"]
    assert "".join(tokens[2:-2]).replace(SPACE, " ").strip() == "HELLO WORLD"
    for text in ["今天HELLO WORLD天气", "我们LISTEN公园", "HELLO今天", "天气"]:
        assert tok.decode(tok.encode(text)) == text


def test_bpe_unknowns(bpe_lang):
    out, model, _, _ = bpe_lang
    tok = load_tokenizer(out / "units.txt", model)
    assert tok.oov_chars("今天晴 HELLO ÉZÈ") == {"晴", "É", "È"}
    assert tok.oov_chars("今天 HELLO") == set()
    ids = tok.encode("晴")
    assert ids == [tok.unk_id]


def test_bpe_units_must_match_model(bpe_lang, tmp_path):
    out, model, units, _ = bpe_lang
    path = tmp_path / "units.txt"
    write_units(units[:5] + units[6:], path)  # one piece dropped
    with pytest.raises(TokenizerError, match="pieces missing from units"):
        BpeTokenizer(path, model)
    write_units([*units[:-1], "XYZ", units[-1]], path)
    with pytest.raises(TokenizerError, match="no piece"):
        BpeTokenizer(path, model)


def test_train_bpe_errors(tmp_path):
    with pytest.raises(TokenizerError, match="smaller --vocab-size"):
        train_bpe(["A B C"] * 10, tmp_path / "bpe", vocab_size=5000)
    with pytest.raises(TokenizerError, match="valid: unigram, bpe"):
        train_bpe(["A B"], tmp_path / "bpe", vocab_size=10, model_type="word")
    with pytest.raises(TokenizerError, match="mode char"):
        train_bpe(["今天", "天气"], tmp_path / "bpe", vocab_size=10)


def test_bpe_mode_excludes_cjk(tmp_path):
    texts = _english_sentences(200) + ["今天 HELLO"]
    summary = make_tokenizer(texts, "bpe", tmp_path, vocab_size=80)
    units = read_units(tmp_path / "units.txt")
    assert summary["vocab_size"] == len(units) == 80  # specials replace sentencepiece's three
    assert "今" not in units
    tok = load_tokenizer(tmp_path / "units.txt", tmp_path / "bpe.model")
    assert tok.encode("今")[0] == tok.unk_id


# ---------------------------------------------------------------- data.list and CLI


def _write_data_list(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for i, txt in enumerate(texts):
            f.write(json.dumps({"key": f"utt{i}", "wav": f"/w/{i}.wav", "txt": txt}, ensure_ascii=False) + "\n")


def test_read_data_list_texts(tmp_path):
    path = tmp_path / "data.list"
    _write_data_list(path, ["今天", "", "  ", "HELLO"])
    assert read_data_list_texts(path) == ["今天", "HELLO"]
    path.write_text('{"key": "a", "txt": "x"}\n/data/shards/a.tar\n', encoding="utf-8")
    with pytest.raises(TokenizerError, match="data.list:2: not a JSON"):
        read_data_list_texts(path)
    path.write_text('{"key": "a", "wav": "w"}\n', encoding="utf-8")
    with pytest.raises(TokenizerError, match="data.list:1: entry has no 'txt'"):
        read_data_list_texts(path)


def test_cli_char(tmp_path):
    data = tmp_path / "data.list"
    _write_data_list(data, ZH_TEXTS + [""])
    out = tmp_path / "lang"
    assert make_tokenizer_bin.main(["--data", str(data), "--mode", "char", "--out-dir", str(out)]) == 0
    lines = _lines(out / "units.txt")
    assert lines[0] == "<blank> 0" and lines[1] == "<unk> 1" and lines[-1] == f"<sos/eos> {len(lines) - 1}"
    assert len(lines) == 3 + len(set("".join(ZH_TEXTS)))
    assert not (out / "bpe.model").exists()
    tok = load_tokenizer(out / "units.txt")
    assert isinstance(tok, CharTokenizer)
    assert tok.decode(tok.encode(ZH_TEXTS[2])) == ZH_TEXTS[2]


def test_cli_mixed(tmp_path):
    data = tmp_path / "data.list"
    texts = [t.lower() for t in _english_sentences(300)] + ["今天HELLO WORLD天气", "我们去公园"]
    _write_data_list(data, texts)
    out = tmp_path / "lang"
    args = ["--data", str(data), "--mode", "mixed", "--out-dir", str(out), "--vocab-size", "90"]
    assert make_tokenizer_bin.main(args) == 0
    tok = load_tokenizer(out / "units.txt", out / "bpe.model")
    assert (out / "bpe.vocab").is_file()
    assert tok.vocab_size == 90 + len(set("今天气我们去公园"))
    for text in texts[-2:] + [texts[0].upper()]:
        assert tok.decode(tok.encode(text)) == text


def test_cli_errors(tmp_path, capsys):
    out = tmp_path / "lang"
    missing = str(tmp_path / "missing.list")
    assert make_tokenizer_bin.main(["--data", missing, "--mode", "char", "--out-dir", str(out)]) == 2
    assert "missing data list" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_tokenizer_bin.main(["--data", "x", "--mode", "word", "--out-dir", str(out)])
    with pytest.raises(TokenizerError, match="valid: char, bpe, mixed"):
        make_tokenizer(["a"], "word", out)


def test_char_build_removes_a_stale_bpe_model(tmp_path, caplog):
    data = tmp_path / "data.list"
    _write_data_list(data, [t.lower() for t in _english_sentences(300)])
    out = tmp_path / "lang"
    assert make_tokenizer_bin.main(["--data", str(data), "--mode", "bpe", "--out-dir", str(out),
                                    "--vocab-size", "60"]) == 0
    assert (out / "bpe.model").is_file()
    with caplog.at_level("WARNING"):
        assert make_tokenizer_bin.main(["--data", str(data), "--mode", "char", "--out-dir", str(out)]) == 0
    assert not (out / "bpe.model").exists() and not (out / "bpe.vocab").exists()
    assert "removing" in caplog.text
    assert isinstance(load_tokenizer(out / "units.txt"), CharTokenizer)
