"""Grade one submission: static checks, then (with a training budget) the sandboxed run and the
comparison with the references, into one `GradeResult`.

This is the engine `grader grade` (a class), `grader ci` (a student's repository) and
`grader check --train` share; none of them has a private copy of any step.
"""

from __future__ import annotations

import platform
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from grader import __version__
from grader.analysis.similarity import model_signature
from grader.check import CheckReport, check_notebook
from grader.result import GradeResult, fingerprint, sha256_file
from grader.rubric import Rubric
from grader.scoring import review_flags, score_against_references

Budget = Literal["none", "quick", "full"]


def submission_fingerprint(notebook: Path, rubric: Rubric, budget: Budget) -> str:
    return fingerprint(sha256_file(notebook), rubric.sha256, __version__, budget)


def grade_submission(
    notebook: str | Path,
    *,
    student: str,
    rubric: Rubric,
    budget: Budget = "none",
    data_dir: Path | None = None,
    require_isolation: bool = False,
) -> GradeResult:
    """Grade a notebook. Never raises for a bad submission: that is a result with status 'error'."""
    path = Path(notebook)
    started = time.perf_counter()
    report = check_notebook(path, rubric=rubric)
    provenance = {
        "grader_version": __version__,
        "python": platform.python_version(),
        "rubric": {"source": rubric.source, "sha256": rubric.sha256},
        "budget": budget,
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if budget != "none":
        provenance["train_config"] = vars(rubric.quick if budget == "quick" else rubric.train)
    digest = sha256_file(path) if path.is_file() else ""
    base = GradeResult(
        student=student,
        notebook=str(path),
        notebook_sha256=digest,
        fingerprint=fingerprint(digest, rubric.sha256, __version__, budget),
        status="graded" if report.valid else "error",
        error=report.error,
        score=report.score,
        max_score=report.max_score,
        checks=[c.to_dict() for c in report.checks],
        provenance=provenance,
    )
    if not report.valid:
        return _finish(base, started)
    result = _with_analysis(base, report)
    if budget != "none":
        from grader.retrain import retrain_submission  # torch and the sandbox only when training

        outcome = retrain_submission(report, rubric, budget=budget, data_dir=data_dir, require_isolation=require_isolation)
        checks = [*result.checks, *[c.to_dict() for c in outcome.checks]]
        assert report.analysis is not None
        run_checks = score_against_references(report.analysis, outcome.retrain, outcome.references, rubric)
        checks += [c.to_dict() for c in run_checks]
        result = replace(
            result,
            checks=checks,
            retrain=dict(outcome.retrain),
            references=dict(outcome.references),
            flags=result.flags + review_flags(report.analysis, outcome.retrain, rubric),
            warnings=result.warnings + list(outcome.warnings),
            provenance={**result.provenance, **outcome.provenance},
        )
    return _finish(_rescored(result), started)


def _with_analysis(result: GradeResult, report: CheckReport) -> GradeResult:
    a = report.analysis
    assert a is not None
    data = report.to_dict()
    signatures = {name: model_signature(a.definitions, name) for name in (a.baseline, a.proposed) if name}
    flags = [
        f"role of {m.name} is a guess: {m.role.reason}"
        for m in a.models
        if m.role.guessed and m.name in (a.baseline, a.proposed)
    ]
    return replace(
        result,
        models=data["models"],
        baseline=a.baseline,
        proposed=a.proposed,
        reported=data["reported"],
        student_settings={name: dict(a.usage.settings.get(name, {})) for name in (a.baseline, a.proposed) if name},
        flags=flags,
        warnings=list(a.warnings),
        provenance={**result.provenance, "signatures": signatures},
    )


def _rescored(result: GradeResult) -> GradeResult:
    score = round(sum(c["points"] for c in result.checks), 2)
    max_score = round(sum(c["max_points"] for c in result.checks), 2)
    return replace(result, score=score, max_score=max_score)


def _finish(result: GradeResult, started: float) -> GradeResult:
    return replace(result, provenance={**result.provenance, "seconds": round(time.perf_counter() - started, 3)})
