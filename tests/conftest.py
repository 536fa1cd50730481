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
