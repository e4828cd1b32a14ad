"""Attribute the metrics a notebook's saved outputs report to its models (lines.py reads each line).

Outputs are read line by line (a list broken over several lines is one line), in notebook order.
Each line belongs to a model by, in order: the model it names (a class name, or a run key the code
gives the class, such as "baseline" in {"baseline": BaselineCNN()} or train_model(Net(), "net_a");
a line naming several is a comparison and is skipped), the cell's own models in turn (a restart of
the epoch count, or a second test accuracy, moves to the next one), then the last model used.
Tables (pandas DataFrames as text/html or text/plain) are read by column names, each row belonging
to the model its first naming cell names. The value kept is the last one printed; when a model's
epoch count starts again its earlier run no longer counts. An epoch a progress bar leaves short of
its end is not counted. Of an output longer than the cap, only the epoch numbers of the part cut
off are read (one linear scan): a run that starts there counts them when they are one run, and
has no count otherwise.

A model class trained again right after the notebook defines another class it never builds
(`net = LeNet()` under `class LeNetDropout`) is likely the wrong constructor: which run is whose is
then unclear, so that model reports nothing, and a warning says why.

Every value keeps its evidence (the line) and why it went to its model; every line that looked like
a metric but was not used keeps the reason (`Reading`, shown by `grader check --explain`).

What is read is bounded (grader/analysis/limits.py): an output's last MAX_OUTPUT_CHARS characters,
an HTML table of at most MAX_HTML_CHARS, each logical line's first and last MAX_LINE_CHARS / 2, and
outputs only until the reading's deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from grader.analysis.limits import MAX_HTML_CHARS, MAX_LINE_CHARS, MAX_OUTPUT_CHARS, Deadline, cells_named, head_and_tail
from grader.analysis.lines import (KERAS_PROGRESS, KEYWORD, METRICS, PROGRESS, SKIP_MODIFIER, CIFAR_CLASS, LineContext,
                                   epoch_number, first_plausible, logical_lines, metric_columns, names_a_metric, normalize,
                                   read_line, without_classification_report)
from grader.analysis.printing import Printing
from grader.analysis.tables import html_table, text_table
from grader.analysis.usage import Usage
from grader.notebook import Cell, Notebook, Output

__all__ = ["METRICS", "Reading", "Reported", "Unread", "extract_reported", "first_metric_cell"]

UNATTRIBUTED = "a model that is not a class"
MAX_HEAD_SCAN = 50_000_000
"""Characters of an output's cut part scanned for epoch numbers (50 MB: a fraction of a second)."""
_HEAD_EPOCH = re.compile(r"\bepoch\b[\s:#\[]*+(\d+)", re.I)
MAX_UNREAD = 200
"""(cell, reason) pairs kept for --explain, each with its first line and a count."""
# A model summary (Lightning's "| Name | Type | Params", torchsummary's "Layer (type) ... Param #")
# lists modules, some named like metrics ("valid_acc | Accuracy | 0"): none of its lines is a value.
_SUMMARY_HEADER = re.compile(r"\bparams?\b|\bparam #")
# A cell's last line that is an expression (what an execute_result shows), not a statement.
_EXPRESSION = re.compile(r"^(?!(?:print|return|import|from|def|class|for|if|while|with|del)\b)[\w.\[\]'\"(), ]++$")


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
    attribution: dict[str, str] = field(default_factory=dict)
    """Metric -> why the value went to this model ('the line names LeNet5', 'cell 7 trains LeNet5')."""


@dataclass(frozen=True)
class Unread:
    """An output line that looked like a metric but gave no value, and why."""

    cell: int
    line: str
    """The first line of the cell with this reason."""
    reason: str
    count: int = 1
    """Lines of the cell left unread for this reason."""


@dataclass(frozen=True)
class Reading:
    """How the outputs were read: what `grader check --explain` shows."""

    unread: tuple[Unread, ...] = ()
    more_unread: int = 0
    """Reasons past MAX_UNREAD, not kept."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Model -> why its values are left out although its outputs print some."""
    unattributed: Reported | None = None
    """In a notebook with no model class, what its outputs report for the model it trains without
    one (torchvision's, one imported from a module): shown to the student, never graded."""


