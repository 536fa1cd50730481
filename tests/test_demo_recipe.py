"""The demo recipe end to end (stages 0-1) on a tiny corpus: what `bash run.sh` does, smaller."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from wenet_llm.data.cmvn import load_cmvn
from wenet_llm.data.formats import load_shar
from wenet_llm.data.tokenizer import load_tokenizer

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "demo" / "s0"
TINY_AED = """
model:
  encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 1, cnn_module_kernel: 5}
  decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
data:
  sampler: {num_buckets: 2}
  num_workers: 0
  noise: {enabled: true, noise_dir: data/noise_train, prob: 0.5}   # --data-dir replaces both paths
  non_speech: {enabled: true, cuts: data/train_non_speech/data.list, rate: 0.2}
train:
  accum_grad: 1
  progress_bar: false
  tensorboard: false
  scheduler: {warmup_steps: 5}
"""


def run_recipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "run.sh", *args], cwd=RECIPE, capture_output=True, text=True)


TINY_DEMO_LLM = """
num_sentences: 60
size: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16,
       intermediate_size: 64}
prompt: {english_case: lower}
max_tokens: 512
pack_tokens: 64
train: {max_epoch: 1, max_steps: 3, accum_grad: 1, progress_bar: false, tensorboard: false,
        optim: {name: adamw, lr: 0.001}, scheduler: {name: constant, warmup_steps: 0}}
