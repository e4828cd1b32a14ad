"""What the code that prints a metric says about it, for the outputs that do not say it themselves.

Two readings, both from the syntax trees, nothing executed:

- the label each printed value follows: `f"| train {train_loss:.4f} | val {val_loss:.4f}"` prints
  "| train 0.2697 | val 0.4818": the words just before a placeholder ("train") stand for the
  expression after them (`train_loss`) on a line that holds the f-string's other words too. Where
  several f-strings could print the line, the label stands for the one metric among them, or for
  nothing.
- the evaluation split a cell's code reads: `test_loader` and `testset` are the test split,
  `val_loader` and `X_valid` the validation split; a cell that reads one of them only says which
  split a bare "Accuracy: 0.61" it prints is, one that reads both says nothing, and one that reads
  neither takes the splits of the cells that computed what it prints.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass

from grader.analysis.source import ParsedCell

_TEST_NAME = re.compile(r"^(?:test|testing|tst)(?:set|loader|data|dataset|dl|ds|iter|x|y|images|labels)?$")
_VAL_NAME = re.compile(r"^(?:val|valid|validation|dev)(?:set|loader|data|dataset|dl|ds|iter|x|y|images|labels)?$")
_METRIC_WORD = re.compile(r"\b(loss|cost|acc|accuracy|correct)\b")
_WORD = re.compile(r"[a-z]+")
_SNAKE = re.compile(r"(?<=[a-z])_(?=[a-z])")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_LABEL_CHARS = 60
"""A label is read from the last characters before a value: the words of a log's column."""


@dataclass(frozen=True)
class Placeholder:
    """A value an f-string prints: the expression, and the words of the f-string's own text."""

    expression: str
    words: frozenset[str]
    """A line the f-string printed holds each of them: f"train {n} | val {m}" does not print
    "[run] epoch 3/30 | train 0.27 | val 0.48 | val acc 85.0%"."""


@dataclass(frozen=True)
class Printing:
    """What the notebook's code says about the values it prints."""

    labels: dict[str, tuple[Placeholder, ...]]
    """Label (normalized words before a placeholder) -> the values printed after it."""
    splits: dict[int, str]
    """Code cell index -> 'test' or 'val', the one evaluation split the cell's code reads, or
    'both' (cells that read neither are not listed)."""

    def expression_after(self, text: str, line: str) -> str:
        """The expression the code prints after the words that end `text` on `line`: the one of
        the f-strings that could print the line, or the one of them that names a metric; else ''."""
        line_words = set(_WORD.findall(line.lower()))
        fits = {p.expression for p in self.labels.get(label_before(text), ()) if p.words <= line_words}
        if len(fits) == 1:
            return fits.pop()
        metrics = {e for e in fits if _METRIC_WORD.search(words_of(e))}
        return metrics.pop() if len(metrics) == 1 else ""


def read_printing(cells: tuple[ParsedCell, ...]) -> Printing:
    labels: dict[str, list[Placeholder]] = {}
    splits: dict[int, str] = {}
    read_by_cell: dict[int, set[str]] = {}
    assigned_in: dict[str, int] = {}
    for parsed in cells:
        if parsed.tree is None:
            continue
        index = parsed.cell.index
        for node in ast.walk(parsed.tree):
            for label, placeholder in _placeholders(node):
                if label:
                    labels.setdefault(label, []).append(placeholder)
        read_by_cell[index] = splits_read(parsed.tree)
        loaded, stored = _names(parsed.tree)
        # A cell that prints what earlier cells computed (`print(overall_accuracy)`) evaluates on
        # the data those cells read.
        sources = {assigned_in[n] for n in loaded - stored if n in assigned_in}
        read = read_by_cell[index] or set().union(*(read_by_cell[c] for c in sources))
        if read:
            splits[index] = next(iter(read)) if len(read) == 1 else "both"
        assigned_in.update(dict.fromkeys(stored, index))
    return Printing({label: tuple(found) for label, found in labels.items()}, splits)


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The names a tree reads and the names it assigns."""
    loaded, stored = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (stored if isinstance(node.ctx, ast.Store) else loaded).add(node.id)
    return loaded, stored


def _placeholders(node: ast.AST) -> list[tuple[str, Placeholder]]:
    """(label, placeholder) for each value an f-string or a "...{}...".format(...) call prints."""
    if isinstance(node, ast.JoinedStr):
        parts = [(p.value, None) if isinstance(p, ast.Constant) and isinstance(p.value, str) else ("", p.value)
                 for p in node.values if isinstance(p, (ast.Constant, ast.FormattedValue))]
        return _labelled([(text, ast.unparse(value) if value else None) for text, value in parts])  # type: ignore[arg-type]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)):
        return _labelled(_format_parts(node.func.value.value, node))
    return []


def _labelled(parts: list[tuple[str, str | None]]) -> list[tuple[str, Placeholder]]:
    """Literal text and expressions in order -> each expression with the label before it."""
    words = frozenset(_WORD.findall(snake_to_words("".join(t for t, _ in parts).lower())))
    labelled, literal = [], ""
    for text, expression in parts:
        literal += text
        if expression is not None:
            labelled.append((label_before(literal), Placeholder(expression, words)))
            literal = ""
    return labelled


def _format_parts(template: str, call: ast.Call) -> list[tuple[str, str | None]]:
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    parts: list[tuple[str, str | None]] = []
    automatic = 0
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return []
    for literal, field, _, _ in parsed:
        parts.append((literal, None))
        if field is None:
            continue
        name = field.split(".", 1)[0].split("[", 1)[0]
        if name == "":
            name, automatic = str(automatic), automatic + 1
        value = call.args[int(name)] if name.isdigit() and int(name) < len(call.args) else keywords.get(name)
        if value is not None:
            parts.append(("", ast.unparse(value)))
    return parts


def snake_to_words(text: str) -> str:
    """val_accuracy -> val accuracy (lowercase text)."""
    return _SNAKE.sub(" ", text)


def label_before(text: str) -> str:
    """The words that end `text` ("[run] epoch 3/30 | train " -> "train"), lowercased, without the
    colon or equals sign between them and their value."""
    text = snake_to_words(text[-_LABEL_CHARS:].lower()).rstrip(" :=\t")
    start = len(text)
    while start > 0 and (text[start - 1].isalpha() or text[start - 1] in " _-"):
        start -= 1
    return " ".join(text[start:].replace("_", " ").split())


def words_of(expression: str) -> str:
    """An expression as words: `valAccs[-1] * 100` -> "val accs 1 100"."""
    spaced = _CAMEL.sub(" ", expression)
    return " ".join(re.split(r"[^A-Za-z0-9]+|_", spaced)).lower()


def splits_read(tree: ast.AST) -> set[str]:
    """The evaluation splits ('test', 'val') whose data the code names."""
    found = set()
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
        for word in words_of(name).split() if name else ():
            if _TEST_NAME.match(word):
                found.add("test")
            elif _VAL_NAME.match(word):
                found.add("val")
    return found
