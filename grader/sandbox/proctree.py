"""What the watchdog sees of a child from outside: its process tree, the memory the tree holds,
the disk its shared folder uses, and signals to all of it (read from /proc; nothing the child
writes is trusted here)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def tree(root: int) -> list[int]:
    """root and all its descendants (a PID namespace keeps daemonized children under root)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ppid = _ppid(int(entry.name))
            if ppid is not None:
                children.setdefault(ppid, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _ppid(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and ')', so split after the last ')'.
    return int(text[text.rfind(")") + 2:].split()[1])


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def memory_bytes(pids: list[int]) -> int:
    """Memory the processes hold that no file on disk backs: anonymous and shared resident pages,
    plus memfds and deleted tmpfs files they keep open without mapping them (each counted once).

    File-backed pages (torch's 1 GB of CUDA libraries, mapped and partly resident) are left out:
    they are shared and reclaimable, and counting them made the cap depend on the page cache.
    """
    total, seen = 0, set()
    for pid in pids:
        total += _resident(pid)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                if not os.readlink(path).startswith(("/memfd:", "/dev/shm/")):
                    continue
                info = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512
    return total


def _resident(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kb = 0
    for line in text.splitlines():
        if line.startswith(("RssAnon:", "RssShmem:")):
            kb += int(line.split()[1])
    return kb * 1024


def folder_bytes(folder: Path, max_entries: int) -> int:
    """Disk used under `folder` (links not followed); past `max_entries` entries, a size that
    exceeds any cap, since a child that makes that many files is filling the disk one way or another."""
    total, entries, stack = 0, 0, [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as scan:
                for entry in scan:
                    entries += 1
                    if entries > max_entries:
                        return 2**62
                    info = entry.stat(follow_symlinks=False)
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


def send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


__all__ = ["comm", "folder_bytes", "memory_bytes", "send", "tree"]