@dataclass(frozen=True)
class Cut:
    """The part of an output the cap cut off."""

    epochs: frozenset[int] | None
    """Its epoch numbers, when they are one run (never decreasing); None when they are not, or the
    part is too long to scan."""

    @classmethod
    def of(cls, head: str) -> Cut:
        if len(head) > MAX_HEAD_SCAN:
            return cls(None)
        whole_lines = head[: head.rfind("\n") + 1]  # the cap may cut "Epoch 128" into "Epoch 1" and "28"
        numbers = [int(m.group(1)) for m in _HEAD_EPOCH.finditer(whole_lines)]
        one_run = all(a <= b for a, b in zip(numbers, numbers[1:]))
        return cls(frozenset(numbers) if one_run else None)


@dataclass
class _Track:
    """Mutable accumulator for one model while reading outputs in order."""

    values: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    attribution: dict[str, str] = field(default_factory=dict)
    runs: list[set[int]] = field(default_factory=list)
    short: set[int] = field(default_factory=set)
    """Epochs of the last run seen only on a progress bar that stopped short of its end."""
    start_cut: bool = False
    """The last run started in an output the cap cut: its first epochs were not read."""
    progress: int | None = None
    last_epoch: int | None = None
    earlier_epochs: int = 0
    """Epochs of the runs the last one continues (training an already trained model further)."""
    finished: int = 0
    """Complete epochs of the run before the last one."""
    cell: int = -1
    """The cell of the last epoch line."""
    run_cell: int = -1
    """The cell of the last epoch line of the run before the last one."""

    def epoch(self, number: int, complete: bool = True, cut: Cut | None = None, cell: int = -1) -> bool:
        """Record an epoch number; True when it starts a new run (the count went back). `cut`: the
        number is the first of an output whose head the cap cut off."""
        restart = self.last_epoch is None or number < self.last_epoch
        if restart:
            self.finished = len(self.runs[-1] - self.short) if self.runs else 0
            self.run_cell = self.cell
            self.runs.append(set())
            self.short.clear()
            self.progress = None
            head = cut.epochs if cut else frozenset()
            self.start_cut = head is None or any(h > number for h in head)
            if not self.start_cut:
                self.runs[-1] |= head
        if complete:
            self.short.discard(number)
        elif number not in self.runs[-1]:
            self.short.add(number)
        self.runs[-1].add(number)
        self.last_epoch, self.cell = number, cell
        return restart and len(self.runs) > 1

    def continue_earlier_run(self) -> None:
        """The model is trained further without being built again: its epochs add up."""
        self.earlier_epochs += self.finished

    def forget_earlier_runs(self) -> None:
        """The model is trained again: only this run's values are reported."""
        self.earlier_epochs = 0
        self.values.clear()
        self.evidence.clear()
        self.attribution.clear()

    def record(self, metric: str, value: float, evidence: str, why: str) -> None:
        self.values[metric] = value
        self.evidence[metric] = evidence
        self.attribution[metric] = why

    def freeze(self) -> Reported:
        epochs = self.earlier_epochs + len(self.runs[-1] - self.short) if self.runs and not self.start_cut else None
        if self.progress is not None and not self.start_cut:
            epochs = max(epochs or 0, self.progress)
        return Reported(**{m: self.values.get(m) for m in METRICS}, epochs=epochs, evidence=dict(self.evidence),
                        attribution=dict(self.attribution))


