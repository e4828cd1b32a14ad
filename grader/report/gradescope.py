"""Gradescope's autograder results.json, rendered from a GradeResult (or from a hand-in that has none).

Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/. The top-level output is
the student's Markdown feedback; each check is a test named by its title, shown when the rubric's
`visibility` says; a check that cannot cost points (0 points in the rubric, or not scored under
this budget) is informational: no score and no status, so Gradescope shows it neither passed nor
failed, tagged `informational`, its output saying why. The leaderboard ranks the proposed model's
retrained test accuracy, when there is one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from grader import __version__
from grader.checks import CheckResult, ids
from grader.grading.result import GradeResult
from grader.report.feedback import feedback_markdown
from grader.report.status import check_view, tone
from grader.report.text import markdown as md

INFORMATIONAL = "informational"
"""The tag of a check that cannot cost points."""


def gradescope_results(result: GradeResult, *, notice: str = "") -> dict:
    """results.json for one graded (or ungradable) submission; `notice` (Markdown) heads the output."""
    prov = result.provenance
    extra = {"grader_version": prov.grader_version, "rubric_sha256": prov.rubric_sha256, "budget": prov.budget}
    if prov.run is not None:
        extra["isolation"] = prov.run.isolation
    shown, later = shown_now(result)
    output = "".join(f"{part}\n\n" for part in (notice, later) if part) + feedback_markdown(shown)
    payload = _payload(score=0.0 if result.status == "error" else result.score, output=output,
                       seconds=prov.seconds, extra_data=extra)
    payload["tests"] = [_test(number, check) for number, check in enumerate(result.checks, 1)]
    accuracy = result.test_accuracy
    if accuracy is not None:
        payload["leaderboard"] = [{"name": f"Proposed model: test accuracy (%) when the grader retrains it "
                                           f"({prov.budget} budget)", "value": round(accuracy * 100, 2), "order": "desc"}]
    return payload


def shown_now(result: GradeResult) -> tuple[GradeResult, str]:
    """`result` as the always-visible output may show it: without the checks the rubric holds back, and,
    when a retraining check is held back, without the retraining's figures (they would give it away).

    Gradescope holds back a test by its `visibility`, but the top-level output is always shown."""
    held = {c.id for c in result.checks if c.visibility != "visible"}
    if not held:
        return result, ""
    shown = tuple(c for c in result.checks if c.id not in held)
    hide_runs = bool(held & set(ids("run")))
    later = ", ".join(md(c.label) for c in result.checks if c.id in held)
    words = (f"*Shown later, as your instructor chose: {later}. The score on this page counts the checks shown now"
             + ("; the retraining's figures come with them.*" if hide_runs else ".*"))
    return replace(result, checks=shown, max_score=round(sum(c.max_points for c in shown), 2),
                   runs={} if hide_runs else result.runs, references={} if hide_runs else result.references), words


def gradescope_error(message: str, *, seconds: float, rubric_sha256: str = "", budget: str = "") -> dict:
    """results.json for a submission that could not be graded at all: score 0 and `message` (Markdown), which
    says what to hand in or who to tell."""
    extra = {"grader_version": __version__, **({"rubric_sha256": rubric_sha256} if rubric_sha256 else {}),
             **({"budget": budget} if budget else {})}
    return _payload(score=0.0, output=message, seconds=seconds, extra_data=extra)


def _payload(*, score: float, output: str, seconds: float, extra_data: dict[str, Any]) -> dict:
    return {
        "score": score, "execution_time": int(round(seconds)), "output": output, "output_format": "md",
        "test_output_format": "md", "test_name_format": "text",
        "stdout_visibility": "hidden",  # the grader's log, tracebacks included, is for the instructor
        "extra_data": extra_data, "tests": [],
    }


def informational(check: CheckResult) -> bool:
    """The check cannot cost points: 0 points in the rubric, or not scored under this budget (the tones
    the student's page shows as Informational and Not scored)."""
    return tone(check) in ("info", "unscored")


def _test(number: int, check: CheckResult) -> dict:
    test: dict[str, Any] = {
        "name": check.label, "name_format": "text", "number": str(number), "output": _test_output(check),
        "output_format": "md", "tags": [check.id] + ([INFORMATIONAL] if informational(check) else []),
        "visibility": check.visibility, "extra_data": {"check": check.id, "required": check.required},
    }
    if not informational(check):
        test.update(score=check.points, max_score=check.max_points, status="passed" if check.passed else "failed")
    return test


def _test_output(check: CheckResult) -> str:
    lines = [md(check.message)]
    if not check.scored:
        lines.insert(0, "*Not scored under this budget: it counts neither for nor against you (the reason follows).*")
    elif check.max_points == 0:
        lines.insert(0, "*For your information: this check carries no points.*")
    if check.hint:
        lines.append(f"**How to fix:** {check.hint}")  # the rubric's words, not the student's
    override = check_view(check).override  # the instructor's points and words, as the feedback says them
    if override:
        lines.append(f"**{md(override)}**")
    return "\n\n".join(lines)


__all__ = ["INFORMATIONAL", "gradescope_error", "gradescope_results", "informational"]
