"""How student code is walled off: pick the strongest isolation that works here, and build its command.

Three kinds, strongest first:

- ``bubblewrap``: ``bwrap`` with new network, PID, IPC and UTS namespaces and a root filesystem
  that shows only /usr, the Python installation and the sandbox's own folders (no grader files,
  no dataset, no home directories);
- ``namespace``: ``unshare`` with new network and PID namespaces; the filesystem is the host's,
  guarded only by the unprivileged uid;
- ``none``: no namespaces (the report says so and ``--require-isolation`` refuses).

When the grader runs as root the child always runs as uid/gid 65534 (``setpriv``), in every kind:
student code never runs as root. Each kind is *probed* by running the real interpreter through
the real wrapper, because a wrapper can exist and still fail (no user namespaces, an interpreter
the sandbox user cannot read: a pyenv Python under /root, mode 700).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from grader.errors import SandboxError

NOBODY = 65534
KINDS = ("bubblewrap", "namespace", "none")
# Where the sandbox's folders appear inside bubblewrap; elsewhere they keep their host paths.
BWRAP_IN, BWRAP_WORK = "/sandbox/in", "/sandbox/work"
# Host files a Python process reads at start-up (dynamic loader cache, user names for getpass).
_ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime")
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Isolation:
    """The isolation a child runs under, recorded in every result."""

    kind: str
    """'bubblewrap', 'namespace' or 'none'."""
    uid: int
    """The uid the child runs as (65534 whenever the grader runs as root)."""
    python: str
    """The interpreter that runs the child."""
    python_paths: tuple[str, ...] = ()
    """Folders of that interpreter's installation (bound read-only under bubblewrap)."""
    note: str = ""
    """Why this kind was chosen: what the stronger kinds lacked."""

    @property
    def drops_uid(self) -> bool:
        return self.uid != os.geteuid()


def detect_isolation(python: str | None = None, *, prefer: str | None = None) -> Isolation:
    """Probe bubblewrap, then namespaces, then none; return the first that runs `python`.

    `python` defaults to $GRADER_SANDBOX_PYTHON, else this interpreter. `prefer` forces one kind
    (tests use it); a forced kind that does not work raises SandboxError. As root, a kind that
    cannot start the interpreter as uid 65534 is never replaced by running as root.
    """
    python = python or os.environ.get("GRADER_SANDBOX_PYTHON") or sys.executable
    paths = _python_paths(python)
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    if uid == NOBODY and not shutil.which("setpriv"):
        raise SandboxError(
            "the grader runs as root but `setpriv` (util-linux) is missing, so student code would run "
            "as root; install util-linux or run the grader as an ordinary user"
        )
    failures: list[str] = []
    for kind in (prefer,) if prefer else KINDS:
        iso = Isolation(kind, uid, python, paths)
        problem = _probe(iso)
        if not problem:
            return Isolation(kind, uid, python, paths, note="; ".join(failures))
        failures.append(f"{kind}: {problem}")
        if problem.startswith("uid"):  # the interpreter itself is unreachable: no kind will do
            break
    raise SandboxError(failures[-1] if len(failures) == 1 else "no sandbox works here (" + "; ".join(failures) + ")")


def require(iso: Isolation) -> None:
    """Refuse (SandboxError) unless the child gets its own network namespace."""
    if iso.kind == "none":
        raise SandboxError(
            "--require-isolation: no network isolation is possible here ("
            + (iso.note or "neither bwrap nor unshare works")
            + "); install bubblewrap (apt-get install bubblewrap) or allow user namespaces, "
            "or drop --require-isolation"
        )


def command(iso: Isolation, argv: list[str], in_dir: Path, work_dir: Path, limits: dict[str, int]) -> list[str]:
    """The full command line that runs `argv` (paths as seen inside) under `iso` with rlimits.

    `limits` maps prlimit option names (cpu, fsize, nofile, nproc) to values. prlimit comes last,
    after the uid drop, so the wrappers themselves are not limited.
    """
    inner = ["prlimit", *(f"--{k}={v}" for k, v in limits.items()), "--", *argv]
    if iso.drops_uid:
        inner = [
            "setpriv", f"--reuid={iso.uid}", f"--regid={iso.uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *inner,
        ]
    if iso.kind == "bubblewrap":
        return _bwrap(iso, in_dir, work_dir) + ["--", *inner]
    if iso.kind == "namespace":
        userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
        return ["unshare", *userns, "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--", *inner]
    return inner


def inside_paths(iso: Isolation, in_dir: Path, work_dir: Path) -> tuple[str, str]:
    """Where the in/ and work/ folders appear to the child."""
    if iso.kind == "bubblewrap":
        return BWRAP_IN, BWRAP_WORK
    return str(in_dir), str(work_dir)


