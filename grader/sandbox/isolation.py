"""How a child is walled off: the kinds of isolation, what the child sees, and whose uid it runs as.

Four kinds, strongest first (grader/sandbox/detect.py probes which work here):

- ``bubblewrap``: ``bwrap`` with new network, PID, IPC and UTS namespaces and a root filesystem
  that shows only /usr, a few files of /etc, the Python installation and the child's own folders;
- ``namespace`` (root only): ``unshare`` with new mount, network, PID, IPC and UTS namespaces; a script run
  as root inside them makes a fresh /dev, hides every top-level folder but /usr and /proc under empty tmpfs
  (/tmp, /run, /home, /root, /var, /opt, the data, the results...), brings back only the Python
  installation and a few files of /etc, and mounts the child's folders as under bubblewrap;
- ``landlock``: no namespaces, for hosts that deny them (a Docker container with the default
  seccomp profile, as Gradescope and Kubernetes run one; AppArmor's restriction of unprivileged user
  namespaces): the child runs as a uid of its own when the grader is root (setpriv), and confine.py
  walls it in with Landlock (read only the Python installation, /usr, a few files of /etc and its
  inputs; write only its working folder; no TCP; signals and abstract sockets kept to itself) and a
  seccomp filter without sockets. Its folders are on the host's disk at their host paths, under a
  folder its uid can walk (grader/sandbox/state.reachable_dir); the disk cap is the file-size rlimit
  and the watchdog on the working folder;
- ``none`` (not as root): no namespaces; the child runs as the grader's own user and sees what
  it sees. The report says so and ``--require-isolation`` refuses it.

What a child sees under bubblewrap and the namespace kind: its inputs read-only (`Layout.in_dir` and
the large arrays bound file by file, never linked to the grader's copies), a working folder that is
a fresh tmpfs of `Layout.work_bytes` (its disk cap), and in it `out/`, the one folder shared with
the grader. As root the child runs as a uid of its own (`exclusive_uid`), never as root. A child
that trains on CUDA is also shown its GPU's device nodes and the driver's libraries
(grader/sandbox/gpu.py says which); any other child, none of them. In every kind, the child's
command runs under grader/sandbox/confine.py's seccomp filter (copied into in/ by `furnish`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping

from grader.errors import SandboxError
from grader.sandbox.gpu import DRIVER_VIEWS, GpuAccess
from grader.sandbox.state import fresh_dir, reachable_dir, state_dir

NOBODY = 65534
KINDS = ("bubblewrap", "namespace", "landlock", "none")
OWN_IPC = {"bubblewrap", "namespace"}  # kinds whose child has an IPC namespace of its own
HOST_VIEW = {"landlock", "none"}  # kinds whose child sees the host's paths (no mount namespace)
CONFINE = Path(__file__).with_name("confine.py")
# Where the child's folders appear: under bubblewrap's own root, or in the namespace's fresh /tmp.
INSIDE = {"bubblewrap": "/sandbox", "namespace": "/tmp/sandbox"}
# Host files a Python process reads at start-up (dynamic loader cache, user names for getpass).
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "passwd", "group", "nsswitch.conf", "localtime")
# What the landlock kind lets a child read besides the Python installation, /etc's few files and its
# inputs (CPU features for torch's kernels: without them it falls back to the slowest), and the
# device nodes it may read and write.
LANDLOCK_READ = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/proc/cpuinfo", "/sys/devices/system/cpu")
LANDLOCK_DEVICES = tuple(f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom"))
# Top-level folders the namespace kind leaves visible (read as they are on the host); its /dev is
# made afresh, as bubblewrap's --dev makes it: these nodes, and a GPU's where the child uses one.
SYSTEM = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc"}
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")


@dataclass(frozen=True)
class Isolation:
    """The isolation a child runs under, recorded in every result."""

    kind: str
    """'bubblewrap', 'namespace', 'landlock' or 'none'."""
    uid: int
    """The uid the child runs as (one of 65534 and 65001-65063 whenever the grader runs as root)."""
    python: str
    """The interpreter that runs the child."""
    python_paths: tuple[str, ...] = ()
    """Folders of that interpreter's installation (bound read-only inside)."""
    note: str = ""
    """Why this kind was chosen: what the stronger kinds lacked."""

    @property
    def drops_uid(self) -> bool:
        return self.uid != os.geteuid()