"""


def test_demo_stages_0_1(tmp_path):
    data, exp = tmp_path / "data", tmp_path / "exp"
    (tmp_path / "demo_llm.yaml").write_text(TINY_DEMO_LLM)
    opts = ["--num_utts", "40", "--unit_type", "mixed", "--bpe_vocab_size", "60", "--data_format", "shar", "--data", str(data), "--exp", str(exp),
            "--demo_llm_config", str(tmp_path / "demo_llm.yaml"), "--stop_stage", "1"]
    result = run_recipe(*opts)
    assert result.returncode == 0, result.stdout + result.stderr
    for split in ("train", "dev", "test", "test_hotword", "test_noisy", "noise_only", "train_non_speech"):
        report = json.loads((data / split / "validate_report.json").read_text())
        lines = (data / split / "data.list").read_text(encoding="utf-8").splitlines()
        assert report["totals"]["entries"] == report["totals"]["kept"] == len(lines) > 0
    assert all(json.loads(line)["txt"] == "" for line in (data / "train_non_speech" / "data.list").open())
    assert len(list((data / "noise_train").glob("*.wav"))) == 40  # the corpus' noise folder, linked
    for name in ("rare_names.json", "distractor_names.json"):
        assert json.loads((data / "corpus" / name).read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(data / "lang" / "units.txt", data / "lang" / "bpe.model")
    for line in (data / "train" / "data.list").read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["txt"]
        assert tokenizer.decode(tokenizer.encode(text)) == text  # mixed units cover the training text
    mean, istd = load_cmvn(data / "train" / "global_cmvn")
    assert mean.shape == istd.shape == (80,) and bool((istd > 0).all())
    train_keys = [json.loads(line)["key"] for line in (data / "train" / "data.list").read_text().splitlines()]
    assert sorted(c.id for c in load_shar(data / "train" / "shar")) == sorted(train_keys)
    for log in ("data_prep/log/make_demo_corpus.log", "tokenizer/log/make_tokenizer.log", "cmvn/log/compute_cmvn.log",
                "demo_llm/log/make_demo_llm.log"):
        assert (exp / log).stat().st_size > 0
    # The base LLM: an ordinary Hugging Face directory with the trimmed Qwen tokenizer and its id map.
    llm = exp / "demo_llm" / "model"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab_map.json"):
        assert (llm / name).is_file(), name
    assert json.loads((llm / "config.json").read_text())["model_type"] == "qwen3"

    again = run_recipe(*opts)
    assert again.returncode == 0 and again.stdout.count("already done") == 3
    changed = run_recipe(*opts[:1], "41", *opts[2:])
    assert changed.returncode == 1 and "made with other options" in changed.stderr

    # Stages 2-3 with a tiny model: train (from the Shar export), average, decode, export.
    tiny = tmp_path / "tiny_aed.yaml"
    tiny.write_text(TINY_AED)
    result = run_recipe(*opts[:-2], "--stage", "2", "--stop_stage", "3", "--aed_config", str(tiny),
                        "--aed_overrides", "train.max_epoch=2 data.sampler.max_duration=60",
                        "--average_num", "2", "--test_sets", "test noise_only", "--decode_methods", "ctc_greedy_search")
    assert result.returncode == 0, result.stdout + result.stderr
    resolved = (exp / "aed" / "train.yaml").read_text()
    assert "format: shar" in resolved and str(data / "train" / "shar") in resolved
    # Noise and non-speech training follow --data-dir, not the config's recipe-relative paths.
    assert f"noise_dir: {data / 'noise_train'}" in resolved
    assert f"cuts: {data / 'train_non_speech' / 'data.list'}" in resolved
    for name in ("test", "noise_only"):
        assert "Overall -> " in (exp / "aed" / f"decode_{name}" / "ctc_greedy_search" / "wer").read_text()
    assert (exp / "aed" / "encoder" / "model.safetensors").is_file()
    assert (exp / "aed" / "log" / "train.log").stat().st_size > 0
    assert (exp / "aed" / ".started").read_text() == (exp / "aed" / ".stage2.done").read_text()

    # Char units (the demo's default) replace the mixed ones, and the trained AED is then stale.
    char_opts = [o if o != "mixed" else "char" for o in opts[:-2]]
    result = run_recipe(*char_opts, "--stage", "1", "--stop_stage", "1", "--force", "true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (data / "lang" / "bpe.model").exists()
    tokenizer = load_tokenizer(data / "lang" / "units.txt")
    assert "A" in tokenizer.units and "\u2581" in tokenizer.units
    stale = run_recipe(*char_opts, "--stage", "2", "--stop_stage", "2", "--aed_config", str(tiny),
                       "--aed_overrides", "train.max_epoch=2 data.sampler.max_duration=60")
    assert stale.returncode == 1 and "made with other options" in stale.stderr


def test_demo_refuses_unimplemented_stages():
    result = run_recipe("--stop_stage", "8")
    assert result.returncode == 1 and "not implemented in this recipe yet" in result.stderr


RATE_PAIRS = ("aed", "aed_attention", "aed_ctc_greedy", "llm_sft1", "llm_sft2", "llm_ctx")
HOTWORD_KEYS = ("recall_without", "recall_with", "recall_unseen_without", "recall_unseen_with", "bwer_without",
                "bwer_with")


def is_rate(x) -> bool:
    return isinstance(x, (int, float)) and x >= 0


def test_demo_smoke_run_writes_the_results(tmp_path):
    # Every stage connects: `bash run.sh --smoke true` (a small corpus, a few steps per training stage).
    data, exp, out = tmp_path / "data", tmp_path / "exp", tmp_path / "results.json"
    result = run_recipe("--smoke", "true", "--data", str(data), "--exp", str(exp), "--results_json", str(out))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    results = json.loads(out.read_text())
    assert results == json.loads((exp / "results" / "results.json").read_text())
    for key in RATE_PAIRS:  # each with both languages: the demo test set is bilingual
        assert is_rate(results[key]["en_wer"]) and is_rate(results[key]["zh_cer"]), key
    assert all(is_rate(results["hotword"][k]) for k in HOTWORD_KEYS), results["hotword"]
    assert is_rate(results["distractor_insert_rate"])
    assert set(results["noisy"]) == {"en_wer", "zh_cer"}
    assert set(results["noisy"]["en_wer"]) == {"0", "5", "10"}
    assert all(is_rate(v) for lang in results["noisy"].values() for v in lang.values())
    assert results["noisy_unseen_kind"]["kind"] == "babble" and is_rate(results["noisy_unseen_kind"]["en_wer"])
    assert 0 <= results["noise_only_empty_rate"] <= 100
    for tag in ("on", "off"):
        g = results["guards"][tag]
        assert all(is_rate(g[k]) for k in ("mer", "insertion_rate", "loop_rate", "noise_only_empty_rate")), g
    # how much of each LLM figure is the CTC head's hypothesis (the consistency guard's fallback)
    assert set(results["ctc_fallback_rate"]) == {"llm_sft1", "llm_sft2", "llm_ctx"}
    assert all(is_rate(v) and v <= 100 for v in results["ctc_fallback_rate"].values())
    assert results["guards"]["on"]["ctc_fallback_rate"] == results["ctc_fallback_rate"]["llm_ctx"]
    assert results["guards"]["off"]["ctc_fallback_rate"] == 0
    assert results["systems"]["llm_ctx"]["noise_only"]["mer"] is None  # no reference token, no rate
    assert results["final_stage"] == "llm_ctx"
    assert results["commit"] and len(results["config_digest"]) == 16
    assert set(results["stage_seconds"]) == {str(n) for n in range(8)}  # stage 7: evaluate's own time
    assert results["wall_seconds"] == sum(results["stage_seconds"].values())
    tables = (exp / "results" / "results.md").read_text()
    assert "| llm_ctx | test |" in tables and "Hotwords" in tables and "guards" in tables
    for png in ("train_aed.png", "train_llm_sft1.png", "train_llm_sft2.png", "train_llm_ctx.png", "error_rates.png"):
        assert (exp / "plots" / png).stat().st_size > 0, png
    # The contextual training data: lists with targets and distractors, part of it plain.
    ctx = [json.loads(line) for line in (data / "train_ctx" / "data.list").open()]
    assert any(e.get("hotwords") for e in ctx) and any(not e.get("hotwords") for e in ctx)
