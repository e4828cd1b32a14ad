"""Reading a file someone else controls: a student's notebook, a file a sandboxed child wrote.

One mechanism for every such read (the class folder, `grader check`, `grader ci`, Gradescope's
submission, the child's reports in grader/sandbox/files.py):

- below a trusted folder (`below`: the submissions folder, a child's run folder) the path is opened
  one component at a time relative to the one above it, never following a symbolic link
  (O_NOFOLLOW with dir_fd): no link, pointing inside or out, and no `..` takes the read elsewhere;
- the file is opened O_NONBLOCK, so a FIFO cannot block the open, and fstat on that descriptor
  decides: a regular file only (no FIFO, device or socket), its size checked against the cap
  before a byte is read, so a sparse 2 TB file costs one fstat;
- the bytes are read once: a caller hashes and parses the very same bytes.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Literal

_CHUNK = 1 << 20


Refusal = Literal["link", "folder", "special", "size", "outside"]
"""Why a file is refused: a symbolic link, a folder, a FIFO, device or socket, over the size cap, not
inside the trusted folder."""


class UnsafeFile(Exception):
    """The file cannot be read safely; the message says what it is, in a few words ('is a symbolic link')."""

    def __init__(self, message: str, refusal: Refusal):
        super().__init__(message)
        self.refusal: Refusal = refusal


def read_untrusted(path: Path, *, max_bytes: int, below: Path | None = None) -> bytes:
    """The bytes of the regular file `path`, at most `max_bytes` of them.

    With `below` (a folder the caller trusts, which `path` lies in) no component of `path` under it may
    be a symbolic link; without, `path` is opened as given (a user's own file named on the command line).
    Raises FileNotFoundError when there is no such file, UnsafeFile when it is not one to read (the
    message says why, to follow the file's name), and OSError (PermissionError...) when the system refuses.
    """
    fd = _open_below(path, below) if below is not None else _open(str(path), None)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"is {_kind(info.st_mode)}, not a file", _refusal(info.st_mode))
        if info.st_size > max_bytes:
            raise UnsafeFile(f"is {_megabytes(info.st_size)}, over the {_megabytes(max_bytes)} limit", "size")
        chunks, total = [], 0
        while chunk := os.read(fd, min(_CHUNK, max_bytes + 1 - total)):  # it may have grown since fstat
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise UnsafeFile(f"grew past the {_megabytes(max_bytes)} limit while it was read", "size")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _open_below(path: Path, below: Path) -> int:
    try:
        parts = path.relative_to(below).parts
    except ValueError:
        raise UnsafeFile(f"is not inside {below}", "outside") from None
    if not parts or ".." in parts:
        raise UnsafeFile(f"is not a file inside {below}", "outside")
    folder = os.open(below, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the trusted folder may be a link
    try:
        for name in parts[:-1]:
            inner = _open(name, folder, os.O_DIRECTORY | os.O_NOFOLLOW, inside=True)
            os.close(folder)
            folder = inner
        return _open(parts[-1], folder, os.O_NOFOLLOW)
    finally:
        os.close(folder)


_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC  # O_NONBLOCK: a FIFO's open returns at once
_REFUSED = (errno.ELOOP, errno.ENOTDIR, errno.ENXIO)  # a link under O_NOFOLLOW, a file for a folder, a socket


def _open(name: str, folder: int | None, flags: int = 0, *, inside: bool = False) -> int:
    try:
        return os.open(name, _FLAGS | flags, dir_fd=folder)
    except OSError as e:
        if e.errno not in _REFUSED:
            raise
        try:
            mode = os.stat(name, dir_fd=folder, follow_symlinks=folder is None).st_mode
        except OSError:
            raise UnsafeFile(f"cannot be opened ({e.strerror})", "special") from None
        what = _kind(mode) + ("" if stat.S_ISLNK(mode) else ", not a folder" if inside else ", not a file")
        raise UnsafeFile(f"lies in {name}, which is {what}" if inside else f"is {what}", _refusal(mode)) from None


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def _refusal(mode: int) -> Refusal:
    return "link" if stat.S_ISLNK(mode) else "folder" if stat.S_ISDIR(mode) else "special"


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MB" if size >= 2**20 else f"{size:,} bytes"


__all__ = ["Refusal", "UnsafeFile", "read_untrusted"]
