"""Where the grader keeps what its children must never reach: folders created safely, removed safely.

Every sandbox's folders, the arrays a batch shares and the uid locks live under one base folder,
private to the grader's user (0700): `$GRADER_STATE_DIR`, else `<user cache>/state` (for root,
/root/.cache/cnn-grader/state). Nothing is trusted because of its name: a folder that is a link,
belongs to another user or is open to others is refused with a message (someone may have planted
it), and per-run folders are created fresh (mkdtemp). Removal walks a tree without recursion, without
following links and with two descriptors at most, so a child's 30,000 nested folders or a planted
link can neither stop it, redirect it nor leave the grader short of descriptors.
"""

from __future__ import annotations

import atexit
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


_reachable_base: Path | None = None


def reachable_base() -> Path | None:
    """The folder reachable_dir makes its folders in, once it has made one."""
    return _reachable_base


def reachable_dir(prefix: str) -> Path:
    """A new folder, named at random, whose path another uid can walk (mode 0711 on it and its base).

    For a child that runs as a uid of its own without a mount namespace (the landlock kind): it must
    reach its folders by their host paths, and the state folder lies under a home that is not open
    to it (/root, 0700). The base is made once per process in the temporary folder, 0711 (walked, never
    listed, so a run's random name is not found), and removed at exit.
    """
    global _reachable_base
    if _reachable_base is None or not _reachable_base.is_dir():
        base = Path(tempfile.mkdtemp(prefix="grader-runs-"))
        os.chmod(base, 0o711)
        closed = [str(p) for p in base.parents if not os.stat(p).st_mode & 0o001]
        if closed:
            os.rmdir(base)
            raise SandboxError(f"{closed[0]} cannot be walked by the sandbox's uid (no x for others), so a child "
                               "cannot reach its folders under it; set TMPDIR to a folder others may walk (e.g. /tmp)")
        atexit.register(remove_tree, base)
        _reachable_base = base
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=_reachable_base))
    os.chmod(folder, 0o711)
    return folder


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

    Only the folders directly in `path` are ever opened, two descriptors at most: each is emptied
    of its files, its own folders are moved up into `path` (to be emptied in turn), and it is
    removed. No recursion, no path longer than a name, no descriptor per level: 30,000 nested
    folders are 30,000 folders side by side.
    """
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            os.unlink(path)
            return
    except FileNotFoundError:
        return
    top = _open_dir(str(path), None)
    try:
        moved = 0
        while folders := _remove_files(top):
            for name in folders:
                moved = _empty_folder(top, name, moved)
                os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(path)


def _remove_files(fd: int) -> list[str]:
    """Unlink every entry of the folder that is not a folder; the names of its folders."""
    with os.scandir(fd) as scan:
        entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in scan]
    for name, is_dir in entries:
        if not is_dir:
            os.unlink(name, dir_fd=fd)
    return [name for name, is_dir in entries if is_dir]


def _empty_folder(top: int, name: str, moved: int) -> int:
    """Empty top/name: files unlinked, folders moved up into top under fresh names. Returns the new
    count of folders moved, which names the next one."""
    fd = _open_dir(name, top)
    try:
        for sub in _remove_files(fd):
            while _exists(f"{moved}.removing", top):  # a name the child chose: never replace it
                moved += 1
            try:
                os.rename(sub, f"{moved}.removing", src_dir_fd=fd, dst_dir_fd=top)
            except PermissionError:  # a folder moved to another parent must be writable itself (its ..)
                os.chmod(sub, 0o700, dir_fd=fd)
                os.rename(sub, f"{moved}.removing", src_dir_fd=fd, dst_dir_fd=top)
            moved += 1
    finally:
        os.close(fd)
    return moved


def _exists(name: str, parent: int) -> bool:
    try:
        os.lstat(name, dir_fd=parent)
        return True
    except FileNotFoundError:
        return False


def _open_dir(name: str, parent: int | None) -> int:
    """A descriptor of the folder, made readable and writable first where a child closed it to
    the grader (as its owner, the grader may); never through a link."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=parent)
        fd = os.open(name, flags, dir_fd=parent)
    if stat.S_IMODE(os.fstat(fd).st_mode) & 0o700 != 0o700:
        os.fchmod(fd, 0o700)  # its entries are to be unlinked or moved out: it must be writable
    return fd


__all__ = ["fresh_dir", "reachable_base", "reachable_dir", "remove_tree", "state_dir"]
