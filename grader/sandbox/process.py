"""Run untrusted code in a child process and bring back only validated JSON and .npy arrays.

One mechanism for every phase (import, instantiate, forward check, training): the caller hands
over a script, its inputs and a request; the child runs it inside the isolation chosen by
grader/sandbox/detect.py, in fresh folders of the grader's private state (grader/sandbox/state.py),
with a scrubbed environment, rlimits (CPU time, file size, open files, processes), a memory cap
(a memory cgroup where the grader can make one, else a watchdog; RLIMIT_AS breaks CUDA), one disk
cap on all it writes, wall-clock deadlines per phase and capped output, behind the seccomp filter
of grader/sandbox/confine.py. A child that trains on CUDA is shown its GPU
(grader/sandbox/gpu.py), and the watchdog reads what its processes hold on the GPU from the
driver: over `Limits.gpu_memory_bytes` it is stopped like a child over its memory. Whatever the child does, the answer is a
`ChildResult`; the grader never crashes, hangs or unpickles because of it.

What the child may write, all under out/ in its working folder (grader.child.protocol names them):
  out/progress.json  {"phase": NAME, "epoch": K}: the phase it has reached; phases only move forward,
                     and each starts its own clock when first announced. K (optional, an int) is how
                     far it got within the phase, for display only: the caller's `on_progress` hears
                     of a phase or a K only when it moves forward (at most once a poll)
  out/result.json    its report; read as the caller's record type (grader.typed), or rejected
  out/NAME.npy       arrays the caller asked for; header checked against the file, loaded with
                     allow_pickle=False, shape and dtype checked
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from grader.child.protocol import PROGRESS, REQUEST, RESULT
from grader.sandbox import proctree
from grader.sandbox.capture import Capture
from grader.sandbox.cgroup import MemoryCgroup, memory_cgroup
from grader.sandbox.files import ArraySpec, ChildOutputError, load_array, read_json, read_record
from grader.sandbox.gpu import GpuAccess, GpuReader, child_gpu_use, default_gpu_reader, host_gpu_access
from grader.sandbox.isolation import HOST_VIEW, Isolation, Layout, command, exclusive_uid, furnish, inside_paths, run_root
from grader.sandbox.state import remove_tree

STATUSES = ("ok", "timeout", "killed_memory", "killed_gpu_memory", "killed_disk", "killed_output", "exited",
            "crashed", "invalid")
DISK_CHECK_EVERY = 10  # polls between measurements of what the child wrote (a walk of out/)
GPU_CHECK_EVERY = 10  # polls between readings of GPU memory (nvidia-smi is a process of its own)
MAX_OUT_ENTRIES = 10_000
POLL_S = 0.05
TERM_GRACE_S = 2.0
MAX_PROGRESS_BYTES = 4096  # a larger out/progress.json is ignored, unread
# Processes that must not get SIGTERM: they would take the child down with SIGKILL (confine.py's reaper ignores it).
_WRAPPERS = {"bwrap", "unshare", "sh", "grader-reaper"}


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child."""

    memory_bytes: int = 6 * 2**30
    """Memory of the whole process tree together: every page, in a memory cgroup where the grader
    can make one; else what a watchdog sees (resident anonymous and shared pages, memfds)."""
    disk_bytes: int = 2 * 2**30
    """What the child may write in all: its working folder (a tmpfs of this size) and out/ together."""
    cpu_seconds: int = 0
    """CPU time per process; 0 means the run's total deadline times the CPU count."""
    file_bytes: int = 2 * 2**30
    """Largest file the child may write."""
    open_files: int = 256
    """Open file descriptors per process."""
    processes: int = 128
    """Processes and threads of the sandbox uid (torch uses a thread per core)."""
    output_bytes: int = 16 * 2**20
    """stdout+stderr together; more is killed as 'killed_output'."""
    keep_bytes: int = 8 * 1024
    """Bytes kept from the head and from the tail of each stream."""
    threads: int = 0
    """OMP/MKL threads in the child; 0 means `default_threads()`."""
    gpu_memory_bytes: int = 0
    """GPU memory the child's processes may hold together (CUDA children only); 0: no cap but the share."""
    gpu_slots: int = 1
    """Children sharing one GPU: none may hold more than the GPU's memory divided by this (its share)."""


