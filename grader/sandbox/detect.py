"""Which isolation works here: each kind is probed by running the real interpreter through the real
wrapper, because a wrapper can exist and still fail (no user namespaces, an interpreter the
sandbox user cannot read: a pyenv Python under /root, mode 700, a kernel without seccomp filters).

`GRADER_ISOLATION=bubblewrap|namespace|landlock|none` forces one kind (a forced kind that does not
work is an error). As root the namespace kind is tried after bubblewrap, then landlock (where
namespaces are denied: a container), and `none` never (student code never runs as root or with the
grader's view of the files); as another user the namespace kind is never used (it could only run
the child as the grader's own uid), landlock comes after bubblewrap, and `none` is the last resort.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from grader.errors import SandboxError
from grader.sandbox.isolation import KINDS, NOBODY, Isolation, Layout, command, furnish, run_root
from grader.sandbox.state import remove_tree

PROBE_TIMEOUT_S = 60.0


def detect_isolation(python: str | None = None, *, prefer: str | None = None) -> Isolation:
    """Probe bubblewrap, then namespaces (as root), then none (not as root); the first that runs `python`.

    `python` defaults to $GRADER_SANDBOX_PYTHON, else this interpreter. `prefer` (default:
    $GRADER_ISOLATION) forces one kind; a forced kind that does not work raises SandboxError.
    """
    python = python or os.environ.get("GRADER_SANDBOX_PYTHON") or sys.executable
    prefer = prefer or os.environ.get("GRADER_ISOLATION") or None
    if prefer is not None and prefer not in KINDS:
        raise SandboxError(f"GRADER_ISOLATION={prefer!r}; use one of {', '.join(KINDS)}")
    root = os.geteuid() == 0
    if root and not shutil.which("setpriv"):
        raise SandboxError("the grader runs as root but `setpriv` (util-linux) is missing, so student code would run "
                           "as root; install util-linux or run the grader as an ordinary user")
    paths = _python_paths(python)
    uid = NOBODY if root else os.geteuid()
    failures: list[str] = []
    for kind in (prefer,) if prefer else KINDS:
        problem = _refused(kind, root) or _probe(Isolation(kind, uid, python, paths))
        if not problem:
            return Isolation(kind, uid, python, paths, note="; ".join(failures))
        failures.append(f"{kind}: {problem}")
        if problem.startswith("uid"):  # the interpreter itself is unreachable: no kind will do
            break
    raise SandboxError(failures[-1] if len(failures) == 1 else "no sandbox works here (" + "; ".join(failures) + ")")


def _refused(kind: str, root: bool) -> str:
    if kind == "namespace" and not root:
        return ("needs root: as another user it could run the child only as the grader's own uid, "
                "with the grader's files in reach; install bubblewrap")
    if kind == "none" and root:
        return "student code never runs as root or without walls when the grader is root; install bubblewrap"
    return ""


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
    "try:\n    socket.socket().connect(('127.0.0.1', 9)); net = 'connected'\n"
    "except OSError as e:\n    net = type(e).__name__\n"
    "try:\n    seccomp = [line.split()[1] for line in open('/proc/self/status') if line.startswith('Seccomp:')]\n"
    "except OSError:\n    seccomp = None\n"
    "try:\n    socket.socket(socket.AF_UNIX).close(); unix = 'ok'\n"
    "except OSError as e:\n    unix = type(e).__name__\n"
    "try:\n    hidden = not os.listdir('/etc')\n"
    "except OSError:\n    hidden = True\n"
    "print(json.dumps({'version': sys.version, 'uid': os.getuid(), 'seccomp': seccomp, 'hidden': hidden,"
    " 'unix': unix,"
    " 'torch': importlib.util.find_spec('torch') is not None, 'net': net}))"
)


def _probe(iso: Isolation) -> str:
    """'' when `iso` runs the interpreter as intended, else what went wrong (one phrase)."""
    if iso.kind == "bubblewrap" and not shutil.which("bwrap"):
        return "bwrap is not installed (apt-get install bubblewrap)"
    if iso.kind == "namespace" and not shutil.which("unshare"):
        return "unshare is not installed (util-linux)"
    root = run_root("probe-", iso)
    try:
        layout = Layout(root / "in", root / "work", work_bytes=16 * 2**20)
        for folder in (layout.in_dir, layout.out_dir, root / "stage"):
            folder.mkdir(parents=True)
        os.chmod(layout.in_dir, 0o755)
        furnish(layout.in_dir)
        if iso.drops_uid:
            os.chown(layout.out_dir, iso.uid, iso.uid)
        argv = command(iso, [iso.python, "-I", "-c", _PROBE], layout, {})
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, cwd=layout.work_dir,
                                 env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"the probe did not run ({e})"
    finally:
        remove_tree(root)
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
    if iso.kind == "landlock":  # /proc is out of its reach: the filter shows itself by refusing every socket
        if not seen["hidden"]:
            return "Landlock did not hold: the probe could list /etc"
        if seen["unix"] == "ok":
            return "the seccomp filter is not in force inside (a UNIX socket was made)"
    elif seen["seccomp"] != ["2"]:  # confine.py exits when it cannot filter; this catches a filter that did not hold
        return (f"the seccomp filter is not in force inside (Seccomp: {seen['seccomp']}); "
                "the kernel needs CONFIG_SECCOMP_FILTER")
    return ""


def _unreachable(python: str, why: str) -> str:
    return (
        f"uid {NOBODY} cannot run {python} ({why}); its installation must be readable by everyone "
        f"(a pyenv Python under /root, mode 700, is not): create the venv from a system Python, e.g. "
        f"`/usr/bin/python3.11 -m venv /opt/grader-venv`, install the grader there and run it from that venv, "
        f"or set GRADER_SANDBOX_PYTHON to such an interpreter with torch and numpy"
    )


__all__ = ["detect_isolation"]
