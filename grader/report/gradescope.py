"""Gradescope's autograder results.json, rendered from a GradeResult (or from a hand-in that has none).

Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/. The top-level output is
the student's Markdown feedback, and Gradescope always shows it: what the rubric holds back (a
check's `visibility`) stays out of it, and so do the retraining's figures when a retraining check
is held (the effect, the reproduced accuracies, the leaderboard value would give the verdict away).
Each check is a test named by its title, shown when the rubric's `visibility` says; a check that
cannot cost points (0 points in the rubric, or not scored here) is informational: no score and no
status, so Gradescope shows it neither passed nor failed, tagged `informational`, its output saying
why. A notebook that cannot be read is one failed test worth the whole score.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

from grader import __version__
from grader.checks import TITLES, CheckResult, ids
from grader.grading.result import GradeResult
from grader.report.feedback import feedback_markdown, machine_paths
from grader.report.status import check_view, tone
from grader.report.text import markdown as md

INFORMATIONAL = "informational"
"""The tag of a check that cannot cost points."""
NOT_USED = "not used"
"""extra_data's isolation when no student code ran."""


def gradescope_results(result: GradeResult, *, notice: str = "", seconds: float | None = None,
                       full_score: float | None = None, extra_data: Mapping[str, Any] | None = None) -> dict:
    """results.json for one graded (or ungradable) submission.

    `notice` (Markdown) heads the output; `seconds` is the run's wall time (default: the grading's);
    `full_score` what an unreadable notebook scores 0 of (default: the result's maximum); `extra_data`
    is merged over what the result records (the autograder's budget and isolation)."""
    prov = result.provenance
    extra = {"grader_version": prov.grader_version, "rubric_sha256": prov.rubric_sha256, "budget": prov.budget,
             "isolation": prov.run.isolation if prov.run else NOT_USED, **(extra_data or {})}
    if result.status == "error":
        result = _unreadable(result, result.max_score if full_score is None else full_score)
    shown, later, figures_held = shown_now(result)
    output = "".join(f"{part}\n\n" for part in (notice, later) if part) + feedback_markdown(shown, figures_held=figures_held)
    payload = _payload(score=result.score, output=output, seconds=prov.seconds if seconds is None else seconds,
                       extra_data=extra)
    paths = machine_paths(result)
    payload["tests"] = [_test(number, check, paths) for number, check in enumerate(result.checks, 1)]
    accuracy = result.test_accuracy
    if accuracy is not None and not figures_held:  # a leaderboard is always shown: never a held-back figure
        payload["leaderboard"] = [{"name": f"Proposed model: test accuracy (%) when the grader retrains it "
                                           f"({prov.budget} budget)", "value": round(accuracy * 100, 2), "order": "desc"}]
    return payload


def _unreadable(result: GradeResult, full_score: float) -> GradeResult:
    """An ungradable submission as one failed check worth the whole score (the rubric's notebook_valid, or
    one in its place for a rubric without it): Gradescope then shows a failed test and 0 of the points, not 0 / 0."""
    failed = next((c for c in result.checks if c.id == "notebook_valid"),
                  CheckResult(id="notebook_valid", passed=False, points=0.0, max_points=0.0, message=result.error or "",
                              title=TITLES["notebook_valid"]))
    return replace(result, checks=(replace(failed, passed=False, points=0.0, max_points=full_score, scored=True),),
                   max_score=full_score)


def shown_now(result: GradeResult) -> tuple[GradeResult, str, bool]:
    """`result` as the always-visible output may show it, the line that says what comes later, and
    whether the retraining's figures are held back (a retraining check is: its figures would give it away).

    Gradescope holds back a test by its `visibility`, but the top-level output is always shown."""
    held = {c.id for c in result.checks if c.visibility != "visible"}
    if not held:
        return result, "", False
    shown = tuple(c for c in result.checks if c.id not in held)
    hide_runs = bool(held & set(ids("run")))
    later = ", ".join(md(c.label) for c in result.checks if c.id in held)
    words = (f"*Shown later, as your instructor chose: {later}. The score on this page counts the checks shown now"
             + ("; the retraining's figures come with them.*" if hide_runs else ".*"))
    if hide_runs:
        result = replace(result, runs={}, references={}, effect=None)
    return replace(result, checks=shown, max_score=round(sum(c.max_points for c in shown), 2)), words, hide_runs


def gradescope_error(message: str, *, seconds: float, rubric_sha256: str = "", budget: str = "",
                     extra_data: Mapping[str, Any] | None = None) -> dict:
    """results.json for a submission that could not be graded at all: score 0 and `message` (Markdown), which
    says what to hand in or who to tell."""
    extra = {"grader_version": __version__, **({"rubric_sha256": rubric_sha256} if rubric_sha256 else {}),
             **({"budget": budget} if budget else {}), "isolation": NOT_USED, **(extra_data or {})}
    return _payload(score=0.0, output=message, seconds=seconds, extra_data=extra)


def _payload(*, score: float, output: str, seconds: float, extra_data: Mapping[str, Any]) -> dict:
    return {
        "score": score, "execution_time": execution_time(seconds), "output": output, "output_format": "md",
        "test_output_format": "md", "test_name_format": "text",
        "stdout_visibility": "hidden",  # the grader's log, tracebacks included, is for the instructor
        "extra_data": dict(extra_data), "tests": [],
    }


def execution_time(seconds: float) -> int:
    """Whole seconds, rounded up: a run that took any time never reads 0."""
    return max(0, math.ceil(seconds))


def informational(check: CheckResult) -> bool:
    """The check cannot cost points: 0 points in the rubric, or not scored here (the tones the student's
    page shows as Informational and Not scored)."""
    return tone(check) in ("info", "unscored")


def _test(number: int, check: CheckResult, paths: tuple[str, ...]) -> dict:
    test: dict[str, Any] = {
        "name": check.label, "name_format": "text", "number": str(number), "output": _test_output(check, paths),
        "output_format": "md", "tags": [check.id] + ([INFORMATIONAL] if informational(check) else []),
        "visibility": check.visibility, "extra_data": {"check": check.id, "required": check.required},
    }
    if not informational(check):
        test.update(score=check.points, max_score=check.max_points, status="passed" if check.passed else "failed")
    return test


def _test_output(check: CheckResult, paths: tuple[str, ...]) -> str:
    view = check_view(check, paths)  # the student's words: the grading machine's paths left out
    lines = [md(view.message)]
    if not check.scored:
        lines.insert(0, "*Not scored: it counts neither for nor against you (the reason follows).*")
    elif check.max_points == 0:
        lines.insert(0, "*For your information: this check carries no points.*")
    if check.hint:
        lines.append(f"**How to fix:** {check.hint}")  # the rubric's words, not the student's
    if view.override:  # the instructor's points and words, as the feedback says them
        lines.append(f"**{md(view.override)}**")
    return "\n\n".join(lines)


__all__ = ["INFORMATIONAL", "NOT_USED", "execution_time", "gradescope_error", "gradescope_results", "informational",
           "shown_now"]
