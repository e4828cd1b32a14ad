"""A result in GitHub Actions' own terms, for `grader ci`.

GitHub Actions reads `::error file=...,line=...::` lines as annotations on the file and a
Markdown file at $GITHUB_STEP_SUMMARY as the job's summary (other CI systems read JUnit XML:
report/junit.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from grader.grading.result import GradeResult
from grader.report.text import clean


def cell_lines(notebook: Path) -> dict[int, int]:
    """Cell index -> line in the .ipynb file where that cell starts (what annotations point at)."""
    lines: dict[int, int] = {}
    try:
        text = notebook.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return lines
    for index, match in enumerate(re.finditer(r'"cell_type"\s*:', text)):
        lines[index] = text.count("\n", 0, match.start()) + 1
    return lines


def _escape(value: str) -> str:
    # GitHub's workflow-command encoding for data and properties; control characters dropped.
    return clean(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotations(result: GradeResult, notebook: Path) -> list[str]:
    lines = cell_lines(notebook)
    found = []
    if result.status == "error":
        return [f"::error file={notebook},title=notebook::{_escape(result.error or 'could not be graded')}"]
    for c in result.checks:
        if c.passed:
            continue
        level = "error" if c.required else "warning"
        where = f"file={notebook}"
        if c.cell is not None and c.cell in lines:
            where += f",line={lines[c.cell]}"
        text = c.message + (f" — {c.hint}" if c.hint else "")
        cell = f" (cell {c.cell})" if c.cell is not None else ""
        found.append(f"::{level} {where},title={c.id}{cell}::{_escape(text)}")
    return found


def step_summary(result: GradeResult, feedback_markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(feedback_markdown)
