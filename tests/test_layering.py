"""lewm's parts import only parts in lower layers (README "How lewm is laid out"), and cli modules never import
each other. Every `import lewm.X` / `from lewm.X` counts, function-local ones included."""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors",),
    ("utils",),
    ("config", "__init__"),
    ("model", "objectives", "data", "planning"),
    ("envs",),
    ("runs",),
    ("training", "evaluation"),
    ("analysis", "official"),
    ("workflows",),
    ("cli",),
    ("train",),
)
"""Bottom to top. A part may import parts of lower layers only: never one above, never one beside it."""
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
ROOT = Path(__file__).resolve().parents[1] / "lewm"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def layering_violations(package: Path) -> list[str]:
    """One line per import that goes up or sideways, or from one cli module to another, in `package` (lewm/)."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        part = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        if part not in RANK:
            problems.append(f"{rel}: part {part!r} has no layer (add it to LAYERS and to the README)")
            continue
        for line, module in _imported_modules(ast.parse(path.read_text(), str(path))):
            bits = module.split(".")
            if bits[0] != "lewm" or len(bits) < 2:
                continue
            target = bits[1]
            if target == part:
                if part == "cli" and len(bits) > 2 and bits[2] != "main" and rel.stem != bits[2]:
                    problems.append(f"{rel}:{line}: cli module imports another cli module ({module})")
                continue
            if RANK.get(target, -1) >= RANK[part]:
                problems.append(f"{rel}:{line}: {part} (layer {RANK[part]}) imports {module} "
                                f"(layer {RANK.get(target, '?')})")
    return problems


def test_no_part_imports_a_part_above_or_beside_it() -> None:
    assert layering_violations(ROOT) == []


def test_the_check_catches_an_upward_import(tmp_path: Path) -> None:
    package = tmp_path / "lewm"
    (package / "model").mkdir(parents=True)
    (package / "cli").mkdir()
    (package / "model" / "bad.py").write_text("def f():\n    from lewm.training import train\n")
    (package / "model" / "fine.py").write_text("from lewm.config import ModelConfig\nfrom lewm.model import x\n")
    (package / "cli" / "a.py").write_text("from lewm.cli.b import main\nfrom lewm.cli.main import run\n")
    (package / "oddity.py").write_text("")
    problems = layering_violations(package)
    assert len(problems) == 3, problems
    assert problems[0].startswith("cli/a.py:1: cli module imports another cli module")
    assert problems[1].startswith("model/bad.py:2: model (layer 3) imports lewm.training (layer 6)")
    assert "oddity" in problems[2]
