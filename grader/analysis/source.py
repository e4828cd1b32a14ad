"""Notebook code as Python: IPython syntax converted, each cell parsed, names resolved.

Nothing here runs student code. `parse_cells` turns every code cell into an `ast.Module` the
way IPython would see it (so `!pip install`, `%matplotlib inline` and a cell that starts with
an indented line all parse). A cell that still fails to parse loses only the statements that do
not parse, and a statement in syntax newer than the grader's Python is read as 3.11 code
(grader/analysis/recovery.py); each loss and each rewrite becomes a warning.

IPython's token transforms (its `%`, `!` and `?` syntax) re-tokenize the whole cell after each
rewrite, so their time grows with the cell's length times its escapes (and they give up after 500
rewrites): they run only on a cell with a line that could hold such syntax, and only while that
product stays under MAX_IPYTHON_WORK for the cell and MAX_IPYTHON_NOTEBOOK_WORK for the notebook;
past it, each such line is made a `get_ipython()` call in place (the cell keeps its lines). Cells
are read until the reading's deadline passes.
`Imports` tracks what each local name stands for (`nn` -> `torch.nn`), in notebook order.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import accumulate

from grader.analysis.limits import MAX_CODE_CHARS, MAX_CODE_NODES, Deadline, cells_named
from grader.analysis.recovery import GRADER_PYTHON, MAX_DEPTH, Newer, Partial, Reading, Skipped, read_cells
from grader.notebook import Cell, Notebook

MAX_WARNINGS_PER_CELL = 20
# IPython's token transforms take about 1 microsecond per character per rewrite: 0.1 s at most a cell
# (a 10,000-character cell with 9 escaped lines; the examples' cells are far below), 1 s a notebook.
MAX_IPYTHON_WORK = 100_000
MAX_IPYTHON_NOTEBOOK_WORK = 1_000_000
# A line that may hold IPython syntax: one that starts with an escape (`!ls`, `%time`, `?x`, `,f a`,
# `/f a`), assigns one (`x = !ls`), or holds a `?` (`x?`, outside strings Python has none).
_MAYBE_IPYTHON = re.compile(r"^[ \t]*+[!%?,;/]|=[ \t]*+[!%]|\?", re.M)
# The line of an escape that the cheap reading turns into a call: `!cmd`, `%magic`, `x = !cmd`, `x = %magic`.
_ESCAPED_LINE = re.compile(r"^([ \t]*+)(?:([\w.,\[\] \t]*?=[ \t]*+))?[!%][^\n]*+", re.M)

__all__ = ["GRADER_PYTHON", "MAX_DEPTH", "Imports", "Newer", "ParsedCell", "Partial", "Skipped", "dotted_name",
           "parse_cells", "walk_top_level"]


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
    partial: tuple[Partial, ...] = ()
    """Classes and functions in `tree` without the statements broken inside them (in `skipped`)."""

    def unrunnable(self, stmt: ast.stmt) -> Newer | Partial | None:
        """What keeps a top-level statement of `tree` from running as written: newer syntax 3.11 has
        no equivalent for (its 3.11 code only approximates it), or statements left out of a definition.
        None for other statements."""
        return (next((n for n in self.newer if n.line == stmt.lineno and not n.runs), None)
                or next((p for p in self.partial if p.line <= stmt.lineno <= p.end_line), None))


def _transformer():
    # Imported lazily: IPython is only needed once per process, and only here.
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def parse_cells(notebook: Notebook, deadline: Deadline | None = None) -> tuple[tuple[ParsedCell, ...], tuple[str, ...]]:
    """Parse the code cells, the first MAX_CODE_CHARS characters of them, until `deadline` (default:
    the static reading's own) passes; return the cells read and warnings for what was skipped,
    rewritten or left unread."""
    deadline = deadline or Deadline.after()
    manager = _transformer()
    cells = [cell for cell in notebook.code_cells if cell.source.strip()]
    budget = list(accumulate(len(cell.source) for cell in cells))
    kept = cells[:bisect_right(budget, MAX_CODE_CHARS)]
    pythons: list[str] = []

    def transformed():  # drawn one cell at a time by read_cells, while the deadline lasts
        work = MAX_IPYTHON_NOTEBOOK_WORK
        for cell in kept:
            python, spent = _as_python(manager, cell.source, min(work, MAX_IPYTHON_WORK))
            work -= spent
            pythons.append(python)
            yield python

    readings, notes = read_cells(transformed(), deadline)
    within = _within_nodes(readings)
    parsed: list[ParsedCell] = []
    problems: list[str] = []
    for cell, python, reading in zip(kept[:within], pythons, readings[:within]):
        has_magics = "get_ipython()" in python and "get_ipython()" not in cell.source
        parsed.append(ParsedCell(cell, python, reading.tree, reading.error, has_magics, reading.skipped, reading.newer,
                                 reading.partial))
        problems += _warnings(cell.index, reading)
    problems += notes
    if len(kept) < len(cells):
        problems.append(f"the notebook's code cells hold more than {MAX_CODE_CHARS:,} characters; "
                        f"code {cells_named([c.index for c in cells[len(kept):]])} not read")
    if within < len(readings):
        problems.append(f"the notebook's code holds more than {MAX_CODE_NODES:,} syntax-tree nodes; "
                        f"code {cells_named([c.index for c in kept[within:len(readings)]])} not read")
    if len(readings) < len(kept):
        problems.append(deadline.skipped(f"code {cells_named([c.index for c in kept[len(readings):]])}"))
    return tuple(parsed[:within]), tuple(problems)


def _within_nodes(readings: list[Reading]) -> int:
    """How many of the first readings fit in MAX_CODE_NODES together (each tree counted no further
    than what is left, so counting costs at most MAX_CODE_NODES steps)."""
    left = MAX_CODE_NODES
    for i, reading in enumerate(readings):
        if reading.tree is not None:
            for _ in ast.walk(reading.tree):
                left -= 1
                if left < 0:
                    return i
    return len(readings)


def _as_python(manager, source: str, work: int) -> tuple[str, int]:
    """The cell as IPython would run it, and the work its token transforms took: its cleanup
    (prompts, a leading indent, `%%` cell magics; linear) always, its token transforms where a line
    may need them and their work (characters times rewrites) is at most `work`."""
    cell = source if source.endswith("\n") else source + "\n"
    try:
        lines = cell.splitlines(keepends=True)
        for transform in manager.cleanup_transforms + manager.line_transforms:
            lines = transform(lines)
        python = "".join(lines)
        escapes = len(_MAYBE_IPYTHON.findall(python))
        needed = len(python) * (1 + escapes)
        if not escapes:
            return python, 0
        if needed <= work:
            return "".join(manager.do_token_transforms(lines)), needed
        return _ESCAPED_LINE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}get_ipython()", python), 0
    except Exception:  # IPython's transformer can raise on odd tokens; keep the raw text
        return source, 0


def _warnings(index: int, reading: Reading) -> list[str]:
    """A warning for each statement skipped or rewritten, the first MAX_WARNINGS_PER_CELL of them."""
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
    shown = [message for _, message in sorted(found)]
    if len(shown) > MAX_WARNINGS_PER_CELL:
        more = len(shown) - MAX_WARNINGS_PER_CELL
        shown = shown[:MAX_WARNINGS_PER_CELL] + [f"cell {index}: {more:,} more statements were skipped or rewritten"]
    return shown


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
