"""What `grader ci` prints: a list of the checks, the budget, annotations, one summary line.

On GitHub Actions (GITHUB_ACTIONS=true) the lists are `::group::` sections the log folds and
failing checks become annotations (report/github.py); on GitLab CI (GITLAB_CI=true) the lists are
its collapsible `section_start`/`section_end` sections; elsewhere the same lines are printed plain.

Every line is one readable line of text: student text is cleaned and a newline in it shows as `\\n`
(grader/report/text.py one_line), so a notebook named `hw3\\n::error::...` starts no line. Under
GitHub Actions every line that carries student text (file and class names, messages, the budget's
model names) is printed between stop-commands and its resume line (report/github.py
stop_commands); the grader's own annotations come after it. GitLab reads a section marker only
after an ESC, which clean() removes from student text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Mapping, Sequence

from grader.checks import CheckResult
from grader.grading.result import GradeResult
from grader.report.budget import budget_lines
from grader.report.github import annotations, check_title, escape_data, stop_commands
from grader.report.text import clean, one_line

LogStyle = Literal["github", "gitlab", "plain"]
"""Which CI's log conventions `grader ci` follows."""

_GITLAB_CLEAR = "\x1b[0K"  # GitLab's section markers are wrapped in "erase line" so a terminal hides them


def log_style(environ: Mapping[str, str]) -> LogStyle:
    """The CI system this process runs under, from the variables each one sets."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("GITLAB_CI") == "true":
        return "gitlab"
    return "plain"


def repository_root(path: Path, environ: Mapping[str, str]) -> Path | None:
    """The repository paths are shown relative to: the CI's checkout, else the folder `grader ci` was given."""
    workspace = environ.get("GITHUB_WORKSPACE") or environ.get("CI_PROJECT_DIR")
    if workspace:
        return Path(workspace)
    return path if path.is_dir() else None


def section(title: str, lines: Sequence[str], style: LogStyle, *, now: int) -> list[str]:
    """`lines` under `title`, collapsible where the CI folds sections; `now` (Unix seconds) times GitLab's.
    Both may carry student text: they are printed as `quoted` says."""
    title = one_line(title)
    if style == "github":  # the group command is the grader's; its title is the command's data, escaped
        return [f"::group::{escape_data(title)}", *quoted(lines, style), "::endgroup::"]
    if style == "gitlab":
        key = re.sub(r"[^A-Za-z0-9_.-]+", "_", title).strip("_").lower() or "grader"
        return [f"{_GITLAB_CLEAR}section_start:{now}:{key}[collapsed=true]\r{_GITLAB_CLEAR}{title}", *quoted(lines, style),
                f"{_GITLAB_CLEAR}section_end:{now}:{key}\r{_GITLAB_CLEAR}"]
    return [f"== {title}", *quoted(lines, style)]


def quoted(lines: Sequence[str], style: LogStyle) -> list[str]:
    """Lines that carry student text, as text only: each kept on one line, and under GitHub Actions
    between stop-commands and its resume line, so that none of them is read as a workflow command."""
    shown = [one_line(line) for line in lines]
    return stop_commands(shown) if style == "github" else shown


_WORDS = {"passed": "pass", "failed": "FAIL", "not_met": "info", "unscored": "skip"}


def check_line(check: CheckResult) -> str:
    """One check in the log: outcome, title (with its cell), points, what was found."""
    outcome = _WORDS[check.outcome]
    points = f"{check.points:g}/{check.max_points:g}" if check.scored else "not scored"
    message = " ".join(clean(check.message).split())
    return f"{outcome:<4}  {clean(check_title(check))} ({points}): {message}"


def ci_log(result: GradeResult, file: str, style: LogStyle, *, now: int) -> list[str]:
    """Everything `grader ci` prints on stdout for `result`; `file` is the notebook's repository path."""
    lines: list[str] = []
    if result.status != "error":
        lines += section(f"grader: checks of {file}", [check_line(c) for c in result.checks], style, now=now)
        lines += section("grader: training budget and data", budget_lines(result), style, now=now)
    if style == "github":  # the grader's own commands: outside every stop-commands block
        lines += annotations(result, file)
    if result.status != "error":
        failing = ", ".join(c.id for c in result.failing)
        lines += quoted([f"{file}: {result.score:g}/{result.max_score:g}"
                         + (f"; failing: {failing}" if failing else "; every required check passes")], style)
    return lines


__all__ = ["LogStyle", "check_line", "ci_log", "log_style", "quoted", "repository_root", "section"]
