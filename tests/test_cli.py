"""Conventions every ``python -m wenet_llm.bin.X`` entry point follows (wenet_llm.utils.cli)."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import wenet_llm.bin
from wenet_llm.bin import average_model, make_demo_corpus
from wenet_llm.utils.cli import ArgumentParser, HelpFormatter, normalize_flags

ENTRY_POINTS = sorted(m.name for m in pkgutil.iter_modules(wenet_llm.bin.__path__))
HEAVY = ("torch", "lhotse", "transformers")


def test_there_are_entry_points():
    assert {"validate", "train_aed", "finish_aed", "average_model"} <= set(ENTRY_POINTS)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_is_light_and_shows_the_call(name):
    # -X importtime lists every module imported; --help must not load torch, lhotse or transformers.
    module = f"wenet_llm.bin.{name}"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: python -m {module} ")
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_option_has_help_and_a_default(name):
    parser = importlib.import_module(f"wenet_llm.bin.{name}").get_parser()
    formatter = HelpFormatter(parser.prog)
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        assert action.help, action.option_strings
        assert all("_" not in o for o in action.option_strings if o.startswith("--")), action.option_strings
        shown = formatter._get_help_string(action)
        assert "(default" in shown or "(required)" in shown, (name, action.option_strings, shown)


def test_both_spellings_are_accepted():
    dash = average_model.get_parser().parse_args(["--dst-model", "a.pt", "--src-path", "exp", "--val-best",
                                                  "--max-epoch=3"])
    under = average_model.get_parser().parse_args(["--dst_model", "a.pt", "--src_path", "exp", "--val_best",
                                                   "--max_epoch=3"])
    assert vars(dash) == vars(under)
    assert dash.dst_model == "a.pt" and dash.val_best and dash.max_epoch == 3


def test_normalize_flags_touches_only_option_names():
    assert normalize_flags(["--num_utts", "5", "--out=a_b", "x_y", "-h", "--", "--keep_me"]) == \
        ["--num-utts", "5", "--out=a_b", "x_y", "-h", "--", "--keep_me"]


def test_abbreviations_and_underscore_declarations_are_refused(capsys):
    with pytest.raises(SystemExit):  # argparse's default would take --dst for --dst-model
        average_model.get_parser().parse_args(["--dst", "a.pt", "--src-path", "exp"])
    assert "the following arguments are required: --dst-model" in capsys.readouterr().err
    parser = ArgumentParser("wenet_llm.bin.example", "x")
    with pytest.raises(ValueError, match="declare option --foo_bar with dashes"):
        parser.add_argument("--foo_bar", help="x")
    with pytest.raises(ValueError, match="--foo needs a help text"):
        parser.add_argument("--foo")


def test_a_command_line_value_is_named_in_its_error(tmp_path, capsys):
    conf = tmp_path / "demo_corpus.yaml"
    conf.write_text("seed: 3\n")
    assert make_demo_corpus.main(["--out", str(tmp_path / "out"), "--config", str(conf), "--num-utts", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("make_demo_corpus: --num-utts -5: num_utts must be >= 20")
    assert f"(other values from {conf})" in err
    # A bad value in the file itself is still reported against the file.
    conf.write_text("num_utts: 7\n")
    assert make_demo_corpus.main(["--out", str(tmp_path / "out"), "--config", str(conf)]) == 2
    assert capsys.readouterr().err.startswith(f"make_demo_corpus: {conf}: num_utts must be >= 20")
    assert not (tmp_path / "out").exists()
