"""What one output line, or one table header, says: the metrics it names and their values.

A metric is a keyword (loss, cost, acc, accuracy, correct) followed by a number, or by a list or
array of numbers (a history: its last element). Its split is the nearest qualifier before it on
the line (train, val, test), carried over from the previous metric on the same line when it has
none ("Val Loss: 1.5 Acc: 54%"). A value is reported only when its metric and its split are each
read, from the line or from the code that printed it (printing.py); otherwise the line says why
it was not used (`LineReading.unread`), for `grader check --explain`:

- an unqualified loss is the training loss;
- an accuracy without a split takes it from the expression the code prints it from
  (`f"Accuracy: {test_acc}"`), then from the one evaluation split the cell's code reads, then
  from the split the previous lines of the same output named ("Test set: Average loss: 1.4" /
  "Accuracy: 61 %"); on an epoch log's line it is the training accuracy; otherwise it is unread;
- a number after a split word only ("| train 0.2697 | val 0.4818 |") takes its metric from the
  expression the code prints there (`f"| train {train_loss:.4f}"`), or is unread;
- best/average/peak figures and per-class accuracies are skipped, and an error rate ("test error:
  35%") is not turned into an accuracy.

Every pattern is linear in what it reads (grader/analysis/limits.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.analysis.limits import MAX_LINE_CHARS, head_and_tail
from grader.analysis.printing import Printing, label_before, snake_to_words, words_of

METRICS = ("train_loss", "val_loss", "val_acc", "test_acc")

_ANSI = re.compile(r"\x1b\[[0-9;]*+[A-Za-z]")
KEYWORD = re.compile(r"\b(loss|cost|acc|accuracy|correct)\b")
_QUALIFIER = re.compile(r"\b(train|training|trn|val|valid|validation|validate|dev|test|testing)\b")
SKIP_MODIFIER = re.compile(r"\b(best|average|avg|mean|highest|max|peak|top|min|lowest)\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:e[-+]?\d+)?|\.\d+)(?:\s*/\s*(\d+))?(\s*%)?")
# What may stand between a metric's name and a list of its values: "'val_acc': array([", "loss
# history: [" (a few words, then a colon or an equals sign). Possessive: each run of spaces is
# matched one way only (three overlapping `\s*` backtracked in N^3); the lookbehind starts it only
# where a run starts, so that even a search is linear.
_HISTORY = re.compile(
    r"""(?<!['"\])\s])['"\])\s]*+(?:[a-z][a-z ]{0,40}+[:=])?+[:=]?+\s*+(?:(?:np\.|numpy\.)?array\(|tensor\()?+\s*+\["""
)
_EPOCH = (
    re.compile(r"\bepoch\b[\s:#\[]*(\d+)"),
    re.compile(r"^\s*\[\s*(\d+)\s*,\s*\d+\s*\]"),  # the PyTorch tutorial's "[2,  2000] loss: ..."
    re.compile(r"^\s*(\d+)\s+(?:train|trn|loss)\b"),  # "30 train loss 0.03 ..."
)
KERAS_PROGRESS = re.compile(r"^\s*\d+/\d+\b.*\s-\s")  # "352/352 ━━━ 5s - accuracy: 0.6 - loss: 1.1"
PROGRESS = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")  # tqdm: "| 3/50 [00:12<...]"
CIFAR_CLASS = re.compile(r"\b(plane|airplane|car|automobile|bird|cat|deer|dog|frog|horse|ship|truck)s?\b")
_SPLIT = {"train": "train", "training": "train", "trn": "train", "tr": "train", "val": "val", "valid": "val",
          "validation": "val", "validate": "val", "dev": "val", "va": "val", "test": "test", "testing": "test", "te": "test"}
_LINE_SPLITS = ("train", "training", "trn", "val", "valid", "validation", "validate", "dev", "test", "testing")
# "test error: 35%": an accuracy's complement, which the grader does not compute (a value is what was printed).
_ERROR_RATE = re.compile(r"\b(?:train|training|val|valid|validation|test|testing)[ \t]*+error(?:[ \t]*+rate)?+[ \t]*+[:=]?+[ \t]*+\d")
# sklearn's classification_report header; atomic: the first "precision" of a line decides, so a line
# of many is read once (a backtracking `.*precision.*recall` was quadratic in the line).
_REPORT_HEADER = re.compile(r"^(?>[^\n]*?\bprecision\b)[^\n]*?\brecall\b", re.M)
# Words a table's column name may hold besides its metric: "test acc (%)", "Final Val Loss".
_COLUMN_WORDS = {"final", "last", "set", "score", "top1", "top", "1", "value", "overall", "model", "the", "on", "of"}


@dataclass(frozen=True)
class LineContext:
    """What the reader knows about a line besides its text."""

    epoch_line: bool = False
    """The line is part of an epoch log (or a history)."""
    printing: Printing = field(default_factory=lambda: Printing({}, {}))
    code_split: str = ""
    """The evaluation split the printing cell's code reads: 'test', 'val', 'both' or ''."""
    carried_split: str = ""
    """The split the previous lines of the same output named last."""


@dataclass(frozen=True)
class LineReading:
    found: tuple[tuple[str, float], ...] = ()
    """(metric, value) in the order the line gives them."""
    unread: tuple[str, ...] = ()
    """Why a part of the line that looked like a metric was not used."""
    split: str = ""
    """The split the line names last ('' if none): carried to the lines after it."""


def normalize(text: str) -> str:
    return snake_to_words(_ANSI.sub("", text).lower())


def epoch_number(line: str) -> int | None:
    for pattern in _EPOCH:
        m = pattern.search(line)
        if m:
            return int(m.group(1))
    return None


def read_line(line: str, context: LineContext = LineContext()) -> LineReading:
    """The metrics a normalized line reports, and why any metric-like part of it was not used."""
    if CIFAR_CLASS.search(line):
        unread = ("a per-class accuracy, not the model's",) if KEYWORD.search(line) else ()
        return LineReading(unread=unread)
    found: list[tuple[str, float]] = []
    unread: list[str] = []
    # "Cost: 0.49" is the loss of an epoch log ("Epoch: 001/010 | Batch 0050/0391 | Cost: 1.8193");
    # elsewhere a cost is as likely time or FLOPs, so it names nothing there.
    keywords = [kw for kw in KEYWORD.finditer(line) if context.epoch_line or kw.group(1) != "cost"]
    split = ""
    segment_start = 0
    for i, kw in enumerate(keywords):
        found += _unnamed_values(line, segment_start, kw.start(), context, unread)
        end = keywords[i + 1].start() if i + 1 < len(keywords) else len(line)
        kind = "loss" if kw.group(1) in ("loss", "cost") else "acc"
        value, value_pos, resume, history = _value_after(line, kw.end(), end, kind)
        context_text = line[segment_start : value_pos if value_pos >= 0 and not history else kw.end()]
        qualifiers = _QUALIFIER.findall(context_text)
        if qualifiers:
            split = _SPLIT[qualifiers[-1]]
        modifier = SKIP_MODIFIER.search(line[segment_start : kw.start()])
        segment_start = resume
        if value is None:
            continue
        if modifier:
            unread.append(f"'{modifier.group(1)} {kw.group(1)}' is not the last value")
            continue
        printed_after = line[: value_pos if value_pos >= 0 and not history else kw.end()]
        metric, why = _metric_for(kind, split, printed_after, line, context, epoch_line=context.epoch_line or history)
        if metric:
            found.append((metric, value))
        elif why:
            unread.append(why)
    found += _unnamed_values(line, segment_start, len(line), context, unread)
    if _ERROR_RATE.search(line):
        unread.append("an error rate: the grader reads accuracies as printed, not 1 - error; print 'test accuracy: ...'")
    named = _QUALIFIER.findall(line)
    return LineReading(tuple(found), tuple(unread), _SPLIT[named[-1]] if named else "")


def _metric_for(kind: str, split: str, before: str, line: str, context: LineContext, epoch_line: bool) -> tuple[str | None, str]:
    """The metric a value of `kind` is, and why not when it is none."""
    if kind == "loss":
        metric = {"": "train_loss", "train": "train_loss", "val": "val_loss"}.get(split)
        return metric, "" if metric or split == "test" else f"a {split} loss"
    if split:
        return {"val": "val_acc", "test": "test_acc"}.get(split), ""  # a training accuracy is not reported
    printed = _split_of(context.printing.expression_after(before, line))
    if printed:
        return {"val": "val_acc", "test": "test_acc"}.get(printed), ""
    if epoch_line:
        return None, "an epoch log's accuracy without a split is its training accuracy"
    # Code that reads both splits says the line could be either: the lines above do not decide then.
    split = context.code_split or context.carried_split
    if split in ("val", "test"):
        return f"{split}_acc", ""
    return None, ("an accuracy with no split (train, validation or test) on its line, in the code that prints "
                  "it or above it: print 'test accuracy: ...' or 'val accuracy: ...'")


def _unnamed_values(line: str, start: int, end: int, context: LineContext, unread: list[str]) -> list[tuple[str, float]]:
    """Values between `start` and `end` with no metric word, named by the split word before them
    ("| train 0.2697"): read through the expression the code prints there, or listed as unread."""
    found: list[tuple[str, float]] = []
    previous = start
    for m in _NUMBER.finditer(line, start, end):
        text = line[previous : m.start()]
        label = label_before(text)
        previous = m.end()
        split_word = label.rsplit(" ", 1)[-1]
        if split_word not in _LINE_SPLITS:
            continue
        expression = context.printing.expression_after(text, line)
        words = words_of(expression)
        kw = KEYWORD.search(words)
        split = _split_of(expression) or _SPLIT[split_word]
        if not kw:
            unread.append(f"'{label}' is followed by a number with no metric name: print '{label} loss: ...' or '{label} acc: ...'")
            continue
        kind = "loss" if kw.group(1) in ("loss", "cost") else "acc"
        value, _ = first_plausible(line, m.start(), m.end(), kind)
        metric = {"loss": {"train": "train_loss", "val": "val_loss"}, "acc": {"val": "val_acc", "test": "test_acc"}}[kind].get(split)
        if value is not None and metric:
            found.append((metric, value))
    return found


def _split_of(expression: str) -> str:
    """The split an expression's words name (`va_loss`, `hist.val_acc`), or ''."""
    named = {_SPLIT[w] for w in words_of(expression).split() if w in _SPLIT}
    return named.pop() if len(named) == 1 else ""


def _value_after(line: str, start: int, end: int, kind: str) -> tuple[float | None, int, int, bool]:
    """The value a metric's name introduces, before the next name at `end`: (value, where it is,
    where the next metric's text starts, whether it is a history).

    A list or array right after the name, closed before the next name, is a history: its last
    plausible element is the value."""
    opening = _HISTORY.match(line, start, end)
    close = line.find("]", opening.end(), end) if opening else -1
    if opening and close >= 0:
        inner = line.rfind("[", opening.end(), close)  # nested lists: the last one's elements
        for number in reversed(list(_NUMBER.finditer(line, max(opening.end(), inner + 1), close))):
            value, position = first_plausible(line, number.start(), number.end(), kind)
            if value is not None:
                return value, position, close, True
        return None, -1, close, True
    value, position = first_plausible(line, start, end, kind)
    return value, position, max(start, position), False


def first_plausible(line: str, start: int, end: int, kind: str) -> tuple[float | None, int]:
    for m in _NUMBER.finditer(line, start, end):
        number, denominator, percent = float(m.group(1)), m.group(2), m.group(3)
        if kind == "loss":
            # A diverged loss is a loss at any size; a whole number that large is a count (iterations, images).
            if denominator or percent or (number > 1e4 and m.group(1).isdigit()):
                continue
            return number, m.start()
        # Rounded so that 77.08% reads as 0.7708, not 0.7707999999999999.
        if denominator:
            total = float(denominator)
            if 0 < number <= total:
                return round(number / total, 12), m.start()
            continue
        if percent or 1 < number <= 100:
            if number <= 100:
                return round(number / 100, 12), m.start()
            continue
        if 0 <= number <= 1:
            return number, m.start()
    return None, -1


def without_classification_report(text: str) -> str:
    """sklearn's classification_report repeats the accuracy rounded to 2 digits: cut it off."""
    header = _REPORT_HEADER.search(text)
    return text[: header.start()] if header else text


def logical_lines(text: str) -> list[str]:
    """Lines, with a list that numpy or pprint broke over indented lines joined back into one; each
    at most MAX_LINE_CHARS long (its head and its tail)."""
    lines = text.splitlines()
    joined: list[str] = []
    i = 0
    while i < len(lines):
        parts, depth, j = [lines[i]], lines[i].count("[") - lines[i].count("]"), i
        while depth > 0 and j + 1 < len(lines) and lines[j + 1][:1].isspace() and j - i < 1000:
            j += 1
            parts.append(lines[j].strip())
            depth += lines[j].count("[") - lines[j].count("]")
        joined.append(head_and_tail(" ".join(parts), MAX_LINE_CHARS))
        i = j + 1
    return joined


# --- tables (pandas DataFrames as text/html or text/plain) ---------------------------------


def names_a_metric(rows: list[list[str]]) -> bool:
    """A table whose column names, or row labels (one column per model), name a loss/acc."""
    names = rows[0] + [r[0] for r in rows[1:]] if rows else []
    return any(KEYWORD.search(normalize(n)) for n in names)


def metric_columns(header: list[str]) -> dict[int, str]:
    """Column index -> metric, for the columns a table's header names as one: a metric, its split
    and a unit at most ("test acc (%)"); "epochs to 70% val acc" or "train-val gap (loss)" are
    other quantities, and best_* figures are skipped."""
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        norm = normalize(name)
        kw = KEYWORD.search(norm)
        words = re.findall(r"[a-z0-9]+", norm)
        if not kw or SKIP_MODIFIER.search(norm) or any(
                w not in _COLUMN_WORDS and w not in _SPLIT and not KEYWORD.fullmatch(w) for w in words):
            continue
        qualifiers = _QUALIFIER.findall(norm)
        kind = "loss" if kw.group(1) == "loss" else "acc"
        split = _SPLIT[qualifiers[-1]] if qualifiers else ""
        metric = {"loss": {"": "train_loss", "train": "train_loss", "val": "val_loss"},
                  "acc": {"val": "val_acc", "test": "test_acc"}}[kind].get(split)
        if metric:
            columns[i] = metric
    return columns