def _bwrap(iso: Isolation, in_dir: Path, work_dir: Path) -> list[str]:
    # No --unshare-user: as root, a user namespace would map the child back to host uid 0.
    args = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent",
            "--ro-bind", "/usr", "/usr", "--dev", "/dev", "--proc", "/proc"]
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            args += ["--ro-bind", str(link), str(link)]
    for name in _ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    own = [p for p in iso.python_paths if not p.startswith("/usr/")]
    made: set[str] = {"/", "/usr", "/etc", "/dev", "/proc"}
    for path in [*own, BWRAP_IN, BWRAP_WORK]:
        # bwrap creates missing parents mode 0700 (as root), which uid 65534 cannot cross.
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for path in own:
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", str(in_dir), BWRAP_IN, "--bind", str(work_dir), BWRAP_WORK, "--chdir", BWRAP_WORK]
    for dev in sorted(Path("/dev").glob("nvidia*")):  # CUDA needs its device nodes
        args += ["--dev-bind-try", str(dev), str(dev)]
    if any(Path("/dev").glob("nvidia*")):
        args += ["--ro-bind-try", "/sys", "/sys", "--ro-bind-try", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    return args


def _python_paths(python: str) -> tuple[str, ...]:
    """The folders the interpreter needs: prefixes and where its executable really lives."""
    code = "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))"
    try:
        out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=True)
        dirs = json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise SandboxError(f"cannot run the sandbox interpreter {python} ({e}); set GRADER_SANDBOX_PYTHON to a working Python") from None
    dirs += [str(Path(python).parent), str(Path(os.path.realpath(python)).parent)]
    keep: list[str] = []
    for d in sorted({os.path.realpath(p) for p in dirs} | {os.path.abspath(p) for p in dirs}):
        if d not in ("/", "/usr") and not any(d.startswith(k + "/") or d == k for k in keep):
            keep.append(d)
    return tuple(keep)


_PROBE = (
    "import sys, os, json, socket, importlib.util; import numpy\n"
    "s = socket.socket()\n"
    "try:\n    s.connect(('127.0.0.1', 9)); net = 'connected'\n"
    "except OSError as e:\n    net = type(e).__name__\n"
    "print(json.dumps({'version': sys.version, 'uid': os.getuid(),"
    " 'torch': importlib.util.find_spec('torch') is not None, 'net': net}))"
)


def _probe(iso: Isolation) -> str:
    """'' when `iso` runs the interpreter as intended, else what went wrong (one phrase)."""
    if iso.kind == "bubblewrap" and not shutil.which("bwrap"):
        return "bwrap is not installed (apt-get install bubblewrap)"
    if iso.kind == "namespace" and not shutil.which("unshare"):
        return "unshare is not installed (util-linux)"
    tmp = Path(_tempdir())
    try:
        argv = command(iso, [iso.python, "-I", "-c", _PROBE], tmp, tmp, {})
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, cwd=tmp,
                                 env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"the probe did not run ({e})"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    err = (out.stderr.strip().splitlines() or [""])[-1]
    if out.returncode != 0:
        if "Permission denied" in out.stderr and iso.drops_uid:
            return _unreachable(iso.python, err)
        return f"the probe failed ({err or f'exit code {out.returncode}'})"
    try:
        seen = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"the probe printed no result ({err})"
    if iso.python == sys.executable and seen["version"] != sys.version:
        return _unreachable(iso.python, f"it started Python {seen['version'].split()[0]} instead of {sys.version.split()[0]}")
    if not seen["torch"]:
        return f"{iso.python} has no torch; set GRADER_SANDBOX_PYTHON to a Python with torch and numpy"
    if iso.kind != "none" and seen["net"] == "connected":
        return "the network is still reachable inside"
    return ""


def _unreachable(python: str, why: str) -> str:
    return (
        f"uid {NOBODY} cannot run {python} ({why}); its installation must be readable by everyone "
        f"(a pyenv Python under /root, mode 700, is not): create the venv from a system Python, e.g. "
        f"`/usr/bin/python3.11 -m venv /opt/grader-venv`, install the grader there and run it from that venv, "
        f"or set GRADER_SANDBOX_PYTHON to such an interpreter with torch and numpy"
    )


def _tempdir() -> str:
    import tempfile

    d = tempfile.mkdtemp(prefix="grader-probe-")
    os.chmod(d, 0o755)
    return d


__all__ = ["Isolation", "KINDS", "command", "detect_isolation", "inside_paths", "require"]


# Slot n > 0 runs as uid UID_BASE + n (Debian leaves 65000-65533 unallocated).
UID_BASE, UID_SLOTS = 65000, 64


@contextlib.contextmanager
def exclusive_uid(isolation: Isolation) -> Iterator[Isolation]:
    """A uid no other running child has: RLIMIT_NPROC counts every process of a uid, so children
    of parallel batch workers sharing uid 65534 would share one process limit, and a fork bomb in
    one submission could starve an innocent one. The first slot is 65534 (nobody) itself."""
    if not isolation.drops_uid or os.geteuid() != 0:
        yield isolation
        return
    folder = Path(tempfile.gettempdir())
    handle = None
    try:
        for slot in range(UID_SLOTS):
            candidate = open(folder / f"grader-sandbox-uid-{slot}.lock", "a+")
            try:
                fcntl.flock(candidate, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                candidate.close()
                continue
            handle = candidate
            yield replace(isolation, uid=isolation.uid if slot == 0 else UID_BASE + slot)
            return
        yield isolation  # every slot busy (more than UID_SLOTS workers): share the last resort uid
    finally:
        if handle:
            handle.close()  # releases the lock
