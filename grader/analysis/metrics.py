"""Read the metrics a notebook reports from its saved outputs, and attribute them to models.

Outputs are read line by line. A metric is a keyword (loss, acc, accuracy, correct) followed by
a number; its split is the nearest qualifier before it on the line (train, val, test), carried
over from the previous metric on the same line when the metric has none ("Val Loss: 1.5 Acc:
54%"). An unqualified loss is a training loss; an unqualified accuracy is a test accuracy unless
the line is an epoch log. Best/average/peak figures are skipped: the value kept is the last one
printed. Each line belongs to a model by, in order: a model's name on the line, the cell's own
models (a restart of the epoch count moves to the next one), then the last model used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from grader.analysis.usage import Usage
from grader.notebook import Notebook, Output

METRICS = ("train_loss", "val_loss", "val_acc", "test_acc")
# An output is read from its last MAX_OUTPUT_CHARS characters: the last values are at the end,
# and a 50 MB log would otherwise take many seconds to read line by line.
MAX_OUTPUT_CHARS = 1_000_000

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_KEYWORD = re.compile(r"\b(loss|acc|accuracy|correct)\b")
_QUALIFIER = re.compile(r"\b(train|training|trn|val|valid|validation|validate|dev|test|testing)\b")
_SKIP_MODIFIER = re.compile(r"\b(best|average|avg|mean|highest|max|peak|top|min|lowest)\b")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?(?:e[-+]?\d+)?|\.\d+)(?:\s*/\s*(\d+))?(\s*%)?")
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
    """Metric -> where it was read: 'cell N: the line it came from'."""


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

    def freeze(self) -> Reported:
        epochs = len(self.runs[-1]) if self.runs else None
        if self.progress is not None:
            epochs = max(epochs or 0, self.progress)
        return Reported(**{m: self.values.get(m) for m in METRICS}, epochs=epochs, evidence=dict(self.evidence))


def extract_reported(
    notebook: Notebook, usage: Usage, models: list[str], roles: dict[str, str]
) -> tuple[dict[str, Reported], tuple[str, ...]]:
    """Model class -> what its outputs report (models that report anything), and warnings."""
    warnings = tuple(
        f"cell {cell.index} prints {len(o.text) / 1e6:.0f} MB of output; only its last {MAX_OUTPUT_CHARS // 1_000_000} MB were read"
        for cell in notebook.code_cells
        for o in cell.outputs
        if len(o.text) > MAX_OUTPUT_CHARS
    )
    if not models:
        return {}, warnings
    tracks: dict[str, _Track] = {}
    current: str | None = None
    for cell in notebook.code_cells:
        cell_usage = usage.cells.get(cell.index)
        candidates = [m for m in (cell_usage.models if cell_usage else ()) if m in models]
        if not candidates and cell_usage and cell_usage.trains_other:
            continue  # it trains a model that is not a class here: its outputs are not our models'
        if not candidates and current:
            candidates = [current]
        if not cell.outputs or not candidates:
            current = candidates[-1] if candidates else current
            continue
        _read_cell(cell.index, cell.outputs, candidates, models, roles, tracks)
        current = candidates[-1]
    found = {m: t.freeze() for m, t in tracks.items()}
    return {m: r for m, r in found.items() if any(getattr(r, k) is not None for k in METRICS)}, warnings


def _read_cell(index: int, outputs: tuple[Output, ...], candidates: list[str], models: list[str],
               roles: dict[str, str], tracks: dict[str, _Track]) -> None:
    active = candidates[0]
    for output in outputs:
        if output.kind == "error":
            continue
        if "<table" in output.html:
            _read_table(index, _html_rows(output.html[:MAX_OUTPUT_CHARS]), active, models, tracks)
            continue
        rows = _text_table(output.text[:MAX_OUTPUT_CHARS])
        if rows:
            _read_table(index, rows, active, models, tracks)
            continue
        text = output.text[-MAX_OUTPUT_CHARS:]
        for raw in _without_classification_report(text).splitlines():
            named = _model_named(raw, candidates if len(candidates) > 1 else [], roles)
            if named:
                active = named
            elif _names_another_role(raw, roles.get(active)):
                continue  # "Proposed test accuracy" while the only model here is the baseline
            line = _normalize(raw)
            track = tracks.setdefault(active, _Track())
            number = _epoch_number(line)
            if number is not None and track.epoch(number) and not named:
                following = candidates[candidates.index(active) + 1:] if active in candidates else []
                if following:
                    # The epoch count restarted in a cell that trains several models: the next one.
                    tracks[active].runs.pop()
                    active = following[0]
                    track = tracks.setdefault(active, _Track())
                    track.epoch(number)
            progress = _PROGRESS.search(line)
            if progress and "epoch" in line:
                track.progress = int(progress.group(1))
            epoch_line = number is not None or bool(_KERAS_PROGRESS.match(line))
            for metric, value in _metrics_in_line(line, epoch_line):
                track.values[metric] = value
                track.evidence[metric] = f"cell {index}: {raw.strip()[:160]}"


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
    keywords = list(_KEYWORD.finditer(line))
    split = ""
    segment_start = 0
    for i, kw in enumerate(keywords):
        end = keywords[i + 1].start() if i + 1 < len(keywords) else len(line)
        kind = "loss" if kw.group(1) == "loss" else "acc"
        value, value_pos = _first_plausible(line, kw.end(), end, kind)
        context = line[segment_start : value_pos if value_pos >= 0 else kw.end()]
        qualifiers = _QUALIFIER.findall(context)
        if qualifiers:
            split = _SPLIT[qualifiers[-1]]
        modifier = _SKIP_MODIFIER.search(line[segment_start : kw.start()])
        segment_start = max(kw.end(), value_pos) if value_pos >= 0 else kw.end()
        if value is None or modifier:
            continue
        metric = _metric_name(kind, split, epoch_line)
        if metric:
            found.append((metric, value))
    return found


def _metric_name(kind: str, split: str, epoch_line: bool) -> str | None:
    if kind == "loss":
        return {"": "train_loss", "train": "train_loss", "val": "val_loss"}.get(split)
    if split == "":
        return None if epoch_line else "test_acc"  # an epoch log's bare accuracy is its training accuracy
    return {"val": "val_acc", "test": "test_acc"}.get(split)


def _first_plausible(line: str, start: int, end: int, kind: str) -> tuple[float | None, int]:
    for m in _NUMBER.finditer(line, start, end):
        number, denominator, percent = float(m.group(1)), m.group(2), m.group(3)
        if kind == "loss":
            if denominator or percent or number > 1e4:
                continue
            return number, m.start()
        if denominator:
            total = float(denominator)
            if 0 < number <= total:
                return number / total, m.start()
            continue
        if percent or 1 < number <= 100:
            if number <= 100:
                return number / 100, m.start()
            continue
        if 0 <= number <= 1:
            return number, m.start()
    return None, -1


def _model_named(line: str, candidates: list[str], roles: dict[str, str]) -> str | None:
    for name in candidates:
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", line):
            return name
    lowered = line.lower()
    for role in ("baseline", "proposed"):
        holders = [m for m in candidates if roles.get(m) == role]
        if len(holders) == 1 and role in lowered:
            return holders[0]
    return None


def _names_another_role(line: str, role: str | None) -> bool:
    if role not in ("baseline", "proposed"):
        return False
    other = "proposed" if role == "baseline" else "baseline"
    return bool(re.search(rf"\b{other}\b", line, re.I)) and not re.search(rf"\b{role}\b", line, re.I)


def _without_classification_report(text: str) -> str:
    """sklearn's classification_report repeats the accuracy rounded to 2 digits: cut it off."""
    header = re.search(r"^.*\bprecision\b.*\brecall\b.*$", text, re.M)
    return text[: header.start()] if header else text


