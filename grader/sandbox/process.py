"""Run untrusted code in a child process and bring back only validated JSON and .npy arrays.

One mechanism for every phase (import, instantiate, forward check, training): the caller hands
over a script, its input files and a request; the child runs it inside the isolation chosen by
grader.isolation, in a fresh folder, with a scrubbed environment, rlimits (CPU time, file size,
open files, processes), a memory cap on the resident size of the whole process tree (a watchdog:
RLIMIT_AS breaks CUDA), wall-clock deadlines per phase and capped output. Whatever the child does,
the answer is a `ChildResult`; the grader never crashes, hangs or unpickles because of it.

What the child may write, all under its working folder (grader.child.protocol names the files):
  out/progress.json  {"phase": NAME}: the phase it is in now; starts that phase's clock
  out/result.json    its report; read as the caller's record type (grader.typed), or rejected
  out/NAME.npy       arrays the caller asked for; loaded with allow_pickle=False, shape/dtype checked
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from grader.child.protocol import PROGRESS, REQUEST, RESULT
from grader.sandbox import isolation as iso_mod
from grader.sandbox.capture import Capture
from grader.sandbox.files import ArraySpec, ChildOutputError, load_array, read_json, read_record
from grader.sandbox.isolation import Isolation

STATUSES = ("ok", "timeout", "killed_memory", "killed_output", "exited", "crashed", "invalid")
POLL_S = 0.05
TERM_GRACE_S = 2.0
_WRAPPERS = {"bwrap", "unshare"}  # processes that must not get SIGTERM (they would take the child down with SIGKILL)


@dataclass(frozen=True)
class Limits:
    """Resource limits for one child."""

    memory_bytes: int = 6 * 2**30
    """Anonymous resident memory (RssAnon + RssShmem) of the whole process tree together; a watchdog
    enforces it, because RLIMIT_AS breaks CUDA."""
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
    """OMP/MKL threads in the child; 0 means the CPU count, at most 8."""


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
    """One of STATUSES: ok, timeout, killed_memory, killed_output, exited, crashed, invalid."""
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
) -> ChildResult:
    """Run `script` (copied in as in/child.py) as `python child.py IN_DIR` under `isolation`.

    The child reads `request` (JSON text) from IN_DIR/request.json and `inputs` (copied or
    hard-linked, read-only) from IN_DIR; its working folder is empty and its own. Its
    out/result.json is read as a `report` record (a dataclass type), or as plain JSON without one.
    """
    with iso_mod.exclusive_uid(isolation) as isolation:
        return _run_once(script, phases, isolation, inputs, request, report, arrays, limits, env)


def _run_once(script, phases, isolation, inputs, request, report, arrays, limits, env) -> ChildResult:
    root = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
    try:
        in_dir, work_dir = _prepare(root, script, inputs, request, isolation)
        inside_in, inside_work = iso_mod.inside_paths(isolation, in_dir, work_dir)
        total_s = sum(p.timeout_s for p in phases)
        threads = limits.threads or min(8, os.cpu_count() or 1)
        rlimits = {
            "cpu": limits.cpu_seconds or int(total_s * (os.cpu_count() or 1)) + 10,
            "fsize": limits.file_bytes, "nofile": limits.open_files, "nproc": limits.processes,
        }
        argv = [isolation.python, "-I", "-B", "-u", f"{inside_in}/child.py", inside_in]
        cmd = iso_mod.command(isolation, argv, in_dir, work_dir, rlimits)
        child_env = _scrubbed_env(inside_work, threads, env)
        run = _Run(cmd, cwd=work_dir, env=child_env, work_dir=work_dir, phases=phases, limits=limits)
        run.wait()
        return _result(run, work_dir, isolation, report, arrays, rlimits)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _prepare(root: Path, script: Path, inputs: Mapping[str, Path | bytes], request: str,
             isolation: Isolation) -> tuple[Path, Path]:
    # root and in/ belong to the grader (the child cannot replace them); work/ belongs to the child.
    os.chmod(root, 0o755)
    in_dir, work_dir = root / "in", root / "work"
    in_dir.mkdir(mode=0o755)
    work_dir.mkdir(mode=0o700)
    (work_dir / "out").mkdir()
    (work_dir / "tmp").mkdir()
    shutil.copyfile(script, in_dir / "child.py")
    (in_dir / REQUEST).write_text(request)
    for name, src in inputs.items():
        parts = Path(name).parts
        if not parts or ".." in parts or Path(name).is_absolute():
            raise ValueError(f"input name {name!r} must be a relative path inside the sandbox")
        dest = in_dir.joinpath(*parts)
        dest.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if isinstance(src, bytes):
            dest.write_bytes(src)
        else:
            try:
                os.link(src, dest)  # 120 MB of training images: a link costs nothing
            except OSError:
                shutil.copyfile(src, dest)
    for path in in_dir.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    if isolation.drops_uid:
        for path in (work_dir, work_dir / "out", work_dir / "tmp"):
            os.chown(path, isolation.uid, isolation.uid)
    return in_dir, work_dir


def _scrubbed_env(work: str, threads: int, extra: Mapping[str, str]) -> dict[str, str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": f"{work}/tmp", "LANG": "C.UTF-8",
        "USER": "sandbox", "LOGNAME": "sandbox",  # the sandbox uid may have no passwd entry (getpass)
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "MPLBACKEND": "Agg",
        "TORCH_HOME": f"{work}/tmp/torch", "XDG_CACHE_HOME": f"{work}/tmp/cache",
    }
    for key in ("CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


class _Run:
    """One child process tree from start to its last process, and why it ended."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict, work_dir: Path, phases: Sequence[Phase], limits: Limits):
        if not phases:
            raise ValueError("run_in_sandbox needs at least one Phase")
        self.phases, self.limits, self.work_dir = {p.name: p for p in phases}, limits, work_dir
        self.phase = phases[0].name
        self.killed_for = ""
        self.ignored_sigterm = False
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

    def _watch(self) -> None:
        deadline = self.start + sum(p.timeout_s for p in self.phases.values())
        phase_start = self.start
        while self.proc.poll() is None:
            now = time.monotonic()
            announced = _read_phase(self.work_dir)
            if announced in self.phases and announced != self.phase:
                self.phase, phase_start = announced, now
            rss = sum(_rss(pid) for pid in _tree(self.proc.pid))
            if rss > self.limits.memory_bytes:
                self._kill("memory")
            elif now - phase_start > self.phases[self.phase].timeout_s or now > deadline:
                self._kill("timeout")
            elif self.output_bytes > self.limits.output_bytes:
                self._kill("output")
            time.sleep(POLL_S)
        self.seconds = time.monotonic() - self.start
        announced = _read_phase(self.work_dir)  # a last announcement may have come after the last poll
        if announced in self.phases and not self.killed_for:
            self.phase = announced
        self._reap()
        self.out.thread.join(timeout=10)
        self.err.thread.join(timeout=10)

    def _kill(self, why: str) -> None:
        """SIGTERM to the student's processes, SIGKILL to everything after the grace period."""
        self.killed_for = why
        for pid in _tree(self.proc.pid):
            if _comm(pid) not in _WRAPPERS:
                _signal(pid, signal.SIGTERM)
        end = time.monotonic() + TERM_GRACE_S
        while self.proc.poll() is None and time.monotonic() < end:
            time.sleep(POLL_S)
        if self.proc.poll() is None:
            self.ignored_sigterm = True
        self._reap()

    def _reap(self) -> None:
        """Leave nothing behind: SIGKILL the process group and any descendant still alive."""
        for pid in _tree(self.proc.pid):
            _signal(pid, signal.SIGKILL)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


