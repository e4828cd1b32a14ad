"""`grader export`: a graded folder's results as a spreadsheet or as a Canvas gradebook import file.

Both are rendered from the result.json files `grader grade` wrote (overrides included), beside its
gradebook.csv; nothing is graded. The maximum is the rubric's for the class's budget on every row
(as in gradebook.csv), so the rubric the class was graded with is needed: by default the one the
results record, checked against the hash they record.

Canvas's gradebook import reads the identity columns Student, ID, SIS User ID, SIS Login ID and
Section, then one column per assignment headed 'NAME' or 'NAME (CANVAS ID)', and skips a
'Points Possible' row right after the header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.checks import CHECK_IDS, TITLES
from grader.errors import GraderError
from grader.grading.result import GradeResult
from grader.report.review import load_class
from grader.report.roster import IDENTITY, RosterStudent, match_roster
from grader.report.spreadsheet import Cell, csv_text
from grader.rubric import DEFAULT_RUBRIC, Budget, Rubric, load_rubric


@dataclass(frozen=True)
class Graded:
    """A graded folder's results, with the rubric and budget they were graded under."""

    results: tuple[GradeResult, ...]
    """By student id."""
    rubric: Rubric
    budget: Budget
    problems: tuple[str, ...]
    """One line per student folder without a readable result."""

    @property
    def maximum(self) -> float:
        """The rubric's maximum for the budget: every student's max (gradebook.csv's `max`)."""
        return self.rubric.max_score(self.budget)


@dataclass(frozen=True)
class Export:
    """The file's text, and one line for each student who could not be exported as they should be."""

    text: str
    problems: tuple[str, ...]


def load_graded(folder: Path, rubric_path: Path | None = None) -> Graded:
    """The results in `folder` (the --out of grader grade) and the rubric (default: the one they record)."""
    results, problems = load_class(folder)
    budgets = sorted({r.provenance.budget for r in results})
    if len(budgets) > 1:
        raise GraderError(f"the results in {folder} were graded under several budgets ({', '.join(budgets)}); "
                          "grade the class again under one")
    rubric = load_rubric(rubric_path if rubric_path is not None else _recorded_rubric(results))
    other = next((r for r in results if r.provenance.rubric_sha256 != rubric.sha256), None)
    if other is not None:
        raise GraderError(f"{other.student} was graded with another rubric than {rubric.source} (its result records "
                          f"{other.provenance.rubric_source}); pass --rubric with the rubric the class was graded with")
    return Graded(tuple(results), rubric, budgets[0], tuple(problems))


def _recorded_rubric(results: list[GradeResult]) -> Path | None:
    source = results[0].provenance.rubric_source
    return None if source == f"rubrics/{DEFAULT_RUBRIC}" else Path(source)


def export_csv(graded: Graded) -> Export:
    """One row per student: status, total, max, own max, then each check's points under its title
    (empty where the check was not scored)."""
    ids = _check_ids(graded)
    rows: list[list[Cell]] = [["student", "status", "total", "max", "max_scored", *(_title(graded, i) for i in ids)]]
    for r in graded.results:
        points = {c.id: c.points for c in r.checks if c.scored or c.overridden_from is not None}
        rows.append([r.student, r.status, r.score, graded.maximum, r.max_score, *(points.get(i) for i in ids)])
    return Export(csv_text(rows), graded.problems)


def export_canvas(graded: Graded, *, roster: tuple[RosterStudent, ...] | None = None,
                  assignment: str | None = None) -> Export:
    """A Canvas gradebook import file: the identity columns, one assignment column, Points Possible first.

    With a roster (Canvas's own export), each student's row carries Canvas's identity for them;
    without one, the grader's id goes in SIS Login ID (and Student, for people). Students the roster does not know are still
    written (under the grader's id: Canvas's import asks whom they are) and reported.
    """
    column = assignment or graded.rubric.assignment.name
    match = match_roster([r.student for r in graded.results], roster) if roster is not None else None
    rows: list[list[Cell]] = [[*IDENTITY, column], ["Points Possible", "", "", "", "", graded.maximum]]
    for r in graded.results:
        student = match.students.get(r.student) if match else None
        rows.append([*(student or RosterStudent(name=r.student, sis_login_id=r.student)).identity, r.score])
    return Export(csv_text(rows), graded.problems + (match.problems if match else ()))


def _check_ids(graded: Graded) -> list[str]:
    """The budget's checks, and any other a result holds (an override may score a check outside the budget)."""
    held = {c.id for r in graded.results for c in r.checks}
    return [i for i in CHECK_IDS if i in graded.rubric.applicable(graded.budget) or i in held]


def _title(graded: Graded, check_id: str) -> str:
    spec = graded.rubric.checks.get(check_id)
    return (spec.title if spec else "") or TITLES[check_id]


__all__ = ["Export", "Graded", "export_canvas", "export_csv", "load_graded"]
