"""Read the metrics a notebook reports from its saved outputs, and attribute them to models.

Outputs are read line by line (a list broken over several lines is one line). A metric is a
keyword (loss, acc, accuracy, correct) followed by a number, or by a list or array of numbers (a
history: its last element); its split is the nearest qualifier before it on the line (train,
val, test), carried over from the previous metric on the same line when the metric has none
("Val Loss: 1.5 Acc: 54%"). An unqualified loss is a training loss; an unqualified accuracy is a
test accuracy unless the line is an epoch log (or an indented line continuing one, or a
history). Best/average/peak figures are skipped: the value kept is the last one printed, and
when a model's epoch count starts again its earlier run no longer counts.

Each line belongs to a model by, in order: the model it names (a class name, or a run key the
code gives the class, such as "baseline" in {"baseline": BaselineCNN()}; a line naming several
is a comparison and is skipped), the cell's own models in turn (a restart of the epoch count,
or a second test accuracy, moves to the next one), then the last model used. Tables (pandas
DataFrames as text/html or text/plain) are read by column names, each row belonging to the
model its first naming cell names.

What is read is bounded (grader/analysis/limits.py): an output's last MAX_OUTPUT_CHARS characters,
an HTML table of at most MAX_HTML_CHARS, each logical line's first and last MAX_LINE_CHARS / 2, and
outputs only until the reading's deadline; every pattern here is linear in what it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from grader.analysis.limits import MAX_HTML_CHARS, MAX_LINE_CHARS, MAX_OUTPUT_CHARS, Deadline, cells_named, head_and_tail
from grader.analysis.tables import html_table, text_table
from grader.analysis.usage import Usage
from grader.notebook import Cell, Notebook, Output

METRICS = ("train_loss", "val_loss", "val_acc", "test_acc")

_ANSI = re.compile(r"\x1b\[[0-9;]*+[A-Za-z]")
_KEYWORD = re.compile(r"\b(loss|cost|acc|accuracy|correct)\b")
_QUALIFIER = re.compile(r"\b(train|training|trn|val|valid|validation|validate|dev|test|testing)\b")
_SKIP_MODIFIER = re.compile(r"\b(best|average|avg|mean|highest|max|peak|top|min|lowest)\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:e[-+]?\d+)?|\.\d+)(?:\s*/\s*(\d+))?(\s*%)?")
# What may stand between a metric's name and a list of its values: "'val_acc': array([". Possessive:
# each run of spaces is matched one way only (three overlapping `\s*` backtracked in N^3); the
# lookbehind starts it only where a run starts, so that even a search is linear.
_HISTORY = re.compile(r"""(?<!['"\])\s])['"\])\s]*+[:=]?+\s*+(?:(?:np\.|numpy\.)?array\(|tensor\()?+\s*+\[""")
_EPOCH = (
    re.compile(r"\bepoch\b[\s:#\[]*(\d+)"),
    re.compile(r"^\s*\[\s*(\d+)\s*,\s*\d+\s*\]"),  # the PyTorch tutorial's "[2,  2000] loss: ..."
    re.compile(r"^\s*(\d+)\s+(?:train|trn|loss)\b"),  # "30 train loss 0.03 ..."
)
_KERAS_PROGRESS = re.compile(r"^\s*\d+/\d+\b.*\s-\s")  # "352/352 ━━━ 5s - accuracy: 0.6 - loss: 1.1"
_PROGRESS = re.compile(r"\|\s*(\d+)/(\d+)\s*\[")  # tqdm over epochs: "| 3/50 [00:12<...]"
_CIFAR_CLASS = re.compile(r"\b(plane|airplane|car|automobile|bird|cat|deer|dog|frog|horse|ship|truck)s?\b")
_SPLIT = {"train": "train", "training": "train", "trn": "train", "val": "val", "valid": "val",
          "validation": "val", "validate": "val", "dev": "val", "test": "test", "testing": "test"}
# A cell's last line that is an expression (what an execute_result shows), not a statement.
_EXPRESSION = re.compile(r"^(?!(?:print|return|import|from|def|class|for|if|while|with|del)\b)[\w.\[\]'\"(), ]++$")
# sklearn's classification_report header; atomic: the first "precision" of a line decides, so a line
# of many is read once (a backtracking `.*precision.*recall` was quadratic in the line).
_REPORT_HEADER = re.compile(r"^(?>[^\n]*?\bprecision\b)[^\n]*?\brecall\b", re.M)


@dataclass(frozen=True)
class Reported:
    """What a notebook's outputs report for one model: the last value of each metric."""

    train_loss: float | None = None
    val_loss: float | None = None
    val_acc: float | None = None
    """Fraction in [0, 1]."""
    test_acc: float | None = None
    """Fraction in [0, 1]."""
    epochs: int | None = None
    """Epoch-level lines printed in the model's last run."""
    evidence: dict[str, str] = field(default_factory=dict)
    """Metric -> where it was read: 'cell N: the line it came from' (for a table, its row and column)."""


@dataclass
class _Track:
    """Mutable accumulator for one model while reading outputs in order."""

    values: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    runs: list[set[int]] = field(default_factory=list)
    progress: int | None = None
    last_epoch: int | None = None

    def epoch(self, number: int) -> bool:
        """Record an epoch number; True when it starts a new run (the count went back)."""
        restart = self.last_epoch is None or number < self.last_epoch
        if restart:
            self.runs.append(set())
            self.progress = None
        self.runs[-1].add(number)
        self.last_epoch = number
        return restart and len(self.runs) > 1

    def forget_earlier_runs(self) -> None:
        """The model is trained again: only this run's values are reported."""
        self.values.clear()
        self.evidence.clear()

    def record(self, metric: str, value: float, evidence: str) -> None:
        self.values[metric] = value
        self.evidence[metric] = evidence

    def freeze(self) -> Reported:
        epochs = len(self.runs[-1]) if self.runs else None
        if self.progress is not None:
            epochs = max(epochs or 0, self.progress)
        return Reported(**{m: self.values.get(m) for m in METRICS}, epochs=epochs, evidence=dict(self.evidence))


class _Names:
    """How outputs name a model: its class name (as written) or a run key the code gives it."""

    def __init__(self, models: list[str], run_keys: dict[str, str]):
        self.models = models
        self.keys = {k: m for k, m in run_keys.items() if m in models}
        self._classes = _alternation(models, re.compile(r"(?<![\w])(?:{})(?![\w])"))
        self._keys = _alternation(list(self.keys), re.compile(r"(?<![\w-])(?:{})(?![\w-])", re.I))

    def on_line(self, line: str) -> list[str]:
        """The distinct models a line names, in order."""
        found: list[tuple[int, str]] = []
        if self._classes:
            found += [(m.start(), m.group(0)) for m in self._classes.finditer(line)]
        if self._keys:
            found += [(m.start(), self.keys[m.group(0).lower()]) for m in self._keys.finditer(line)]
        ordered: list[str] = []
        for _, model in sorted(found):
            if model not in ordered:
                ordered.append(model)
        return ordered

    def of_cell(self, text: str) -> str | None:
        """The model a table cell is, when the whole cell is its name."""
        text = text.strip()
        if text in self.models:
            return text
        return self.keys.get(text.lower())


def _alternation(words: list[str], template: re.Pattern) -> re.Pattern | None:
    if not words:
        return None
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(template.pattern.format(alternatives), template.flags)


def extract_reported(
    notebook: Notebook, usage: Usage, models: list[str], roles: dict[str, str], deadline: Deadline | None = None
) -> tuple[dict[str, Reported], tuple[str, ...]]:
    """Model class -> what its outputs report (models that report anything), and warnings; the
    outputs are read until `deadline` (default: the static reading's own) passes."""
    deadline = deadline or Deadline.after()
    warnings = [
        f"cell {cell.index} prints {len(o.text) / 1e6:.0f} MB of output; only its last {MAX_OUTPUT_CHARS // 1_000_000} MB were read"
        for cell in notebook.code_cells
        for o in cell.outputs
        if len(o.text) > MAX_OUTPUT_CHARS
    ]
    warnings += [f"cell {cell.index} shows an HTML table of {len(o.html):,} characters; only its text was read"
                 for cell in notebook.code_cells for o in cell.outputs
                 if len(o.html) > MAX_HTML_CHARS and "<table" in o.html]
    if not models:
        return {}, tuple(warnings)
    names = _Names(models, usage.run_keys)
    tracks: dict[str, _Track] = {}
    current: str | None = None
    unread: list[int] = []
    for cell in notebook.code_cells:
        if cell.outputs and (unread or deadline.passed):
            unread.append(cell.index)
            continue
        cell_usage = usage.cells.get(cell.index)
        candidates = [m for m in (cell_usage.models if cell_usage else ()) if m in models]
        if not candidates and cell_usage and cell_usage.other_model:
            current = None  # it works with a model that is not a class: its outputs are not our models'
            continue
        if not candidates and current:
            candidates = [current]
        if cell.outputs:
            _read_cell(cell, candidates, names, roles, tracks)
        current = candidates[-1] if candidates else current
    if unread:
        warnings.append(deadline.skipped(f"the outputs of {cells_named(unread)}"))
    found = {m: t.freeze() for m, t in tracks.items()}
    return {m: r for m, r in found.items() if any(getattr(r, k) is not None for k in METRICS)}, tuple(warnings)


def _read_cell(cell: Cell, candidates: list[str], names: _Names, roles: dict[str, str], tracks: dict[str, _Track]) -> None:
    reader = _CellReader(cell.index, candidates, names, roles, tracks)
    for output in cell.outputs:
        if output.kind == "error":
            continue
        if "<table" in output.html and len(output.html) <= MAX_HTML_CHARS:
            reader.table(html_table(output.html))
            continue
        rows = text_table(output.text[:MAX_OUTPUT_CHARS])
        if _names_a_metric(rows):
            reader.table(rows)
            continue
        text = _named_by_expression(cell, output) or output.text[-MAX_OUTPUT_CHARS:]
        reader.lines(_logical_lines(_without_classification_report(text)))


@dataclass
class _CellReader:
    """Reads one cell's outputs in order, moving from one of its models to the next."""

    index: int
    candidates: list[str]
    names: _Names
    roles: dict[str, str]
    tracks: dict[str, _Track]
    active: str | None = None
    tested: set[str] = field(default_factory=set)
    """Models that printed a test accuracy (outside an epoch log) in this cell."""

    def __post_init__(self) -> None:
        self.active = self.candidates[0] if self.candidates else None

    def lines(self, lines: list[str]) -> None:
        in_epoch_record = False
        for raw in lines:
            named = self.names.on_line(raw)
            if len(named) > 1:
                continue  # "LeNet 55% vs WideNet 66%": a comparison, not one model's value
            owner = named[0] if named else self._role_named(raw)
            if owner:
                self.active = owner
            elif self.active is None or _names_another_role(raw, self.roles.get(self.active)):
                continue  # nobody's, or "Proposed test accuracy" while the model here is the baseline
            line = _normalize(raw)
            number = None if _SKIP_MODIFIER.search(line) else _epoch_number(line)  # "best at epoch 7" starts nothing
            if number is not None:
                self._epoch(number, moved_by_name=bool(owner))
            track = self.tracks.setdefault(self.active, _Track())  # type: ignore[arg-type]
            progress = _PROGRESS.search(line)
            # A bar over the epochs says "epoch" without a number; one that names its epoch ("Epoch:2
            # iteration:351 ... | 351/782 [") counts the steps of that epoch.
            if progress and "epoch" in line and number is None:
                track.progress = int(progress.group(1))
            continues = in_epoch_record and raw[:1].isspace()  # "Epoch 5: Train Loss ..." then "    Val Loss ..."
            epoch_line = number is not None or continues or bool(_KERAS_PROGRESS.match(line))
            in_epoch_record = epoch_line
            found = _metrics_in_line(line, epoch_line)
            if not owner and not epoch_line and any(m == "test_acc" for m, _ in found):
                self._next_if_tested_again()
                track = self.tracks.setdefault(self.active, _Track())  # type: ignore[arg-type]
            evidence = f"cell {self.index}: {raw[:1000].strip()[:160]}"
            for metric, value in found:
                track.record(metric, value, evidence)
                if metric == "test_acc" and not epoch_line:
                    self.tested.add(self.active)  # type: ignore[arg-type]

    def _role_named(self, line: str) -> str | None:
        """With several models in the cell, 'Baseline ...' names the one baseline among them."""
        if len(self.candidates) < 2:
            return None
        lowered = line.lower()
        for role in ("baseline", "proposed"):
            holders = [m for m in self.candidates if self.roles.get(m) == role]
            if len(holders) == 1 and role in lowered:
                return holders[0]
        return None

    def _following(self) -> list[str]:
        return self.candidates[self.candidates.index(self.active) + 1:] if self.active in self.candidates else []

    def _epoch(self, number: int, moved_by_name: bool) -> None:
        track = self.tracks.setdefault(self.active, _Track())  # type: ignore[arg-type]
        if not track.epoch(number):
            return
        following = self._following()
        if following and not moved_by_name:
            # The epoch count restarted in a cell that trains several models: the next one.
            track.runs.pop()
            self.active = following[0]
            self.tracks.setdefault(self.active, _Track()).epoch(number)
        else:
            track.forget_earlier_runs()  # the same model trained again: its last run is reported

    def _next_if_tested_again(self) -> None:
        """A second test accuracy in a cell that evaluates several models in turn is the next model's."""
        following = self._following()
        if self.active in self.tested and following:
            self.active = following[0]

    def table(self, rows: list[list[str]]) -> None:
        if len(rows) < 2:
            return
        columns = _metric_columns(rows[0])
        if not columns:
            # Models as columns and metrics as rows: read it transposed.
            transposed = [list(col) for col in zip(*rows)]
            if any(self.names.of_cell(c) for c in rows[0]) and _metric_columns(transposed[0]):
                rows, columns = transposed, _metric_columns(transposed[0])
        if not columns:
            return
        header, body = rows[0], rows[1:]
        epoch_column = next((i for i, n in enumerate(header) if _normalize(n).strip() == "epoch"), None)
        for row in body:
            if any(_CIFAR_CLASS.fullmatch(_normalize(c).strip()) for c in row):
                continue  # a per-class accuracy ('cnnv2  ship  0.953') is not the model's accuracy
            naming = next(((c, m) for c in row if (m := self.names.of_cell(c))), None)
            owner = naming[1] if naming else self.active
            if owner is None:
                continue
            label = naming[0] if naming else row[0]
            track = self.tracks.setdefault(owner, _Track())
            if epoch_column is not None and epoch_column < len(row) and row[epoch_column].isdigit():
                if track.epoch(int(row[epoch_column])):
                    track.forget_earlier_runs()
            for i, metric in columns.items():
                if i >= len(row):
                    continue
                value, _ = _first_plausible(row[i], 0, len(row[i]), "loss" if metric.endswith("loss") else "acc")
                if value is not None:
                    track.record(metric, value, f"cell {self.index}: table row '{label}', column '{header[i]}'")


def _normalize(text: str) -> str:
    text = _ANSI.sub("", text).lower()
    return re.sub(r"(?<=[a-z])_(?=[a-z])", " ", text)  # val_accuracy -> val accuracy


def _epoch_number(line: str) -> int | None:
    for pattern in _EPOCH:
        m = pattern.search(line)
        if m:
            return int(m.group(1))
    return None


def _metrics_in_line(line: str, epoch_line: bool) -> list[tuple[str, float]]:
    if _CIFAR_CLASS.search(line):
        return []  # per-class accuracy ("Accuracy of cat : 45 %") is not the model's accuracy
    found: list[tuple[str, float]] = []
    # "Cost: 0.49" is the loss of an epoch log ("Epoch: 001/010 | Batch 0050/0391 | Cost: 1.8193");
    # elsewhere a cost is as likely time or FLOPs, so it names nothing there.
    keywords = [kw for kw in _KEYWORD.finditer(line) if epoch_line or kw.group(1) != "cost"]
    split = ""
    segment_start = 0
    for i, kw in enumerate(keywords):
        end = keywords[i + 1].start() if i + 1 < len(keywords) else len(line)
        kind = "loss" if kw.group(1) in ("loss", "cost") else "acc"
        value, value_pos, resume, history = _value_after(line, kw.end(), end, kind)
        context = line[segment_start : value_pos if value_pos >= 0 and not history else kw.end()]
        qualifiers = _QUALIFIER.findall(context)
        if qualifiers:
            split = _SPLIT[qualifiers[-1]]
        modifier = _SKIP_MODIFIER.search(line[segment_start : kw.start()])
        segment_start = resume
        if value is None or modifier:
            continue
        # A history is per epoch: an unqualified accuracy in it is the training accuracy.
        metric = _metric_name(kind, split, epoch_line or history)
        if metric:
            found.append((metric, value))
    return found


def _metric_name(kind: str, split: str, epoch_line: bool) -> str | None:
    if kind == "loss":
        return {"": "train_loss", "train": "train_loss", "val": "val_loss"}.get(split)
    if split == "":
        return None if epoch_line else "test_acc"  # an epoch log's bare accuracy is its training accuracy
    return {"val": "val_acc", "test": "test_acc"}.get(split)


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
            value, position = _first_plausible(line, number.start(), number.end(), kind)
            if value is not None:
                return value, position, close, True
        return None, -1, close, True
    value, position = _first_plausible(line, start, end, kind)
    return value, position, max(start, position), False


def _first_plausible(line: str, start: int, end: int, kind: str) -> tuple[float | None, int]:
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


def _names_another_role(line: str, role: str | None) -> bool:
    if role not in ("baseline", "proposed"):
        return False
    other = "proposed" if role == "baseline" else "baseline"
    return bool(re.search(rf"\b{other}\b", line, re.I)) and not re.search(rf"\b{role}\b", line, re.I)


def _without_classification_report(text: str) -> str:
    """sklearn's classification_report repeats the accuracy rounded to 2 digits: cut it off."""
    header = _REPORT_HEADER.search(text)
    return text[: header.start()] if header else text


def _logical_lines(text: str) -> list[str]:
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


def _named_by_expression(cell: Cell, output: Output) -> str:
    """An execute_result that is a bare list, array or number is named by the expression that
    made it, the cell's last line: `val_accs` showing `[0.3, 0.4]` reads as `val_accs: [0.3, 0.4]`."""
    if output.kind != "execute_result" or len(output.text) > MAX_OUTPUT_CHARS:
        return ""
    text = output.text.strip()
    if _KEYWORD.search(_normalize(text)) or not re.match(r"^(\[|array\(|tensor\(|\d|\.\d)", text):
        return ""
    lines = [l.split("#", 1)[0].strip() for l in cell.source.splitlines()]
    last = next((l for l in reversed(lines) if l), "")
    if not _EXPRESSION.match(last) or re.search(r"(?<![=!<>])=(?!=)", last):
        return ""
    return f"{last}: {text}"


def first_metric_cell(notebook: Notebook, deadline: Deadline | None = None) -> int | None:
    """The first code cell whose outputs print a loss or an accuracy (among those read before `deadline`)."""
    deadline = deadline or Deadline.after()
    for cell in notebook.code_cells:
        for output in cell.outputs:
            if deadline.passed:
                return None
            lines = _without_classification_report(output.text[:MAX_OUTPUT_CHARS]).splitlines()
            if any(_metrics_in_line(_normalize(head_and_tail(l, MAX_LINE_CHARS)), False) for l in lines):
                return cell.index
    return None


# --- tables (pandas DataFrames as text/html or text/plain) ---------------------------------


def _names_a_metric(rows: list[list[str]]) -> bool:
    """A table whose column names, or row labels (one column per model), name a loss/acc."""
    names = rows[0] + [r[0] for r in rows[1:]] if rows else []
    return any(_KEYWORD.search(_normalize(n)) for n in names)


def _metric_columns(header: list[str]) -> dict[int, str]:
    """Column index -> metric, for the columns a table's header names as one (best_* skipped)."""
    columns: dict[int, str] = {}
    for i, name in enumerate(header):
        norm = _normalize(name)
        kw = _KEYWORD.search(norm)
        if not kw or _SKIP_MODIFIER.search(norm):
            continue
        qualifiers = _QUALIFIER.findall(norm)
        metric = _metric_name("loss" if kw.group(1) == "loss" else "acc", _SPLIT[qualifiers[-1]] if qualifiers else "", True)
        if metric:
            columns[i] = metric
    return columns
