"""Grading on this machine: in this process for one worker, else a pool of worker processes."""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

from grader.grading.executors.base import GradeOptions, grade_one, worker_failed
from grader.grading.result import GradeResult
from grader.grading.submissions import Submission
from grader.training.progress import OnProgress


@dataclass(frozen=True)
class LocalExecutor:
    """This machine: in this process for one worker, else a pool of worker processes."""

    workers: int = 1

    def grade(self, todo: list[Submission], options: GradeOptions,
              on_progress: OnProgress | None = None) -> Generator[GradeResult, None, None]:
        if self.workers <= 1:
            for sub in todo:
                yield grade_one(sub, options, on_progress)
            return
        # A pool's workers cannot call back into this process: no per-epoch progress (see README).
        pool = ProcessPoolExecutor(max_workers=self.workers)
        futures: dict[Future, Submission] = {pool.submit(grade_one, sub, options): sub for sub in todo}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        yield future.result()
                    except Exception as e:  # a worker died (killed, out of memory): that student only
                        yield worker_failed(futures[future], e, options)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["LocalExecutor"]
