"""A result in GitHub Actions' own terms, for `grader ci`.

GitHub Actions reads `::error file=...,title=...::message` lines as annotations on the file and a
Markdown file at $GITHUB_STEP_SUMMARY as the job's summary (other CI systems read JUnit XML:
report/junit.py). An annotation names no line: GitHub could only point at a line of the
notebook's JSON, which it shows as raw JSON; the cell the check is about is in the title instead.

The runner reads a workflow command from any line of the log that starts with `::` (after spaces)
or holds `##[` anywhere, on stdout and stderr alike. So every line carrying text a student controls
is printed between `::stop-commands::TOKEN` and `::TOKEN::` (`stop_commands`), with a token drawn
afresh each time, which the student's text, written before the run, cannot know; the grader's own
commands (groups, annotations) are printed outside, with their student parts escaped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

from grader.checks import CheckResult
from grader.grading.result import GradeResult
from grader.report.text import clean

_DATA = {"%": "%25", "\r": "%0D", "\n": "%0A"}
_PROPERTY = {**_DATA, ":": "%3A", ",": "%2C"}


def escape_data(value: str) -> str:
    """`value` as a workflow command's message: %, CR and LF encoded, other control characters dropped."""
    return clean(value.translate(str.maketrans(_DATA)))


def escape_property(value: str) -> str:
    """`value` as a workflow command's property (file=, title=): also ':' and ',' encoded."""
    return clean(value.translate(str.maketrans(_PROPERTY)))


def command(level: str, message: str, **properties: str) -> str:
    """One workflow command line, every part escaped: `::level key=value,...::message`."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{level} {props}::{escape_data(message)}" if props else f"::{level}::{escape_data(message)}"


def stop_commands(lines: Sequence[str]) -> list[str]:
    """`lines` (each one line already) as text the runner runs no command from: between
    `::stop-commands::TOKEN` and the resume line `::TOKEN::`, TOKEN drawn here."""
    token = secrets.token_hex(16)
    return [f"::stop-commands::{token}", *lines, f"::{token}::"]


def check_title(check: CheckResult) -> str:
    """The annotation's title: the check's name, after the cell it is about when there is one."""
    return f"Cell {check.cell}: {check.label}" if check.cell is not None else check.label


def annotations(result: GradeResult, file: str) -> list[str]:
    """An error for each failing required check, a warning for each informational one not met.

    `file` is the notebook's path relative to the repository (how GitHub finds the file).
    """
    if result.status == "error":
        return [command("error", result.error or "could not be graded", file=file, title="The notebook cannot be graded")]
    found = []
    for c in result.checks:
        if c.outcome in ("failed", "not_met"):
            text = c.message + (f" — {c.hint}" if c.hint else "")
            found.append(command("error" if c.outcome == "failed" else "warning", text, file=file, title=check_title(c)))
    return found


def step_summary(result: GradeResult, feedback_markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(feedback_markdown)


__all__ = ["annotations", "check_title", "command", "escape_data", "escape_property", "step_summary", "stop_commands"]
