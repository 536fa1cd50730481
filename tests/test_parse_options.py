"""Tests for tools/parse_options.sh (Kaldi-style option parsing)."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PARSE_OPTIONS = REPO_ROOT / "tools" / "parse_options.sh"

DEFAULTS = """\
stage=0
stop_stage=7
use_gpu=false
corpus_dir=/x
"""

HELP = 'help_message="Usage: run.sh [options] <data-dir>"\n'

# Print each variable on its own line, plus the positional arguments, so tests
# can compare exact values (including spaces).
ECHO = """\
printf 'stage=%s\\n' "$stage"
printf 'stop_stage=%s\\n' "$stop_stage"
printf 'use_gpu=%s\\n' "$use_gpu"
printf 'corpus_dir=%s\\n' "$corpus_dir"
printf 'nargs=%s\\n' "$#"
for a in "$@"; do printf 'arg=%s\\n' "$a"; done
"""


def run_recipe(tmp_path, args, defaults=DEFAULTS + HELP, after=ECHO):
    script = tmp_path / "run.sh"
    script.write_text(
        "#!/usr/bin/env bash\n"
        "set -euo pipefail\n"
        f"{defaults}"
        f'. "{PARSE_OPTIONS}"\n'
        f"{after}"
    )
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )


def parse_vars(stdout):
    out = {}
    for line in stdout.splitlines():
        key, _, value = line.partition("=")
        if key != "arg":
            out[key] = value
    return out


def test_defaults_unchanged_without_options(tmp_path):
    res = run_recipe(tmp_path, [])
    assert res.returncode == 0, res.stderr
    assert parse_vars(res.stdout) == {
        "stage": "0",
        "stop_stage": "7",
        "use_gpu": "false",
        "corpus_dir": "/x",
        "nargs": "0",
    }


def test_dashes_map_to_underscores(tmp_path):
    res = run_recipe(tmp_path, ["--stop-stage", "3", "--stage", "2"])
    assert res.returncode == 0, res.stderr
    got = parse_vars(res.stdout)
    assert got["stop_stage"] == "3"
    assert got["stage"] == "2"


def test_equals_form(tmp_path):
    res = run_recipe(tmp_path, ["--corpus-dir=/data/a=b", "--stage=5"])
    assert res.returncode == 0, res.stderr
    got = parse_vars(res.stdout)
    assert got["corpus_dir"] == "/data/a=b"
    assert got["stage"] == "5"


def test_unknown_option_fails(tmp_path):
    res = run_recipe(tmp_path, ["--no-such-opt", "1"])
    assert res.returncode != 0
    assert "unknown option --no-such-opt" in res.stderr
    assert "stage=" not in res.stdout


def test_unknown_option_equals_form_fails(tmp_path):
    res = run_recipe(tmp_path, ["--bogus=1"])
    assert res.returncode != 0
    assert "--bogus" in res.stderr


@pytest.mark.parametrize("opt", ["--_po_name", "--_po-prog"])
def test_internal_variable_names_rejected(tmp_path, opt):
    # These helpers are set while parsing, so only an explicit check stops them.
    res = run_recipe(tmp_path, [opt, "x"])
    assert res.returncode != 0
    assert f"unknown option {opt}" in res.stderr


@pytest.mark.parametrize("value", ["true", "false"])
def test_boolean_accepts_true_false(tmp_path, value):
    # Start from the opposite value so the assertion shows a real change.
    start = "false" if value == "true" else "true"
    defaults = DEFAULTS.replace("use_gpu=false", f"use_gpu={start}") + HELP
    res = run_recipe(tmp_path, ["--use-gpu", value], defaults=defaults)
    assert res.returncode == 0, res.stderr
    assert parse_vars(res.stdout)["use_gpu"] == value


def test_boolean_rejects_yes(tmp_path):
    res = run_recipe(tmp_path, ["--use-gpu", "yes"])
    assert res.returncode != 0
    assert "--use-gpu" in res.stderr
    assert "use_gpu=" not in res.stdout


def test_help_prints_message_and_exits_zero(tmp_path):
    for flag in ("--help", "-h"):
        res = run_recipe(tmp_path, ["--stage", "1", flag])
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "Usage: run.sh [options] <data-dir>"


def test_help_without_help_message_under_set_u(tmp_path):
    res = run_recipe(tmp_path, ["--help"], defaults=DEFAULTS)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("Usage: run.sh")
    assert "unbound" not in res.stderr


def test_config_sets_defaults_and_later_options_override(tmp_path):
    conf = tmp_path / "my conf.sh"
    conf.write_text("stage=4\ncorpus_dir='/from config'\nuse_gpu=true\n")
    args = ["--stage", "1", "--config", str(conf), "--use-gpu", "false"]
    res = run_recipe(tmp_path, args)
    assert res.returncode == 0, res.stderr
    got = parse_vars(res.stdout)
    assert got["stage"] == "4"  # config after --stage wins
    assert got["corpus_dir"] == "/from config"
    assert got["use_gpu"] == "false"  # later option overrides config


def test_config_missing_file_fails(tmp_path):
    res = run_recipe(tmp_path, ["--config", str(tmp_path / "nope.conf")])
    assert res.returncode != 0
    assert "config file not found" in res.stderr
    assert "nope.conf" in res.stderr


def test_missing_value_fails(tmp_path):
    res = run_recipe(tmp_path, ["--stage"])
    assert res.returncode != 0
    assert "--stage" in res.stderr
    assert "stage=" not in res.stdout


def test_positional_args_remain(tmp_path):
    args = ["--stage", "3", "data/train", "--not-an-opt", "x y"]
    res = run_recipe(tmp_path, args)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "stage=3" in lines
    assert "nargs=3" in lines
    assert [ln for ln in lines if ln.startswith("arg=")] == [
        "arg=data/train",
        "arg=--not-an-opt",
        "arg=x y",
    ]


def test_double_dash_ends_options(tmp_path):
    res = run_recipe(tmp_path, ["--stage", "2", "--", "--stage"])
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "stage=2" in lines
    assert [ln for ln in lines if ln.startswith("arg=")] == ["arg=--stage"]


@pytest.mark.parametrize(
    "value",
    [
        "/data/my corpus",
        "$(touch pwned)",
        "a;b|c&d'e\"f`g` $HOME *",
        "--looks-like-opt",
    ],
)
def test_values_with_spaces_and_special_chars(tmp_path, value):
    res = run_recipe(tmp_path, ["--corpus-dir", value])
    assert res.returncode == 0, res.stderr
    assert parse_vars(res.stdout)["corpus_dir"] == value
    assert not (tmp_path / "pwned").exists()  # script runs with cwd=tmp_path


def test_no_helper_variables_leak(tmp_path):
    after = 'compgen -v | grep "^_po_" || true\necho done\n'
    res = run_recipe(tmp_path, ["--stage", "1", "--use-gpu=true", "pos"], after=after)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "done"


def test_shellcheck_passes():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not on PATH")
    res = subprocess.run(
        [shellcheck, str(PARSE_OPTIONS)], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stdout + res.stderr


BLOCK = """\
# begin configuration
stage=0           # first stage to run
sets="a b"        # sets to decode
empty=            # optional: a folder
nj=$((1 + 1))
flag=false
# end configuration
not_an_option=1
"""


def test_help_lists_the_configuration_block_with_defaults(tmp_path):
    # Options given before --help do not change the defaults it shows.
    res = run_recipe(tmp_path, ["--stage", "5", "--sets", "x", "--help"], defaults=BLOCK + HELP)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "Usage: run.sh [options] <data-dir>"
    options = [line.split(None, 2) for line in lines if line.startswith("  --")]
    assert [o[:2] for o in options] == [["--stage", "0"], ["--sets", '"a'], ["--empty", '""'], ["--nj", "2"],
                                         ["--flag", "false"], ["--config", "FILE"]]
    notes = {o[0]: line for o, line in zip(options, [ln for ln in lines if ln.startswith("  --")])}
    assert notes["--stage"].endswith("first stage to run")
    assert '--sets "a b"' in notes["--sets"] and notes["--sets"].endswith("sets to decode")
    assert notes["--empty"].endswith("optional: a folder")
    assert "not_an_option" not in res.stdout


def test_block_variables_do_not_leak(tmp_path):
    after = 'compgen -v | grep "^_po_" || true\necho done\n'
    res = run_recipe(tmp_path, ["--stage", "1"], defaults=BLOCK, after=after)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "done"