@dataclass(frozen=True)
class Layout:
    """One child's folders on the host, and how they are shown to it."""

    in_dir: Path
    """Small inputs (the request, the extracted module, the child package); read-only inside."""
    work_dir: Path
    """Holds out/; under `none` it is also the child's working folder."""
    binds: Mapping[str, Path] = field(default_factory=dict)
    """Large inputs, shown read-only in in/ under these names (an empty file of that name must exist there)."""
    work_bytes: int = 2 * 2**30
    """What the child may write in all: the size of its working folder's tmpfs, or (kinds with the
    host's view) the cap the watchdog holds its working folder to."""
    gpu: GpuAccess = GpuAccess()
    """The GPU device nodes and driver libraries it is shown (none unless it trains on CUDA)."""

    @property
    def out_dir(self) -> Path:
        return self.work_dir / "out"


def inside_paths(iso: Isolation, layout: Layout) -> tuple[str, str]:
    """Where in/ and the working folder appear to the child."""
    if iso.kind in INSIDE:
        return f"{INSIDE[iso.kind]}/in", f"{INSIDE[iso.kind]}/work"
    return str(layout.in_dir), str(layout.work_dir)


def command(iso: Isolation, argv: list[str], layout: Layout, limits: Mapping[str, int]) -> list[str]:
    """The full command line that runs `argv` (paths as seen inside) under `iso` with rlimits.

    `limits` maps prlimit option names (cpu, fsize, nofile, nproc) to values. prlimit comes after
    the uid drop, so the wrappers themselves are not limited; the seccomp filter (confine.py, which
    `furnish` put in in/) comes last, so that it holds for `argv` and nothing before it.
    """
    inside_in = inside_paths(iso, layout)[0]
    confined = [iso.python, "-I", "-S", "-B", f"{inside_in}/{CONFINE.name}",
                *(["--ipc-namespace"] if iso.kind in OWN_IPC else []),
                *(_landlock_rules(iso, layout) if iso.kind == "landlock" else []), "--", *argv]
    inner = ["prlimit", *(f"--{k}={v}" for k, v in limits.items()), "--", *confined]
    if iso.drops_uid:
        inner = ["setpriv", f"--reuid={iso.uid}", f"--regid={iso.uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", *inner]
    if iso.kind == "bubblewrap":
        return _bwrap(iso, layout) + ["--", *inner]
    if iso.kind == "namespace":
        return ["unshare", "--mount", "--propagation", "private", "--net", "--pid", "--ipc", "--uts", "--fork",
                "--kill-child", "--mount-proc", "--", "sh", "-ec", _namespace_script(iso, layout), "sh", *inner]
    return inner


def _landlock_rules(iso: Isolation, layout: Layout) -> list[str]:
    """confine.py's options for the landlock kind: what the child may read, write, and use as a device."""
    gpu = layout.gpu
    read = [*LANDLOCK_READ, *iso.python_paths, *(f"/etc/{name}" for name in ETC_FILES), str(layout.in_dir),
            *(str(p) for p in layout.binds.values()), *gpu.libraries, *(DRIVER_VIEWS if gpu.devices else ())]
    rules = ["--landlock", "--write", str(layout.work_dir)]
    for path in read:
        rules += ["--read", path]
    for path in [*LANDLOCK_DEVICES, *gpu.devices]:
        rules += ["--device", path]
    return rules


def run_root(prefix: str, isolation: Isolation) -> Path:
    """A fresh folder for one child's in/ and work/: in the grader's private state, or, for a child
    that sees host paths as a uid of its own, where that uid can walk to it."""
    if isolation.kind in HOST_VIEW and isolation.drops_uid:
        return reachable_dir(prefix)
    return fresh_dir(prefix, "runs")


def furnish(in_dir: Path) -> None:
    """Put in a child's in/ what `command` runs there before the child's own program."""
    shutil.copyfile(CONFINE, in_dir / CONFINE.name)
    os.chmod(in_dir / CONFINE.name, 0o644)


def require(iso: Isolation) -> None:
    """Refuse (SandboxError) unless the child is walled off: its own namespaces and filesystem view."""
    if iso.kind == "none":
        raise SandboxError(
            "--require-isolation: student code cannot be isolated here ("
            + (iso.note or "neither bwrap nor unshare works")
            + "); install bubblewrap (apt-get install bubblewrap) or allow user namespaces, "
            "or drop --require-isolation"
        )


