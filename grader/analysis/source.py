"""Notebook code as Python: IPython syntax converted, each cell parsed, names resolved.

Nothing here runs student code. `parse_cells` turns every code cell into an `ast.Module` the
way IPython would see it (so `!pip install`, `%matplotlib inline` and a cell that starts with
an indented line all parse). A cell that still fails to parse loses only the statements that do
not parse, and a statement in syntax newer than the grader's Python is read as 3.11 code
(grader/analysis/recovery.py); each loss and each rewrite becomes a warning.
`Imports` tracks what each local name stands for (`nn` -> `torch.nn`), in notebook order.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from grader.analysis.recovery import GRADER_PYTHON, MAX_DEPTH, Newer, Reading, Skipped, read_cells
from grader.notebook import Cell, Notebook

__all__ = ["GRADER_PYTHON", "MAX_DEPTH", "Imports", "Newer", "ParsedCell", "Skipped", "dotted_name", "parse_cells",
           "walk_top_level"]


@dataclass(frozen=True)
class ParsedCell:
    """A code cell and its syntax tree."""

    cell: Cell
    python: str
    """The cell's source after IPython's transformations (magics become get_ipython() calls)."""
    tree: ast.Module | None
    """None when nothing in the cell parses even after the transformations."""
    error: str = ""
    """Why the cell did not parse."""
    has_magics: bool = False
    """The cell uses % or ! syntax."""
    skipped: tuple[Skipped, ...] = ()
    """Top-level statements left out of `tree` because they do not parse."""
    newer: tuple[Newer, ...] = ()
    """Top-level statements in syntax newer than the grader's Python, in `tree` as 3.11 code."""

    def unrunnable(self, stmt: ast.stmt) -> Newer | None:
        """The newer syntax that keeps a top-level statement of `tree` from running as written:
        3.11 has no equivalent, so its 3.11 code only approximates it. None for other statements."""
        return next((n for n in self.newer if n.line == stmt.lineno and not n.runs), None)


def _transformer():
    # Imported lazily: IPython is only needed once per process, and only here.
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def parse_cells(notebook: Notebook) -> tuple[tuple[ParsedCell, ...], tuple[str, ...]]:
    """Parse every code cell; return the cells and warnings for what was skipped or rewritten."""
    manager = _transformer()
    cells = [cell for cell in notebook.code_cells if cell.source.strip()]
    sources = [_as_python(manager, cell.source) for cell in cells]
    parsed: list[ParsedCell] = []
    problems: list[str] = []
    for cell, python, reading in zip(cells, sources, read_cells(sources)):
        has_magics = "get_ipython()" in python and "get_ipython()" not in cell.source
        parsed.append(ParsedCell(cell, python, reading.tree, reading.error, has_magics, reading.skipped, reading.newer))
        problems += _warnings(cell.index, reading)
    return tuple(parsed), tuple(problems)


def _as_python(manager, source: str) -> str:
    try:
        return manager.transform_cell(source)
    except Exception:  # IPython's transformer can raise on odd tokens; keep the raw text
        return source


def _warnings(index: int, reading: Reading) -> list[str]:
    if reading.tree is None:
        where = f" line {reading.error_line}" if reading.error_line else ""
        return [f"cell {index}{where} is not valid Python ({reading.error}); it was skipped"]
    found = [(s.line, f"cell {index} {s.where} is not valid Python ({s.reason}); that statement was skipped")
             for s in reading.skipped]
    for n in reading.newer:
        how = (f"the grader reads it as the equivalent {GRADER_PYTHON} code" if n.runs
               else "the grader reads its structure but cannot run it")
        found.append((n.line, f"cell {index} {n.where} uses syntax newer than the grader's {GRADER_PYTHON} "
                              f"({'; '.join(n.syntax)}); {how}"))
    return [message for _, message in sorted(found)]


@dataclass
class Imports:
    """Local name -> dotted origin, built from import statements in notebook order."""

    names: dict[str, str] = field(default_factory=dict)

    def add(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    self.names[top] = top
        elif node.module and not node.level:
            for alias in node.names:
                if alias.name != "*":
                    self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def resolve(self, node: ast.AST) -> str:
        """Dotted name of an expression like `nn.Conv2d` -> `torch.nn.Conv2d`; '' if not a name."""
        dotted = dotted_name(node)
        if not dotted:
            return ""
        head, _, rest = dotted.partition(".")
        origin = self.names.get(head)
        if origin is None:
            return dotted
        return f"{origin}.{rest}" if rest else origin


def dotted_name(node: ast.AST) -> str:
    """`a.b.c` for Name/Attribute chains, '' for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def walk_top_level(tree: ast.Module):
    """Statements that run at module level, looking into if/try/with/for blocks but not defs."""
    stack = list(reversed(tree.body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        children: list[ast.stmt] = []
        for name in ("body", "orelse", "finalbody"):
            children.extend(getattr(stmt, name, []) or [])
        for handler in getattr(stmt, "handlers", []) or []:
            children.extend(handler.body)
        stack.extend(reversed(children))
