"""Grade on a Ray cluster: one Ray task per submission; the batch driver stores every result.

- The driver (`grader grade --executor ray`) prepares the data, the references and the
  isolation once, as for the local executor, puts the arrays in Ray's object store once, and
  submits one task per submission with the resources asked for (`--cpus-per-task`,
  `--gpus-per-task`: 0.25 lets four small trainings share a GPU).
- A task grades on whatever node Ray picks, with the notebook's bytes sent along (the
  submissions folder is the driver's alone; so is the output folder). The first task on a node
  writes the arrays into that node's private grader state (under a file lock), every later task
  there reuses them once their hashes match the driver's: the dataset crosses the network once
  per node, not once per task. The validation and test labels travel only inside the training
  context, in memory. Where the driver's files are already visible
  (the driver's node, a shared file system) they are used as they are. On a node other than the
  driver's, the sandbox is probed again, once per worker process: interpreters and bubblewrap
  may differ between nodes.
- Failure policy: a task whose worker process or node is lost is retried by Ray, at most
  `max_retries` times; a submission's own failure (crash, timeout, hostile code) is an 'error'
  result, never a retry (`retry_exceptions=False`, and the task body never raises).

Ray is imported only here and only when this executor runs: `--executor local` never needs it.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import socket
import tempfile
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from grader.errors import GraderError, NotebookError
from grader.grading.executors.base import GradeOptions, error_result, grade_one, train_on, worker_failed
from grader.grading.result import GradeResult
from grader.grading.submissions import Submission
from grader.notebook import read_notebook_bytes
from grader.sandbox.detect import detect_isolation
from grader.sandbox.isolation import Isolation, require
from grader.sandbox.state import state_dir
from grader.training.context import TrainingContext, matches, write_arrays
from grader.training.progress import OnProgress
from grader.training.slots import AssignedGpus

RAY_MISSING = "Ray is not installed; pip install 'cnn-grader[ray]'"


def require_ray() -> Any:
    """The ray module, or a GraderError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise GraderError(RAY_MISSING) from None
    return ray


@dataclass(frozen=True)
class SharedData:
    """How a task finds the batch's arrays: on its node's disk, else in Ray's object store."""

    arrays: list = field(default_factory=list)
    """[ObjectRef of {name: array}], empty without training. Nested in a list so that Ray does not
    fetch the arrays for a task whose node already has them on disk."""
    driver_host: str = ""
    """Where the driver probed the isolation recorded in the training context."""
    cpus: float = 0.0
    """The CPUs each task reserved: its training children's threads (0: as this process has them)."""
    niceness: int | None = None
    """The driver's niceness, for its tasks' workers (None: as Ray started them)."""


def grade_on_node(sub: Submission, source: bytes | None, options: GradeOptions, shared: SharedData) -> GradeResult:
    """The Ray task's body: grade one submission with this node's copy of the data and its isolation.

    `source` is the notebook as the driver read it: the submissions folder need not exist on this
    node. The result names the driver's path, as the local executor's does: in its every text.
    """
    copy: Path | None = None
    try:
        as_reserved(shared)
        with tempfile.TemporaryDirectory(prefix="grader-notebook-") as tmp:
            here = sub
            if sub.notebook is not None and source is not None:
                copy = Path(tmp).resolve()
                here = replace(sub, notebook=copy / sub.notebook.name, below=copy)  # same name: messages read the same
                here.notebook.write_bytes(source)
            result = grade_one(here, node_options(options, shared))
    except Exception as e:  # the grader's own failure on this node: that student's result, not a retry
        result = error_result(sub, f"grading failed on {socket.gethostname()} ({type(e).__name__}: {e})", options)
    if copy is not None and sub.notebook is not None:  # the copy's folder stands for the student's
        result = renamed(result, str(copy), str(sub.notebook.parent))
    return replace(result, notebook=str(sub.notebook or ""))


def as_reserved(shared: SharedData) -> None:
    """This worker as the driver's own: its training children on the CPUs the task reserved, and at the
    driver's priority where this process may raise its own. Ray starts its workers at niceness 15: where
    the kernel does not group processes by session (autogroup), a child of such a worker gets almost no
    CPU beside other work at the usual priority (BENCHMARKS.md, executors)."""
    if shared.cpus:
        train_on(shared.cpus)
    if shared.niceness is not None and os.getpriority(os.PRIO_PROCESS, 0) > shared.niceness:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, shared.niceness)
        except PermissionError:  # only root (CAP_SYS_NICE) may: see README on `ray start`
            pass


