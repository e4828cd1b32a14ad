"""Several training children on each GPU at once: a GPU is leased around each training child.

One mechanism for every executor, `GpuPlacement.lease()`, which yields the environment that pins
the child to its GPU (grader.training.gpus.pin_env) and gives the GPU back when the child is done:
- `SlotPool` (the local executor, `--gpu-slots`): N slots per GPU, each a lock file in a folder of
  the grader's private state; holding a slot is holding an flock on its file. flock works between
  the threads and the worker processes of a batch (and between two batches on one machine), and
  the kernel releases a slot when its holder ends, however it ends (crash, SIGKILL, lost worker).
  A child goes to the least-loaded GPU with a free slot; with none free it waits for one.
- `AssignedGpus` (the Ray executor, `--gpus-per-task`, fractional to share a GPU): Ray has already
  chosen the task's GPU; the lease pins the child to it.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from grader.training.gpus import Gpu, pin_env

WAIT_POLL_S = 0.1


class GpuPlacement(Protocol):
    def lease(self) -> AbstractContextManager[dict[str, str]]:
        """The child's environment for a GPU held until the block ends."""
        ...


@dataclass(frozen=True)
class SlotPool:
    """`slots[i]` children at once on `gpus[i]`; plain data, so a worker process can share it."""

    gpus: tuple[Gpu, ...]
    slots: tuple[int, ...]
    folder: str
    """Where the slots' lock files are (one machine-wide folder: two batches here share the slots)."""
    poll_s: float = WAIT_POLL_S

    @property
    def total(self) -> int:
        return sum(self.slots)

    @contextmanager
    def lease(self) -> Iterator[dict[str, str]]:
        gpu, fd = self._take()
        try:
            yield pin_env([gpu.visible_id])
        finally:
            os.close(fd)  # closing the file releases its flock

    def busy(self) -> tuple[int, ...]:
        """Children on each GPU now (a probe: for display and tests)."""
        with self._choosing():
            free = self._free()
        try:
            return tuple(n - len(fds) for n, fds in zip(self.slots, free))
        finally:
            _close(fd for fds in free for fd in fds)

    def _take(self) -> tuple[Gpu, int]:
        while True:
            with self._choosing():
                taken = self._take_least_loaded()
            if taken is not None:
                return taken
            time.sleep(self.poll_s)

    def _take_least_loaded(self) -> tuple[Gpu, int] | None:
        free = self._free()
        open_gpus = [i for i, fds in enumerate(free) if fds]
        chosen = min(open_gpus, key=lambda i: (self.slots[i] - len(free[i]), -len(free[i]), i), default=None)
        kept = free[chosen].pop(0) if chosen is not None else None
        _close(fd for fds in free for fd in fds)
        return None if chosen is None or kept is None else (self.gpus[chosen], kept)

    def _free(self) -> list[list[int]]:
        """Per GPU, a locked fd for each of its free slots (the caller keeps one and closes the rest)."""
        return [[fd for j in range(n) if (fd := _try_lock(self._path(gpu, j))) is not None]
                for gpu, n in zip(self.gpus, self.slots)]

    def _path(self, gpu: Gpu, slot: int) -> Path:
        return Path(self.folder) / f"gpu-{re.sub(r'[^A-Za-z0-9-]', '_', gpu.visible_id)}-{slot}.lock"

    @contextmanager
    def _choosing(self) -> Iterator[None]:
        """One chooser at a time: a probe's short-lived locks must not look like busy slots to another."""
        fd = os.open(Path(self.folder) / "choosing.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


@dataclass(frozen=True)
class AssignedGpus:
    """The GPUs a scheduler (Ray) gave this task: every child of the task is pinned to them."""

    visible_ids: tuple[str, ...]

    @contextmanager
    def lease(self) -> Iterator[dict[str, str]]:
        yield pin_env(self.visible_ids) if self.visible_ids else {}


def lease(placement: GpuPlacement | None) -> AbstractContextManager[dict[str, str]]:
    """A training child's GPU environment: {} where no placement was made (the CPU, one GPU as today)."""
    return placement.lease() if placement is not None else nullcontext({})


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)


def slots_on_a_gpu(placement: GpuPlacement | None) -> int:
    """How many children share one GPU under `placement` (the most on any GPU; 1 without slots): a child's
    share of a GPU's memory is the GPU's memory divided by it (the sandbox's GPU memory cap)."""
    return max(placement.slots, default=1) if isinstance(placement, SlotPool) else 1


__all__ = ["AssignedGpus", "GpuPlacement", "SlotPool", "lease", "slots_on_a_gpu"]
