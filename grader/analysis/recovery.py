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
3. a class or function that still does not parse is read without the statements parso finds
   broken inside it (each becomes `pass`): it is `Partial`, for the analysis only, and its
   broken statements are `Skipped`;
4. what none of these reads is `Skipped`, with its lines and ast's reason.

Limits stay limits: a statement nested deeper than MAX_DEPTH, or one that hits a limit of
CPython's parser (nesting, recursion, memory), is skipped; newer Pythons share those limits, so
it is not handed to the child. parso and the child are paid for only by a cell `ast` rejects,
and within budgets for the whole notebook (their time grows with the text they are given): parso
reads at most MAX_RECOVERED_TOTAL characters of broken cells, the child at most
MAX_DOWNLEVEL_CHARS in MAX_DOWNLEVEL_TEXTS texts, both only while the reading's deadline lasts.
The child is a sandboxed process (grader.sandbox, the isolation detected once per process): no
network, no files of the grader's, capped memory and time; where no sandbox works it is not run.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import warnings
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable, Iterator

from grader.analysis.limits import Deadline, cells_named
from grader.errors import GraderError, SandboxError

GRADER_PYTHON = f"Python {sys.version_info.major}.{sys.version_info.minor}"
# Deeper trees would make the recursive parts of `ast` (unparse, the compiler) overflow the stack.
MAX_DEPTH = 200
# A failing cell larger than this is skipped whole: parso's time grows with the text (about 6 s a
# million characters), and no notebook cell a student writes by hand comes near it (the largest
# seen holds 8,000). The total is for all of a notebook's failing cells together.
MAX_RECOVERED_CHARS = 100_000
MAX_RECOVERED_TOTAL = 200_000
# The child reads and rewrites a few statements in milliseconds; LibCST takes 20-40 s a million
# characters, and pathological input can make it take minutes or crash: then the statements are
# read as if it had said no. A notebook's texts (whole cells, then their failing statements) go to
# it up to these budgets; the rest is read as 3.11 only.
DOWNLEVEL_TIMEOUT_S = 10
MAX_DOWNLEVEL_CHARS = 60_000
MAX_DOWNLEVEL_TEXTS = 200
_DOWNLEVEL_MIN_S = 1.0  # less time left than this: the child is not started
_DOWNLEVEL_MEMORY = 2**30
_DOWNLEVEL = Path(__file__).with_name("downlevel.py")
# SyntaxError messages of CPython's own parser limits (the same in 3.12+).
_LIMITS = ("too many nested parentheses", "too many levels of indentation", "too deeply", "too complex")
# "unterminated string literal (detected at line 3)", "... does not match opening parenthesis '(' on line 2"
_LINE_IN_MESSAGE = re.compile(r"(?<=\bline )\d++")
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

    @property
    def why(self) -> tuple[str, str]:
        """Where and why the grader cannot run it when it does not run, and what to do."""
        return (f"{self.where} with {'; '.join(self.syntax)}, syntax the grader's {GRADER_PYTHON} has no equivalent for",
                "write the class without that syntax")


@dataclass(frozen=True)
class Partial(Lines):
    """A class or function read without its statements that are not valid Python (each `Skipped`):
    the analysis reads what is left, but running it would run what the notebook never defined."""

    broken: tuple[Lines, ...] = ()

    @property
    def why(self) -> tuple[str, str]:
        """Where and why the grader cannot run it ('lines 3-9 with ...'), and what to do."""
        return f"{self.where} with statements that are not valid Python ({', '.join(b.where for b in self.broken)})", "fix them"


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
    partial: tuple[Partial, ...] = ()


def read_cells(sources: Iterable[str], deadline: Deadline) -> tuple[list[Reading], tuple[str, ...]]:
    """Each source (a cell's Python) as a tree, and notes on what recovery could not do. `sources` is
    drawn one at a time while `deadline` lasts (its producer may transform each cell as it goes):
    a reading for each source drawn; the cells `ast` rejects are recovered together."""
    readings: list[Reading | None] = []
    failed: dict[int, _Failure] = {}
    drawn: list[str] = []
    for source in _until(deadline, sources):
        drawn.append(source)
        tree, failure = _parse(source)
        if tree is not None:
            readings.append(_within_depth(tree))
        else:
            readings.append(None)
            failed[len(drawn) - 1] = failure
    recovered, notes = _recover({i: drawn[i] for i in failed}, failed, deadline)
    for i, reading in recovered.items():
        readings[i] = reading
    return readings, notes  # type: ignore[return-value]


