"""The pinned install: tools/constraints.txt is what this environment has, and tools/install.sh uses it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "tools" / "constraints.txt"
# A script in tools/, not a module of the package.
_spec = importlib.util.spec_from_file_location("update_constraints", REPO / "tools" / "update_constraints.py")
update_constraints = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(update_constraints)


def pins(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[A-Za-z0-9_.-]+", name) and version, line
            out[canonicalize_name(name)] = version
    return out


def test_constraints_match_this_environment():
    """CI installs with the pins, so this fails when setup.py gains a dependency without a pin, or when the
    environment the tests pass in is not the pinned one (tools/update_constraints.py says what to do)."""
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "update_constraints.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_constraints_pin_every_requirement_but_torch():
    pinned = pins(CONSTRAINTS.read_text())
    direct = {canonicalize_name(Requirement(r).name) for r in update_constraints.setup_requirements()}
    assert "matplotlib" in direct and "pytest" in direct  # install_requires and the dev extra
    assert direct - {"torch"} <= set(pinned)
    assert "torch" not in pinned and "wenet-llm" not in pinned
    # No local version label (+cpu, +cu126): a pin never chooses a build, so pip never fetches a CUDA wheel for it.
    assert not [v for v in pinned.values() if "+" in v]
    assert len(pinned) > len(direct)  # the transitive dependencies are pinned too


def test_setup_requirements_reads_the_literals(tmp_path):
    (tmp_path / "setup.py").write_text('install_requires = ["a>=1", "b"]\nextras_require = {"dev": ["c"], "x": ["d"]}\n'
                                       "setup(install_requires=install_requires)\n")
    assert update_constraints.setup_requirements(tmp_path / "setup.py") == ["a>=1", "b", "c"]
    (tmp_path / "setup.py").write_text("setup(install_requires=['a'])\n")
    with pytest.raises(update_constraints.ConstraintsError, match="expected top-level literal assignments"):
        update_constraints.setup_requirements(tmp_path / "setup.py")


def test_install_default_torch_is_the_tested_one():
    header = re.search(r"^# torch (\S+) ", CONSTRAINTS.read_text(), re.M)
    default = re.search(r'^torch_spec="\$\{TORCH_SPEC:-(\S+)\}"$', (REPO / "tools" / "install.sh").read_text(), re.M)
    assert header and default
    assert default.group(1) == "torch==" + header.group(1).split("+")[0]


def fake_install_tree(tmp_path: Path) -> tuple[Path, dict]:
    """The repository files install.sh reads, a venv whose python records its pip calls, and fake system tools."""
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    for rel in ("setup.py", "tools/install.sh", "tools/constraints.txt"):
        shutil.copy(REPO / rel, root / rel)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    # -c (the version checks) runs the real interpreter; -m pip records its arguments instead of installing.
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\nif [ "$1" = -c ]; then exec "{sys.executable}" "$@"; fi\n'
                                    f'printf "%s\\n" "$@" >> "{tmp_path}/pip_calls"\n')
    tools = tmp_path / "fakebin"
    tools.mkdir()
    for tool in ("espeak-ng", "sox"):
        (tools / tool).write_text("#!/bin/sh\nexit 0\n")
    for f in (bin_dir / "python", tools / "espeak-ng", tools / "sox"):
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    env.pop("TORCH_SPEC", None)
    return root, env


def run_install(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(root / "tools" / "install.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_install_uses_the_constraints_and_stamps_their_hash(tmp_path):
    root, env = fake_install_tree(tmp_path)
    calls = tmp_path / "pip_calls"
    assert run_install(root, env, "--check").returncode == 1  # nothing installed yet
    proc = run_install(root, env)
    assert proc.returncode == 0, proc.stderr
    args = calls.read_text().splitlines()
    assert args == ["-m", "pip", "install", "--quiet", "-c", str(root / "tools" / "constraints.txt"),
                    "torch==2.13.0", "-e", f"{root}[dev]"]
    digest = subprocess.run(["sha256sum", str(root / "tools" / "constraints.txt")], capture_output=True,
                            text=True).stdout.split()[0]
    assert f"constraints={digest}" in (root / ".venv" / ".wenet_llm_install_stamp").read_text()
    assert run_install(root, env, "--check").returncode == 0
    assert run_install(root, env).returncode == 0 and calls.read_text().splitlines() == args  # current: no pip
    # New pins make the install stale, and the next run installs them.
    with open(root / "tools" / "constraints.txt", "a") as f:
        f.write("tqdm==0.0.1\n")
    assert run_install(root, env, "--check").returncode == 1
    assert run_install(root, env).returncode == 0
    assert len(calls.read_text().splitlines()) == 2 * len(args)


def test_install_without_pins_on_another_python(tmp_path):
    root, env = fake_install_tree(tmp_path)
    path = root / "tools" / "constraints.txt"
    path.write_text(re.sub(r"^# python .*$", "# python 2.99", path.read_text(), flags=re.M))
    proc = run_install(root, env)
    assert proc.returncode == 0, proc.stderr
    assert "tested with Python 2.99" in proc.stderr and "a set nobody tested" in proc.stderr
    assert "-c" not in (tmp_path / "pip_calls").read_text().splitlines()
    assert "not-used-with-python" in (root / ".venv" / ".wenet_llm_install_stamp").read_text()
