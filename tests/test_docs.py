"""The docs stand alone and stay true: links resolve inside the repository, and the README names the
stages the recipes implement."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP = {".venv", ".git", "data", "exp"}


def repo_files(*patterns: str) -> list[Path]:
    return [p for pattern in patterns for p in REPO.rglob(pattern)
            if not SKIP & set(p.relative_to(REPO).parts) and not any(part.startswith("exp_") for part in p.parts)]


def test_markdown_links_resolve_inside_the_repository():
    broken = []
    for md in repo_files("*.md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            path = (md.parent / target.split("#")[0]).resolve()
            if not path.exists() or REPO not in path.parents:
                broken.append(f"{md.relative_to(REPO)}: {target}")
    assert broken == []


def test_nothing_cites_files_outside_the_repository():
    offenders = [str(p.relative_to(REPO)) for p in repo_files("*.md", "*.py", "*.sh", "*.yaml")
                 if "shared/reference" in p.read_text(encoding="utf-8", errors="replace")
                 and p != Path(__file__)]
    assert offenders == []


def test_readme_names_the_implemented_stages():
    # Each recipe refuses stages after the last one it implements (check_recipe_options N).
    last = {int(m) for run in REPO.glob("examples/*/s0/run.sh")
            for m in re.findall(r"^check_recipe_options (\d+)$", run.read_text(), re.M)}
    assert len(last) == 1, f"recipes disagree on their last stage: {last}"
    n = last.pop()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert f"**What exists today:** stages 0-{n}" in readme
