"""Stages 0-1 of the AISHELL-2 and LibriSpeech recipes, run with bash on fake corpora.

run.sh runs in its own folder (it sources ./path.sh) with --data and --exp pointing to a temporary
folder, so nothing is written inside the repository.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import sentencepiece as spm
import soundfile as sf
from fake_corpora import (make_fake_aishell1, make_fake_aishell2, make_fake_contextasr, make_fake_librispeech,
                          make_fake_seaco_hotword)

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("aishell2", "librispeech")


def run_recipe(recipe: str, *args: str) -> subprocess.CompletedProcess:
    recipe_dir = REPO / "examples" / recipe / "s0"
    before = sorted(recipe_dir.rglob("*"))
    proc = subprocess.run(["bash", "run.sh", *args], cwd=recipe_dir, capture_output=True, text=True, timeout=900)
    assert sorted(recipe_dir.rglob("*")) == before, "the recipe wrote inside the repository"
    return proc


def read_list(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_units(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [line.split()[1] for line in lines] == [str(i) for i in range(len(lines))]  # ids 0..V-1
    return [line.split()[0] for line in lines]


def check_cmvn(data: Path) -> None:
    """global_cmvn: WeNet JSON of 80-dim fbank stats over every frame of the training list."""
    cmvn = json.loads((data / "train" / "global_cmvn").read_text())
    assert set(cmvn) == {"mean_stat", "var_stat", "frame_num"}
    assert len(cmvn["mean_stat"]) == len(cmvn["var_stat"]) == 80
    # 10 ms frames: about 100 per second of training audio.
    samples = sum(sf.info(e["wav"]).frames for e in read_list(data / "train" / "data.list"))
    assert abs(cmvn["frame_num"] - samples / 160) < 3 * len(read_list(data / "train" / "data.list"))
    n = cmvn["frame_num"]
    assert all(v * n >= m * m * 0.999 for m, v in zip(cmvn["mean_stat"], cmvn["var_stat"]))  # variance >= 0


def check_logs_and_markers(data: Path, exp: Path, logs: list[str]) -> None:
    for log in logs:
        assert (exp / log).stat().st_size > 0, log
    assert (data / ".stage0.done").is_file() and (data / ".stage1.done").is_file()


@pytest.fixture(scope="module")
def aishell2_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aishell2_recipe")
    a2 = make_fake_aishell2(tmp / "corpus2")
    a1 = make_fake_aishell1(tmp / "corpus1")
    proc = run_recipe("aishell2", "--corpus_dir", str(a2.root), "--aishell1_dir", str(a1.root),
                      "--stage", "0", "--stop_stage", "1", "--data", str(tmp / "data"), "--exp", str(tmp / "exp"),
                      "--nj", "2")
    return proc, tmp, a2, a1


def test_aishell2_stages_0_1(aishell2_run):
    proc, tmp, a2, a1 = aishell2_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = tmp / "data"
    for part in ("train", "dev", "test"):
        keys = [e["key"] for e in read_list(data / part / "data.list")]
        assert keys == sorted(a2.parts[part].texts)
        assert (data / part / "wav.scp").is_file() and (data / part / "validate_report.json").is_file()
    for part in ("dev", "test"):
        assert [e["key"] for e in read_list(data / "aishell1" / part / "data.list")] == sorted(a1.parts[part].texts)
    assert not (data / "aishell1" / "train").exists()
    # Char units: the specials around every character of the training texts (a space is "▁").
    units = read_units(data / "lang" / "units.txt")
    texts = [e["txt"] for e in read_list(data / "train" / "data.list")]
    assert units[:2] == ["<blank>", "<unk>"] and units[-1] == "<sos/eos>"
    assert units[2:-1] == sorted(set("".join("\u2581".join(t.split()) for t in texts)))
    check_cmvn(data)
    check_logs_and_markers(data, tmp / "exp", ["data_prep/log/prepare_aishell2.log",
                                               "data_prep/log/prepare_aishell1.log",
                                               "tokenizer/log/make_tokenizer.log", "cmvn/log/compute_cmvn.log"])
    assert "Stage 0: prepare" in proc.stdout and "Stage 1: tokenizer + CMVN" in proc.stdout


def test_aishell2_rerun_skips(aishell2_run):
    _, tmp, a2, a1 = aishell2_run
    units = tmp / "data" / "lang" / "units.txt"
    mtime = units.stat().st_mtime_ns
    proc = run_recipe("aishell2", "--corpus_dir", str(a2.root), "--aishell1_dir", str(a1.root),
                      "--data", str(tmp / "data"), "--exp", str(tmp / "exp"), "--nj", "2", "--stop_stage", "1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("already done") == 2
    assert "running:" not in proc.stdout
    assert units.stat().st_mtime_ns == mtime
    # Other options than the finished stage's are an error, not a silent reuse.
    proc = run_recipe("aishell2", "--corpus_dir", str(a2.root), "--data", str(tmp / "data"),
                      "--exp", str(tmp / "exp"), "--stop_stage", "0")
    assert proc.returncode == 1
    assert "was made with other options" in proc.stderr and "--force true" in proc.stderr


def test_aishell2_contextual_test_sets(aishell2_run):
    _, tmp, a2, a1 = aishell2_run
    seaco = make_fake_seaco_hotword(tmp / "seaco", a1)
    casr = make_fake_contextasr(tmp / "casr")
    args = ["--corpus_dir", str(a2.root), "--aishell1_dir", str(a1.root), "--hotword_dir", str(seaco),
            "--contextasr_dir", str(casr), "--data", str(tmp / "data"), "--exp", str(tmp / "exp"), "--stop_stage", "0"]
    proc = run_recipe("aishell2", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("already done") == 1  # the corpus preparation is not redone
    data = tmp / "data"
    for part in ("test", "dev"):
        keys = [e["key"] for e in read_list(data / f"aishell1_hotword_{part}" / "data.list")]
        assert keys == sorted(a1.parts[part].texts)
    assert len(read_list(data / "contextasr_speech_zh" / "data.list")) == 2
    assert (data / "contextasr_speech_zh" / "context_fine.jsonl").is_file()
    assert not (data / "contextasr_speech_en").exists()
    assert (tmp / "exp" / "data_prep" / "log" / "prepare_context_testsets.log").stat().st_size > 0
    proc = run_recipe("aishell2", *args)
    assert proc.returncode == 0 and proc.stdout.count("already done") == 2, proc.stdout + proc.stderr
    proc = run_recipe("aishell2", *args[:2], *args[4:])  # --hotword_dir without --aishell1_dir
    assert proc.returncode == 1 and "run.sh: --hotword_dir needs --aishell1_dir" in proc.stderr


def test_librispeech_stages_0_1(tmp_path):
    ls = make_fake_librispeech(tmp_path / "corpus")
    data = tmp_path / "data"
    casr = make_fake_contextasr(tmp_path / "casr")
    proc = run_recipe("librispeech", "--corpus_dir", str(ls.root), "--train_parts", "train-clean-100",
                      "--bpe_vocab_size", "40", "--data", str(data), "--exp", str(tmp_path / "exp"), "--nj", "2",
                      "--contextasr_dir", str(casr), "--stop_stage", "1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(read_list(data / "contextasr_speech_en" / "data.list")) == 2  # the English ContextASR-Speech set
    assert not (data / "contextasr_speech_zh").exists()
    assert [e["key"] for e in read_list(data / "train" / "data.list")] == sorted(ls.parts["train-clean-100"].texts)
    assert read_list(data / "dev" / "data.list") == (read_list(data / "dev_clean" / "data.list")
                                                      + read_list(data / "dev_other" / "data.list"))
    for part in ("test-clean", "test-other"):
        keys = [e["key"] for e in read_list(data / part.replace("-", "_") / "data.list")]
        assert keys == sorted(ls.parts[part].texts)
    assert f"{data}/{{train,dev,test_clean,test_other}}" in proc.stdout  # the stage line names real folders
    # BPE units: as many as sentencepiece pieces, with our specials at both ends.
    units = read_units(data / "lang" / "units.txt")
    assert len(units) == 40
    assert units[:2] == ["<blank>", "<unk>"] and units[-1] == "<sos/eos>"
    sp = spm.SentencePieceProcessor(model_file=str(data / "lang" / "bpe.model"))
    assert sp.get_piece_size() == 40
    assert set(units[2:-1]) <= {sp.id_to_piece(i) for i in range(40)}
    check_cmvn(data)
    check_logs_and_markers(data, tmp_path / "exp", ["data_prep/log/prepare_librispeech.log",
                                                    "tokenizer/log/make_tokenizer.log", "cmvn/log/compute_cmvn.log"])
    # Stage 1 with another vocabulary size must not silently reuse the finished stage.
    proc = run_recipe("librispeech", "--stage", "1", "--stop_stage", "1", "--bpe_vocab_size", "30",
                      "--data", str(data), "--exp", str(tmp_path / "exp"))
    assert proc.returncode == 1 and "was made with other options" in proc.stderr


def test_wrong_corpus_tree_fails_without_marker(tmp_path):
    (tmp_path / "corpus").mkdir()
    proc = run_recipe("aishell2", "--corpus_dir", str(tmp_path / "corpus"), "--data", str(tmp_path / "data"),
                      "--exp", str(tmp_path / "exp"), "--nj", "1", "--stop_stage", "0")
    assert proc.returncode == 2
    assert "prepare_corpus: aishell2 corpus at" in proc.stdout + proc.stderr
    assert "expected layout" in proc.stdout + proc.stderr
    assert not (tmp_path / "data" / ".stage0.done").exists()


@pytest.mark.parametrize("recipe", RECIPES)
def test_missing_corpus_dir(recipe, tmp_path):
    proc = run_recipe(recipe, "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"))
    assert proc.returncode == 1
    assert "run.sh: stage 0 needs --corpus_dir" in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("recipe", RECIPES)
def test_unimplemented_stage(recipe, tmp_path):
    proc = run_recipe(recipe, "--corpus_dir", str(tmp_path), "--stop_stage", "8", "--data", str(tmp_path / "data"))
    assert proc.returncode == 1
    assert "stages after 7 are not implemented in this recipe yet (asked for --stop_stage 8)" in proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("recipe", RECIPES)
def test_unknown_option(recipe):
    proc = run_recipe(recipe, "--corpus-dirr", "/x")
    assert proc.returncode == 1
    assert "run.sh: unknown option --corpus-dirr" in proc.stderr


def claim(tmp: Path, signature: str, force: str = "false") -> subprocess.CompletedProcess:
    script = f'force={force}; . "{REPO}/tools/recipe_lib.sh"; claim_stage_dir "{tmp}/aed" "{signature}"'
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True)


def test_claim_stage_dir_resumes_only_the_same_run(tmp_path):
    assert claim(tmp_path, "config=a").returncode == 0
    (tmp_path / "aed" / "epoch_1.pt").write_text("checkpoint of run a")
    # Same options: the dir (and its checkpoints) is kept, so the stage resumes.
    assert claim(tmp_path, "config=a").returncode == 0
    assert (tmp_path / "aed" / "epoch_1.pt").is_file()
    # Other options: refused, nothing touched.
    other = claim(tmp_path, "config=b")
    assert other.returncode == 1 and "started with other options" in other.stderr
    assert (tmp_path / "aed" / "epoch_1.pt").is_file()
    # --force true: the old run is moved aside and the new one starts empty.
    forced = claim(tmp_path, "config=b", force="true")
    assert forced.returncode == 0, forced.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("aed.replaced-")]
    assert len(aside) == 1 and (aside[0] / "epoch_1.pt").read_text() == "checkpoint of run a"
    assert sorted(p.name for p in (tmp_path / "aed").iterdir()) == [".started"]
    assert (tmp_path / "aed" / ".started").read_text().strip() == "config=b"


TINY_AED = """
model:
  encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 64, num_blocks: 1, cnn_module_kernel: 5}
  decoder_conf: {attention_heads: 2, linear_units: 64, num_blocks: 1}
