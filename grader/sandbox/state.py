"""Where the grader keeps what its children must never reach: folders created safely, removed safely.

Every sandbox's folders, the arrays a batch shares and the uid locks live under one base folder,
private to the grader's user (0700): `$GRADER_STATE_DIR`, else `<user cache>/state` (for root,
/root/.cache/cnn-grader/state). Nothing is trusted because of its name: a folder that is a link,
belongs to another user or is open to others is refused with a message (someone may have planted
it), and per-run folders are created fresh (mkdtemp). Removal walks a tree without recursion and
without following links, so a child's 3,000 nested folders or a planted link cannot stop it or
redirect it.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from grader.config import user_cache_dir
from grader.errors import SandboxError


def state_dir(*parts: str) -> Path:
    """The grader's private base folder, or a folder below it; each checked (or created) private."""
    base = Path(os.environ.get("GRADER_STATE_DIR") or user_cache_dir() / "state").expanduser()
    base.parent.mkdir(parents=True, exist_ok=True)
    _check_parent(base.parent)
    folder = _private(base)
    for part in parts:
        folder = _private(folder / part)
    return folder


def fresh_dir(prefix: str, *parts: str) -> Path:
    """A new private folder under state_dir(*parts), named at random."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=state_dir(*parts)))


def _private(path: Path) -> Path:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SandboxError(f"{path} is not a folder (a link or a file is in its place); remove it so the grader can "
                           "make its own private folder there")
    if info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SandboxError(f"{path} belongs to uid {info.st_uid} with mode {stat.S_IMODE(info.st_mode):o}; the grader "
                           f"needs it private to uid {os.geteuid()} (0700): remove it, someone else may have made it")
    return path


def _check_parent(path: Path) -> None:
    """Others must not be able to swap the base out from under the grader: a parent open to writing
    by others is accepted only when sticky (/tmp), where no one may rename another's entry."""
    info = os.stat(path)
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        raise SandboxError(f"{path} is writable by others; set GRADER_STATE_DIR to a folder of your own")


def remove_tree(path: Path) -> None:
    """Remove `path` and everything below it, at any depth, never following a link; missing is fine.

    Folders are opened relative to their parent's descriptor, so depth is bounded neither by the
    recursion limit nor by the longest path the system accepts.
    """
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
    except FileNotFoundError:
        return
    stack = [(_open_dir(str(path), None), "")]  # (descriptor, name in the parent below it in the stack)
    while stack:
        fd, name = stack[-1]
        subfolder = None
        with os.scandir(fd) as entries:
            for entry in entries:
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.name, dir_fd=fd)
                elif subfolder is None:
                    subfolder = entry.name
        if subfolder is not None:
            stack.append((_open_dir(subfolder, fd), subfolder))
            continue
        os.close(fd)
        stack.pop()
        if stack:
            os.rmdir(name, dir_fd=stack[-1][0])
    os.rmdir(path)


def _open_dir(name: str, parent: int | None) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=parent)
    except PermissionError:  # a child may leave a folder it made unreadable: give it back to its owner
        os.chmod(name, 0o700, dir_fd=parent)
        return os.open(name, flags, dir_fd=parent)


__all__ = ["fresh_dir", "remove_tree", "state_dir"]
