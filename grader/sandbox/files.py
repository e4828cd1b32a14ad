"""Reading what a child wrote, as if an attacker wrote it (because one may have).

Files are opened without following symbolic links (the grader may be root and the child could
point result.json at /etc/shadow) and must be regular files under a size cap (grader.untrusted);
JSON must match the record the caller expects (grader.typed: unknown keys are dropped, long strings
cut), and arrays are .npy files loaded with allow_pickle=False whose dtype and shape are checked.
Nothing here ever unpickles.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from grader.typed import PlainError, from_plain
from grader.untrusted import UnsafeFile, read_untrusted

T = TypeVar("T")

MAX_JSON_BYTES = 4 * 2**20
MAX_STRING = 4000


class ChildOutputError(Exception):
    """A file the child wrote is not what the protocol allows (the message says why)."""


@dataclass(frozen=True)
class ArraySpec:
    """The dtype kind and shape a child's .npy array must have."""

    kinds: str = "f"
    """numpy dtype kinds accepted ('f' float, 'i' signed int, 'u' unsigned, 'b' bool)."""
    shape: tuple[int | None, ...] = ()
    """Expected shape; None matches any length on that axis."""
    max_bytes: int = 512 * 2**20
    """Largest file accepted."""


def read_json(path: Path, *, max_bytes: int = MAX_JSON_BYTES) -> Any | None:
    """The JSON in `path`, or None when there is no such file."""
    raw = _read_regular(path, max_bytes)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise ChildOutputError(f"{path.name} is not valid JSON ({e})") from None
    except RecursionError:
        raise ChildOutputError(f"{path.name} nests too deeply to be a report") from None


def read_record(path: Path, kind: type[T]) -> T | None:
    """The record of type `kind` in the JSON file `path`, or None when there is no such file.

    Keys the record does not declare are dropped and strings cut; a missing key or a wrong type
    is a ChildOutputError naming the key.
    """
    raw = read_json(path)
    if raw is None:
        return None
    try:
        return from_plain(kind, raw, path.stem, context="in the child's report", unknown="drop", max_string=MAX_STRING)
    except PlainError as e:
        raise ChildOutputError(str(e)) from None


def load_array(path: Path, spec: ArraySpec):
    """The validated array in `path`, or None when there is no such file.

    The header is read first and must describe exactly the bytes that follow it: a header that
    claims (4, 10, 10**12) floats in a 160-byte file is rejected before anything is allocated.
    """
    import io

    import numpy as np

    raw = _read_regular(path, spec.max_bytes)
    if raw is None:
        return None
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"format version {version} (np.save writes 1.0)")
        shape, _, dtype = readers[version](stream)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as e:
        raise ChildOutputError(f"{path.name} is not a plain .npy array ({e})") from None
    if dtype.hasobject or dtype.kind not in spec.kinds:
        raise ChildOutputError(f"{path.name} has dtype {dtype}, expected kind {spec.kinds!r}")
    if spec.shape and (len(shape) != len(spec.shape) or any(
            want is not None and got != want for got, want in zip(shape, spec.shape))):
        want = ", ".join("N" if w is None else str(w) for w in spec.shape)
        raise ChildOutputError(f"{path.name} has shape {tuple(shape)}, expected ({want})")
    body = len(raw) - stream.tell()
    if body != math.prod(shape) * dtype.itemsize:
        raise ChildOutputError(f"{path.name} claims shape {tuple(shape)} of {dtype} but holds {body} bytes of data")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ChildOutputError(f"{path.name} is not a plain .npy array ({e})") from None


def _read_regular(path: Path, max_bytes: int) -> bytes | None:
    # The child owns its working folder and could swap out/ for a link: nothing below the
    # grader-owned folder above out/ is followed (grader.untrusted).
    try:
        return read_untrusted(path, max_bytes=max_bytes, below=path.parent.parent)
    except FileNotFoundError:
        return None
    except UnsafeFile as e:
        raise ChildOutputError(f"{path.name} cannot be opened safely: it {e}") from None
    except OSError as e:
        raise ChildOutputError(f"{path.name} cannot be opened safely ({e.strerror})") from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")


__all__ = ["ArraySpec", "ChildOutputError", "load_array", "read_json", "read_record"]

