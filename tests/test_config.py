"""Strict config loading: unknown keys, wrong types and bad overrides are errors that say where."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import dataclasses

import pytest
import torch
import yaml

from wenet_llm.config import ConfigError, load_config, save_config, to_dict
from wenet_llm.config.data import DataConfig, ValidateConfig
from wenet_llm.config.demo_corpus import DemoCorpusConfig
from wenet_llm.config.experiment import AEDExperimentConfig
from wenet_llm.models.aed import ASRModel

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.98)
    name: Literal["adam", "adamw"] = "adamw"


@dataclass
class Toy:
    name: str = "toy"
    steps: int = 10
    use_amp: bool = False
    dims: list[int] = field(default_factory=lambda: [1, 2])
    init: Optional[str] = None
    optim: Optim = field(default_factory=Optim)
    extra: dict[str, int] = field(default_factory=dict)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_file_values(tmp_path):
    cfg = load_config(Toy, write(tmp_path, "steps: 5\noptim:\n  lr: 2\n  betas: [0.8, 0.9]\n"))
    assert cfg.steps == 5 and cfg.name == "toy"
    assert cfg.optim.lr == 2.0 and isinstance(cfg.optim.lr, float)
    assert cfg.optim.betas == (0.8, 0.9) and cfg.optim.name == "adamw"
    assert load_config(Toy) == Toy()


def test_unknown_key_names_file_and_lists_valid_keys(tmp_path):
    path = write(tmp_path, "optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(Toy, path)
    msg = str(err.value)
    assert str(path) in msg and "learning_rate" in msg and "optim" in msg
    assert "['betas', 'lr', 'name']" in msg


@pytest.mark.parametrize(
    "text, key",
    [
        ("steps: 1.5\n", "steps"),
        ("steps: true\n", "steps"),  # bool is not an int here, although Python says so
        ("use_amp: 1\n", "use_amp"),
        ("name: 3\n", "name"),
        ("dims: 3\n", "dims"),
        ("dims: [1, x]\n", "dims[1]"),
        ("optim: 3\n", "optim"),
        ("optim:\n  name: sgd\n", "optim.name"),
        ("optim:\n  betas: [0.9]\n", "optim.betas"),
        ("extra: {a: x}\n", "extra.a"),
        ("steps: null\n", "steps"),
    ],
)
def test_wrong_types_are_errors(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_config(Toy, write(tmp_path, text))


def test_optional_accepts_null(tmp_path):
    assert load_config(Toy, write(tmp_path, "init: null\n")).init is None
    assert load_config(Toy, write(tmp_path, "init: exp/a.pt\n")).init == "exp/a.pt"


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Toy, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(Toy, write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Toy, write(tmp_path, "a: [1, 2\n"))


def test_overrides(tmp_path):
    path = write(tmp_path, "steps: 5\n")
    cfg = load_config(Toy, path, ["steps=7", "optim.lr=0.5", "dims=[3, 4]", "name=007", "use_amp=true", "init=x"])
    assert cfg.steps == 7 and cfg.optim.lr == 0.5 and cfg.dims == [3, 4]
    assert cfg.name == "007"  # a string field keeps the text as written
    assert cfg.use_amp is True and cfg.init == "x"
    # a section missing from the file is created by the override
    assert load_config(Toy, write(tmp_path, "steps: 1\n"), ["optim.name=adam"]).optim.name == "adam"


@pytest.mark.parametrize(
    "override, match",
    [
        ("steps", "malformed"),
        ("=3", "malformed"),
        ("optim..lr=1", "malformed"),
        ("stepz=3", r"unknown key 'stepz'.*valid keys: \['dims'"),
        ("optim.lrr=3", r"unknown key 'optim.lrr' \(at optim\).*\['betas', 'lr', 'name'\]"),
        ("steps.x=3", "is a value, not a section"),
        ("steps=abc", "expected an integer"),
        ("use_amp=yes please", "expected true or false"),
        ("dims=[1, 2", "not valid YAML"),
    ],
)
def test_bad_overrides(override, match):
    with pytest.raises(ConfigError, match=match) as err:
        load_config(Toy, None, [override])
    assert "--override" in str(err.value)


def test_validate_hook_reports_source(tmp_path):
    path = write(tmp_path, "num_utts: 5\n")
    with pytest.raises(ConfigError, match=rf"{path}.*num_utts must be >= 20"):
        load_config(DemoCorpusConfig, path)


def test_duplicate_key_is_an_error_naming_its_lines(tmp_path):
    path = write(tmp_path, "steps: 5\noptim:\n  lr: 0.1\n  name: adam\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=rf"^{path}:5: duplicate key 'lr' \(first at line 3\)"):
        load_config(Toy, path)
    path = write(tmp_path, "steps: 5\nname: a\nsteps: 6\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: duplicate key 'steps' \(first at line 1\)"):
        load_config(Toy, path)
    # The same key in different mappings, and a key overriding a merged one, are fine.
    assert load_config(Toy, write(tmp_path, "name: a\noptim: {name: adam}\n")).optim.name == "adam"
    cfg = load_config(Optim, write(tmp_path, "<<: {lr: 0.1, name: adam}\nlr: 0.2\n"))
    assert cfg.lr == 0.2 and cfg.name == "adam"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "ON"])
def test_yaml_1_1_booleans_are_not_booleans(tmp_path, word):
    with pytest.raises(ConfigError, match=rf"use_amp: expected true or false, got '{word}'"):
        load_config(Toy, write(tmp_path, f"use_amp: {word}\n"))
    with pytest.raises(ConfigError, match="expected true or false"):
        load_config(Toy, None, [f"use_amp={word}"])
    # In a string field they stay the text as written (the language code 'no' is not false).
    assert load_config(Toy, write(tmp_path, f"init: {word}\n")).init == word
    assert load_config(Toy, write(tmp_path, "use_amp: true\n")).use_amp is True
    assert load_config(Toy, write(tmp_path, "use_amp: False\n")).use_amp is False


@pytest.mark.parametrize(
    "schema, text, match",
    [
        (ValidateConfig, "min_seconds: 5\nmax_seconds: 1\n", "need 0 <= min_seconds < max_seconds"),
        (ValidateConfig, "sample_rate: -1\n", "sample_rate must be > 0"),
        (ValidateConfig, "min_seconds: -0.5\n", "need 0 <= min_seconds"),
        (DataConfig, "filter: {min_seconds: 30, max_seconds: 20}\n", r"\.filter: need 0 <= min_seconds < max_seconds"),
        (DataConfig, "filter: {min_tokens: 9, max_tokens: 3}\n", "need 0 <= min_tokens <= max_tokens"),
        (DataConfig, "sampler: {max_duration: 0}\n", "max_duration .* must be > 0"),
        (DataConfig, "sampler: {num_buckets: 0}\n", "num_buckets and buffer_size must be >= 1"),
        (DataConfig, "num_workers: -1\n", "num_workers must be >= 0"),
        (DataConfig, "fbank: {sample_rate: 0}\n", "sample_rate must be > 0"),
    ],
)
def test_ranges_are_checked_when_loading(tmp_path, schema, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as err:
        load_config(schema, path)
    assert str(err.value).startswith(str(path))


def test_range_error_names_the_override_that_set_the_value(tmp_path):
    path = write(tmp_path, "max_seconds: 20\n")
    with pytest.raises(ConfigError) as err:
        load_config(ValidateConfig, path, ["min_seconds=30"])
    assert str(err.value).startswith("--override min_seconds=30: need 0 <= min_seconds < max_seconds")
    assert str(err.value).endswith(f"(other values from {path})")
    with pytest.raises(ConfigError) as err:
        load_config(DemoCorpusConfig, None, [("num_utts=3", "--num-utts 3"), ("seed=1", "--seed 1")])
    assert str(err.value).startswith("--num-utts 3: num_utts must be >= 20")  # not --seed: the message names num_utts


def test_save_roundtrip(tmp_path):
    cfg = load_config(Toy, None, ["optim.betas=[0.5, 0.6]", "extra={a: 1}"])
    out = tmp_path / "exp" / "resolved.yaml"
    save_config(cfg, out)
    assert yaml.safe_load(out.read_text())["optim"]["betas"] == [0.5, 0.6]
    assert load_config(Toy, out) == cfg
    assert not list(out.parent.glob(".*.tmp"))  # no temporary file left behind


def test_shipped_yaml_files_load():
    """Every YAML shipped under examples/*/conf/ is an instance of a known schema."""
    from wenet_llm.config.context_data import ContextDataConfig
    from wenet_llm.config.demo_llm import DemoLLMConfig
    from wenet_llm.config.llm import LLMExperimentConfig

    schemas = {"demo_corpus.yaml": DemoCorpusConfig, "validate.yaml": ValidateConfig, "data.yaml": DataConfig,
               "aed_conformer.yaml": AEDExperimentConfig, "aed_conformer_large.yaml": AEDExperimentConfig,
               "demo_llm.yaml": DemoLLMConfig, "context_data.yaml": ContextDataConfig}
    schemas.update({p.name: LLMExperimentConfig for p in REPO.glob("examples/*/*/conf/llm_*.yaml")})
    shipped = sorted(REPO.glob("examples/*/*/conf/*.yaml"))
    assert shipped, "no shipped configs found"
    for path in shipped:
        assert path.name in schemas, f"{path}: no schema registered for this config in the test"
        cfg = load_config(schemas[path.name], path)
        assert to_dict(cfg)  # loads and serialises
        if isinstance(cfg, AEDExperimentConfig):  # and builds, on the meta device (no memory, no time)
            with torch.device("meta"):
                model = ASRModel(dataclasses.replace(cfg.model, vocab_size=cfg.model.vocab_size or 5000))
            assert sum(p.numel() for p in model.parameters()) > 1_000_000


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os

    from wenet_llm.utils.fileio import atomic_open

    umask = os.umask(0o022)
    try:
        with atomic_open(tmp_path / "f.txt") as f:
            f.write("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
