"""Gradescope's autograder results.json, rendered from a GradeResult.

Format: https://gradescope-autograders.readthedocs.io/en/latest/specs/ (tests with score,
max_score, status and output; an optional leaderboard).
"""

from __future__ import annotations

from grader.checks import CheckResult
from grader.grading.result import GradeResult
from grader.report.text import clean


def _instructor(check: CheckResult) -> str:
    """The instructor's override of a check, said after the grader's finding."""
    if check.overridden_from is None:
        return ""
    said = f"\nPoints set by your instructor (the autograder gave {check.overridden_from:g})."
    return said + (f"\nInstructor: {clean(check.instructor_comment)}" if check.instructor_comment else "")


def gradescope_results(result: GradeResult) -> dict:
    tests = []
    for number, c in enumerate(result.checks, 1):
        output = clean(c.message) + (f"\nHow to fix: {c.hint}" if c.hint else "") + _instructor(c)
        tests.append({
            "name": c.id, "number": str(number), "score": c.points, "max_score": c.max_points,
            "status": "passed" if c.passed or not c.scored else "failed", "output": output,
        })
    summary = f"{result.student}: {result.score:g} / {result.max_score:g}"
    if result.error:
        summary += f"\nThis submission could not be graded: {clean(result.error)}"
    payload = {"score": result.score, "output": summary, "stdout_visibility": "hidden", "tests": tests}
    accuracy = result.test_accuracy
    if accuracy is not None:
        payload["leaderboard"] = [{"name": "Test accuracy", "value": round(accuracy * 100, 2), "order": "desc"}]
    return payload
