"""gradebook.csv: one row per student, rendered from the stored results."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Mapping

from grader.grading.result import GradeResult


def _acc(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else ""


def gradebook_csv(results: Iterable[GradeResult], check_ids: Iterable[str], similar: Mapping[str, list[str]]) -> str:
    check_ids = list(check_ids)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([
        "student", "status", "total", "max", *check_ids, "baseline", "proposed",
        "reported_test_acc_baseline", "reported_test_acc_proposed",
        "reproduced_test_acc_baseline", "reproduced_test_acc_proposed", "flags", "similar_to", "error",
    ])
    for r in sorted(results, key=lambda r: r.student):
        points = {c.id: c.points for c in r.checks}
        pair = (r.baseline or "", r.proposed or "")
        reported = [r.reported[name].test_acc if name in r.reported else None for name in pair]
        reproduced = [r.runs[name].test_accuracy if name in r.runs else None for name in pair]
        writer.writerow([
            r.student, r.status, f"{r.score:g}", f"{r.max_score:g}", *[f"{points[i]:g}" if i in points else "" for i in check_ids],
            *pair, *map(_acc, reported), *map(_acc, reproduced),
            " | ".join(r.flags), " ".join(similar.get(r.student, [])), r.error or "",
        ])
    return out.getvalue()
