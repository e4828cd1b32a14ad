"""`grader ci`: the checks on a student's repository, in the CI system's own terms.

GitHub Actions reads `::error file=...,line=...::` lines as annotations on the file and a
Markdown file at $GITHUB_STEP_SUMMARY as the job's summary; other CI systems read JUnit XML.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from grader.errors import GraderError
from grader.result import GradeResult


def find_notebook(path: Path) -> Path:
    """The repository's one notebook (checkpoints ignored); a file path is taken as it is."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise GraderError(f"{path} does not exist; run grader ci in the repository or give its path")
    notebooks = sorted(p for p in path.rglob("*.ipynb") if not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not notebooks:
        raise GraderError(f"no .ipynb notebook in {path}; commit your notebook to the repository")
    if len(notebooks) > 1:
        names = ", ".join(str(p.relative_to(path)) for p in notebooks[:5])
        raise GraderError(f"several notebooks in {path} ({names}); pass the one to grade: grader ci PATH/TO/NOTEBOOK.ipynb")
    return notebooks[0]


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
    # GitHub's workflow-command encoding for data and properties.
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotations(result: GradeResult, notebook: Path) -> list[str]:
    lines = cell_lines(notebook)
    found = []
    if result.status == "error":
        return [f"::error file={notebook},title=notebook::{_escape(result.error or 'could not be graded')}"]
    for c in result.checks:
        if c["passed"]:
            continue
        level = "error" if c.get("required", True) else "warning"
        where = f"file={notebook}"
        if c.get("cell") is not None and c["cell"] in lines:
            where += f",line={lines[c['cell']]}"
        text = c["message"] + (f" — {c['hint']}" if c.get("hint") else "")
        cell = f" (cell {c['cell']})" if c.get("cell") is not None else ""
        found.append(f"::{level} {where},title={c['id']}{cell}::{_escape(text)}")
    return found


def step_summary(result: GradeResult, feedback_markdown: str) -> None:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(feedback_markdown)