def _result(run: _Run, work_dir: Path, isolation: Isolation, report, arrays, rlimits) -> ChildResult:
    code = run.proc.returncode
    sig = -code if code < 0 else None
    if isolation.kind == "bubblewrap" and code > 128 and code - 128 in signal.valid_signals():
        sig = code - 128  # bwrap reports the command's death by signal as 128 + signal
    label = run.phases[run.phase].label or run.phase
    common = dict(
        phase=run.phase, isolation=isolation, seconds=run.seconds, exit_code=None if sig else code, signal=sig,
        stdout=run.out.text(), stderr=run.err.text(),
        output_bytes=run.output_bytes, ignored_sigterm=run.ignored_sigterm,
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


# ---- /proc helpers: the process tree, its memory, its phase --------------------------------

def _tree(root: int) -> list[int]:
    """root and all its descendants (a PID namespace keeps daemonized children under root)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ppid = _ppid(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def _ppid(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and ')', so split after the last ')'.
    return int(text[text.rfind(")") + 2:].split()[1])


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _rss(pid: int) -> int:
    """Anonymous resident memory (heap, tensors, shared memory) of one process.

    File-backed pages (torch's 1 GB of CUDA libraries, mapped and partly resident) are left out:
    they are shared and reclaimable, and counting them made the cap depend on the page cache.
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kb = 0
    for line in text.splitlines():
        if line.startswith(("RssAnon:", "RssShmem:")):
            kb += int(line.split()[1])
    return kb * 1024


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_phase(work_dir: Path) -> str:
    try:
        data = read_json(work_dir / PROGRESS, max_bytes=4096)
    except ChildOutputError:
        return ""
    return data.get("phase", "") if isinstance(data, dict) else ""


__all__ = ["ChildResult", "Limits", "Phase", "STATUSES", "run_in_sandbox"]
