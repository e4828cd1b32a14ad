"""Grading on this machine: in this process for one worker, else a pool of worker processes."""

from __future__ import annotations

import os
from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass

from grader.grading.executors.base import GradeOptions, grade_one, train_on, worker_failed
from grader.grading.result import GradeResult
from grader.grading.submissions import Submission
from grader.training.progress import OnProgress
from grader.training.slots import SlotPool


@dataclass(frozen=True)
class LocalExecutor:
    """This machine: in this process for one worker, else a pool of worker processes."""

    workers: int | None = 1
    """Submissions graded at once; None: one per GPU slot (--gpu-slots), else 1."""

    def grade(self, todo: list[Submission], options: GradeOptions,
              on_progress: OnProgress | None = None) -> Generator[GradeResult, None, None]:
        workers = self.workers or _slot_count(options)
        if workers <= 1:
            for sub in todo:
                yield grade_one(sub, options, on_progress)
            return
        # A pool's workers cannot call back into this process: no per-epoch progress (see README).
        # Each trains on its share of the cores, as a Ray task on the CPUs it reserved.
        pool = ProcessPoolExecutor(max_workers=workers, initializer=train_on,
                                   initargs=(len(os.sched_getaffinity(0)) / workers,))
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


def _slot_count(options: GradeOptions) -> int:
    """One worker per GPU slot: each worker trains one child at a time, so fewer would leave slots idle."""
    pool = options.context.gpus if options.context else None
    return pool.total if isinstance(pool, SlotPool) else 1


__all__ = ["LocalExecutor"]