class _Names:
    """How outputs name a model: its class name (as written) or a run key the code gives it."""

    def __init__(self, models: list[str], run_keys: dict[str, str]):
        self.models = models
        self.keys = {k: m for k, m in run_keys.items() if m in models}
        self._classes = _alternation(models, re.compile(r"(?<![\w])(?:{})(?![\w])"))
        self._keys = _alternation(list(self.keys), re.compile(r"(?<![\w-])(?:{})(?![\w-])", re.I))

    def on_line(self, line: str) -> list[tuple[str, str]]:
        """The distinct models a line names, in order, each with the word that names it."""
        found: list[tuple[int, str, str]] = []
        if self._classes:
            found += [(m.start(), m.group(0), m.group(0)) for m in self._classes.finditer(line)]
        if self._keys:
            found += [(m.start(), self.keys[m.group(0).lower()], m.group(0)) for m in self._keys.finditer(line)]
        ordered: dict[str, str] = {}
        for _, model, word in sorted(found):
            ordered.setdefault(model, word)
        return list(ordered.items())

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
    notebook: Notebook, usage: Usage, defined: dict[str, int], roles: dict[str, str], printing: Printing,
    deadline: Deadline | None = None,
) -> tuple[dict[str, Reported], Reading, tuple[str, ...]]:
    """Model class -> what its outputs report (models that report anything), how the outputs were
    read, and warnings. `defined`: model class -> the cell that defines it. The outputs are read
    until `deadline` (default: the static reading's own) passes."""
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
    models = list(defined) or [UNATTRIBUTED]
    names = _Names(list(defined), usage.run_keys)
    tracks: dict[str, _Track] = {}
    unread_lines: dict[tuple[int, str], Unread] = {}
    current: tuple[str, str] | None = None  # the last model used, and the cell that used it
    unread: list[int] = []
    for cell in notebook.code_cells:
        if cell.outputs and (unread or deadline.passed):
            unread.append(cell.index)
            continue
        cell_usage = usage.cells.get(cell.index)
        own = [m for m in (cell_usage.models if cell_usage else ()) if m in models]
        if not defined and cell_usage and cell_usage.other_model:
            own = [UNATTRIBUTED]  # no class at all: the model it works with is the notebook's
        elif not own and cell_usage and cell_usage.other_model:
            current = None  # it works with a model that is not a class: its outputs are not our models'
            continue
        candidates = [(m, f"cell {cell.index} uses {m}") for m in own]
        if not candidates and current:
            candidates = [(current[0], f"the last model used before it ({current[1]})")]
        if cell.outputs:
            reader = _CellReader(cell.index, candidates, names, roles, tracks, printing, unread_lines, usage)
            _read_cell(cell, reader)
        if own:
            current = (own[-1], f"cell {cell.index}")
    if unread:
        warnings.append(deadline.skipped(f"the outputs of {cells_named(unread)}"))
    doubtful = _doubtful_reruns(usage, defined)
    warnings += doubtful.values()
    found = {m: t.freeze() for m, t in tracks.items() if m not in doubtful}
    reported = {m: r for m, r in found.items() if any(getattr(r, k) is not None for k in METRICS)}
    kept = tuple(unread_lines.values())
    reading = Reading(kept[:MAX_UNREAD], max(0, len(kept) - MAX_UNREAD), doubtful, reported.pop(UNATTRIBUTED, None))
    return reported, reading, tuple(warnings)


def _doubtful_reruns(usage: Usage, defined: dict[str, int]) -> dict[str, str]:
    """Model -> why its values are left out: it is trained again after another model class is
    defined, between its two runs, that the notebook never builds (a constructor not changed after
    a copy)."""
    built = {m for u in usage.cells.values() for m in u.models}
    trained_in: dict[str, list[int]] = {}
    for index in sorted(usage.cells):
        for model in usage.cells[index].trained:
            trained_in.setdefault(model, []).append(index)
    doubtful: dict[str, str] = {}
    for model, cells in trained_in.items():
        for before, index in zip(cells, cells[1:]):
            unbuilt = [(c, m) for m, c in defined.items() if before < c < index and m not in built]
            if unbuilt:
                cell, other = unbuilt[-1]
                doubtful[model] = (
                    f"cell {index} trains {model} again right after cell {cell} defines {other}, which the "
                    f"notebook never builds: did you mean {other}()? {model}'s reported values are left out, "
                    f"since which run is {model}'s is not clear")
                break
    return doubtful


def _read_cell(cell: Cell, reader: _CellReader) -> None:
    for output in cell.outputs:
        if output.kind == "error":
            continue
        if "<table" in output.html and len(output.html) <= MAX_HTML_CHARS:
            reader.table(html_table(output.html))
            continue
        rows = text_table(output.text[:MAX_OUTPUT_CHARS])
        if names_a_metric(rows):
            reader.table(rows)
            continue
        text = _named_by_expression(cell, output) or output.text[-MAX_OUTPUT_CHARS:]
        cut = Cut.of(output.text[:-MAX_OUTPUT_CHARS]) if len(output.text) > MAX_OUTPUT_CHARS else None
        reader.lines(logical_lines(without_classification_report(text)), cut)


