"""The contextual data builder (wenet_llm.data.context_builder, bin.make_context_data) and its extractors.

Nothing touches the network: the LLM extractor talks to a stub chat-completions server on localhost.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import threading
from pathlib import Path

import pytest
import yaml

from wenet_llm.bin import make_context_data
from wenet_llm.config import from_dict, load_config
from wenet_llm.config.context_data import ContextDataConfig, LLMEndpointConfig, StatisticalExtractorConfig
from wenet_llm.data.chat_client import ChatClient, EndpointError, parse_json_reply
from wenet_llm.data.context import read_context
from wenet_llm.data.context_builder import build_context_data
from wenet_llm.data.context_terms import StatisticalExtractor, contains, join_units, read_term_pool, units
from wenet_llm.data.formats import read_data_list


def write_list(path: Path, rows: list[dict]) -> Path:
    lines = []
    for i, row in enumerate(rows):
        entry = {"key": row.get("key", f"u{i:03d}"), "wav": f"/audio/{i}.wav", **row}
        lines.append(json.dumps(entry, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def config(**sections) -> ContextDataConfig:
    return from_dict(ContextDataConfig, sections)


def by_key(out: Path) -> dict[str, dict]:
    return {e["key"]: e for e in read_data_list(out / "data.list")}


# ----------------------------------------------------------------------------- units and the statistical extractor


def test_units_join_and_whole_unit_matching():
    assert units("我用 iPhone 打电话。") == ["我", "用", "IPHONE", "打", "电", "话"]
    assert units("Zorblax Labs, then") == ["ZORBLAX", "LABS", "THEN"]
    assert join_units(["王", "小", "明"]) == "王小明"
    assert join_units(["ZORBLAX", "LABS"]) == "ZORBLAX LABS"
    assert join_units(["用", "IPHONE", "打"]) == "用IPHONE打"
    hay = units("THE ANNUAL REPORT")
    assert contains(hay, units("annual report")) and not contains(hay, units("ANN"))
    assert not contains(hay, []) and not contains(units("A"), units("A B"))


EN_CORPUS = ["THE CAT MET A DOG TODAY", "THE DOG MET A CAT TODAY", "A CAT MET ZORBLAX QUINTOR TODAY",
             "THE DOG MET VELMORA", "OK"]


def test_statistical_extractor_english():
    # Counts: MET 4; THE, CAT, A, DOG, TODAY 3; ZORBLAX, QUINTOR, VELMORA, OK 1. The 6th most frequent
    # word has count 3, so rare = count < 3. OK is rare but too short to stand alone (min_word_chars 3).
    stat = StatisticalExtractor(StatisticalExtractorConfig(common_words=6)).fit(EN_CORPUS)
    assert [stat.extract(t, 3) for t in EN_CORPUS] == [[], [], ["ZORBLAX QUINTOR"], ["VELMORA"], []]
    assert stat.extract(EN_CORPUS[2], 3) == stat.extract(EN_CORPUS[2].lower(), 3)
    # max_words 1: the run of two rare words gives two terms, same rarity, earlier first, then cut to M.
    one = StatisticalExtractor(StatisticalExtractorConfig(common_words=6, max_words=1)).fit(EN_CORPUS)
    assert one.extract(EN_CORPUS[2], 3) == ["ZORBLAX", "QUINTOR"]
    assert one.extract(EN_CORPUS[2], 1) == ["ZORBLAX"]
    # A count rule alone gives the same here; a rank rule over more words than exist finds nothing rare.
    by_count = StatisticalExtractor(StatisticalExtractorConfig(common_words=0, max_rare_count=1)).fit(EN_CORPUS)
    assert by_count.extract(EN_CORPUS[2], 3) == ["ZORBLAX QUINTOR"]
    none = StatisticalExtractor(StatisticalExtractorConfig(common_words=100)).fit(EN_CORPUS)
    assert [none.extract(t, 3) for t in EN_CORPUS] == [[]] * 5


def test_statistical_extractor_entity_like_words():
    corpus = ["We met Anna at the station.", "we met anna there", "The station was busy.", "the car was busy",
              "Call the MP3 shop."]
    stat = StatisticalExtractor(StatisticalExtractorConfig(common_words=100)).fit(corpus)  # nothing rare by rank
    # "Anna" is capitalised mid-sentence in a mixed-case text; "The" opens a sentence; MP3 mixes letters and digits.
    assert stat.extract(corpus[0], 3) == ["ANNA"]
    assert stat.extract(corpus[1], 3) == []  # all lower case: capitals say nothing
    assert stat.extract(corpus[2], 3) == []
    assert stat.extract(corpus[4], 3) == ["MP3"]


def test_statistical_extractor_mandarin_widens_a_rare_character():
    corpus = ["他说邬迪来了", "邬迪来了", "他说我来了", "他说你来了", "迪来了", "迪来了"]
    # Counts: 来 了 6, 迪 4, 他 说 3, 邬 2, 我 你 1; the 4th most frequent has 3, so 邬 我 你 are rare.
    stat = StatisticalExtractor(StatisticalExtractorConfig(common_chars=4)).fit(corpus)
    # 邬: of the spans around it, 邬迪 / 邬迪来 / 邬迪来了 occur twice, the others once: the shortest wins.
    assert stat.extract(corpus[0], 3) == ["邬迪"]
    assert stat.extract(corpus[1], 3) == ["邬迪"]
    # 我 occurs once: every span around it too; the two bigrams tie, and 说 (3) is rarer than 来 (6).
    assert stat.extract(corpus[2], 3) == ["说我"]
    assert stat.extract(corpus[3], 3) == ["说你"]
    assert stat.extract(corpus[4], 3) == []


def test_term_pool_files(tmp_path):
    txt = tmp_path / "names.txt"
    txt.write_text("Velmora\n\n  王小明 \n", encoding="utf-8")
    assert read_term_pool(txt) == [("Velmora", None), ("王小明", None)]
    js = tmp_path / "names.json"
    js.write_text(json.dumps(["A", {"text": "B", "lang": "en"}, {"text": "李雷"}]), encoding="utf-8")
    assert read_term_pool(js) == [("A", None), ("B", "en"), ("李雷", None)]
    by_lang = tmp_path / "by_lang.json"
    by_lang.write_text(json.dumps({"en": ["X"], "zh": ["甲乙"]}), encoding="utf-8")
    assert read_term_pool(by_lang) == [("X", "en"), ("甲乙", "zh")]
    jl = tmp_path / "names.jsonl"
    jl.write_text('"A"\n{"text": "B", "lang": "zh"}\n', encoding="utf-8")
    assert read_term_pool(jl) == [("A", None), ("B", "zh")]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "A"}]), encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.json\[0\]: cannot read a term"):
        read_term_pool(bad)
    with pytest.raises(ValueError, match="not found"):
        read_term_pool(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------- lists


FIELD_ROWS = [
    {"key": "u1", "txt": "CALL ZORBLAX LABS NOW", "lang": "en", "entities": ["Zorblax Labs"]},
    {"key": "u2", "txt": "MEET QUINTOR TODAY", "lang": "en", "entities": ["QUINTOR"]},
    {"key": "u3", "txt": "NOTHING HERE", "lang": "en", "hotwords": ["OLD"], "summary": "old"},
    {"key": "u4", "txt": "我和王小明去公司", "lang": "zh", "entities": ["王小明"]},
    {"key": "u5", "txt": "PRAXIS SAID HELLO", "lang": "en", "entities": ["PRAXIS", "MISSING NAME"]},
]


def test_field_targets_and_distractor_pool(tmp_path):
    inp = write_list(tmp_path / "in.list", FIELD_ROWS)
    pool = tmp_path / "names.json"
    pool.write_text(json.dumps(["Velmora", {"text": "李雷", "lang": "zh"}, "ZORBLAX LABS"]), encoding="utf-8")
    cfg = config(hotwords={"targets": "field", "min_list_len": 3, "max_list_len": 3, "negative_fraction": 0.0})
    report = build_context_data(inp, tmp_path / "out", cfg, extra_pool_files=[str(pool)])
    out = by_key(tmp_path / "out")
    en_pool = {"ZORBLAX LABS", "QUINTOR", "PRAXIS", "VELMORA"}
    assert [e["key"] for e in read_data_list(tmp_path / "out" / "data.list")] == ["u1", "u2", "u3", "u4", "u5"]
    for key, target in (("u1", "ZORBLAX LABS"), ("u2", "QUINTOR"), ("u5", "PRAXIS")):
        lst = out[key]["hotwords"]
        assert len(lst) == 3 and len(set(lst)) == 3 and target in lst and set(lst) <= en_pool, (key, lst)
    assert len(out["u3"]["hotwords"]) == 3 and set(out["u3"]["hotwords"]) <= en_pool  # a distractor-only list
    assert "summary" not in out["u3"]  # the input's own context fields are replaced
    assert sorted(out["u4"]["hotwords"]) == sorted(["王小明", "李雷"])  # the Mandarin pool has only one other term
    assert out["u1"]["entities"] == ["Zorblax Labs"] and out["u1"]["txt"] == "CALL ZORBLAX LABS NOW"
    hot = report["hotwords"]
    assert hot["pool_sizes"] == {"en": 4, "zh": 2} and hot["pool_file_terms"] == 3
    assert (hot["lists"], hot["lists_with_targets"], hot["negatives"], hot["short_lists"]) == (5, 4, 1, 1)
    assert hot["negatives_without_targets"] == 1 and hot["negatives_by_choice"] == 0
    assert hot["targets_not_in_text"] == 1 and hot["without_target_field"] == 1
    assert hot["mean_list_length"] == 2.8 and hot["extractor"] == "none" and hot["targets"] == "field:entities"
    assert report["contextual"] == 5 and report["plain"] == 0
    ctx = read_context(tmp_path / "out" / "context.jsonl")
    assert ctx["u1"].extra["targets"] == ["ZORBLAX LABS"] and ctx["u3"].extra["targets"] == []
    assert ctx["u4"].hotwords == out["u4"]["hotwords"]
    # The written list reads as a context file too (top-level fields), and the report is on disk.
    assert read_context(tmp_path / "out" / "data.list")["u2"].hotwords == out["u2"]["hotwords"]
    assert json.loads((tmp_path / "out" / "context_report.json").read_text()) == report


def synthetic_rows(n: int) -> list[dict]:
    # Each utterance names one made-up word of its own; ids in letters so that every name is one unit.
    def name(i: int) -> str:
        return "ZO" + "".join("ABCDEFGHIJ"[int(d)] for d in f"{i:04d}")

    return [{"key": f"utt{i:04d}", "txt": f"PLEASE CALL {name(i)} TODAY", "lang": "en", "entities": [name(i)],
             "hotwords": ["STALE"]} for i in range(n)]


def test_negatives_plain_share_lengths_and_determinism(tmp_path):
    rows = synthetic_rows(400)
    inp = write_list(tmp_path / "in.list", rows)
    cfg = config(seed=3, plain_fraction=0.25,
                 hotwords={"targets": "field", "min_list_len": 2, "max_list_len": 6, "negative_fraction": 0.3})
    report = build_context_data(inp, tmp_path / "a", cfg)
    out = by_key(tmp_path / "a")
    plain = [k for k, e in out.items() if "hotwords" not in e]
    assert 60 <= len(plain) <= 140 and report["plain"] == len(plain)  # 25 % of 400 = 100
    ctx = [e for e in out.values() if "hotwords" in e]
    negatives = [e for e in ctx if e["entities"][0] not in e["hotwords"]]
    assert 50 <= len(negatives) <= 130  # 30 % of about 300
    assert report["hotwords"]["negatives"] == report["hotwords"]["negatives_by_choice"] == len(negatives)
    for e in ctx:
        lst = e["hotwords"]
        assert 2 <= len(lst) <= 6 and len(set(lst)) == len(lst)
        assert all(t == e["entities"][0] or t not in e["txt"].split() for t in lst)  # distractors are not said
    lengths = {len(e["hotwords"]) for e in ctx}
    assert lengths == {2, 3, 4, 5, 6}
    assert all(" STALE" not in json.dumps(e) for e in out.values())
    # The same seed gives the same files; another seed other lists; each knob keeps its own random stream.
    build_context_data(inp, tmp_path / "b", cfg)
    assert (tmp_path / "a" / "data.list").read_bytes() == (tmp_path / "b" / "data.list").read_bytes()
    build_context_data(inp, tmp_path / "c", config(seed=4, plain_fraction=0.25, hotwords=dict(
        targets="field", min_list_len=2, max_list_len=6, negative_fraction=0.3)))
    assert (tmp_path / "a" / "data.list").read_bytes() != (tmp_path / "c" / "data.list").read_bytes()
    build_context_data(inp, tmp_path / "d", config(seed=3, plain_fraction=0.25, hotwords=dict(
        targets="field", min_list_len=2, max_list_len=6, negative_fraction=0.0)))
    assert {k for k, e in by_key(tmp_path / "d").items() if "hotwords" not in e} == set(plain)


def test_no_target_lists_off_and_extract_fallback(tmp_path):
    rows = [{"key": "a", "txt": "A CAT MET ZORBLAX QUINTOR TODAY", "lang": "en"},
            {"key": "b", "txt": "THE DOG MET VELMORA", "lang": "en", "entities": ["DOG"]},
            *({"key": f"c{i}", "txt": t, "lang": "en"} for i, t in enumerate(EN_CORPUS[:2] + EN_CORPUS[4:]))]
    inp = write_list(tmp_path / "in.list", rows)
    cfg = config(hotwords={"targets": "field_or_extract", "no_target_lists": False, "negative_fraction": 0.0,
                           "min_list_len": 0, "max_list_len": 0},
                 statistical={"common_words": 6})
    report = build_context_data(inp, tmp_path / "out", cfg)
    out = by_key(tmp_path / "out")
    assert out["a"]["hotwords"] == ["ZORBLAX QUINTOR"]  # extracted: the entry has no entities field
    assert out["b"]["hotwords"] == ["DOG"]  # the field wins where present
    assert all("hotwords" not in out[f"c{i}"] for i in range(3))  # nothing found, no list
    assert report["hotwords"]["no_list"] == 3 and report["hotwords"]["extractor"] == "statistical"


# ----------------------------------------------------------------------------- summaries


SUMMARY_ROWS = [
    {"key": "R1-u1", "txt": "ZANURANT MOTORS MAKES BREAD", "topic": "food", "entities": ["ZANURANT MOTORS"]},
    {"key": "R1-u2", "txt": "THE BAKER MAKES BREAD", "topic": "food"},
    {"key": "R2-u3", "txt": "THE BANK LENDS MONEY", "topic": "finance"},
    {"key": "R2-u4", "txt": "THE BANK KEEPS MONEY", "topic": "finance"},
    {"key": "R2-u6", "txt": "BANK MONEY", "topic": "finance"},
    {"key": "R3-u5", "txt": "ALONE HERE", "topic": "misc"},
]


def test_extractive_summaries_by_group(tmp_path):
    inp = write_list(tmp_path / "in.list", [dict(r, lang="en") for r in SUMMARY_ROWS])
    cfg = config(hotwords={"enabled": False, "targets": "field"},
                 summary={"enabled": True, "group_key_regex": r"^(R\d)-", "max_topic_words": 2})
    report = build_context_data(inp, tmp_path / "out", cfg)
    out = by_key(tmp_path / "out")
    # R1: words of 4+ letters by tf-idf over the two groups (BREAD, MAKES twice; ZANURANT, MOTORS are in the
    # key term); R2: BANK, MONEY three times each.
    r1 = "Topic: food. About: BREAD, MAKES. Key terms: ZANURANT MOTORS."
    assert out["R1-u1"]["summary"] == out["R1-u2"]["summary"] == r1
    assert out["R2-u3"]["summary"] == out["R2-u4"]["summary"] == "Topic: finance. About: BANK, MONEY."
    # "BANK MONEY" is that utterance's whole transcript: its summary leaves the words it says out.
    assert out["R2-u6"]["summary"] == "Topic: finance."
    assert "summary" not in out["R3-u5"] and all("hotwords" not in e for e in out.values())
    summ = report["summary"]
    assert (summ["groups"], summ["small_groups"], summ["with_summary"]) == (2, 1, 5)
    assert summ["rebuilt_without_own_terms"] == 1 and summ["extractive"] == 5
    assert report["contextual"] == 5 and report["plain"] == 1


def test_summary_by_field_in_mandarin(tmp_path):
    rows = [{"key": "a", "txt": "我们在银行存钱", "rec": "r1", "topic": "金融", "entities": ["银行"]},
            {"key": "b", "txt": "银行的利息很高", "rec": "r1", "topic": "金融"},
            {"key": "c", "txt": "我们去公园散步", "rec": "r2"},
            {"key": "d", "txt": "公园里有很多花", "rec": "r2"},
            {"key": "e", "txt": "没有组"}]
    inp = write_list(tmp_path / "in.list", rows)
    cfg = config(hotwords={"enabled": False}, summary={"enabled": True, "group_by": "rec", "max_topic_words": 1})
    report = build_context_data(inp, tmp_path / "out", cfg)
    out = by_key(tmp_path / "out")
    # No key terms: the default common_chars (1000) is more than the distinct characters here, so none is rare.
    assert out["a"]["summary"] == "话题：金融。内容：银行。"
    assert out["c"]["summary"] == "内容：公园。"
    assert "summary" not in out["e"] and report["summary"]["utterances_without_group"] == 1


# ----------------------------------------------------------------------------- the chat endpoint


class Stub:
    """A chat-completions server: extraction requests get the words starting with Z (and a term that is not
    said); summaries get a fixed text. ``fail`` holds HTTP codes to answer first."""

    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.fail: list[int] = []
        self.raw_reply: str | None = None
        self.summary = "A talk about banks."
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                stub.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self.reply(404, {"error": "no such route"})
                if stub.fail:
                    return self.reply(stub.fail.pop(0), {"error": "busy"})
                user = body["messages"][-1]["content"]
                if stub.raw_reply is not None:
                    content = stub.raw_reply
                elif "numbered transcript" in user:
                    items = re.findall(r"^(\d+)\. (.*)$", user, flags=re.M)
                    content = "```json\n" + json.dumps(
                        {n: [w for w in t.split() if w.startswith("Z")] + ["NOTSAID"] for n, t in items}) + "\n```"
                else:
                    content = stub.summary
                self.reply(200, {"choices": [{"message": {"role": "assistant", "content": content}}]})

            def reply(self, code, obj):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


LLM_ROWS = [{"key": f"k{i}", "txt": t, "lang": "en"} for i, t in enumerate(
    ["CALL ZORBLAX NOW", "MEET ZENTH AND ZOKA", "NOTHING HERE", "ZIRR SAID HI", "BYE"])]


def test_llm_extractor_batches_caches_and_keys(tmp_path, stub, monkeypatch):
    monkeypatch.setenv("CTX_TEST_KEY", "sekrit")
    inp = write_list(tmp_path / "in.list", LLM_ROWS)
    cfg = config(hotwords={"extractor": "llm", "negative_fraction": 0.0, "min_list_len": 0, "max_list_len": 0},
                 llm={"base_url": stub.url, "model": "stub-model", "api_key_env": "CTX_TEST_KEY", "batch_size": 2,
                      "num_workers": 2, "cache_dir": str(tmp_path / "cache")})
    report = build_context_data(inp, tmp_path / "a", cfg)
    out = by_key(tmp_path / "a")
    assert [sorted(out[f"k{i}"]["hotwords"]) for i in range(5)] == [["ZORBLAX"], ["ZENTH", "ZOKA"], [], ["ZIRR"], []]
    assert len(stub.requests) == 3  # 5 transcripts, 2 per request
    assert all(r["model"] == "stub-model" and r["temperature"] == 0.0 for r in stub.requests)
    assert all(h["Authorization"] == "Bearer sekrit" for h in stub.headers)
    assert report["hotwords"]["targets_not_in_text"] == 5  # NOTSAID, once per transcript
    assert report["llm"] == {"url": stub.url + "/chat/completions", "model": "stub-model", "requests": 3,
                             "retries": 0, "cache_hits": 0}
    assert "sekrit" not in (tmp_path / "a" / "context_report.json").read_text()
    # A rerun asks nothing: every reply comes from the cache, keyed by the request content.
    report = build_context_data(inp, tmp_path / "b", cfg)
    assert len(stub.requests) == 3 and report["llm"]["cache_hits"] == 3 and report["llm"]["requests"] == 0
    assert (tmp_path / "a" / "data.list").read_bytes() == (tmp_path / "b" / "data.list").read_bytes()


def test_llm_unparsable_reply_is_counted_and_not_cached(tmp_path, stub):
    stub.raw_reply = "Sorry, I cannot help with that."
    inp = write_list(tmp_path / "in.list", LLM_ROWS[:2])
    cfg = config(hotwords={"extractor": "llm", "no_target_lists": False},
                 llm={"base_url": stub.url, "model": "m", "cache_dir": str(tmp_path / "cache")})
    report = build_context_data(inp, tmp_path / "out", cfg)
    assert report["hotwords"]["unparsed_batches"] == 1 and report["hotwords"]["no_list"] == 2
    assert not list((tmp_path / "cache").rglob("*.json"))


def test_llm_settings_from_the_environment(tmp_path, stub, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    monkeypatch.setenv("WENET_LLM_CONTEXT_MODEL", "env-model")
    monkeypatch.delenv("WENET_LLM_CONTEXT_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = ChatClient(LLMEndpointConfig(), tmp_path / "cache")
    assert client.complete([{"role": "user", "content": "hello"}]) == stub.summary
    assert stub.requests[0]["model"] == "env-model" and "Authorization" not in stub.headers[0]


def test_llm_retries_with_backoff_then_succeeds(tmp_path, stub):
    stub.fail = [500, 429]
    waits: list[float] = []
    client = ChatClient(LLMEndpointConfig(base_url=stub.url, model="m", backoff_s=0.5), tmp_path, sleep=waits.append)
    assert client.complete([{"role": "user", "content": "hi"}]) == stub.summary
    assert waits == [0.5, 1.0] and client.stats.to_dict() == {"requests": 3, "retries": 2, "cache_hits": 0}


def test_llm_errors_say_what_to_fix(tmp_path, stub, monkeypatch):
    stub.fail = [401]
    client = ChatClient(LLMEndpointConfig(base_url=stub.url, model="m"), tmp_path, sleep=lambda s: None)
    with pytest.raises(EndpointError, match=r"refused the request: HTTP 401.*check the API key in \$OPENAI_API_KEY"):
        client.complete([{"role": "user", "content": "hi"}])
    assert len(stub.requests) == 1  # not retried
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient(LLMEndpointConfig(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=2,
                                          backoff_s=0.0), tmp_path)
    with pytest.raises(EndpointError, match=r"unreachable after 3 tries.*hotwords.extractor=statistical"):
        client.complete([{"role": "user", "content": "hi"}])
    for name in ("WENET_LLM_CONTEXT_BASE_URL", "OPENAI_BASE_URL", "WENET_LLM_CONTEXT_MODEL", "OPENAI_MODEL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(EndpointError, match="needs llm.base_url and llm.model.*OPENAI_BASE_URL"):
        ChatClient(LLMEndpointConfig(), tmp_path)


def test_llm_summaries_never_hold_a_transcript(tmp_path, stub):
    rows = [dict(r, lang="en") for r in SUMMARY_ROWS if r["key"].startswith("R2")]
    inp = write_list(tmp_path / "in.list", rows)
    stub.summary = "A talk about banks: THE BANK LENDS MONEY, and more."
    cfg = config(hotwords={"enabled": False}, summary={"enabled": True, "source": "llm", "group_key_regex": r"^(R\d)-"},
                 llm={"base_url": stub.url, "model": "m", "cache_dir": str(tmp_path / "cache")})
    report = build_context_data(inp, tmp_path / "out", cfg)
    out = by_key(tmp_path / "out")
    assert out["R2-u4"]["summary"] == stub.summary and out["R2-u6"]["summary"] == stub.summary
    # The endpoint's summary held R2-u3's transcript: it gets the offline one, which with a single group has no
    # typical words (every word is in every group).
    assert out["R2-u3"]["summary"] == "Topic: finance."
    assert report["summary"]["llm"] == 2 and report["summary"]["llm_leaks_replaced"] == 1
    assert len(stub.requests) == 1 and "THE BANK KEEPS MONEY" in stub.requests[0]["messages"][-1]["content"]


def test_parse_json_reply():
    assert parse_json_reply('{"1": ["A"]}') == {"1": ["A"]}
    assert parse_json_reply('Here you go:\n```json\n{"1": []}\n```') == {"1": []}
    assert parse_json_reply('Sure! {"2": ["B"]} Hope that helps.') == {"2": ["B"]}
    with pytest.raises(ValueError, match="no JSON"):
        parse_json_reply("no")


# ----------------------------------------------------------------------------- config and command line


def test_config_validation():
    with pytest.raises(ValueError, match="min_list_len <= max_list_len"):
        config(hotwords={"min_list_len": 5, "max_list_len": 2})
    with pytest.raises(ValueError, match="nothing to build"):
        config(hotwords={"enabled": False})
    with pytest.raises(ValueError, match="needs a capture group"):
        config(summary={"enabled": True, "group_key_regex": "^R"})
    with pytest.raises(ValueError, match="must name an environment variable"):
        config(llm={"api_key_env": "sk-12345"})


def test_command_line(tmp_path, capsys):
    inp = write_list(tmp_path / "in.list", FIELD_ROWS)
    conf = tmp_path / "context_data.yaml"
    conf.write_text("hotwords:\n  targets: field\n  max_list_len: 2\n", encoding="utf-8")
    out = tmp_path / "out"
    assert make_context_data.main(["--in", str(inp), "--out", str(out), "--config", str(conf), "--seed", "7",
                                   "--override", "hotwords.min_list_len=2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["context.jsonl", "context_data.yaml", "context_report.json",
                                                     "data.list"]
    resolved = load_config(ContextDataConfig, out / "context_data.yaml")
    assert resolved.seed == 7 and resolved.hotwords.min_list_len == 2 and resolved.hotwords.targets == "field"
    assert all(len(e["hotwords"]) in (1, 2) for e in read_data_list(out / "data.list"))  # u4: only 2 zh terms
    assert yaml.safe_load((out / "context_data.yaml").read_text())["hotwords"]["max_list_len"] == 2
    assert make_context_data.main(["--in", str(inp), "--out", str(out), "--override",
                                   "hotwords.max_list_len=-1"]) == 2
    assert "need 0 <= min_list_len <= max_list_len" in capsys.readouterr().err
    assert make_context_data.main(["--in", str(tmp_path / "missing.list"), "--out", str(out)]) == 1
    bad = write_list(tmp_path / "bad.list", [{"key": "x", "txt": "A", "entities": "A"}])
    assert make_context_data.main(["--in", str(bad), "--out", str(out), "--override", "hotwords.targets=field"]) == 1
    assert "entry x: field 'entities' must be a list of strings" in capsys.readouterr().err
