"""The package's one-directional layout, checked on the import statements of its modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wenet_llm"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_data_pipeline_never_imports_the_synthesis():
    offenders = {str(p.relative_to(PACKAGE)): sorted(m for m in imported_modules(p) if m.startswith("wenet_llm.synth"))
                 for p in (PACKAGE / "data").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_synthesis_lives_in_its_own_subpackage():
    # The pipeline keeps the mixing it shares with the synthesis; the generators live in synth.
    assert {p.name for p in (PACKAGE / "synth").glob("*.py")} >= {"demo_text.py", "demo_corpus.py", "noise.py"}
    assert not any((PACKAGE / "data" / name).exists() for name in ("demo_text.py", "demo_corpus.py", "noise.py"))
    assert "wenet_llm.data.mixing.mix_at_snr" in imported_modules(PACKAGE / "data" / "augment.py")
