"""The shape of the code base, held where a reader relies on it: the trust boundary as a folder,
typed results, the README's layout, tests that stand alone."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from support import REPO

GRADER = REPO / "grader"


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_child_package_imports_only_itself_numpy_torch_and_the_standard_library():
    """The sandbox copies grader/child whole and nothing else: an import from outside would fail there."""
    allowed = set(sys.stdlib_module_names) | {"numpy", "torch"}
    for path in sorted((GRADER / "child").rglob("*.py")):
        for name in imports(path):
            top = name.split(".")[0]
            assert top in allowed or name == "grader.child" or name.startswith("grader.child."), (
                f"{path.relative_to(REPO)} imports {name}")


def test_results_are_read_by_attribute_not_by_key():
    """Between the stages results are typed: dict keys appear only where result.json is (de)serialized."""
    pattern = re.compile(r"""\[["'](val_acc|test_acc|retrain|required)["']\]|\.get\(["'](required|val_acc|test_acc)["']""")
    offenders = [f"{p.relative_to(REPO)}:{i}" for p in GRADER.rglob("*.py") if p.name != "result.py"
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert offenders == []


def test_the_readme_layout_names_every_module_and_no_other():
    text = (REPO / "README.md").read_text()
    layout = text[text.index("## Layout"):]
    tree = layout[layout.index("    grader/\n"):layout.index("    reference_models/")]  # the package's part
    listed = set(re.findall(r"\b(\w+\.py)\b", tree))
    modules = {p.name for p in GRADER.rglob("*.py") if p.name != "__init__.py"}
    assert listed == modules, f"missing: {sorted(modules - listed)}; no such module: {sorted(listed - modules)}"
    packages = {p.parent.name for p in GRADER.rglob("__init__.py")}
    assert packages <= set(re.findall(r"\b(\w+)/", tree)), "a package is missing from the README's layout"


def test_no_test_module_imports_another():
    for path in sorted((REPO / "tests").glob("test_*.py")):
        others = {name for name in imports(path) if name.startswith("test_") or name == "conftest"}
        assert not others, f"{path.name} imports {sorted(others)}: shared code belongs in support.py or a fixture"
