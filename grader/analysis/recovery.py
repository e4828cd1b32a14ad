"""Reading a cell's Python so that as little as possible is lost: statement by statement.

`read_cells` gives each cell's `ast.Module` as the grader's own Python (3.11) reads it. A cell
`ast` parses whole costs nothing more. A cell it rejects is recovered, all such cells together:

1. parso, an error-recovering parser, splits the cell into its top-level statements, broken
   ones included (a stray character after a call, an unfinished line, a stray indent), so a
   syntax error costs the statement that holds it and not the cell's other definitions;
2. each statement `ast` still rejects may be Python newer than the grader's: the whole cell
   and those statements go to grader/analysis/downlevel.py, a child process that reads them
   with LibCST's grammar (up to 3.15) and rewrites them as 3.11 code, exactly where 3.11 has an
   equivalent (an f-string that reuses its quotes becomes `'...'.format(...)`), approximately
   where it has none (type parameters dropped): such a statement is `Newer` with runs=False and
   the extraction leaves it out;
3. what neither reads is `Skipped`, with its lines and ast's reason.

Limits stay limits: a statement nested deeper than MAX_DEPTH, or one that hits a limit of
CPython's parser (nesting, recursion, memory), is skipped; newer Pythons share those limits, so
it is not handed to the child. parso and the child are paid for only by a cell `ast` rejects.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

GRADER_PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}"
# Deeper trees would make the recursive parts of `ast` (unparse, the compiler) overflow the stack.
MAX_DEPTH = 200
# A failing cell larger than this is skipped whole: parso's time grows with the text, and no
# notebook cell a student writes by hand comes near it.
MAX_RECOVERED_CHARS = 200_000
# The child reads and rewrites a few statements in milliseconds; pathological input can make
# LibCST take minutes or crash, and then the statements are read as if it had said no.
DOWNLEVEL_TIMEOUT_S = 10
_DOWNLEVEL = Path(__file__).with_name("downlevel.py")
# SyntaxError messages of CPython's own parser limits (the same in 3.12+).
_LIMITS = ("too many nested parentheses", "too many levels of indentation", "too deeply", "too complex")
_PARSO_GRAMMAR = "3.14"  # parso's newest: it knows type parameters, so a generic class stays one statement


@dataclass(frozen=True)
class Lines:
    """Lines of a cell, 1-based, inclusive."""

    line: int
    end_line: int

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.end_line <= self.line else f"lines {self.line}-{self.end_line}"


@dataclass(frozen=True)
class Skipped(Lines):
    """A top-level statement left out of the cell's tree."""

    reason: str = ""
    """ast's message, e.g. 'invalid syntax'."""


@dataclass(frozen=True)
class Newer(Lines):
    """A top-level statement in syntax newer than the grader's Python, read as 3.11 code."""

    syntax: tuple[str, ...] = ()
    """What is newer, e.g. 'type parameters (Python 3.12)'."""
    runs: bool = True
    """The 3.11 code means the same (and runs); else only its structure is kept, for the analysis."""


@dataclass(frozen=True)
class Reading:
    """One cell's Python as the grader reads it."""

    tree: ast.Module | None
    """None when nothing in the cell could be read."""
    error: str = ""
    """Why nothing could be read."""
    error_line: int | None = None
    skipped: tuple[Skipped, ...] = ()
    newer: tuple[Newer, ...] = ()


def read_cells(sources: list[str]) -> list[Reading]:
    """Each source (a cell's Python) as a tree; the cells `ast` rejects are recovered together."""
    readings: list[Reading | None] = []
    failed: dict[int, _Failure] = {}
    for i, source in enumerate(sources):
        tree, failure = _parse(source)
        if tree is not None:
            readings.append(_within_depth(tree))
        else:
            readings.append(None)
            failed[i] = failure
    for i, reading in _recover({i: sources[i] for i in failed}, failed).items():
        readings[i] = reading
    return readings  # type: ignore[return-value]


@dataclass(frozen=True)
class _Failure:
    message: str
    line: int | None
    limit: bool
    """A limit of CPython's parser, not a syntax error: no newer Python reads it either."""


