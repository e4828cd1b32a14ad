"""The terminal view of one graded submission (rich): `grader check`, with or without --train.

Only renders; decides nothing.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.analysis import METRICS
from grader.grading.result import GradeResult
from grader.report.budget import budget_lines
from grader.report.text import clean

_LABELS = {"train_loss": "train loss", "val_loss": "val loss", "val_acc": "val acc", "test_acc": "test acc"}


def print_result(result: GradeResult, console: Console | None = None) -> None:
    console = console or Console()
    if result.status == "error":
        console.print(Text.assemble(("error: ", "bold red"), clean(result.error)), highlight=False, soft_wrap=True)
        return
    console.print(Text.assemble((clean(result.notebook), "bold"), "  ", (f"rubric {clean(result.provenance.rubric_source)}", "dim")),
                  highlight=False)
    for line in budget_lines(result):
        console.print(Text(line, style="bold yellow" if "SYNTHETIC" in line or "quick" in line else "dim"), highlight=False)
    if result.models:
        console.print(_models_table(result))
    if result.reported:
        console.print(_reported_table(result))
    if result.runs:
        console.print(_runs_table(result))
    console.print(_checks_table(result))
    for warning in result.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), clean(warning)), highlight=False)
    summary = f"score {result.score:g} / {result.max_score:g}"
    if result.failing:
        console.print(f"[bold red]{len(result.failing)} required check(s) fail[/] - {summary}", highlight=False)
    else:
        console.print(f"[bold green]all required checks pass[/] - {summary}", highlight=False)


def _models_table(result: GradeResult) -> Table:
    table = Table(title="Models", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("class", "role", "CNN", "where", "why"):
        table.add_column(column)
    for m in result.models:
        where, name, reason = f"cell {m.cell}:{m.line}", clean(m.name), clean(m.reason)
        if m.kind == "model":
            role = m.role + (" (guess)" if m.role_guessed else "")
            table.add_row(Text(name), role, "yes" if m.is_cnn else "[red]no[/]", where, Text(reason))
        elif m.kind == "helper":
            table.add_row(Text(name, style="dim"), Text("helper", style="dim"), "yes" if m.is_cnn else "no", where,
                          Text(reason, style="dim"))
        else:
            table.add_row(Text(name, style="yellow"), Text("not a class", style="yellow"), "?", where, m.kind)
    return table


def _reported_table(result: GradeResult) -> Table:
    table = Table(title="Reported in the notebook's outputs", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("model")
    for metric in METRICS:
        table.add_column(_LABELS[metric], justify="right")
    table.add_column("epochs", justify="right")
    for name, r in result.reported.items():
        cells = []
        for metric in METRICS:
            value = getattr(r, metric)
            cells.append("[dim]-[/]" if value is None else (f"{value:.2%}" if metric.endswith("acc") else f"{value:.4g}"))
        table.add_row(Text(clean(name)), *cells, "[dim]-[/]" if r.epochs is None else str(r.epochs))
    return table


def _runs_table(result: GradeResult) -> Table:
    run = result.provenance.run
    where = f"{run.device}, isolation: {run.isolation}" if run else "?"
    table = Table(title=f"Retrained by the grader ({where})", box=box.SIMPLE_HEAD, title_justify="left")
    for column, justify in (("model", "left"), ("val acc", "right"), ("test acc", "right"), ("params", "right"),
                            ("seconds", "right"), ("problem", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    rows = [(name, r, "") for name, r in result.runs.items()]
    rows += [(name, r, " (reference)") for name, r in result.references.items()]
    for name, r, suffix in rows:
        pct = lambda v: "[dim]-[/]" if v is None else f"{v:.2%}"  # noqa: E731
        params = f"{r.params:,}" if r.params is not None else "-"
        table.add_row(Text(clean(name) + suffix), pct(r.val_accuracy), pct(r.test_accuracy), params, f"{r.seconds:.1f}",
                      Text(clean(r.error or "")))
    return table


_MARKS = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "not_met": "[yellow]![/]", "unscored": "[dim]–[/]"}


def _checks_table(result: GradeResult) -> Table:
    table = Table(title="Checks", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("", width=2)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("result")
    for c in result.checks:
        mark = _MARKS[c.outcome]
        text = Text(clean(c.message))
        if c.hint:
            text.append("\n→ " + c.hint, style="cyan")
        table.add_row(mark, Text(c.label), f"{c.points:g}/{c.max_points:g}" if c.scored else "[dim]not scored[/]", text)
    return table


__all__ = ["print_result"]
