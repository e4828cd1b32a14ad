"""gradebook.csv: one row per student, rendered from the stored results."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Mapping

from grader.result import GradeResult


def _acc(entry: Mapping | None) -> str:
    value = (entry or {}).get("test_acc")
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""


def gradebook_csv(results: Iterable[GradeResult], check_ids: list[str], similar: Mapping[str, list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([
        "student", "status", "total", "max", *check_ids, "baseline", "proposed",
        "reported_test_acc_baseline", "reported_test_acc_proposed",
        "reproduced_test_acc_baseline", "reproduced_test_acc_proposed", "flags", "similar_to", "error",
    ])
    for r in sorted(results, key=lambda r: r.student):
        points = {c["id"]: c["points"] for c in r.checks}
        writer.writerow([
            r.student, r.status, f"{r.score:g}", f"{r.max_score:g}", *[f"{points[i]:g}" if i in points else "" for i in check_ids],
            r.baseline or "", r.proposed or "",
            _acc(r.reported.get(r.baseline or "")), _acc(r.reported.get(r.proposed or "")),
            _acc(r.retrain.get(r.baseline or "")), _acc(r.retrain.get(r.proposed or "")),
            " | ".join(r.flags), " ".join(similar.get(r.student, [])), r.error or "",
        ])
    return out.getvalue()
