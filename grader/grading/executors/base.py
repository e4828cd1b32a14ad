"""What every executor shares: the options of a batch, and grading one submission without ever raising.

An executor turns the submissions of a batch into graded results, here or on a cluster:
`grade(todo, options)` yields one `GradeResult` per submission, in the order they finish. The
batch driver (grader.grading.batch) owns everything that must not differ between executors:
storing each result atomically as it arrives, progress, Ctrl-C, the gradebook.
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Generator
from dataclasses import dataclass
from typing import Protocol

from grader.errors import GraderError
from grader.grading.grade import grade_submission
from grader.grading.result import GradeResult, Provenance
from grader.grading.submissions import Submission
from grader.rubric import Budget, Rubric
from grader.training.context import TrainingContext
from grader.training.progress import OnProgress


@dataclass(frozen=True)
class GradeOptions:
    """What grading any submission of a batch needs besides the submission itself."""

    rubric: Rubric
    budget: Budget
    context: TrainingContext | None
    """Data, references and isolation for the training budgets (None for budget 'none')."""
    require_isolation: bool = False
    """Refuse to run student code without isolation (re-checked where isolation is probed again)."""


class Executor(Protocol):
    def grade(self, todo: list[Submission], options: GradeOptions,
              on_progress: OnProgress | None = None) -> Generator[GradeResult, None, None]:
        """One result per submission as each finishes; closing the generator stops what is left.
        `on_progress` hears of models and epochs where the executor grades in this process (it
        cannot cross to a worker process or a Ray node: those executors ignore it)."""
        ...


def train_on(cpus: float) -> None:
    """Give this worker's training children as many threads as the CPUs it was given (at least one), not
    one per core it sees: two children of two threads each on two cores train at half the speed of two
    of one thread each (BENCHMARKS.md, executors). Read by the sandbox (grader.sandbox.process.default_threads)."""
    os.environ["OMP_NUM_THREADS"] = str(max(1, math.floor(cpus)))


def grade_one(sub: Submission, options: GradeOptions, on_progress: OnProgress | None = None) -> GradeResult:
    """One submission, never raising: its own faults, and the grader's, are its 'error' result.

    A bug in the grader that only this notebook triggers must not cost the rest of the class
    their grades: the student gets an error row, the instructor the traceback in result.json.
    """
    if sub.notebook is None:
        return error_result(sub, sub.problem, options)
    try:
        return grade_submission(sub.notebook, student=sub.student, rubric=options.rubric, budget=options.budget,
                                context=options.context, on_progress=on_progress, below=sub.below)
    except GraderError as e:
        return error_result(sub, str(e), options)
    except Exception as e:
        return error_result(sub, f"the grader failed on this submission ({_first_line(e)}); the traceback is in "
                                 "its result.json: please report it", options, traceback=traceback.format_exc())


def worker_failed(sub: Submission, error: BaseException, options: GradeOptions) -> GradeResult:
    """The worker grading `sub` was lost (killed, out of memory, its node gone) for good."""
    return error_result(sub, f"the grading worker failed ({_first_line(error)})", options)


def error_result(sub: Submission, message: str, options: GradeOptions, traceback: str | None = None) -> GradeResult:
    """No fingerprint: the next run grades this student again."""
    return GradeResult(student=sub.student, notebook=str(sub.notebook or ""), notebook_sha256="", fingerprint="",
                       status="error", max_score=options.rubric.max_score(options.budget),
                       provenance=Provenance.now(options.rubric, options.budget), error=message, traceback=traceback)


def _first_line(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0]  # Ray's messages run to many lines
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["Executor", "GradeOptions", "error_result", "grade_one", "train_on", "worker_failed"]