def _until(deadline: Deadline, items: Iterable[str]) -> Iterator[str]:
    """`items`, each drawn only while the deadline has not passed."""
    it = iter(items)
    while not deadline.passed and (item := next(it, None)) is not None:
        yield item


@dataclass(frozen=True)
class _Failure:
    message: str
    line: int | None
    limit: bool
    """A limit of CPython's parser, not a syntax error: no newer Python reads it either."""


def _parse(source: str, first_line: int = 1) -> tuple[ast.Module | None, _Failure]:
    """ast's tree of `source`, which starts at `first_line` of its cell, or why not."""
    shift = first_line - 1  # line numbers stay the cell's (a shift, not blank lines: linear in the statements)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for "\d" in student strings
            tree = ast.parse(source)
        return (ast.increment_lineno(tree, shift) if shift else tree), _Failure("", None, False)
    except SyntaxError as e:
        message = _LINE_IN_MESSAGE.sub(lambda m: str(int(m.group(0)) + shift), e.msg or "invalid syntax")
        line = e.lineno + shift if e.lineno else None
        return None, _Failure(message, line, any(limit in message for limit in _LIMITS))
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
    broken: tuple[Lines, ...] = ()
    """In a class or function: the statements parso found broken inside it."""


def _recover(sources: dict[int, str], failures: dict[int, _Failure],
             deadline: Deadline) -> tuple[dict[int, Reading], tuple[str, ...]]:
    """Readings of the cells `ast` rejected, with one child for all their newer-syntax candidates,
    and notes on what the budgets and the deadline left out."""
    statements: dict[int, list[_Statement]] = {}
    too_long: dict[int, str] = {}
    split_chars = 0
    for i, source in sources.items():
        if len(source) > MAX_RECOVERED_CHARS:
            too_long[i] = "the cell is too long to read statement by statement"
        elif split_chars + len(source) > MAX_RECOVERED_TOTAL:
            too_long[i] = (f"the notebook's cells that do not parse hold more than {MAX_RECOVERED_TOTAL:,} characters; "
                           "this one was not read statement by statement")
        elif deadline.passed:
            too_long[i] = "the notebook took too long to read for this cell to be read statement by statement"
        else:
            split_chars += len(source)
            lines = source.splitlines(keepends=True)
            statements[i] = [_statement(where, broken, lines) for where, broken in _split(source)]
    # The whole cell first: a newer construct can span lines parso (pre-3.12 f-strings) splits.
    # Nothing that hits a limit of CPython's parser goes to the child: newer Pythons share those
    # limits, and such input is what makes LibCST slow or crash.
    candidates: list[tuple[int, object, str]] = []  # (cell, key of its answer, text)
    for i, ss in statements.items():
        if not failures[i].limit and not any(s.failure.limit for s in ss):
            candidates.append((i, ("cell", i), sources[i]))
        candidates += [(i, id(s), s.source) for s in ss if s.tree is None and not s.failure.limit]
    sent, unsent = _within_budget(candidates)
    answers, notes = _downlevel([text for _, _, text in sent], deadline)
    answered = {key: answer for (_, key, _), answer in zip(sent, answers)}
    readings, read_whole = {}, set()
    for i, failure in failures.items():
        whole = _from_newer(answered.get(("cell", i)), 1)
        if whole is not None:
            readings[i] = whole
            read_whole.add(i)
        elif i in statements:
            readings[i] = _combine(statements[i], answered, failure)
        else:
            readings[i] = Reading(None, f"{failure.message}; {too_long[i]}", failure.line)
    left_out = sorted({i for i, _, _ in unsent} - read_whole)  # a cell read whole lost nothing
    if left_out:
        were = "was" if len(left_out) == 1 else "were"
        notes += (f"syntax newer than {GRADER_PYTHON} is read in at most {MAX_DOWNLEVEL_CHARS:,} characters and "
                  f"{MAX_DOWNLEVEL_TEXTS} statements of a notebook; {cells_named(left_out)} {were} read as "
                  f"{GRADER_PYTHON} only",)
    return readings, notes


