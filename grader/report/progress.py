"""Training progress on the command line: one live line on a terminal, plain lines elsewhere.

On a terminal a spinner line says which model is being checked or trained, its epoch and about
how long is left, rewritten in place. In CI logs and pipes (not a TTY, or $CI set) each event is
one plain line: no ANSI codes, no carriage returns, e.g.

    training ResDropNet: epoch 2/15, 12.3 s, about 2 min left
    training reference LeNet5: epoch 1/2, val acc 31.0%, 4.1 s, about 4 s left

Model and student names are the student's choice: they pass through grader/report/text.py clean().
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import TextIO

from rich.console import Console
from rich.status import Status
from rich.text import Text

from grader.report.text import clean
from grader.training.progress import ProgressEvent

MAX_NAME = 60  # characters of a name shown: a class name is never longer in an honest notebook


def progress_line(event: ProgressEvent) -> str:
    """The event as one line of plain text."""
    who = f"{_name(event.student)}: " if event.student else ""
    model = _name(event.model)
    if event.stage == "check":
        return f"{who}building and checking {model} ..."
    what = f"training {'reference ' if event.stage == 'reference' else ''}{model}"
    if event.epoch <= 0:
        return f"{who}{what}: {event.epochs} epoch{'s' if event.epochs != 1 else ''} ..."
    parts = [f"epoch {event.epoch}/{event.epochs}"]
    if event.val_accuracy is not None:
        parts.append(f"val acc {event.val_accuracy:.1%}")
    parts.append(f"{event.seconds:.1f} s")
    if event.eta is not None:
        parts.append(f"about {duration(event.eta)} left")
    return f"{who}{what}: {', '.join(parts)}"


def duration(seconds: float) -> str:
    """A rough length of time: '8 s', '2 min', '1 h 5 min'."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def live_wanted(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """A line that updates in place only on an interactive terminal: never in CI logs or pipes."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False
    return tty and not environ.get("CI") and environ.get("TERM") != "dumb"


def write_plain(stream: TextIO, event: ProgressEvent) -> None:
    stream.write(progress_line(event) + "\n")
    stream.flush()


class ProgressDisplay:
    """Shows progress events while a command that grades one notebook (or none: the references)
    runs: `with ProgressDisplay() as show: ...(on_progress=show)`. Whose notebook it is goes
    unsaid; a batch's view (grader/report/batchview.py) names the student."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None):
        self.stream = stream or sys.stderr
        self.live = live_wanted(self.stream) if live is None else live
        self.status: Status | None = None

    def __enter__(self) -> "ProgressDisplay":
        return self

    def __exit__(self, *exc) -> None:
        if self.status is not None:
            self.status.stop()  # transient: the line goes, the results follow
            self.status = None

    def __call__(self, event: ProgressEvent) -> None:
        event = replace(event, student="")
        if not self.live:
            write_plain(self.stream, event)
            return
        if self.status is None:
            self.status = Console(file=self.stream).status(Text(progress_line(event)))
            self.status.start()
        else:
            self.status.update(Text(progress_line(event)))


def _name(text: str) -> str:
    shown = clean(text).replace("\n", " ").replace("\t", " ")
    return shown if len(shown) <= MAX_NAME else shown[:MAX_NAME - 3] + "..."


__all__ = ["ProgressDisplay", "duration", "live_wanted", "progress_line", "write_plain"]