def _parse(source: str, first_line: int = 1) -> tuple[ast.Module | None, _Failure]:
    """ast's tree of `source`, which starts at `first_line` of its cell, or why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for "\d" in student strings
            return ast.parse("\n" * (first_line - 1) + source), _Failure("", None, False)
    except SyntaxError as e:
        message = e.msg or "invalid syntax"
        return None, _Failure(message, e.lineno, any(limit in message for limit in _LIMITS))
    except (ValueError, MemoryError, RecursionError) as e:  # null bytes; nesting the parser cannot hold
        return None, _Failure(str(e) or "too deeply nested", None, not isinstance(e, ValueError))


def _within_depth(tree: ast.Module) -> Reading:
    """The tree less its top-level statements nested deeper than MAX_DEPTH (the module counts)."""
    deep = [stmt for stmt in tree.body if _depth(stmt) + 1 > MAX_DEPTH]
    if not deep:
        return Reading(tree)
    reason = f"nested more than {MAX_DEPTH} levels deep"
    kept = [stmt for stmt in tree.body if stmt not in deep]
    skipped = tuple(Skipped(s.lineno, s.end_lineno or s.lineno, reason) for s in deep)
    if not kept:
        return Reading(None, reason, deep[0].lineno)
    return Reading(ast.Module(body=kept, type_ignores=[]), skipped=skipped)


def _depth(tree: ast.AST) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


@dataclass(frozen=True)
class _Statement:
    lines: Lines
    source: str
    tree: ast.Module | None
    failure: _Failure


def _recover(sources: dict[int, str], failures: dict[int, _Failure]) -> dict[int, Reading]:
    """Readings of the cells `ast` rejected, with one child for all their newer-syntax candidates."""
    statements: dict[int, list[_Statement]] = {}
    for i, source in sources.items():
        if len(source) <= MAX_RECOVERED_CHARS:
            statements[i] = [_statement(lines, source) for lines in _split(source)]
    # The whole cell first: a newer construct can span lines parso (pre-3.12 f-strings) splits.
    # Nothing that hits a limit of CPython's parser goes to the child: newer Pythons share those
    # limits, and such input is what makes LibCST slow or crash.
    wholes = [i for i, ss in statements.items() if not failures[i].limit and not any(s.failure.limit for s in ss)]
    parts = [(i, s) for i, ss in statements.items() for s in ss if s.tree is None and not s.failure.limit]
    answers = _downlevel([sources[i] for i in wholes] + [s.source for _, s in parts])
    whole_answers = dict(zip(wholes, answers))
    part_answers = {id(s): a for (_, s), a in zip(parts, answers[len(wholes):])}
    readings = {}
    for i, failure in failures.items():
        whole = _from_newer(whole_answers.get(i), 1)
        if whole is not None:
            readings[i] = whole
        elif i in statements:
            readings[i] = _combine(statements[i], part_answers, failure)
        else:
            readings[i] = Reading(None, f"{failure.message}; the cell is too long to read statement by statement",
                                  failure.line)
    return readings


def _split(source: str) -> list[Lines]:
    """The line ranges of the top-level statements parso finds, broken ones included."""
    import parso  # only for a cell ast rejects: ~70 ms with its grammar

    try:
        module = parso.load_grammar(version=_PARSO_GRAMMAR).parse(source, error_recovery=True)
        ranges: list[Lines] = []
        for child in module.children:
            if child.type in ("endmarker", "newline"):
                continue
            (line, _), (end_line, end_column) = child.start_pos, child.end_pos
            end_line = max(line, end_line if end_column else end_line - 1)  # (n, 0): ends with line n-1's break
            if ranges and line <= ranges[-1].end_line:  # pieces of one broken line are one statement
                ranges[-1] = Lines(ranges[-1].line, max(end_line, ranges[-1].end_line))
            else:
                ranges.append(Lines(line, end_line))
        return ranges
    except RecursionError:  # parso's tree is recursive too; such nesting is not a statement to save
        return [Lines(1, source.count("\n") + 1)]


def _statement(lines: Lines, cell: str) -> _Statement:
    text = "".join(cell.splitlines(keepends=True)[lines.line - 1:lines.end_line])
    tree, failure = _parse(text, lines.line)
    return _Statement(lines, text, tree, failure)


def _combine(statements: list[_Statement], answers: dict[int, dict | None], failure: _Failure) -> Reading:
    """The cell's tree from the statements that read, directly or as newer syntax."""
    body: list[ast.stmt] = []
    skipped: list[Skipped] = []
    newer: list[Newer] = []
    for s in statements:
        reading = (_within_depth(s.tree) if s.tree is not None else _from_newer(answers.get(id(s)), s.lines.line)
                   or Reading(None, s.failure.message))
        if reading.tree is None:
            skipped.append(Skipped(s.lines.line, s.lines.end_line, reading.error))
            continue
        body.extend(reading.tree.body)
        skipped.extend(reading.skipped)
        newer.extend(reading.newer)
    if not body:
        return Reading(None, failure.message, failure.line)
    return Reading(ast.Module(body=body, type_ignores=[]), skipped=tuple(skipped), newer=tuple(newer))


def _from_newer(answer: dict | None, first_line: int) -> Reading | None:
    """The child's 3.11 code for text starting at `first_line`, parsed by the grader's own `ast`;
    None unless it holds newer syntax (what 3.12+ reads just as 3.11 does is still an error)."""
    if not answer or not isinstance(answer.get("python"), str) or not answer.get("statements"):
        return None
    tree, _ = _parse(answer["python"], first_line)
    reading = _within_depth(tree) if tree is not None else None
    if reading is None or reading.tree is None:
        return None
    try:
        found = {first_line - 1 + int(s["line"]): [(str(what), bool(exact)) for what, exact in s["syntax"]]
                 for s in answer["statements"]}
    except (KeyError, TypeError, ValueError):
        return None
    newer = []
    for stmt in reading.tree.body:
        line = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
        here = [f for at, fs in found.items() if line <= at <= (stmt.end_lineno or stmt.lineno) for f in fs]
        if here:
            syntax = tuple(dict.fromkeys(what for what, _ in here))
            newer.append(Newer(stmt.lineno, stmt.end_lineno or stmt.lineno, syntax, all(exact for _, exact in here)))
    return Reading(reading.tree, skipped=reading.skipped, newer=tuple(newer))


def _downlevel(texts: list[str]) -> list[dict | None]:
    """The child's answer for each text (see downlevel.py), None where it gave none."""
    if not texts:
        return []
    try:
        done = subprocess.run([sys.executable, "-I", str(_DOWNLEVEL)], input=json.dumps(texts), text=True,
                              capture_output=True, timeout=DOWNLEVEL_TIMEOUT_S, check=False)
        answers = json.loads(done.stdout) if done.returncode == 0 else None
    except (subprocess.TimeoutExpired, OSError, ValueError):
        answers = None
    # The child's answer is checked like any input: the parent parses its code again itself.
    if not isinstance(answers, list) or len(answers) != len(texts):
        return [None] * len(texts)
    return [a if isinstance(a, dict) else None for a in answers]


__all__ = ["GRADER_PYTHON", "MAX_DEPTH", "Lines", "Newer", "Reading", "Skipped", "read_cells"]
