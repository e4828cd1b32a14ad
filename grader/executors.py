"""Executors: what turns the submissions of a batch into graded results, here or on a cluster.

The batch driver (grader/batch.py) owns everything that must not differ between executors:
storing each result atomically as it arrives, progress, Ctrl-C, the gradebook. An executor only
grades: `grade(todo, options)` yields one `GradeResult` per submission, in the order they finish.
`LocalExecutor` grades on this machine (in-process, or a process pool); `RayExecutor`
(grader/ray_executor.py, which alone imports Ray) sends each submission to a Ray cluster.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from grader.errors import GraderError
from grader.grade import Budget, grade_submission
from grader.result import GradeResult
from grader.rubric import Rubric

if TYPE_CHECKING:
    from grader.batch import Submission
    from grader.retrain import TrainingContext

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class GradeOptions:
    """What grading any submission of a batch needs besides the submission itself."""

    rubric: Rubric
    budget: Budget
    context: "TrainingContext | None"
    """Data, references and isolation for the training budgets (None for budget 'none')."""
    require_isolation: bool = False
    """Refuse to run student code without isolation (re-checked where isolation is probed again)."""


class Executor(Protocol):
    def grade(self, todo: list["Submission"], options: GradeOptions) -> Generator[GradeResult, None, None]:
        """One result per submission as each finishes; closing the generator stops what is left."""
        ...


@dataclass(frozen=True)
class LocalExecutor:
    """This machine: in this process for one worker, else a pool of worker processes."""

    workers: int = 1

    def grade(self, todo: list["Submission"], options: GradeOptions) -> Generator[GradeResult, None, None]:
        if self.workers <= 1:
            for sub in todo:
                yield grade_one(sub, options)
            return
        pool = ProcessPoolExecutor(max_workers=self.workers)
        futures: dict[Future, "Submission"] = {pool.submit(grade_one, sub, options): sub for sub in todo}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        yield future.result()
                    except Exception as e:  # a worker died (killed, out of memory): that student only
                        yield worker_failed(futures[future], e, options.rubric)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def make_executor(kind: str, *, workers: int | None = None, ray_address: str | None = None,
                  cpus_per_task: float | None = None, gpus_per_task: float | None = None) -> Executor:
    """The executor the command line asked for; an option given (not None) must be that executor's."""
    if kind == "local":
        given = [flag for flag, value in (("--ray-address", ray_address), ("--cpus-per-task", cpus_per_task),
                                          ("--gpus-per-task", gpus_per_task)) if value is not None]
        if given:
            raise GraderError(f"{given[0]} applies to the Ray executor only; add --executor ray or drop {given[0]}")
        return LocalExecutor(workers or 1)
    if kind == "ray":
        if workers is not None:
            raise GraderError("--workers applies to the local executor only; with Ray, --cpus-per-task and "
                              "--gpus-per-task decide how many submissions run at once")
        from grader.ray_executor import RayExecutor, RaySettings, require_ray

        require_ray()
        settings = RaySettings(address=ray_address, cpus_per_task=1.0 if cpus_per_task is None else cpus_per_task,
                               gpus_per_task=0.0 if gpus_per_task is None else gpus_per_task)
        return RayExecutor(settings)
    raise GraderError(f"unknown executor {kind!r}; use one of {', '.join(EXECUTORS)}")


def grade_one(sub: "Submission", options: GradeOptions) -> GradeResult:
    """One submission, never raising for the submission's own faults (they are an 'error' result)."""
    if sub.notebook is None:
        return error_result(sub, sub.problem, options.rubric)
    try:
        return grade_submission(sub.notebook, student=sub.student, rubric=options.rubric, budget=options.budget,
                                context=options.context)
    except GraderError as e:
        return error_result(sub, str(e), options.rubric)


def worker_failed(sub: "Submission", error: BaseException, rubric: Rubric) -> GradeResult:
    """The worker grading `sub` was lost (killed, out of memory, its node gone) for good."""
    first_line = (str(error).strip().splitlines() or [""])[0]  # Ray's messages run to many lines
    return error_result(sub, f"the grading worker failed ({type(error).__name__}: {first_line})", rubric)


def error_result(sub: "Submission", message: str, rubric: Rubric) -> GradeResult:
    """No fingerprint: the next run grades this student again."""
    max_score = sum(spec.points for spec in rubric.checks.values())
    return GradeResult(student=sub.student, notebook=str(sub.notebook or ""), notebook_sha256="", fingerprint="",
                       status="error", score=0.0, max_score=max_score, checks=[], error=message)
