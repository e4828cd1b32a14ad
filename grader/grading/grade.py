"""Grade one submission: the whole pipeline, in order, into one `GradeResult`.

    load the notebook -> analyze it -> static checks
    (with a training budget) models_run and retraining in the sandbox -> run checks against the references

This is the engine `grader check` (a student), `grader grade` (a class) and `grader ci` (a
repository) share; none of them has a private copy of any step.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

from grader import __version__
from grader.analysis import Analysis, analyze
from grader.analysis.similarity import model_signature
from grader.checks import CheckResult, Scored
from grader.checks.run import RunFacts, run_checks
from grader.checks.static import (attributes_verdict, discussion_attributes, discussion_names_winner, rejudge,
                                  selection_flags, static_checks, unreadable)
from grader.errors import NotebookError
from grader.grading.result import GradeResult, Provenance, grade_fingerprint
from grader.notebook import Notebook, notebook_from_bytes, read_notebook_bytes
from grader.rubric import Budget, Rubric
from grader.training.context import RunIdentity, TrainingContext, prepare_training
from grader.training.progress import OnProgress
from grader.training.effect import effect_of
from grader.training.retrain import retrain_submission


def submission_fingerprint(notebook: Path, rubric: Rubric, budget: Budget, run: RunIdentity | None,
                           below: Path | None = None) -> str:
    """The fingerprint a grade of `notebook` would have now (grader.grading.result.grade_fingerprint);
    NotebookError when it cannot be read (grading it says so, as that student's error)."""
    digest = hashlib.sha256(read_notebook_bytes(notebook, below=below)).hexdigest()
    return grade_fingerprint(digest, rubric.sha256, __version__, budget, run)


def grade_submission(
    notebook: str | Path,
    *,
    student: str,
    rubric: Rubric,
    budget: Budget = "none",
    context: TrainingContext | None = None,
    data_dir: Path | None = None,
    require_isolation: bool = False,
    on_progress: OnProgress | None = None,
    below: Path | None = None,
) -> GradeResult:
    """Grade a notebook. A bad submission never raises: it is a result with status 'error'.

    With a training budget, `context` (grader.training.context.prepare_training) carries the
    data, the references and the isolation; a batch prepares it once, a single call here when missing.
    `on_progress` hears which model is being checked or trained and how far it got, for display.
    `below`: the trusted folder the notebook lies in (a class's submissions): no link under it is followed.
    """
    path = Path(notebook)
    started = time.perf_counter()
    ctx = None
    if budget != "none":  # first: a bad data folder is the user's error before anything else runs
        ctx = context or prepare_training(rubric, budget, data_dir=data_dir, require_isolation=require_isolation,
                                          on_progress=on_progress)
    raw, problem = _read(path, below)
    digest = hashlib.sha256(raw).hexdigest() if raw is not None else ""  # of the very bytes graded
    result = GradeResult(
        student=student, notebook=str(path), notebook_sha256=digest, status="graded",
        fingerprint=grade_fingerprint(digest, rubric.sha256, __version__, budget, ctx.identity if ctx else None),
        max_score=rubric.max_score(budget), provenance=Provenance.now(rubric, budget),
    )
    try:
        loaded = notebook_from_bytes(raw, str(path)) if raw is not None else None
    except NotebookError as e:
        loaded, problem = None, str(e)
    if loaded is None:
        result = replace(result, status="error", error=problem, checks=unreadable(problem, rubric))
    else:
        analysis = analyze(loaded)
        result = _with_analysis(result, analysis, static_checks(loaded, analysis, rubric), rubric)
        if ctx is not None:
            told = (lambda event: on_progress(replace(event, student=student))) if on_progress else None
            result = _with_runs(result, loaded, analysis, rubric, ctx, told)
    return replace(result, provenance=replace(result.provenance, seconds=round(time.perf_counter() - started, 3)))


def _read(path: Path, below: Path | None) -> tuple[bytes | None, str]:
    """The notebook's bytes, read once, or None and why they cannot be read."""
    try:
        return read_notebook_bytes(path, below=below), ""
    except NotebookError as e:
        return None, str(e)


def _with_analysis(result: GradeResult, analysis: Analysis, static: Scored, rubric: Rubric) -> GradeResult:
    pair = [name for name in (analysis.baseline, analysis.proposed) if name]
    return replace(
        result, checks=static.checks, max_score=round(result.max_score - _unscored(static.checks, rubric), 2), models=analysis.found(), baseline=analysis.baseline, proposed=analysis.proposed,
        reported=dict(analysis.reported), config=analysis.config, discussion=analysis.discussion,
        architectures={name: arch for name in pair if (arch := analysis.architecture(name))},
        student_settings={name: dict(analysis.usage.settings.get(name, {})) for name in pair},
        signature=model_signature(analysis.definitions, analysis.proposed or ""),
        selection=analysis.selection,
        flags=static.flags + tuple(selection_flags(analysis)), warnings=analysis.warnings,
    )


def _with_runs(result: GradeResult, notebook: Notebook, analysis: Analysis, rubric: Rubric,
               ctx: TrainingContext, on_progress: OnProgress | None) -> GradeResult:
    """Run and retrain the baseline and proposed classes in the sandbox; judge them against the references."""
    names = [name for name in (analysis.baseline, analysis.proposed) if name]
    retrained = retrain_submission(notebook, names, rubric, ctx, on_progress)
    scored = run_checks(RunFacts(analysis, retrained.checks, retrained.runs, ctx.references, rubric, ctx.budget))
    # The student's numbers are weighed against the grading budget's retraining only (as reported_matches does).
    accuracies = {n: r.test_accuracy for n, r in retrained.runs.items()} if ctx.budget == "full" else {}
    verdicts = {"discussion_names_winner": discussion_names_winner(notebook, analysis, rubric, accuracies)}
    measured = {n: r.architecture for n, r in retrained.runs.items() if r.architecture is not None}
    stale: tuple[str, ...] = ()
    if analysis.baseline in measured and analysis.proposed in measured:  # measured beats read from code
        verdicts["discussion_attributes"] = attributes_verdict(analysis.discussion, measured[analysis.baseline],
                                                               measured[analysis.proposed])
        stale = (discussion_attributes(notebook, analysis, rubric).flag,)
    static = rejudge(result.checks, rubric, verdicts)
    return replace(
        result, checks=static.checks + scored.checks, runs=dict(retrained.runs), references=dict(ctx.references),
        effect=effect_of(retrained.runs.get(analysis.baseline or ""), retrained.runs.get(analysis.proposed or ""),
                         rubric.references.seed_spread),
        max_score=round(result.max_score - _unscored(scored.checks, rubric), 2),
        flags=tuple(dict.fromkeys(f for f in result.flags + static.flags + scored.flags + retrained.flags if f not in stale)),
        warnings=result.warnings + retrained.warnings,
        provenance=replace(result.provenance, run=ctx.provenance()),
    )


def _unscored(checks: tuple[CheckResult, ...], rubric: Rubric) -> float:
    """The points of checks that could not be judged here (no figures to compare, a budget too small)."""
    return sum(rubric.checks[c.id].points for c in checks if not c.scored)


__all__ = ["grade_submission", "submission_fingerprint"]
