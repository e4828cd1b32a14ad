"""Notebook code as Python: IPython syntax converted, each cell parsed, names resolved.

Nothing here runs student code. `parse_cells` turns every code cell into an `ast.Module` the
way IPython would see it (so `!pip install`, `%matplotlib inline` and a cell that starts with
an indented line all parse); a cell that still fails to parse becomes a warning and is skipped.
`Imports` tracks what each local name stands for (`nn` -> `torch.nn`), in notebook order.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field

from grader.notebook import Cell, Notebook


@dataclass(frozen=True)
class ParsedCell:
    """A code cell and its syntax tree."""

    cell: Cell
    python: str
    """The cell's source after IPython's transformations (magics become get_ipython() calls)."""
    tree: ast.Module | None
    """None when the cell does not parse even after the transformations."""
    error: str = ""
    """Why the cell did not parse."""
    has_magics: bool = False
    """The cell uses % or ! syntax."""


def _transformer():
    # Imported lazily: IPython is only needed once per process, and only here.
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def parse_cells(notebook: Notebook) -> tuple[tuple[ParsedCell, ...], tuple[str, ...]]:
    """Parse every code cell; return the cells and warnings for those that did not parse."""
    manager = _transformer()
    parsed: list[ParsedCell] = []
    problems: list[str] = []
    for cell in notebook.code_cells:
        if not cell.source.strip():
            continue
        try:
            python = manager.transform_cell(cell.source)
        except Exception:  # IPython's transformer can raise on odd tokens; keep the raw text
            python = cell.source
        has_magics = "get_ipython()" in python and "get_ipython()" not in cell.source
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning for "\d" in student strings
                tree = ast.parse(python)
            if _depth(tree) > MAX_DEPTH:
                raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
            parsed.append(ParsedCell(cell, python, tree, has_magics=has_magics))
        except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
            line = getattr(e, "lineno", None)
            where = f" line {line}" if line else ""
            msg = getattr(e, "msg", str(e)) or "too deeply nested"
            problems.append(f"cell {cell.index}{where} is not valid Python ({msg}); it was skipped")
            parsed.append(ParsedCell(cell, python, None, error=msg, has_magics=has_magics))
    return tuple(parsed), tuple(problems)


# Deeper trees would make the recursive parts of `ast` (unparse, the compiler) overflow the stack.
MAX_DEPTH = 200


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


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
