"""The terminal view of a check report (rich). Only renders; decides nothing."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.analysis import METRICS
from grader.check import CheckReport

_LABELS = {"train_loss": "train loss", "val_loss": "val loss", "val_acc": "val acc", "test_acc": "test acc"}


def print_check(report: CheckReport, console: Console | None = None) -> None:
    console = console or Console()
    a = report.analysis
    if a is None:
        console.print(f"[bold red]error:[/] {report.error}", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold]{report.notebook}[/]  [dim]rubric {report.rubric.source}[/]", highlight=False)
    if a.models or a.helpers or a.other_models:
        console.print(_models_table(report))
    if a.reported:
        console.print(_reported_table(report))
    if report.extra.get("retrain"):
        console.print(_retrain_table(report))
    console.print(_checks_table(report))
    for warning in a.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    failing = [c for c in report.checks if c.required and not c.passed]
    summary = f"score {report.score:g} / {report.max_score:g}"
    if failing:
        console.print(f"[bold red]{len(failing)} required check(s) fail[/] - {summary}", highlight=False)
    else:
        console.print(f"[bold green]all required checks pass[/] - {summary}", highlight=False)


def _models_table(report: CheckReport) -> Table:
    a = report.analysis
    assert a is not None
    table = Table(title="Models", box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("class", "role", "CNN", "where", "why"):
        table.add_column(column)
    for m in a.models:
        role = m.role.role + (" (guess)" if m.role.guessed else "")
        table.add_row(m.name, role, "yes" if m.model.is_cnn else "[red]no[/]", f"cell {m.model.cell}:{m.model.line}", m.role.reason)
    for h in a.helpers:
        table.add_row(Text(h.name, style="dim"), Text("helper", style="dim"), "yes" if h.is_cnn else "no", f"cell {h.cell}:{h.line}", Text(h.helper_reason, style="dim"))
    for o in a.other_models:
        table.add_row(Text(o.name, style="yellow"), Text("not a class", style="yellow"), "?", f"cell {o.cell}:{o.line}", o.kind)
    return table


def _reported_table(report: CheckReport) -> Table:
    a = report.analysis
    assert a is not None
    table = Table(title="Reported in the notebook's outputs", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("model")
    for metric in METRICS:
        table.add_column(_LABELS[metric], justify="right")
    table.add_column("epochs", justify="right")
    for name, r in a.reported.items():
        cells = []
        for metric in METRICS:
            value = getattr(r, metric)
            cells.append("[dim]-[/]" if value is None else (f"{value:.2%}" if metric.endswith("acc") else f"{value:.4g}"))
        table.add_row(name, *cells, "[dim]-[/]" if r.epochs is None else str(r.epochs))
    return table


def _retrain_table(report: CheckReport) -> Table:
    run = report.extra.get("run", {})
    title = f"Retrained by the grader ({run.get('device', '?')}, isolation: {run.get('isolation', '?')})"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for column, justify in (("model", "left"), ("val acc", "right"), ("test acc", "right"), ("params", "right"), ("seconds", "right"), ("problem", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    rows = [(name, entry, "") for name, entry in report.extra["retrain"].items()]
    rows += [(name, entry, " (reference)") for name, entry in report.extra.get("references", {}).items()]
    for name, entry, suffix in rows:
        pct = lambda v: "[dim]-[/]" if v is None else f"{v:.2%}"  # noqa: E731
        params = f"{entry['params']:,}" if isinstance(entry.get("params"), int) else "-"
        table.add_row(name + suffix, pct(entry.get("val_acc")), pct(entry.get("test_acc")), params,
                      f"{entry.get('seconds') or 0:.1f}", entry.get("error") or "")
    return table


def _checks_table(report: CheckReport) -> Table:
    table = Table(title="Checks", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("", width=2)
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("result")
    for c in report.checks:
        mark = "[green]✓[/]" if c.passed else ("[red]✗[/]" if c.required else "[yellow]![/]")
        text = Text(c.message)
        if c.hint:
            text.append("\n→ " + c.hint, style="cyan")
        table.add_row(mark, c.id, f"{c.points:g}/{c.max_points:g}", text)
    return table
