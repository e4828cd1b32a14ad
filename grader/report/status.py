"""How each check is shown to a student: its title, a status in words, its tone, and the instructor's say.

One view of a CheckResult for every student rendering (feedback.md's table, feedback.html's badges,
the block at the notebook cell a failed check is about), so they cannot disagree. The status is a
word first (readable without colour, on a printout, by a screen reader); `tone` picks its colour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

from grader.checks import CheckResult
from grader.report.text import clean, without_paths

Tone = Literal["passed", "failed", "partial", "unscored", "info"]

STATUS: dict[Tone, str] = {
    "passed": "Passed",
    "failed": "Failed",
    "partial": "Partial credit",
    "unscored": "Not scored",
    "info": "Informational",
}
"""The word each tone is shown with."""


@dataclass(frozen=True)
class CheckView:
    """One check as the student reads it; plain text (each renderer escapes it for its format)."""

    label: str
    tone: Tone
    status: str
    points: str
    """'8 / 10', or 'not scored'."""
    message: str
    """What the grader found, without the grading machine's paths."""
    hint: str
    """How to fix it; empty when there is nothing to fix."""
    override: str
    """The instructor's decision in words, or empty when the autograder's points stand."""
    cell: int | None

    @property
    def needs_work(self) -> bool:
        """Shown again at its notebook cell: the student lost points here."""
        return self.tone in ("failed", "partial")


def tone(check: CheckResult) -> Tone:
    if not check.scored:
        return "unscored"
    if check.max_points == 0:
        return "info"
    if check.points >= check.max_points:
        return "passed"
    return "partial" if check.points > 0 else "failed"


def check_view(check: CheckResult, paths: Iterable[str] = ()) -> CheckView:
    """`check` for a student; `paths` are the grading machine's paths to leave out of its message."""
    t = tone(check)
    points = f"{check.points:g} / {check.max_points:g}" if check.scored else "not scored"
    override = ""
    if check.overridden_from is not None:
        override = (f"Your instructor set this to {check.points:g} / {check.max_points:g} "
                    f"(the autograder gave {check.overridden_from:g})")
        override += f": {clean(check.instructor_comment)}" if check.instructor_comment else "."
    elif check.instructor_comment:
        override = f"Your instructor's comment: {clean(check.instructor_comment)}"
    return CheckView(label=check.label, tone=t, status=STATUS[t], points=points,
                     message=without_paths(clean(check.message), paths),
                     hint=check.hint if t in ("failed", "partial") else "", override=override, cell=check.cell)


__all__ = ["CheckView", "STATUS", "Tone", "check_view", "tone"]