@dataclass(frozen=True)
class Phase:
    """A named step of the child with its own wall-clock budget."""

    name: str
    """The id the child announces in out/progress.json."""
    timeout_s: float
    """Wall-clock seconds this phase may take."""
    label: str = ""
    """How messages name the phase ('the constructor'); defaults to the name."""


@dataclass(frozen=True)
class ChildResult:
    """What happened to one child process, in terms the grader can report."""

    status: str
    """One of STATUSES: ok, timeout, killed_memory, killed_gpu_memory, killed_disk, killed_output, exited,
    crashed, invalid."""
    phase: str
    """The phase the child was in when it ended (the last one it announced)."""
    detail: str
    """One sentence saying what happened, for the report ('' when ok)."""
    isolation: Isolation
    """The isolation it ran under."""
    seconds: float
    """Wall-clock seconds from start to the end of the process tree."""
    exit_code: int | None = None
    """The exit status, when it exited."""
    signal: int | None = None
    """The signal that ended it, when one did."""
    stdout: str = ""
    """Its stdout, head and tail when longer than Limits.keep_bytes twice."""
    stderr: str = ""
    """Its stderr, capped the same way."""
    output_bytes: int = 0
    """How many bytes it wrote to stdout and stderr in all."""
    ignored_sigterm: bool = False
    """It was still running after SIGTERM and the grace period, and got SIGKILL."""
    payload: Any = None
    """Its out/result.json as the record type the caller asked for, when it wrote one."""
    arrays: Mapping[str, Any] = field(default_factory=dict)
    """Validated numpy arrays by name (from out/NAME.npy)."""
    notes: tuple[str, ...] = ()
    """What the watchdog could not do (GPU memory it could not read), for the instructor."""
    phase_seconds: Mapping[str, float] = field(default_factory=dict)
    """Wall-clock seconds of each phase the child reached, on the grader's clock: from when the grader
    saw it announced to the next announcement or the end (a fact the child cannot forge: whatever it
    claims of its own timing, a phase cannot last longer than this)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def stderr_tail(self, lines: int = 5) -> str:
        return "\n".join(self.stderr.rstrip().splitlines()[-lines:])


def run_in_sandbox(
    script: Path,
    *,
    phases: Sequence[Phase],
    isolation: Isolation,
    inputs: Mapping[str, Path | bytes] = {},
    request: str = "{}",
    report: type | None = None,
    arrays: Mapping[str, ArraySpec] = {},
    limits: Limits = Limits(),
    env: Mapping[str, str] = {},
    on_progress: Callable[[str, int], None] | None = None,
    cuda: bool = False,
    gpu_reader: GpuReader | None = None,
) -> ChildResult:
    """Run `script` (copied in as in/child.py) as `python child.py IN_DIR` under `isolation`.

    The child reads `request` (JSON text) from IN_DIR/request.json and its `inputs` from IN_DIR:
    bytes are written there, a Path is shown read-only (bound, never linked: the child can neither
    change the grader's copy nor find it). Its out/result.json is read as a `report` record (a
    dataclass type), or as plain JSON without one. `on_progress(phase, k)` is called, from this
    thread, when the child announces a later phase (k 0) or a larger k within its phase.

    `cuda`: the child trains on the GPU(s) CUDA_VISIBLE_DEVICES pins it to; it is shown them and its
    GPU memory is watched through `gpu_reader` (default: NVML, else nvidia-smi).
    """
    if not phases:
        raise ValueError("run_in_sandbox needs at least one Phase")
    with exclusive_uid(isolation) as isolation:
        root = run_root("run-", isolation)
        group: MemoryCgroup | None = None
        try:
            gpu = host_gpu_access(cuda and isolation.kind != "none", {**os.environ, **env})  # a slot's pin wins
            layout = _prepare(root, script, inputs, request, isolation, limits, gpu)
            reader, note = (gpu_reader, "") if gpu_reader or not cuda else default_gpu_reader()
            inside_in, inside_work = inside_paths(isolation, layout)
            total_s = sum(p.timeout_s for p in phases)
            rlimits = {
                "cpu": limits.cpu_seconds or int(total_s * (os.cpu_count() or 1)) + 10,
                "fsize": limits.file_bytes, "nofile": limits.open_files, "nproc": limits.processes,
            }
            cmd = command(isolation, [isolation.python, "-I", "-B", "-u", f"{inside_in}/child.py", inside_in], layout, rlimits)
            group = memory_cgroup(limits.memory_bytes) if isolation.kind != "none" else None
            walled = isolation.kind != "none"
            run = _Run(group.join() + cmd if group else cmd, cwd=layout.work_dir,
                       env=_scrubbed_env(inside_work, limits.threads or default_threads(), env,
                                         gpu if walled else None),
                       layout=layout, tmpfs="" if isolation.kind in HOST_VIEW else inside_work, phases=phases, limits=limits,
                       watch_memory=group is None, on_progress=on_progress, gpu_reader=reader)
            run.notes += [note] if note else []
            run.wait()
            if group and group.oom_kills() and not run.killed_for:
                run.killed_for = "memory"  # the kernel killed inside the group: its limit, not a crash
            return _result(run, layout.work_dir, isolation, report, arrays, rlimits)
        finally:
            if group:
                group.remove()
            remove_tree(root)


def _prepare(root: Path, script: Path, inputs: Mapping[str, Path | bytes], request: str, isolation: Isolation,
             limits: Limits, gpu: GpuAccess) -> Layout:
    """in/ (the grader's, read-only inside), work/out/ (the child's), stage/ (the namespace kind's)."""
    in_dir, work_dir = root / "in", root / "work"
    in_dir.mkdir(mode=0o755)
    (work_dir / "out").mkdir(mode=0o700, parents=True)
    (root / "stage").mkdir()
    shutil.copyfile(script, in_dir / "child.py")
    furnish(in_dir)
    (in_dir / REQUEST).write_text(request)
    binds: dict[str, Path] = {}
    for name, src in inputs.items():
        parts = Path(name).parts
        if not parts or ".." in parts or Path(name).is_absolute():
            raise ValueError(f"input name {name!r} must be a relative path inside the sandbox")
        dest = in_dir.joinpath(*parts)
        dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if isinstance(src, bytes):
            dest.write_bytes(src)
        elif isolation.kind == "none":
            dest.symlink_to(Path(src).resolve())  # no walls: the child runs as the grader and could read it anyway
        elif isolation.kind == "landlock":
            _place(Path(src).resolve(), dest, link=isolation.drops_uid)
        else:
            dest.touch()  # the mount point of a read-only bind
            binds[name] = Path(src).resolve()
    for path in in_dir.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    child_owned = [work_dir / "out"]
    if isolation.kind in HOST_VIEW:  # its working folder is on the host, not a tmpfs of its own
        (work_dir / "tmp").mkdir()
        child_owned += [work_dir, work_dir / "tmp"]
    if isolation.drops_uid:
        for path in child_owned:
            os.chown(path, isolation.uid, isolation.uid)
    return Layout(in_dir, work_dir, binds, work_bytes=limits.disk_bytes, gpu=gpu)


def _place(src: Path, dest: Path, link: bool) -> None:
    """A large input in the landlock kind's in/: a hard link where the child's uid cannot change the
    grader's file (not its owner: no chmod; Landlock: no write), else a copy; never a symbolic link,
    which would show the child where the grader keeps it."""
    if link:
        try:
            os.link(src, dest)
            return
        except OSError:  # another filesystem: copy
            pass
    shutil.copyfile(src, dest)


def default_threads() -> int:
    """A child's threads: this process's OMP_NUM_THREADS where set (an executor's worker sets it to the CPUs
    it was given, grader.grading.executors.base.train_on), else every core it may use; at most 8."""
    given = os.environ.get("OMP_NUM_THREADS", "")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, int(given) if given.isdigit() else cores))


