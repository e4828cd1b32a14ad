"""The terminal view of a batch: a progress bar with the current student and an ETA, then a
summary with the score distribution and what needs the instructor's eye.

While the references train, and while a student's models are checked and trained in this process
(one local worker), the bar's line names the model, its epoch and about how long it has left; with
a pool of workers or Ray, the workers cannot report back and the bar moves per student. Where
stderr is not a terminal (CI logs) each of those events is one plain line instead."""

from __future__ import annotations

import statistics
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from grader.grading.batch import BatchReport
from grader.grading.result import GradeResult
from grader.report.progress import live_wanted, progress_line, write_plain
from grader.report.review import BUCKETS, histogram, score_fraction
from grader.report.text import clean
from grader.training.progress import ProgressEvent

SHOWN_PAIRS = 5


class BatchView:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console,
        )
        self.task = None
        self.preparing = None  # the line of the references' training, before the batch's bar
        self.live = live_wanted(self.console.file)

    def __enter__(self) -> "BatchView":
        return self

    def __exit__(self, *exc) -> None:
        if self.task is not None or self.preparing is not None:
            self.progress.stop()

    def start(self, total: int, todo: int) -> None:
        # Started only once there is work: an error before it (no data) prints one clean line.
        if self.preparing is not None:
            self.progress.remove_task(self.preparing)
            self.preparing = None
        else:
            self.progress.start()
        self.task = self.progress.add_task(f"grading {todo} of {total} (the rest unchanged)", total=total)

    def step(self, event: ProgressEvent) -> None:
        """A model's check or epoch: on the bar's line on a terminal, else as a plain line."""
        if not self.live:
            write_plain(self.console.file, event)
            return
        line = escape(progress_line(event))
        if self.task is not None:
            self.progress.update(self.task, description=line)
        elif self.preparing is None:
            self.progress.start()
            self.preparing = self.progress.add_task(line, total=None)
        else:
            self.progress.update(self.preparing, description=line)

    def done(self, result: GradeResult, reused: bool) -> None:
        verb = "unchanged" if reused else ("could not grade" if result.status == "error" else "graded")
        self.progress.update(self.task, advance=1,
                             description=escape(f"{verb} {clean(result.student)}: {result.score:g}/{result.max_score:g}"))

    def summary(self, report: BatchReport, out: Path) -> None:
        results = list(report.results.values())
        console = self.console
        if report.interrupted:
            console.print(f"[yellow]interrupted[/]: {len(report.graded)} graded this run; every finished result is in {out}", highlight=False)
        if not results:
            return
        fractions = [score_fraction(r) for r in results]
        console.print(f"[bold]{len(results)} submissions[/] ({len(report.graded)} graded now, {len(report.reused)} unchanged)", highlight=False)
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("score")
        table.add_column("students", justify="right")
        table.add_column("")
        counts = histogram(results)
        for i in reversed(range(BUCKETS)):
            table.add_row(f"{i * 10:>3}-{i * 10 + 10}%", str(counts[i]), "█" * counts[i])
        console.print(table)
        console.print(f"mean {statistics.mean(fractions):.0%}, median {statistics.median(fractions):.0%}", highlight=False)
        errors = [r.student for r in results if r.status == "error"]
        if errors:
            console.print(f"[red]could not grade[/] {', '.join(errors)} (see their result.json)", highlight=False)
        flagged = [r.student for r in results if r.flags]
        if flagged:
            console.print(f"[yellow]flagged for review[/]: {', '.join(flagged)}", highlight=False)
        for pair in report.similar[:SHOWN_PAIRS]:
            console.print(f"[yellow]similar[/]: {pair.a} and {pair.b} ({pair.reason}, {pair.ratio:.0%})", highlight=False)
        if len(report.similar) > SHOWN_PAIRS:
            console.print(f"... {len(report.similar) - SHOWN_PAIRS} more similar pairs in {out / 'similar.csv'}", highlight=False)
        console.print(f"gradebook: {out / 'gradebook.csv'}", highlight=False)