data:
  sampler: {num_buckets: 2, max_duration: 30}
  speed_perturb: {enabled: false}
  num_workers: 0
train:
  max_epoch: 2
  accum_grad: 1
  progress_bar: false
  tensorboard: false
  scheduler: {warmup_steps: 5}
"""
TINY_SFT = """
model:
  llm: {{dtype: fp32}}
  adapter: {{hidden_size: 16}}
  trainable: {trainable}
  lora: {{enabled: {lora}, r: 2, alpha: 4}}
data:
  sampler: {{num_buckets: 2, max_duration: 30, max_tokens: 4000}}
  spec_aug: {{enabled: false}}
  num_workers: 0
train:
  max_epoch: 1
  max_steps: 2
  accum_grad: 1
  progress_bar: false
  tensorboard: false
  optim: {{name: adamw, lr: 0.001}}
  scheduler: {{name: constant, warmup_steps: 0}}
"""


def write_tiny_configs(tmp: Path) -> list[str]:
    (tmp / "aed.yaml").write_text(TINY_AED.replace("model:", "model:\n  vocab_size: 0", 1))
    (tmp / "sft1.yaml").write_text(TINY_SFT.format(trainable="[adapter]", lora="false"))
    (tmp / "sft2.yaml").write_text(TINY_SFT.format(trainable="[encoder, adapter, lora]", lora="true"))
    return ["--aed_config", str(tmp / "aed.yaml"), "--sft1_config", str(tmp / "sft1.yaml"),
            "--sft2_config", str(tmp / "sft2.yaml"), "--ctx_config", str(tmp / "sft2.yaml"), "--average_num", "1",
            "--decode_methods", "ctc_greedy_search"]


@pytest.mark.parametrize("recipe", RECIPES)
def test_corpus_recipe_stages_0_7_on_a_fake_tree(recipe, tmp_path, tiny_llm_dir):
    """The whole shell logic of a corpus recipe, with tiny configs and a tiny Qwen3 as --llm_path."""
    if recipe == "aishell2":
        corpus = make_fake_aishell2(tmp_path / "corpus")
        extra = ["--test_sets", "test", "--eval_sets", "test"]
    else:
        corpus = make_fake_librispeech(tmp_path / "corpus")
        extra = ["--train_parts", "train-clean-100", "--bpe_vocab_size", "40", "--test_sets", "test_clean",
                 "--eval_sets", "test_clean test_other"]
    data, exp = tmp_path / "data", tmp_path / "exp"
    opts = ["--corpus_dir", str(corpus.root), "--data", str(data), "--exp", str(exp), "--nj", "2",
            "--llm_path", str(tiny_llm_dir), *write_tiny_configs(tmp_path), *extra]
    proc = run_recipe(recipe, *opts)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for stage_dir, marker in (("llm_sft1", ".stage4.done"), ("llm_sft2", ".stage5.done"), ("llm_ctx", ".stage6.done")):
        assert (exp / stage_dir / marker).is_file()
        assert (exp / stage_dir / "final" / "adapter.safetensors").is_file()
    assert (exp / "llm_sft2" / "final" / "lora" / "adapter_config.json").is_file()
    resolved = (exp / "llm_sft2" / "train.yaml").read_text()
    assert str((exp / "llm_sft1").resolve()) in resolved and str(data / "train" / "data.list") in resolved
    resolved = (exp / "llm_ctx" / "train.yaml").read_text()
    assert str((exp / "llm_sft2").resolve()) in resolved and str(data / "train_ctx" / "data.list") in resolved
    results = json.loads((exp / "results" / "results.json").read_text())
    primary = extra[-1].split()[0]
    assert results["primary_set"] == primary and results["final_stage"] == "llm_ctx"
    assert {"aed", "llm_sft1", "llm_sft2", "llm_ctx", "guards"} <= set(results)
    assert set(results["systems"]["llm_ctx"]) >= {primary, f"{primary} guards off"}
    assert set(results["stage_seconds"]) == {str(n) for n in range(8)}  # stage 7: evaluate's own time
    # Rerun: every stage is done; asking for stage 4 without an LLM is an error before any work.
    again = run_recipe(recipe, *opts)
    assert again.returncode == 0 and again.stdout.count("already done") == 8
    no_llm = run_recipe(recipe, *[o for o in opts if o != str(tiny_llm_dir) and o != "--llm_path"],
                        "--stage", "4", "--stop_stage", "4")
    assert no_llm.returncode == 1 and "--llm_path" in no_llm.stderr
