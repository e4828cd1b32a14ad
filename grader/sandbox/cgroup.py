"""A memory cgroup for one child, where the grader may make one (as root, with the memory controller).

The kernel then counts every page the child's processes hold, whatever the kind (anonymous
memory, tmpfs files, shared memory, memfds), and kills inside the group at the limit: the
watchdog's view of resident memory misses an 8 GB memfd, the kernel does not. Works with cgroup
v1 (a memory hierarchy) and v2 (a delegated group with the memory controller); elsewhere
`memory_cgroup` gives None and the watchdog alone enforces the cap.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MemoryCgroup:
    """A child's own group under the grader's memory cgroup."""

    path: Path
    version: int
    """1 or 2."""

    def join(self) -> list[str]:
        """A command prefix that moves itself into the group, then runs the rest of the command line."""
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.path)]

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for memory."""
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in (self.path / name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass  # a process still in it (reaped a moment later): the kernel frees the group when empty


def memory_cgroup(limit_bytes: int) -> MemoryCgroup | None:
    """A new group limited to `limit_bytes` (swap included), or None when the grader cannot make one."""
    if os.geteuid() != 0:
        return None
    found = _own_memory_cgroup()
    if found is None:
        return None
    parent, version = found
    path = parent / f"grader-{secrets.token_hex(6)}"
    try:
        path.mkdir()
    except OSError:
        return None
    group = MemoryCgroup(path, version)
    limits = (("memory.limit_in_bytes", "memory.memsw.limit_in_bytes") if version == 1
              else ("memory.max", "memory.swap.max"))
    try:
        (path / limits[0]).write_text(str(limit_bytes))
    except OSError:
        group.remove()
        return None
    try:
        (path / limits[1]).write_text(str(limit_bytes) if version == 1 else "0")  # no escape into swap
    except OSError:
        pass  # no swap accounting here: swap is off or not counted, the memory limit stands
    return group


def _own_memory_cgroup() -> tuple[Path, int] | None:
    """The folder of this process's memory cgroup, and the cgroup version, if it can have children."""
    try:
        membership = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    v1_mount = v2_mount = None
    for line in mounts:
        fields = line.split(" - ")
        if len(fields) != 2:
            continue
        mount_point, (fstype, _, options) = line.split()[4], (fields[1].split() + ["", "", ""])[:3]
        if fstype == "cgroup" and "memory" in options.split(","):
            v1_mount = Path(mount_point)
        elif fstype == "cgroup2":
            v2_mount = Path(mount_point)
    for line in membership:
        _, controllers, relative = line.split(":", 2)
        if v1_mount and "memory" in controllers.split(","):
            return v1_mount / relative.lstrip("/"), 1
    for line in membership:
        _, controllers, relative = line.split(":", 2)
        if v2_mount and controllers == "":
            folder = v2_mount / relative.lstrip("/")
            try:
                if "memory" in (folder / "cgroup.subtree_control").read_text().split():
                    return folder, 2
            except OSError:
                return None
    return None


__all__ = ["MemoryCgroup", "memory_cgroup"]