@dataclass
class _CellReader:
    """Reads one cell's outputs in order, moving from one of its models to the next."""

    index: int
    candidates: list[tuple[str, str]]
    """The cell's models in order, each with why the cell's outputs may be its."""
    names: _Names
    roles: dict[str, str]
    tracks: dict[str, _Track]
    printing: Printing
    unread: dict[tuple[int, str], Unread]
    usage: Usage
    active: str | None = None
    why: str = ""
    tested: set[str] = field(default_factory=set)
    """Models that printed a test accuracy (outside an epoch log) in this cell."""

    def __post_init__(self) -> None:
        if self.candidates:
            self.active, self.why = self.candidates[0]

    @property
    def models(self) -> list[str]:
        return [m for m, _ in self.candidates]

    def lines(self, lines: list[str], cut: Cut | None = None) -> None:
        """`cut`: what the cap cut off the output's head (its first epoch line starts after it)."""
        in_epoch_record, carried, summary = False, "", False
        for raw in lines:
            if not raw.strip():
                carried, summary = "", False  # a blank line ends a block: its split and its summary
                continue
            line = normalize(raw)
            summary = summary or bool(_SUMMARY_HEADER.search(line) and ("name" in line or "layer" in line))
            if summary:
                continue
            named = self.names.on_line(raw)
            if len(named) > 1:
                self._not_used(raw, line, f"it names {len(named)} models ({', '.join(m for m, _ in named)}): a comparison")
                continue
            owner = named[0][0] if named else self._role_named(raw)
            if named:
                self.active, self.why = owner, f"the line names {owner}" + (f" (as '{named[0][1]}')" if named[0][1] != owner else "")
            elif owner:
                self.active, self.why = owner, f"the line says '{self.roles[owner]}', and {owner} is the cell's {self.roles[owner]}"
            elif self.active is None:
                self._not_used(raw, line, "no model: the cell uses none and no model was used before it")
                continue
            elif _names_another_role(raw, self.roles.get(self.active)):
                self._not_used(raw, line, f"it names the {_other_role(self.roles.get(self.active))} model, and this cell's model, {self.active}, is the {self.roles.get(self.active)}")
                continue
            number = None if SKIP_MODIFIER.search(line) else epoch_number(line)  # "best at epoch 7" starts nothing
            progress = PROGRESS.search(line)
            if number is not None:
                self._epoch(number, moved_by_name=bool(owner), complete=not progress or progress.group(1) == progress.group(2), cut=cut)
                cut = None
            track = self.tracks.setdefault(self.active, _Track())  # type: ignore[arg-type]
            # A bar over the epochs says "epoch" without a number; one that names its epoch ("Epoch:2
            # iteration:351 ... | 351/782 [") counts the steps of that epoch.
            if progress and "epoch" in line and number is None:
                track.progress = int(progress.group(1))
            continues = in_epoch_record and raw[:1].isspace()  # "Epoch 5: Train Loss ..." then "    Val Loss ..."
            epoch_line = number is not None or continues or bool(KERAS_PROGRESS.match(line))
            in_epoch_record = epoch_line
            context = LineContext(epoch_line, self.printing, self.printing.splits.get(self.index, ""), "" if epoch_line else carried)
            reading = read_line(line, context)
            carried = reading.split or carried
            for reason in reading.unread:
                self._not_used(raw, line, reason)
            if not owner and not epoch_line and any(m == "test_acc" for m, _ in reading.found):
                self._next_if_tested_again()
                track = self.tracks.setdefault(self.active, _Track())  # type: ignore[arg-type]
            evidence = f"cell {self.index}: {raw[:1000].strip()[:160]}"
            for metric, value in reading.found:
                track.record(metric, value, evidence, self.why)
                if metric == "test_acc" and not epoch_line:
                    self.tested.add(self.active)  # type: ignore[arg-type]

    def _not_used(self, raw: str, line: str, reason: str) -> None:
        if not KEYWORD.search(line) and "no metric name" not in reason and "error rate" not in reason:
            return
        key = (self.index, reason)
        seen = self.unread.get(key)
        self.unread[key] = replace(seen, count=seen.count + 1) if seen else Unread(self.index, raw[:1000].strip()[:160], reason)

    def _role_named(self, line: str) -> str | None:
        """With several models in the cell, 'Baseline ...' names the one baseline among them."""
        if len(self.candidates) < 2:
            return None
        lowered = line.lower()
        for role in ("baseline", "proposed"):
            holders = [m for m in self.models if self.roles.get(m) == role]
            if len(holders) == 1 and role in lowered:
                return holders[0]
        return None

    def _following(self) -> list[tuple[str, str]]:
        models = self.models
        return self.candidates[models.index(self.active) + 1:] if self.active in models else []

    def _epoch(self, number: int, moved_by_name: bool, complete: bool, cut: Cut | None) -> None:
        track = self.tracks.setdefault(self.active, _Track())  # type: ignore[arg-type]
        if not track.epoch(number, complete, cut, self.index):
            return
        following = self._following()
        if following and not moved_by_name:
            # The epoch count restarted in a cell that trains several models: the next one.
            track.runs.pop()
            self.active = following[0][0]
            self.why = f"{following[0][1]}, and the epoch count started again after {self.models[self.models.index(following[0][0]) - 1]}'s run"
            self.tracks.setdefault(self.active, _Track()).epoch(number, complete, cut, self.index)
        elif self._built_since(self.active, track.run_cell):  # type: ignore[arg-type]
            track.forget_earlier_runs()  # the same model trained again: its last run is reported
        else:
            track.continue_earlier_run()  # not built again: the same model trains on

    def _built_since(self, model: str, cell: int) -> bool:
        """Whether the model was constructed after `cell` up to this one, or in this one when the
        earlier run is this cell's too (a loop that builds and trains)."""
        later = [u for i, u in self.usage.cells.items() if cell < i <= self.index or i == cell == self.index]
        return any(model in u.built or (model == UNATTRIBUTED and u.builds_other) for u in later)

    def _next_if_tested_again(self) -> None:
        """A second test accuracy in a cell that evaluates several models in turn is the next model's."""
        following = self._following()
        if self.active in self.tested and following:
            self.active = following[0][0]
            self.why = f"{following[0][1]}, and the cell's previous model already printed its test accuracy"

    def table(self, rows: list[list[str]]) -> None:
        if len(rows) < 2:
            return
        columns = metric_columns(rows[0])
        if not columns:
            # Models as columns and metrics as rows: read it transposed.
            transposed = [list(col) for col in zip(*rows)]
            if any(self.names.of_cell(c) for c in rows[0]) and metric_columns(transposed[0]):
                rows, columns = transposed, metric_columns(transposed[0])
        if not columns:
            return
        header, body = rows[0], rows[1:]
        epoch_column = next((i for i, n in enumerate(header) if normalize(n).strip() == "epoch"), None)
        for row in body:
            if any(CIFAR_CLASS.fullmatch(normalize(c).strip()) for c in row):
                continue  # a per-class accuracy ('cnnv2  ship  0.953') is not the model's accuracy
            naming = next(((c, m) for c in row if (m := self.names.of_cell(c))), None)
            owner = naming[1] if naming else self.active
            if owner is None:
                continue
            why = f"the table row names {owner}" + (f" (as '{naming[0]}')" if naming[0] != owner else "") if naming else self.why
            label = naming[0] if naming else row[0]
            track = self.tracks.setdefault(owner, _Track())
            if epoch_column is not None and epoch_column < len(row) and row[epoch_column].isdigit():
                if track.epoch(int(row[epoch_column])):
                    track.forget_earlier_runs()
            for i, metric in columns.items():
                if i >= len(row):
                    continue
                value, _ = first_plausible(row[i], 0, len(row[i]), "loss" if metric.endswith("loss") else "acc")
                if value is not None:
                    track.record(metric, value, f"cell {self.index}: table row '{label}', column '{header[i]}'", why)


def _names_another_role(line: str, role: str | None) -> bool:
    if role not in ("baseline", "proposed"):
        return False
    return bool(re.search(rf"\b{_other_role(role)}\b", line, re.I)) and not re.search(rf"\b{role}\b", line, re.I)


def _other_role(role: str | None) -> str:
    return "proposed" if role == "baseline" else "baseline"


def _named_by_expression(cell: Cell, output: Output) -> str:
    """An execute_result that is a bare list, array or number is named by the expression that
    made it, the cell's last line: `val_accs` showing `[0.3, 0.4]` reads as `val_accs: [0.3, 0.4]`."""
    if output.kind != "execute_result" or len(output.text) > MAX_OUTPUT_CHARS:
        return ""
    text = output.text.strip()
    if KEYWORD.search(normalize(text)) or not re.match(r"^(\[|array\(|tensor\(|\d|\.\d)", text):
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
            lines = without_classification_report(output.text[:MAX_OUTPUT_CHARS]).splitlines()
            readings = (read_line(normalize(head_and_tail(l, MAX_LINE_CHARS))) for l in lines)
            if any(r.found or r.unread for r in readings):
                return cell.index
    return None
