"""`grader check NOTEBOOK --explain`: how the notebook's outputs were read (rich).

For each model, every value read, the line it came from, and why it went to that model; then
every kind of line that looked like a metric but was not used, with the reason and what to print
instead. This is what a student or a TA reads when a value is missing. Only renders.
"""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.analysis import METRICS, Analysis, Reported
from grader.report.text import clean


def print_explanation(analysis: Analysis, console: Console | None = None) -> None:
    console = console or Console()
    console.print(Text("How the outputs were read", style="bold"), highlight=False)
    models = dict(analysis.reported)
    if analysis.reading.unattributed:
        models["(a model that is not a class)"] = analysis.reading.unattributed
    if not models:
        console.print(Text("No value was read for any model.", style="yellow"), highlight=False)
    for name, reported in models.items():
        console.print(_values_table(name, reported, analysis))
    _print_unread(analysis, console)


def _values_table(name: str, reported: Reported, analysis: Analysis) -> Table:
    model = analysis.model(name)
    role = f" ({model.role.role})" if model and model.role.role != "unknown" else ""
    table = Table(title=Text(clean(name) + role), box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("metric", "value", "read from", "given to this model because"):
        table.add_column(column, overflow="fold")
    for metric in METRICS:
        value = getattr(reported, metric)
        if value is None:
            table.add_row(metric, Text("-", style="dim"), Text("not printed, or not read (see below)", style="dim"), "")
            continue
        shown = f"{value:.2%}" if metric.endswith("acc") else f"{value:.4g}"
        table.add_row(metric, shown, Text(clean(reported.evidence.get(metric, ""))), Text(clean(reported.attribution.get(metric, ""))))
    epochs = "-" if reported.epochs is None else str(reported.epochs)
    table.add_row("epochs", epochs, Text("epoch lines of the model's last run", style="dim"), "")
    return table


def _print_unread(analysis: Analysis, console: Console) -> None:
    unread = analysis.reading.unread
    if not unread:
        console.print(Text("Every line that looked like a metric was used.", style="dim"), highlight=False)
    else:
        table = Table(title="Lines that looked like a metric but were not used", box=box.SIMPLE_HEAD, title_justify="left")
        for column in ("cell", "lines", "first line", "why"):
            table.add_column(column, overflow="fold")
        for u in unread:
            table.add_row(str(u.cell), str(u.count), Text(clean(u.line)), Text(clean(u.reason)))
        console.print(table)
    if analysis.reading.more_unread:
        console.print(Text(f"... and {analysis.reading.more_unread} more kinds of lines not shown", style="dim"), highlight=False)
    for warning in analysis.warnings:
        console.print(Text.assemble(("warning: ", "yellow"), clean(warning)), highlight=False)
