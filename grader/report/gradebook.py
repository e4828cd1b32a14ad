"""gradebook.csv: one row per student, rendered from the stored results.

`max` is the rubric's maximum for the batch's budget, the same on every row whatever happened to a
student; `max_scored` is the student's own maximum: the checks the grader could score for this
submission (a budget too small to judge a check leaves it out), plus any the instructor scored by an
override. `overridden` lists the checks whose points the instructor set.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from grader.grading.result import GradeResult
from grader.report.differs import FACTOR_COLUMNS, factor_cells
from grader.report.spreadsheet import Cell, csv_text


def _acc(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else ""


def gradebook_csv(results: Iterable[GradeResult], check_ids: Iterable[str], similar: Mapping[str, list[str]],
                  maximum: float) -> str:
    check_ids = list(check_ids)
    rows: list[list[Cell]] = [[
        "student", "status", "total", "max", "max_scored", *check_ids, "baseline", "proposed",
        "reported_test_acc_baseline", "reported_test_acc_proposed",
        "reproduced_test_acc_baseline", "reproduced_test_acc_proposed", *FACTOR_COLUMNS, "flags", "similar_to", "error", "overridden",
    ]]
    for r in sorted(results, key=lambda r: r.student):
        points = {c.id: c.points for c in r.checks}
        pair = (r.baseline or "", r.proposed or "")
        reported = [r.reported[name].test_acc if name in r.reported else None for name in pair]
        reproduced = [r.runs[name].test_accuracy if name in r.runs else None for name in pair]
        rows.append([
            r.student, r.status, r.score, maximum, r.max_score, *[points.get(i) for i in check_ids],
            *pair, *map(_acc, reported), *map(_acc, reproduced), *factor_cells(r),
            " | ".join(r.flags), " ".join(similar.get(r.student, [])), r.error or "",
            " ".join(c.id for c in r.checks if c.overridden_from is not None),
        ])
    return csv_text(rows)
