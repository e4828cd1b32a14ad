"""The machine an autograder runs on: the CPUs and memory its container is given, and torch's threads
fitted to them.

Docker's `--cpus` (Gradescope: half a CPU unless the assignment asks for more) is a CFS quota, not
a set of cores: the container still sees every core of the host, and torch starts a thread per core
it sees, each throttled once the quota is spent. Measured on this project's machine under a quota
of half a CPU, LeNet-5 trained 7.5 times slower with 2 threads than with 1. So `fit_threads`
narrows this process's CPU affinity, which every child inherits (the training child sets torch's
threads from it), to as many cores as the quota buys, rounded up; which cores is drawn at random,
so that the containers a host runs do not all crowd onto its first core. The grader and its child
share the container's memory: `left_for_a_child` is what the grader leaves each child.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class Machine:
    """What a container is given."""

    cpus: float
    """CPUs of time per second (a CFS quota: 0.5 is half of one core's time)."""
    memory_mb: int
    """Memory of every process in it together, in MiB (2**20 bytes, as Docker's `768m`)."""

    def __str__(self) -> str:
        return f"{self.cpus:g} CPU and {self.memory_mb} MB of memory"


GRADESCOPE = Machine(cpus=0.5, memory_mb=768)
"""Gradescope's autograder container unless the assignment's settings give more."""

_CPU_FILES = (("cpu.max",), ("cpu.cfs_quota_us", "cpu.cfs_period_us"))
_MEMORY_FILES = (("memory.max",), ("memory.limit_in_bytes",))


def this_container(cgroup_root: Path | None = None) -> Machine | None:
    """The quota and the memory limit of this process's cgroups (and of their ancestors, the tightest
    wins), with this host's cores and memory for what is not limited; None where neither is limited."""
    cpus = _tightest(_CPU_FILES, "cpu", cgroup_root)
    memory = _tightest(_MEMORY_FILES, "memory", cgroup_root)
    if cpus is None and memory is None:
        return None
    host_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Machine(cpus=cpus if cpus is not None else float(len(os.sched_getaffinity(0))),
                   memory_mb=int((memory if memory is not None else host_memory) // 2**20))


def fit_threads(cpus: float) -> str:
    """Narrow this process's CPU affinity (and so its children's) to the cores `cpus` of quota buys,
    rounded up; a line for the log that says what was done."""
    allowed = sorted(os.sched_getaffinity(0))
    wanted = max(1, math.ceil(cpus))
    if wanted >= len(allowed):
        return f"threads: {len(allowed)} (the {cpus:g} CPU this container is given covers every core it sees)"
    chosen = sorted(random.SystemRandom().sample(allowed, wanted))
    os.sched_setaffinity(0, chosen)
    return (f"threads: {wanted} (a quota of {cpus:g} CPU on {len(allowed)} cores: torch runs on core(s) "
            f"{', '.join(map(str, chosen))}, one thread a core, rather than a throttled thread on each)")


CHILD_MARGIN_MB = 128
"""What the grader keeps for itself beyond what it holds when its children start: it grew by 66 MB more
while grading the complete example (the retraining's modules, the logits, the results)."""


def left_for_a_child(container: Machine) -> tuple[int, str]:
    """What one child at a time may hold, in bytes, and a line for the log: the container's memory less what
    this process holds now (its resident anonymous and shared pages; the kernel can drop its mapped files)
    and CHILD_MARGIN_MB. A child over it is then stopped and named, rather than the container's OOM killer
    ending the grader."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    held = sum(int(status.get(key, "0 kB").split()[0]) for key in ("RssAnon", "RssShmem")) * 1024
    left = max(container.memory_mb * 2**20 - held - CHILD_MARGIN_MB * 2**20, 2**27)
    return left, (f"memory: each child of a model may hold {left / 2**20:.0f} MB (the container's {container.memory_mb} "
                  f"MB, less the grader's {held / 2**20:.0f} MB and {CHILD_MARGIN_MB} MB to spare)")


def _tightest(files: tuple[tuple[str, ...], ...], controller: str, cgroup_root: Path | None) -> float | None:
    """The smallest limit of `controller` (CPUs, or bytes of memory) on this process's cgroup and its ancestors."""
    found = [limit for folder in _folders(controller, cgroup_root) for names in files
             if (limit := _read_limit(folder, names)) is not None]
    return min(found, default=None)


def _read_limit(folder: Path, names: tuple[str, ...]) -> float | None:
    try:
        values = [(folder / name).read_text().split() for name in names]
    except OSError:
        return None
    if len(names) == 2:  # v1 CPU: quota and period in two files; -1: no quota
        quota, period = int(values[0][0]), int(values[1][0])
        return quota / period if quota > 0 and period > 0 else None
    first = values[0][0]
    if first == "max":
        return None
    if names == ("cpu.max",):  # v2: "QUOTA PERIOD"
        return int(first) / int(values[0][1])
    limit = int(first)
    return limit if limit < 2**60 else None  # v1 memory: a huge number means none


def _folders(controller: str, cgroup_root: Path | None) -> list[Path]:
    """This process's cgroup folders for `controller` (v1 and v2), each with its ancestors up to the mount.

    `cgroup_root` (tests) replaces /sys/fs/cgroup: its v1 controller folders and its v2 files, for a
    process at the root of its cgroups, as in a container."""
    if cgroup_root is not None:
        return [cgroup_root / controller, cgroup_root]
    try:
        membership = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points: list[tuple[PurePosixPath, Path, bool]] = []  # (the cgroup the mount shows, its mount point, v2)
    for line in mounts:
        before, _, after = line.partition(" - ")
        fstype, _, options = (after.split() + ["", "", ""])[:3]
        if fstype == "cgroup2" or (fstype == "cgroup" and controller in options.split(",")):
            fields = before.split()
            points.append((PurePosixPath(fields[3]), Path(fields[4]), fstype == "cgroup2"))
    folders = []
    for line in membership:
        _, controllers, relative = line.split(":", 2)
        for shown, mount, v2 in points:
            if v2 == (controllers == "") and (v2 or controller in controllers.split(",")) \
                    and PurePosixPath(relative).is_relative_to(shown):
                folder = mount / PurePosixPath(relative).relative_to(shown)
                folders += [folder, *(p for p in folder.parents if p.is_relative_to(mount))]
    return folders


__all__ = ["CHILD_MARGIN_MB", "GRADESCOPE", "Machine", "fit_threads", "left_for_a_child", "this_container"]