def _bwrap(iso: Isolation, layout: Layout) -> list[str]:
    # No --unshare-user as root: a user namespace would map the child back to host uid 0. As
    # another user, bwrap makes one itself, and the child can reach nothing outside its folders.
    inside_in, inside_work = inside_paths(iso, layout)
    args = ["bwrap", "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent",
            "--ro-bind", "/usr", "/usr", "--dev", "/dev", "--proc", "/proc"]
    for name in ("bin", "lib", "lib64", "lib32", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            args += ["--ro-bind", str(link), str(link)]
    for name in ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    own = [p for p in iso.python_paths if not p.startswith("/usr/")]
    libraries = [p for p in layout.gpu.libraries if not p.startswith("/usr/")]
    made: set[str] = {"/", "/usr", "/etc", "/dev", "/proc"}
    for path in [*own, *(str(Path(p).parent) for p in libraries), inside_in]:
        # bwrap creates missing parents mode 0700 (as root), which the child's uid cannot cross.
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
    for path in own:
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", str(layout.in_dir), inside_in]
    for name, source in layout.binds.items():
        args += ["--ro-bind", str(source), f"{inside_in}/{name}"]
    args += ["--perms", "1777", "--size", str(layout.work_bytes), "--tmpfs", inside_work,
             "--bind", str(layout.out_dir), f"{inside_work}/out",
             "--perms", "1777", "--dir", f"{inside_work}/tmp", "--chdir", inside_work]
    for dev in layout.gpu.devices:  # only the pinned GPUs' nodes: the others do not exist inside
        args += ["--dev-bind", dev, dev]
    for path in [*libraries, *(DRIVER_VIEWS if layout.gpu.devices else ())]:
        args += ["--ro-bind-try", path, path]
    return args


def _namespace_script(iso: Isolation, layout: Layout) -> str:
    """The shell script that builds the child's view inside a new mount namespace, as root.

    Everything the child needs is mounted on a staging tmpfs first (binds of its folders, the
    Python installation, files of /etc), the staging tmpfs is moved over /tmp, and only then are
    the other top-level folders hidden: nothing the child needs is reached through a hidden path.
    """
    q = shlex.quote
    stage = q(str(layout.work_dir.parent / "stage"))
    inside_in, inside_work = inside_paths(iso, layout)
    staged_in, staged_work = f"{stage}/sandbox/in", f"{stage}/sandbox/work"
    lines = [
        f"mount -t tmpfs -o mode=755,size=16m tmpfs {stage}",
        f"mkdir -p {staged_in} {staged_work} {stage}/keep",
        f"mount --bind {q(str(layout.in_dir))} {staged_in}",
        f"mount -o remount,bind,ro {staged_in}",
    ]
    for name, source in layout.binds.items():
        target = f"{staged_in}/{q(name)}"
        lines += [f"mount --bind {q(str(source))} {target}", f"mount -o remount,bind,ro {target}"]
    lines += [
        f"mount -t tmpfs -o mode=1777,size={layout.work_bytes} tmpfs {staged_work}",
        f"mkdir -m 755 {staged_work}/out && mkdir -m 1777 {staged_work}/tmp",
        f"mount --bind {q(str(layout.out_dir))} {staged_work}/out",
    ]
    lines += _dev_lines(f"{stage}/dev", layout.gpu)
    hidden = sorted(e.name for e in os.scandir("/") if e.is_dir(follow_symlinks=False)
                    and e.name not in SYSTEM | {"tmp", "dev"} and not (e.name == "sys" and layout.gpu.devices))
    keep = [p for p in [*iso.python_paths, *layout.gpu.libraries] if p.split("/")[1] in {*hidden, "tmp"}]
    keep += [f"/etc/{name}" for name in ETC_FILES if os.path.exists(f"/etc/{name}")]
    for i, path in enumerate(keep):
        make = "mkdir" if os.path.isdir(path) else "touch"
        lines += [f"{make} {stage}/keep/{i}", f"mount --bind {q(path)} {stage}/keep/{i}",
                  f"mount -o remount,bind,ro {stage}/keep/{i}"]
    lines += [f"mount --move {stage} /tmp", "mount --move /tmp/dev /dev && rmdir /tmp/dev"]
    for name in hidden:
        lines.append(f"mount -t tmpfs -o mode=755,size=1m tmpfs /{q(name)}")
    lines.append("mount -t tmpfs -o mode=755,size=1m tmpfs /dev/shm")
    for i, path in enumerate(keep):
        make = f"mkdir -p {q(path)}" if os.path.isdir(path) else f"mkdir -p {q(os.path.dirname(path))} && touch {q(path)}"
        lines += [make, f"mount --move /tmp/keep/{i} {q(path)}"]
    # The shell stays as the namespace's PID 1: the child is not init (which ignores signals it
    # has no handler for), and its death by a signal comes back as 128 + signal, as from bwrap.
    lines += ["rm -rf /tmp/keep", f"cd {inside_work}", "set +e", '"$@" &', "wait $!", "exit $?"]
    assert inside_in == "/tmp/sandbox/in"  # the staging tmpfs, moved over /tmp, holds the sandbox
    return "\n".join(lines)


def _dev_lines(staged: str, gpu: GpuAccess) -> list[str]:
    """Shell lines that make a fresh /dev at `staged`: the usual nodes, and the GPU's the child is given."""
    q = shlex.quote
    lines = [f"mkdir {staged}", f"mount -t tmpfs -o mode=755,size=1m tmpfs {staged}",
             f"mkdir {staged}/shm {staged}/pts", f"ln -s /proc/self/fd {staged}/fd"]
    lines += [f"ln -s /proc/self/fd/{fd} {staged}/{name}" for fd, name in enumerate(("stdin", "stdout", "stderr"))]
    for node in [*(f"/dev/{n}" for n in DEV_NODES if os.path.exists(f"/dev/{n}")), *gpu.devices]:
        target = f"{staged}/{q(node.removeprefix('/dev/'))}"
        make = "mkdir" if os.path.isdir(node) else "touch"
        lines.append(f"{make} {target} && mount --bind {q(node)} {target}")
    return lines


# Slot n > 0 runs as uid UID_BASE + n (Debian leaves 65000-65533 unallocated).
UID_BASE, UID_SLOTS = 65000, 64
SLOT_WAIT_S = 0.2


@contextlib.contextmanager
def exclusive_uid(isolation: Isolation) -> Iterator[Isolation]:
    """A uid no other running child has, for as long as the child runs.

    RLIMIT_NPROC counts every process of a uid, so children sharing a uid would share one process
    limit, and one submission's fork bomb could starve another's. The locks live in the grader's
    private state folder, out of every child's reach; when all UID_SLOTS are taken, this waits.
    """
    if not isolation.drops_uid or os.geteuid() != 0:
        yield isolation
        return
    folder = state_dir("uid-locks")
    while True:
        for slot in range(UID_SLOTS):
            fd = os.open(folder / f"{slot}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            try:
                yield replace(isolation, uid=_slot_uid(isolation, slot))
            finally:
                os.close(fd)  # releases the lock
            return
        time.sleep(SLOT_WAIT_S)


# The landlock kind's uids: UID_SLOTS of them from a base drawn once per state folder in this range.
SHARED_KERNEL_UIDS = (2**20, 2**31 - UID_SLOTS)


def _slot_uid(isolation: Isolation, slot: int) -> int:
    """Slot 0 is nobody, slot n UID_BASE + n, except under landlock, which runs where containers do:
    beside other containers on one kernel, whose graders (each with its own state folder, its own
    locks) would hand out the same uids, and RLIMIT_NPROC counts a uid's processes in all of them
    (one container's fork bomb held another's limit). There the uids start at a base drawn at random,
    once per state folder, from a range no distribution allocates."""
    if isolation.kind != "landlock":
        return NOBODY if slot == 0 else UID_BASE + slot
    low, high = SHARED_KERNEL_UIDS
    path = state_dir() / "uid-base"
    if not path.exists():  # written whole, then linked into place: the first of concurrent workers wins
        fd, drawn = tempfile.mkstemp(dir=path.parent, prefix=".uid-base.")
        with os.fdopen(fd, "w") as f:
            f.write(str(low + secrets.randbelow(high - low)))
        with contextlib.suppress(FileExistsError):
            os.link(drawn, path)
        os.unlink(drawn)
    with open(path, opener=lambda p, flags: os.open(p, flags | os.O_NOFOLLOW)) as f:
        text = f.read().strip()
    if not (text.isdigit() and low <= int(text) < high):
        raise SandboxError(f"{path} holds no uid in [{low}, {high}); remove it so the grader draws its uids again")
    return int(text) + slot


__all__ = ["ETC_FILES", "HOST_VIEW", "Isolation", "KINDS", "Layout", "NOBODY", "OWN_IPC", "command", "exclusive_uid",
           "furnish", "inside_paths", "require", "run_root"]
