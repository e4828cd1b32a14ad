"""Grade a class: every submission in a folder, in parallel, resumable, nothing lost.

One driver for every executor (grader/grading/executors: a local process pool, or Ray): the
executor grades, this module stores, reports progress, handles Ctrl-C and writes the gradebook.

Each submission's files are written atomically as soon as it finishes; a re-run skips students
whose notebook, rubric, grader version and budget (and for a retraining the data, device type
and torch version) are unchanged; a crash, timeout or hostile
notebook is one student's 'error' result and the batch goes on; Ctrl-C leaves every finished
result in place. The gradebook and the summary are rebuilt from the stored results at the end.
An instructor's overrides (grader.grading.overrides) are applied to every result, graded now or
reused, and never enter the fingerprint: changing them rewrites files, it grades nobody again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from grader.analysis.similarity import SimilarPair, similar_pairs
from grader.errors import NotebookError
from grader.grading.executors.base import Executor, GradeOptions
from grader.grading.executors.local import LocalExecutor
from grader.grading.grade import submission_fingerprint
from grader.grading.overrides import Override, apply_overrides, check_students
from grader.grading.result import RESULT, GradeResult, load_result, write_atomic
from grader.grading.submissions import Submission, discover
from grader.report.feedback import write_feedback
from grader.report.gradebook import gradebook_csv
from grader.report.gradescope import gradescope_results
from grader.report.spreadsheet import csv_text
from grader.rubric import Budget, Rubric
from grader.training.context import RunIdentity, place_on_gpus, prepare_training, run_identity
from grader.training.gpus import GpuSlots, cuda_peaks
from grader.training.progress import OnProgress


@dataclass
class BatchReport:
    """What a batch did: results by student, and who was graded now vs reused."""

    results: dict[str, GradeResult] = field(default_factory=dict)
    graded: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    similar: list[SimilarPair] = field(default_factory=list)
    interrupted: bool = False


def grade_batch(
    root: Path,
    out: Path,
    *,
    rubric: Rubric,
    budget: Budget,
    workers: int | None = None,
    executor: Executor | None = None,
    data_dir: Path | None = None,
    require_isolation: bool = True,
    overrides: tuple[Override, ...] = (),
    gpu_slots: GpuSlots | None = None,
    on_note: Callable[[str], None] = lambda line: None,
    on_start: Callable[[int, int], None] = lambda total, todo: None,
    on_done: Callable[[GradeResult, bool], None] = lambda result, reused: None,
    on_progress: OnProgress | None = None,
) -> BatchReport:
    """Grade what changed in `root` into `out` with `executor` (default: a local pool of `workers`,
    by default as many as the GPU slots, else 1).
    `on_progress` hears the references' epochs, and each model's where the executor grades here.

    A class's code runs only walled off: where no sandbox works this refuses (SandboxError) unless
    `require_isolation` is False, which the instructor must ask for (`--allow-unisolated`).
    `overrides` (grader.grading.overrides.load_overrides) must name students of the class.
    `gpu_slots` trains that many children on each GPU at once (grader.training.slots; 'auto': from
    free memory and the peaks recorded in `out`); `on_note` hears one line on the plan.
    """
    submissions = discover(root)
    check_students(overrides, [sub.student for sub in submissions], root)
    identity = run_identity(data_dir) if budget != "none" else None  # a bad data folder fails here, first
    report = BatchReport()
    todo: list[Submission] = []
    peaks: list[int] = []  # GPU memory the class's models took in earlier runs: what 'auto' slots plan on
    for sub in submissions:
        stored = load_result(out / sub.student / RESULT)
        peaks += cuda_peaks(run.history for run in stored.runs.values()) if stored else []
        if sub.notebook and stored and stored.fingerprint == _fingerprint(sub, rubric, budget, identity):
            report.results[sub.student] = _overridden(out, stored, overrides, rubric)
            report.reused.append(sub.student)
        else:
            todo.append(sub)
    context = None
    if budget != "none" and any(sub.notebook for sub in todo):  # data, references and isolation: once per batch
        context = prepare_training(rubric, budget, data_dir=data_dir, require_isolation=require_isolation,
                                   on_progress=on_progress)
        if gpu_slots is not None:
            context, plan = place_on_gpus(context, gpu_slots, peaks)
            on_note(plan)
    on_start(len(submissions), len(todo))
    for student in report.reused:
        on_done(report.results[student], True)
    options = GradeOptions(rubric=rubric, budget=budget, context=context, require_isolation=require_isolation)
    try:
        # closing(): an interrupted loop stops the executor's pending work (pool, Ray tasks) at once.
        with closing((executor or LocalExecutor(workers)).grade(todo, options, on_progress)) as results:
            for result in results:
                _store(out, apply_overrides(result, overrides, rubric), report, on_done)
    except KeyboardInterrupt:
        report.interrupted = True
    finish_batch(out, report, rubric, budget)
    return report


def _fingerprint(sub: Submission, rubric: Rubric, budget: Budget, identity: RunIdentity | None) -> str:
    """The fingerprint grading `sub` now would give; '' when its notebook cannot be read (grading it says why)."""
    try:
        return submission_fingerprint(sub.notebook, rubric, budget, identity, below=sub.below)  # type: ignore[arg-type]
    except NotebookError:
        return ""


def _overridden(out: Path, stored: GradeResult, overrides: tuple[Override, ...], rubric: Rubric) -> GradeResult:
    """A reused result under this run's overrides; its files are rewritten only when that changes it."""
    result = apply_overrides(stored, overrides, rubric)
    if (result.checks, result.max_score) != (stored.checks, stored.max_score):
        write_submission_files(result, out / result.student)
    return result


def _store(out: Path, result: GradeResult, report: BatchReport, on_done) -> None:
    folder = out / result.student
    write_submission_files(result, folder)
    report.results[result.student] = result
    report.graded.append(result.student)
    on_done(result, False)


def write_submission_files(result: GradeResult, folder: Path) -> None:
    """feedback and Gradescope files first, result.json last: its presence means 'complete'."""
    write_feedback(result, folder)
    write_atomic(folder / "results.json", json.dumps(gradescope_results(result), indent=2))
    write_atomic(folder / RESULT, result.to_json())


def finish_batch(out: Path, report: BatchReport, rubric: Rubric, budget: Budget) -> None:
    report.similar = similar_pairs({student: r.signature for student, r in report.results.items()})
    similar: dict[str, list[str]] = {}
    for pair in report.similar:
        similar.setdefault(pair.a, []).append(pair.b)
        similar.setdefault(pair.b, []).append(pair.a)
    gradebook = gradebook_csv(report.results.values(), rubric.applicable("full"), similar, rubric.max_score(budget))
    write_atomic(out / "gradebook.csv", gradebook)
    if report.similar:
        rows = [["student_a", "student_b", "source_similarity", "reason"]]
        rows += [[p.a, p.b, p.ratio, p.reason] for p in report.similar]
        write_atomic(out / "similar.csv", csv_text(rows))