def _within_budget(candidates: list[tuple[int, object, str]]) -> tuple[list, list]:
    """The candidates the child reads (in order, each that still fits its budgets) and those left out."""
    sent, unsent, chars = [], [], 0
    for candidate in candidates:
        text = candidate[2]
        if len(sent) < MAX_DOWNLEVEL_TEXTS and chars + len(text) <= MAX_DOWNLEVEL_CHARS:
            sent.append(candidate)
            chars += len(text)
        else:
            unsent.append(candidate)
    return sent, unsent


def _split(source: str) -> list[tuple[Lines, tuple[Lines, ...]]]:
    """The line ranges of the top-level statements parso finds, broken ones included; for a class or
    function, with the line ranges of the statements broken inside it."""
    import parso  # only for a cell ast rejects: ~70 ms with its grammar

    try:
        module = parso.load_grammar(version=_PARSO_GRAMMAR).parse(source, error_recovery=True)
        ranges: list[tuple[Lines, tuple[Lines, ...]]] = []
        for child in module.children:
            if child.type in ("endmarker", "newline"):
                continue
            line, end_line = _line_range(child)
            broken = _broken_inside(child) if child.type in _DEFINITIONS else ()
            if ranges and line <= ranges[-1][0].end_line:  # pieces of one broken line are one statement
                where, before = ranges[-1]
                ranges[-1] = (Lines(where.line, max(end_line, where.end_line)), before + broken)
            else:
                ranges.append((Lines(line, end_line), broken))
        return ranges
    except RecursionError:  # parso's tree is recursive too; such nesting is not a statement to save
        return [(Lines(1, source.count("\n") + 1), ())]


_DEFINITIONS = ("classdef", "funcdef", "async_funcdef", "async_stmt", "decorated")


def _line_range(node) -> tuple[int, int]:
    """The first and last line of a parso node."""
    (line, _), (end_line, end_column) = node.start_pos, node.end_pos
    return line, max(line, end_line if end_column else end_line - 1)  # (n, 0): ends with line n-1's break


def _broken_inside(node) -> tuple[Lines, ...]:
    """The line ranges of parso's error nodes inside `node`, adjacent ones as one range."""
    found: list[tuple[int, int]] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type in ("error_node", "error_leaf"):
            found.append(_line_range(n))
        else:
            stack.extend(getattr(n, "children", ()))
    merged: list[tuple[int, int]] = []
    for line, end_line in sorted(found):
        if merged and line <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end_line, merged[-1][1]))
        else:
            merged.append((line, end_line))
    return tuple(Lines(line, end_line) for line, end_line in merged)


def _statement(where: Lines, broken: tuple[Lines, ...], lines: list[str]) -> _Statement:
    """The statement at `where` among the cell's `lines` (split once per cell, with their line breaks)."""
    text = "".join(lines[where.line - 1:where.end_line])
    tree, failure = _parse(text, where.line)
    return _Statement(where, text, tree, failure, broken)


def _combine(statements: list[_Statement], answers: dict[int, dict | None], failure: _Failure) -> Reading:
    """The cell's tree from the statements that read, directly, as newer syntax, or (a definition)
    without the statements broken inside it."""
    body: list[ast.stmt] = []
    skipped: list[Skipped] = []
    newer: list[Newer] = []
    partial: list[Partial] = []
    for s in statements:
        reading = (_within_depth(s.tree) if s.tree is not None else _from_newer(answers.get(id(s)), s.lines.line)
                   or _without_broken(s) or Reading(None, s.failure.message))
        if reading.tree is None:
            skipped.append(Skipped(s.lines.line, s.lines.end_line, reading.error))
            continue
        body.extend(reading.tree.body)
        skipped.extend(reading.skipped)
        newer.extend(reading.newer)
        partial.extend(reading.partial)
    if not body:
        return Reading(None, failure.message, failure.line)
    return Reading(ast.Module(body=body, type_ignores=[]), skipped=tuple(skipped), newer=tuple(newer),
                   partial=tuple(partial))


