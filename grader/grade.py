"""Grade one submission: static checks, then (with a training budget) the sandboxed run and the
comparison with the references, into one `GradeResult`.

This is the engine `grader grade` (a class), `grader ci` (a student's repository) and
`grader check --train` share; none of them has a private copy of any step.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from grader import __version__
from grader.analysis.similarity import model_signature
from grader.analysis import Analysis
from grader.check import CheckReport, CheckResult, read_and_check
from grader.notebook import Notebook
from grader.result import GradeResult, fingerprint, sha256_file
from grader.rubric import Rubric
from grader.scoring import guessed_role_flags, score_against_references

if TYPE_CHECKING:
    from grader.retrain import TrainingContext

Budget = Literal["none", "quick", "full"]


def submission_fingerprint(notebook: Path, rubric: Rubric, budget: Budget) -> str:
    return fingerprint(sha256_file(notebook), rubric.sha256, __version__, budget)


def grade_submission(
    notebook: str | Path,
    *,
    student: str,
    rubric: Rubric,
    budget: Budget = "none",
    context: "TrainingContext | None" = None,
    data_dir: Path | None = None,
    require_isolation: bool = False,
) -> GradeResult:
    """Grade a notebook. Never raises for a bad submission: that is a result with status 'error'.

    With a training budget, `context` (from grader.retrain.prepare_training) carries the data,
    the references and the isolation; a batch prepares it once, a single call here when missing.
    """
    path = Path(notebook)
    started = time.perf_counter()
    provenance = {
        "grader_version": __version__,
        "python": platform.python_version(),
        "rubric": {"source": rubric.source, "sha256": rubric.sha256},
        "budget": budget,
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    digest = sha256_file(path) if path.is_file() else ""
    loaded, report = read_and_check(path, rubric)
    if loaded is None or report.analysis is None:
        result = GradeResult(student=student, notebook=str(path), notebook_sha256=digest,
                             fingerprint=fingerprint(digest, rubric.sha256, __version__, budget), status="error",
                             error=report.error, score=0.0, max_score=report.max_score,
                             checks=[c.to_dict() for c in report.checks], provenance=provenance)
        return _finish(result, started)
    analysis = report.analysis
    result = _with_analysis(GradeResult(
        student=student, notebook=str(path), notebook_sha256=digest,
        fingerprint=fingerprint(digest, rubric.sha256, __version__, budget), status="graded",
        score=report.score, max_score=report.max_score, checks=[c.to_dict() for c in report.checks],
        provenance=provenance,
    ), report)
    if budget != "none":
        stage = run_stage(loaded, analysis, rubric, context or _prepare(rubric, budget, data_dir, require_isolation))
        result = replace(
            result,
            checks=[*result.checks, *[c.to_dict() for c in stage.checks]],
            retrain=stage.retrain,
            references=stage.references,
            flags=result.flags + stage.flags,
            warnings=result.warnings + list(stage.warnings),
            provenance={**result.provenance, **stage.provenance},
        )
    return _finish(_rescored(result), started)


@dataclass(frozen=True)
class RunStage:
    """What running the models adds to the static checks."""

    checks: tuple[CheckResult, ...]
    """models_run, then the checks against the references."""
    retrain: dict[str, dict]
    references: dict[str, dict]
    flags: list[str]
    warnings: tuple[str, ...]
    provenance: dict


def run_stage(notebook: Notebook, analysis: Analysis, rubric: Rubric, context: "TrainingContext") -> RunStage:
    """Run and retrain the baseline and proposed classes in the sandbox; score against the references."""
    from grader.retrain import retrain_submission  # torch and the sandbox only when training

    names = [n for n in (analysis.baseline, analysis.proposed) if n]
    outcome = retrain_submission(notebook, names, rubric, context)
    scored = score_against_references(analysis, outcome.retrain, outcome.references, rubric)
    return RunStage((*outcome.checks, *scored.checks), outcome.retrain, outcome.references,
                    list(scored.flags), outcome.warnings, outcome.provenance)


def _prepare(rubric: Rubric, budget: Budget, data_dir: Path | None, require_isolation: bool) -> "TrainingContext":
    from grader.retrain import prepare_training

    return prepare_training(rubric, budget, data_dir=data_dir, require_isolation=require_isolation)


def check_with_training(path: str | Path, *, rubric: Rubric, budget: Budget, data_dir: Path | None = None,
                        require_isolation: bool = False) -> CheckReport:
    """`grader check --train`: the static report plus the run checks and the retraining results."""
    loaded, report = read_and_check(path, rubric)
    if loaded is None or report.analysis is None:
        return report
    stage = run_stage(loaded, report.analysis, rubric, _prepare(rubric, budget, data_dir, require_isolation))
    extra = {"retrain": stage.retrain, "references": stage.references, "flags": stage.flags,
             "run": {k: v for k, v in stage.provenance.items()}}
    return replace(report, checks=(*report.checks, *stage.checks), extra=extra)


def _with_analysis(result: GradeResult, report: CheckReport) -> GradeResult:
    a = report.analysis
    assert a is not None
    data = report.to_dict()
    signatures = {name: model_signature(a.definitions, name) for name in (a.baseline, a.proposed) if name}
    return replace(
        result,
        models=data["models"],
        baseline=a.baseline,
        proposed=a.proposed,
        reported=data["reported"],
        student_settings={name: dict(a.usage.settings.get(name, {})) for name in (a.baseline, a.proposed) if name},
        flags=guessed_role_flags(a),
        warnings=list(a.warnings),
        provenance={**result.provenance, "signatures": signatures},
    )


def _rescored(result: GradeResult) -> GradeResult:
    score = round(sum(c["points"] for c in result.checks), 2)
    max_score = round(sum(c["max_points"] for c in result.checks), 2)
    return replace(result, score=score, max_score=max_score)


def _finish(result: GradeResult, started: float) -> GradeResult:
    return replace(result, provenance={**result.provenance, "seconds": round(time.perf_counter() - started, 3)})