def _scrubbed_env(work: str, threads: int, extra: Mapping[str, str], gpu: GpuAccess | None) -> dict[str, str]:
    """The child's environment; `gpu` (walled kinds) says its CUDA_VISIBLE_DEVICES, else the grader's passes on."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": f"{work}/tmp", "LANG": "C.UTF-8",
        "USER": "sandbox", "LOGNAME": "sandbox",  # the sandbox uid may have no passwd entry (getpass)
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "MPLBACKEND": "Agg",
        "TORCH_HOME": f"{work}/tmp/torch", "XDG_CACHE_HOME": f"{work}/tmp/cache",
    }
    for key in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)  # the executor's pin (a GPU slot) over the grader's own
    if gpu is not None:  # inside, only the pinned GPUs exist: an index from outside could name none of them
        env.pop("CUDA_VISIBLE_DEVICES", None)
        env.update({"CUDA_VISIBLE_DEVICES": gpu.visible} if gpu.visible else {})
        env.update({"LD_LIBRARY_PATH": gpu.library_path} if gpu.libraries else {})
    return env


class _Run:
    """One child process tree from start to its last process, and why it ended."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict, layout: Layout, tmpfs: str,
                 phases: Sequence[Phase], limits: Limits, watch_memory: bool,
                 on_progress: Callable[[str, int], None] | None = None, gpu_reader: GpuReader | None = None):
        self.phases, self.limits, self.layout = {p.name: p for p in phases}, limits, layout
        self.order = [p.name for p in phases]
        self.phase, self.step = phases[0].name, 0
        self.on_progress = on_progress
        # Under walls the working folder is a tmpfs (seen at `tmpfs` inside) and out/ is on the host's
        # disk: both count against the one cap. Under `none` the whole working folder is on the host's.
        self.tmpfs, self.disk_folder = tmpfs, layout.out_dir if tmpfs else layout.work_dir
        self.disk_over, self.disk_checks, self.tmpfs_read = "", 0, False
        self.watch_memory = watch_memory
        self.gpu_reader, self.gpu_cap_bytes = gpu_reader, 0
        self.notes: list[str] = []
        self.killed_for = ""
        self.ignored_sigterm = False
        self.phase_seconds: dict[str, float] = {}
        self.start = time.monotonic()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.out = Capture(self.proc.stdout, limits.keep_bytes)
        self.err = Capture(self.proc.stderr, limits.keep_bytes)

    @property
    def output_bytes(self) -> int:
        return self.out.total + self.err.total

    def wait(self) -> None:
        try:
            self._watch()
        except BaseException:  # Ctrl-C or a dying worker: the child must not outlive the grader
            self._reap()
            raise

    def _advance(self, now: float, phase_start: float) -> float:
        """Move to the phase the child announced, if it is a later one: a phase cannot be re-entered
        to restart its clock. Returns when the current phase started."""
        announced, step = _read_progress(self.layout.work_dir)
        if announced in self.phases and self.order.index(announced) > self.order.index(self.phase):
            self.phase_seconds[self.phase] = now - phase_start
            self.phase, self.step, phase_start = announced, 0, now
            self._tell(announced, 0)
        if announced == self.phase and step > self.step:
            self.step = step
            self._tell(announced, step)
        return phase_start

    def _tell(self, phase: str, step: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, step)

    def _watch(self) -> None:
        deadline = self.start + sum(p.timeout_s for p in self.phases.values())
        phase_start, polls = self.start, 0
        while self.proc.poll() is None:
            now = time.monotonic()
            phase_start = self._advance(now, phase_start)
            polls += 1
            pids = proctree.tree(self.proc.pid)
            if self.watch_memory and proctree.memory_bytes(pids) > self.limits.memory_bytes:
                self._kill("memory")
            elif self.gpu_reader and polls % GPU_CHECK_EVERY == 0 and self._over_gpu_memory(pids):
                self._kill("gpu_memory")
            elif polls % DISK_CHECK_EVERY == 0 and self._over_disk(pids):
                self._kill("disk")
            elif now - phase_start > self.phases[self.phase].timeout_s or now > deadline:
                self._kill("timeout")
            elif self.output_bytes > self.limits.output_bytes:
                self._kill("output")
            time.sleep(POLL_S)
        end = time.monotonic()
        self.seconds = end - self.start
        if self.tmpfs and self.disk_checks > 1 and not self.tmpfs_read:
            self.notes.append("the working folder's use could not be read (/proc/PID/root); out/ was held to "
                              "the disk cap alone, the working folder to its own size")
        if not self.killed_for:  # a last announcement may have come after the last poll
            phase_start = self._advance(end, phase_start)
        self.phase_seconds[self.phase] = end - phase_start
        self._reap()
        self.out.thread.join(timeout=10)
        self.err.thread.join(timeout=10)

    def _over_disk(self, pids: list[int]) -> bool:
        """What the child wrote is over the cap: its bytes in out/ and its tmpfs together, or a tree in
        out/ the walk refuses (too many entries, too deep, unreadable); `disk_over` says which."""
        self.disk_checks += 1
        use = proctree.folder_use(self.disk_folder, MAX_OUT_ENTRIES)
        written = use.bytes
        if self.tmpfs and not use.over:
            tmpfs = proctree.mounted_use(pids, self.tmpfs, self.layout.work_bytes)
            self.tmpfs_read |= tmpfs is not None
            written += tmpfs or 0
        self.disk_over = use.over or ("bytes" if written > self.limits.disk_bytes else "")
        return bool(self.disk_over)

    def _over_gpu_memory(self, pids: list[int]) -> bool:
        """The child's processes hold more GPU memory than the cap, or than their share of the GPU.
        A driver that cannot be read is noted and no longer asked: the run goes on, unwatched."""
        assert self.gpu_reader is not None
        try:
            use = child_gpu_use(self.gpu_reader(), pids)
        except Exception as e:
            self.notes.append(f"GPU memory could not be read ({type(e).__name__}: {str(e)[:200]}); "
                              "it was not watched for the rest of the run")
            self.gpu_reader = None
            return False
        caps = [c for c in (self.limits.gpu_memory_bytes, use.gpu_total_bytes // max(1, self.limits.gpu_slots)) if c > 0]
        self.gpu_cap_bytes = min(caps, default=0)
        return bool(caps) and use.used_bytes > self.gpu_cap_bytes

    def _kill(self, why: str) -> None:
        """SIGTERM to the student's processes, SIGKILL to everything after the grace period."""
        self.killed_for = why
        for pid in proctree.tree(self.proc.pid):
            if proctree.comm(pid) not in _WRAPPERS:
                proctree.send(pid, signal.SIGTERM)
        end = time.monotonic() + TERM_GRACE_S
        while self.proc.poll() is None and time.monotonic() < end:
            time.sleep(POLL_S)
        if self.proc.poll() is None:
            self.ignored_sigterm = True
        self._reap()

    def _reap(self) -> None:
        """Leave nothing behind: SIGKILL the process group and any descendant still alive."""
        for pid in proctree.tree(self.proc.pid):
            proctree.send(pid, signal.SIGKILL)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _result(run: _Run, work_dir: Path, isolation: Isolation, report, arrays, rlimits) -> ChildResult:
    code = run.proc.returncode
    sig = -code if code < 0 else None
    if isolation.kind != "none" and code > 128 and code - 128 in signal.valid_signals():
        sig = code - 128  # bwrap, the namespace's shell and landlock's reaper report a death by signal as 128 + signal
    label = run.phases[run.phase].label or run.phase
    common = dict(
        phase=run.phase, isolation=isolation, seconds=run.seconds, exit_code=None if sig else code, signal=sig,
        stdout=run.out.text(), stderr=run.err.text(),
        output_bytes=run.output_bytes, ignored_sigterm=run.ignored_sigterm, notes=tuple(run.notes),
        phase_seconds=dict(run.phase_seconds),
    )
    killed = _killed_detail(run, label)
    if killed:
        return ChildResult(status=killed[0], detail=killed[1], **common)
    payload, loaded, problem = None, {}, ""
    try:
        payload = read_record(work_dir / RESULT, report) if report is not None else read_json(work_dir / RESULT)
        if payload is not None:
            loaded = {name: a for name, spec in arrays.items()
                      if (a := load_array(work_dir / "out" / f"{name}.npy", spec)) is not None}
    except ChildOutputError as e:
        problem = str(e)
    except Exception as e:  # whatever the child wrote, reading it is never the grader's crash
        problem = f"its output could not be read ({type(e).__name__})"
    if problem:
        return ChildResult(status="invalid", detail=f"its result was rejected: {problem}", **common)
    if sig is not None:
        return ChildResult(status="crashed", detail=_signal_detail(sig, label, rlimits), payload=payload,
                           arrays=loaded, **common)
    if payload is None:
        return ChildResult(status="exited", detail=(
            f"exited with code {code} during {label} before reporting a result "
            "(exit(), sys.exit() or os._exit() in the code, or a crash)"), **common)
    if code != 0:
        return ChildResult(status="exited", detail=f"exited with code {code} after reporting its result",
                           payload=payload, arrays=loaded, **common)
    return ChildResult(status="ok", detail="", payload=payload, arrays=loaded, **common)


def _killed_detail(run: _Run, label: str) -> tuple[str, str] | None:
    term = "; it ignored SIGTERM and was killed with SIGKILL" if run.ignored_sigterm else ""
    if run.killed_for == "timeout":
        limit = run.phases[run.phase].timeout_s
        return "timeout", f"timed out: {label} took longer than {limit:g} s (an endless loop?){term}"
    if run.killed_for == "memory":
        mb = run.limits.memory_bytes // 2**20
        return "killed_memory", f"used more than {mb} MB of memory during {label} and was stopped{term}"
    if run.killed_for == "gpu_memory":
        mb = run.gpu_cap_bytes // 2**20
        return "killed_gpu_memory", f"used more than {mb} MB of GPU memory during {label} and was stopped{term}"
    if run.killed_for == "disk":
        what = {"bytes": f"wrote more than {run.limits.disk_bytes // 2**20} MB of files",
                "depth": f"nested folders more than {proctree.MAX_DEPTH} deep",
                "entries": f"made more than {MAX_OUT_ENTRIES:,} files and folders",
                "unreadable": "made a folder the grader may not read"}[run.disk_over]
        return "killed_disk", f"{what} during {label} and was stopped{term}"
    if run.killed_for == "output":
        mb = run.limits.output_bytes / 2**20
        return "killed_output", f"printed more than {mb:g} MB during {label} and was stopped{term}"
    return None


def _signal_detail(sig: int, phase: str, rlimits: Mapping[str, int]) -> str:
    name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
    if sig == signal.SIGXCPU:
        return f"used more than {rlimits['cpu']} s of CPU time during {phase} and was stopped"
    if sig == signal.SIGXFSZ:
        return f"wrote a file larger than {rlimits['fsize'] // 2**20} MB during {phase} and was stopped"
    if sig == signal.SIGKILL:
        return f"was killed (SIGKILL) during {phase}, most likely by the system for lack of memory"
    return f"crashed with {name} during {phase}"


def _read_progress(work_dir: Path) -> tuple[str, int]:
    """(phase, step) from out/progress.json; ('', 0) for anything but a small JSON object of that shape."""
    try:
        data = read_json(work_dir / PROGRESS, max_bytes=MAX_PROGRESS_BYTES)
    except (ChildOutputError, OSError):
        return "", 0
    if not isinstance(data, dict):
        return "", 0
    phase, step = data.get("phase", ""), data.get("epoch", 0)
    step = step if type(step) is int and 0 <= step <= 2**31 else 0  # not a bool, a float or a huge number
    return (phase if isinstance(phase, str) else ""), step


__all__ = ["ChildResult", "Limits", "Phase", "STATUSES", "run_in_sandbox"]