def _without_broken(s: _Statement) -> Reading | None:
    """A class or function read without the statements broken inside it: each becomes `pass` (and
    blank lines, so that lines keep their numbers); None when what is left does not parse either."""
    if not s.broken:
        return None
    lines = s.source.splitlines(keepends=True)
    for b in s.broken:
        first, last = b.line - s.lines.line, b.end_line - s.lines.line
        indent = lines[first][:len(lines[first]) - len(lines[first].lstrip(" \t"))]
        lines[first:last + 1] = [f"{indent}pass\n"] + ["\n"] * (last - first)
    tree, _ = _parse("".join(lines), s.lines.line)
    reading = _within_depth(tree) if tree is not None else None
    if reading is None or reading.tree is None:
        return None
    reasons = [s.failure.message if b.line <= (s.failure.line or 0) <= b.end_line else "invalid syntax" for b in s.broken]
    skipped = tuple(Skipped(b.line, b.end_line, why) for b, why in zip(s.broken, reasons))
    return Reading(reading.tree, skipped=skipped, partial=(Partial(s.lines.line, s.lines.end_line, s.broken),))


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
    lines = sorted(found)
    for stmt in reading.tree.body:
        line = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
        inside = lines[bisect_left(lines, line):bisect_right(lines, stmt.end_lineno or stmt.lineno)]
        here = [f for at in inside for f in found[at]]
        if here:
            syntax = tuple(dict.fromkeys(what for what, _ in here))
            newer.append(Newer(stmt.lineno, stmt.end_lineno or stmt.lineno, syntax, all(exact for _, exact in here)))
    return Reading(reading.tree, skipped=reading.skipped, newer=tuple(newer))


def _downlevel(texts: list[str], deadline: Deadline) -> tuple[list[dict | None], tuple[str, ...]]:
    """The child's answer for each text (see downlevel.py), None where it gave none; a note when it
    could not run."""
    from grader.sandbox.process import Limits, Phase, run_in_sandbox

    none: list[dict | None] = [None] * len(texts)
    seconds = min(DOWNLEVEL_TIMEOUT_S, deadline.left())
    if not texts or seconds < _DOWNLEVEL_MIN_S:
        return none, ()
    isolation = _reader_isolation()
    if isinstance(isolation, str):
        return none, (f"syntax newer than {GRADER_PYTHON} was not read: its reader runs only in a sandbox, "
                      f"and none works here ({isolation})",)
    limits = Limits(memory_bytes=_DOWNLEVEL_MEMORY, disk_bytes=16 * 2**20, processes=16, output_bytes=2**20, threads=1)
    try:
        done = run_in_sandbox(_DOWNLEVEL, phases=(Phase("read", seconds, "the newer-syntax reader"),),
                              isolation=isolation, request=json.dumps(texts), limits=limits)
    except (OSError, GraderError) as e:  # the sandbox could not be set up: read as if the reader said no
        return none, (f"syntax newer than {GRADER_PYTHON} was not read: its sandbox could not start ({e})",)
    # The child's answer is checked like any input: the parent parses its code again itself.
    answers = done.payload if done.ok else None
    if not isinstance(answers, list) or len(answers) != len(texts):
        return none, ()
    return [a if isinstance(a, dict) else None for a in answers], ()


@cache
def _reader_isolation():
    """The sandbox the newer-syntax reader runs in (probed once per process), or why there is none."""
    from grader.sandbox.detect import detect_isolation

    try:
        return detect_isolation()
    except SandboxError as e:
        return str(e)


__all__ = ["GRADER_PYTHON", "MAX_DEPTH", "Lines", "Newer", "Partial", "Reading", "Skipped", "read_cells"]
