"""What the watchdog sees of a child from outside: its process tree, the memory the tree holds,
the disk its shared folder and its own tmpfs use, and signals to all of it (read from /proc;
nothing the child writes is trusted here)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
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


MAX_DEPTH = 64
"""Folders nested deeper than this below a watched folder: over the cap, whatever their size (the
walk holds one descriptor per level, so this also bounds the descriptors a child can make it hold)."""
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FolderUse:
    """What a child has written under a folder, as far as the walk went."""

    bytes: int
    """Disk used by the entries seen (links not followed)."""
    over: str = ""
    """Why the walk stopped before the end, each a reason to stop the child: 'entries' (more than
    the walk's bound), 'depth' (folders nested deeper than MAX_DEPTH), 'unreadable' (a folder the
    grader may not open: what it holds cannot be counted)."""


def folder_use(folder: Path, max_entries: int) -> FolderUse:
    """Disk used under `folder`, walked depth first by descriptors relative to their parent: no
    path grows with the depth (PATH_MAX never stops it), no recursion, at most MAX_DEPTH + 2
    descriptors open, all closed whatever happens. A folder that is missing is empty."""
    try:
        fd: int | None = os.open(folder, _DIR)
    except OSError:
        return FolderUse(0)
    total, entries = 0, 0
    stack: list[tuple[int, list[str]]] = []  # per level: its descriptor, the subfolders left to visit
    try:
        while True:
            if fd is not None:
                stack.append((fd, []))
                if len(stack) > MAX_DEPTH + 1:  # the folder itself is level 0
                    return FolderUse(total, "depth")
                used, count = _scan(fd, stack[-1][1])
                total, entries = total + used, entries + count
                if entries > max_entries:
                    return FolderUse(total, "entries")
            while stack and not stack[-1][1]:
                os.close(stack.pop()[0])
            if not stack:
                return FolderUse(total)
            parent, left = stack[-1]
            try:
                fd = os.open(left.pop(), _DIR, dir_fd=parent)
            except PermissionError:
                return FolderUse(total, "unreadable")
            except OSError:  # gone, or no longer a folder, since it was listed
                fd = None
    finally:
        for held, _ in stack:
            os.close(held)


def _scan(fd: int, subfolders: list[str]) -> tuple[int, int]:
    """(bytes, entries) of one folder's entries; its subfolders' names are added to `subfolders`."""
    used = count = 0
    with os.scandir(fd) as scan:
        for entry in scan:
            count += 1
            try:
                used += entry.stat(follow_symlinks=False).st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    subfolders.append(entry.name)
            except OSError:
                continue  # removed while listed
    return used, count


def mounted_use(pids: list[int], inside: str, size: int) -> int | None:
    """Bytes used on the tmpfs of `size` bytes mounted at `inside` in the processes' own view of
    the files (read through /proc/PID/root, from any of them that shows it); None where none does:
    a wrapper still building the view, or a /proc the grader may not read."""
    own = _mount_namespace("self")
    for pid in pids:
        if _mount_namespace(str(pid)) in (None, own):
            continue
        try:
            info = os.statvfs(f"/proc/{pid}/root{inside}")
        except OSError:
            continue
        if 0 <= info.f_blocks * info.f_frsize - size < info.f_frsize:  # its size, rounded up to a page
            return (info.f_blocks - info.f_bfree) * info.f_frsize
    return None


def _mount_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def send(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


__all__ = ["FolderUse", "MAX_DEPTH", "comm", "folder_use", "memory_bytes", "mounted_use", "send", "tree"]