def renamed(value: Any, old: str, new: str) -> Any:
    """`value` (a record, a collection, a string) with `old` written `new` in every string it holds:
    error messages, feedback, flags, warnings, tracebacks, run errors alike."""
    if isinstance(value, str):
        return value.replace(old, new)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: renamed(getattr(value, f.name), old, new)
                                 for f in fields(value) if f.init})
    if type(value) in (tuple, list):
        return type(value)(renamed(v, old, new) for v in value)
    if isinstance(value, Mapping):
        return {renamed(k, old, new): renamed(v, old, new) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class RaySettings:
    """Where the Ray cluster is and what each submission's task asks of it."""

    address: str | None = None
    """Ray's address (`auto`, `HOST:6379`, `ray://HOST:10001`); None: $RAY_ADDRESS, else a cluster
    started with `ray start` on this machine, else a new local instance."""
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0
    """A fraction shares a GPU: 0.25 runs four trainings on each GPU at once."""
    max_retries: int = 3
    """Retries of a task whose worker process or node was lost (never of a submission's failure)."""


@dataclass(frozen=True)
class RayExecutor:
    """Each submission a Ray task; results come back to the driver as they finish."""

    settings: RaySettings = RaySettings()
    task: Callable[[Submission, bytes | None, GradeOptions, SharedData], GradeResult] = grade_on_node
    """The task's body (tests wrap it to kill a worker)."""

    def grade(self, todo: list[Submission], options: GradeOptions,
              on_progress: OnProgress | None = None) -> Generator[GradeResult, None, None]:
        """`on_progress` is not called: a task on another node cannot call back (see README)."""
        ray = require_ray()
        context = options.context
        if context is not None and context.device == "cuda" and self.settings.gpus_per_task <= 0:
            raise GraderError("the grader trains on the GPU here but Ray tasks get none; give --gpus-per-task "
                              "(e.g. 0.25 to share each GPU between four trainings)")
        started_here = not ray.is_initialized()  # else Ray was started by our caller (a test, a notebook): use it
        if started_here:
            # Workers' output would break the progress bar; a task's problems are in its result.
            # A new local instance starts its workers at our priority, as the local executor's (see as_reserved).
            os.environ.setdefault("RAY_worker_niceness", str(os.getpriority(os.PRIO_PROCESS, 0)))
            ray.init(address=self.settings.address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        pending: list = []
        try:
            options_ref = ray.put(options)
            shared = SharedData([ray.put(_read_arrays(context))] if context else [], socket.gethostname(),
                                cpus=self.settings.cpus_per_task, niceness=os.getpriority(os.PRIO_PROCESS, 0))
            remote = ray.remote(self.task).options(
                num_cpus=self.settings.cpus_per_task, num_gpus=self.settings.gpus_per_task,
                max_retries=self.settings.max_retries, retry_exceptions=False)
            refs = {remote.remote(sub, _read_notebook(sub), options_ref, shared): sub for sub in todo}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as e:  # lost more often than max_retries allows
                        result = worker_failed(refs[ref], e, options)
                    yield result
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()


def node_options(options: GradeOptions, shared: SharedData) -> GradeOptions:
    """`options` with the training context rewritten for this node: its array files, its isolation,
    and the GPU Ray gave this task."""
    ctx = options.context
    if ctx is None:
        return options
    isolation = ctx.isolation if socket.gethostname() == shared.driver_host else node_isolation(options.require_isolation)
    gpus = task_gpus(require_ray().get_gpu_ids()) if ctx.device == "cuda" else None
    return replace(options, context=replace(ctx, files=node_arrays(ctx, shared), isolation=isolation, gpus=gpus))


def task_gpus(gpu_ids: Iterable[object]) -> AssignedGpus:
    """Every training child of this task on the GPU(s) Ray assigned it (a fraction of one with
    --gpus-per-task below 1): the local executor's pinning (grader.training.slots), Ray's choice."""
    return AssignedGpus(tuple(str(i) for i in gpu_ids))


def node_arrays(ctx: TrainingContext, shared: SharedData) -> dict[str, str]:
    """Paths of the batch's .npy files on this node: the driver's, where they are here with the same
    bytes (its own node, a file system every node shares); else this node's private copy, written
    from Ray's object store once and checked against the driver's hashes."""
    if _verified(ctx.files, ctx.file_sha256):
        return dict(ctx.files)
    # The driver's folder is named by a hash of the data and the split: the same name, the same arrays.
    folder = state_dir("arrays", Path(ctx.files["train_x"]).parent.name)
    paths = {name: str(folder / f"{name}.npy") for name in ctx.files}
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first task here writes; the others wait, then find the files
        if not _verified(paths, ctx.file_sha256):
            if not shared.arrays:
                raise GraderError("the batch's arrays are neither on this node nor in Ray's object store")
            import ray

            written = write_arrays(folder, ray.get(shared.arrays[0]))
            if {name: sha for name, (_, sha) in written.items()} != dict(ctx.file_sha256):
                raise GraderError("the arrays in Ray's object store are not the driver's; start the batch again")
    return paths


def _verified(paths: Mapping[str, str], sha256: Mapping[str, str]) -> bool:
    return all(_matches(Path(path), sha256[name]) for name, path in paths.items())


def _matches(path: Path, sha256: str) -> bool:
    """`matches`, remembered per file version: each worker hashes 180 MB once, not once per task."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return _matches_version(str(path), sha256, info.st_ino, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=64)
def _matches_version(path: str, sha256: str, inode: int, mtime_ns: int, size: int) -> bool:
    return matches(Path(path), sha256)


@functools.lru_cache(maxsize=2)
def node_isolation(required: bool) -> Isolation:
    """This node's sandbox, probed once per worker process (a failed probe is tried again next time)."""
    iso = detect_isolation()
    if required:
        require(iso)
    return iso


def _read_notebook(sub: Submission) -> bytes | None:
    """The notebook's bytes for the task (None: the task reports what is wrong with the path)."""
    try:
        return read_notebook_bytes(sub.notebook, below=sub.below) if sub.notebook else None
    except NotebookError:  # a link, a FIFO, too big...: the task reads the path and says so
        return None


def _read_arrays(ctx: TrainingContext) -> dict[str, Any]:
    import numpy as np

    return {name: np.load(path, allow_pickle=False) for name, path in ctx.files.items()}