def first_metric_cell(notebook: Notebook) -> int | None:
    """The first code cell whose outputs print a loss or an accuracy."""
    for cell in notebook.code_cells:
        for output in cell.outputs:
            lines = _without_classification_report(output.text[:MAX_OUTPUT_CHARS]).splitlines()
            if any(_metrics_in_line(_normalize(l), False) for l in lines):
                return cell.index
    return None


# --- tables (pandas DataFrames as text/html or text/plain) ---------------------------------


def _read_table(index: int, rows: list[list[str]], active: str, models: list[str], tracks: dict[str, _Track]) -> None:
    header, body = rows[0], rows[1:]
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
    if not columns:
        return
    epoch_column = next((i for i, n in enumerate(header) if _normalize(n).strip() == "epoch"), None)
    for row in body:
        owner = next((cell for cell in row if cell in models), active)
        track = tracks.setdefault(owner, _Track())
        if epoch_column is not None and epoch_column < len(row) and row[epoch_column].isdigit():
            track.epoch(int(row[epoch_column]))
        for i, metric in columns.items():
            if i >= len(row):
                continue
            value, _ = _first_plausible(row[i], 0, len(row[i]), "loss" if metric.endswith("loss") else "acc")
            if value is not None:
                track.values[metric] = value
                track.evidence[metric] = f"cell {index}: table column '{header[i]}'"


_HEADER_TOKEN = re.compile(r"^[A-Za-z_][\w%()./-]*$")


def _text_table(text: str) -> list[list[str]]:
    """A DataFrame printed as text: a header of column names naming a loss/acc, then rows."""
    lines = [l for l in text.splitlines() if l.strip()]
    if len(lines) < 2 or not _KEYWORD.search(_normalize(lines[0])):
        return []
    header = lines[0].split()
    if not all(_HEADER_TOKEN.match(token) for token in header):
        return []  # "Epoch 1/10 | train loss 1.98" is a log line, not a header
    rows = [header]
    for line in lines[1:]:
        cells = line.split()
        if len(cells) == len(header) + 1:
            rows.append(cells[1:])  # the index column
        elif len(cells) == len(header):
            rows.append(cells)
    return rows if len(rows) > 1 else []


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_rows(html: str) -> list[list[str]]:
    parser = _TableParser()
    parser.feed(html)
    rows = [r for r in parser.rows if any(r)]
    if not rows:
        return [[]]
    header = rows[0]
    # pandas puts the index name on a second header row ("name", "", "", ...): drop it.
    body = [r for r in rows[1:] if any(c for c in r[1:])]
    width = len(header)
    return [header] + [r[-width:] if len(r) >= width else r for r in body]
