"""An instructor's manual overrides: points and a comment for one student's check, without regrading.

overrides.toml holds one `[[override]]` table per overridden check:

    [[override]]
    student = "alice"            # the grader's id (the notebook's or its folder's name)
    check = "discussion"         # a check id of the rubric
    points = 12                  # 0 .. the check's points in the rubric
    comment = "Good argument; cite your numbers next time."   # optional, shown to the student

Applying is a pure function of a stored result and the file, and it undoes any earlier override
first (the autograder's points are kept in `overridden_from`): a result reused from an earlier run
gets exactly the overrides of this run, so deleting a line restores the autograder's points on the
next run, and nothing about an override enters the grade's fingerprint.

A check the autograder did not score (a budget too small to judge it, or a run check under
--no-train) may be overridden too: the instructor's points count, out of the check's points in the
rubric, and those points join the student's own maximum (`max_score`, the gradebook's max_scored)
unless it already counts them (a submission that could not be graded counts every check of its
budget). The check's verdict (passed or failed, and its message) stays the autograder's.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from grader.checks import CHECK_IDS, CheckResult, Verdict
from grader.errors import GraderError
from grader.grading.result import GradeResult
from grader.rubric import Rubric
from grader.typed import PlainError, from_plain

NOT_JUDGED = "The autograder did not judge this check for this submission; your instructor scored it."
"""The message of a check an override adds to a result that did not have it."""


@dataclass(frozen=True)
class _Entry:
    """One [[override]] table as written."""

    student: str
    check: str
    points: float
    comment: str = ""


@dataclass(frozen=True)
class Override:
    """One validated override."""

    student: str
    check: str
    points: float
    """The instructor's points, 0 .. the check's points in the rubric."""
    comment: str
    where: str
    """Where it was written ('overrides.toml line 7'), for messages."""


class OverrideError(GraderError):
    """The overrides file is malformed or does not fit the rubric or the class."""


def load_overrides(path: Path, rubric: Rubric) -> tuple[Override, ...]:
    """The overrides in `path`, each checked against the rubric; the first mistake raises, in one line."""
    table = _read_toml(path)
    unknown = sorted(set(table) - {"override"})
    if unknown:
        raise OverrideError(f"unknown key {unknown[0]!r} in {path}; an overrides file holds only [[override]] tables")
    entries = table.get("override", [])
    if not isinstance(entries, list):
        raise OverrideError(f"override in {path} must be [[override]] tables (an array of tables)")
    lines = _header_lines(path.read_text(encoding="utf-8"), len(entries))
    seen: dict[tuple[str, str], str] = {}
    records = []
    for number, raw in enumerate(entries, 1):
        where = f"{path} line {lines[number - 1]}" if lines else f"{path} [[override]] number {number}"
        record = _validated(raw, where, rubric)
        key = (record.student, record.check)
        if key in seen:
            raise OverrideError(f"{where}: student {record.student!r} has check {record.check!r} overridden a second "
                                f"time (first at {seen[key]}); keep one")
        seen[key] = where
        records.append(record)
    return tuple(records)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OverrideError(f"overrides file {path} does not exist; pass --overrides with a TOML file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as e:
        raise OverrideError(f"overrides file {path} cannot be read ({e}); pass a UTF-8 TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise OverrideError(f"overrides file {path} is not valid TOML: {e}") from None


def _header_lines(text: str, count: int) -> list[int]:
    """The line of each [[override]] header, when every entry has one (else [] and entries are numbered)."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*override\s*\]\]", line)]
    return lines if len(lines) == count else []


def _validated(raw: object, where: str, rubric: Rubric) -> Override:
    try:
        entry = from_plain(_Entry, raw, "override", context=f"in {where}")
    except PlainError as e:
        needs = "; every [[override]] needs student, check and points (comment is optional)"
        raise OverrideError(f"{e}{needs if str(e).startswith('missing key') else ''}") from None
    if entry.check not in rubric.checks:
        known = ", ".join(rubric.checks)
        raise OverrideError(f"{where}: unknown check {entry.check!r}; the rubric's checks are {known}")
    most = rubric.checks[entry.check].points
    if not 0 <= entry.points <= most:  # NaN fails too
        raise OverrideError(f"{where}: points = {entry.points:g} for {entry.check!r} must be between 0 and {most:g} "
                            "(the check's points in the rubric)")
    return Override(entry.student, entry.check, float(entry.points), entry.comment, where)


def check_students(overrides: Iterable[Override], students: Iterable[str], root: Path) -> None:
    """Refuse overrides of students who are not in the class: a misspelt name must not lose a grade."""
    known = sorted(students)
    class_ids = set(known)
    strangers = [o for o in overrides if o.student not in class_ids]
    if strangers:
        named = "; ".join(f"{o.student!r} at {o.where}{_did_you_mean(o.student, known)}" for o in strangers)
        raise OverrideError(f"overrides for students not in {root}: {named}; fix the id or remove the override")


def _did_you_mean(student: str, known: list[str]) -> str:
    close = difflib.get_close_matches(student, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def apply_overrides(result: GradeResult, overrides: Iterable[Override], rubric: Rubric) -> GradeResult:
    """`result` with the autograder's points restored, then this student's overrides applied."""
    result = _restored(result, rubric)
    mine = {o.check: o for o in overrides if o.student == result.student}
    if not mine:
        return result
    checks = {c.id: c for c in result.checks}
    max_score = result.max_score
    for check_id, override in mine.items():
        spec = rubric.checks[check_id]
        base = checks.get(check_id) or rubric.score(check_id, Verdict(False, NOT_JUDGED, scored=False))
        checks[check_id] = changed = replace(base, points=override.points, max_points=spec.points,
                                             overridden_from=base.points, instructor_comment=override.comment)
        max_score += _maximum_added(result, changed, rubric)
    ordered = tuple(sorted(checks.values(), key=lambda c: CHECK_IDS.index(c.id)))
    return replace(result, checks=ordered, max_score=round(max_score, 2))


def _restored(result: GradeResult, rubric: Rubric) -> GradeResult:
    """The result as the autograder left it: every earlier override undone."""
    if all(c.overridden_from is None for c in result.checks):
        return result
    checks: list[CheckResult] = []
    max_score = result.max_score
    for c in result.checks:
        if c.overridden_from is None:
            checks.append(c)
            continue
        max_score -= _maximum_added(result, c, rubric)
        if not _added_by_override(c):
            checks.append(replace(c, points=c.overridden_from, max_points=c.max_points if c.scored else 0.0,
                                  overridden_from=None, instructor_comment=""))
    return replace(result, checks=tuple(checks), max_score=round(max_score, 2))


def _maximum_added(result: GradeResult, check: CheckResult, rubric: Rubric) -> float:
    """What an override of `check` adds to the student's maximum: a check the autograder did not
    score joins it, unless it already counts (an ungradable submission counts its budget's every check)."""
    if check.scored:
        return 0.0
    if result.status == "error" and check.id in rubric.applicable(result.provenance.budget):
        return 0.0
    return check.max_points


def _added_by_override(check: CheckResult) -> bool:
    return not check.scored and check.message == NOT_JUDGED and check.overridden_from == 0.0


__all__ = ["NOT_JUDGED", "Override", "OverrideError", "apply_overrides", "check_students", "load_overrides"]
