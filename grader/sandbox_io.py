"""Reading what a child wrote, as if an attacker wrote it (because one may have).

Files are opened without following symbolic links (the grader may be root and the child could
point result.json at /etc/shadow), must be regular files under a size cap, JSON must match the
caller's schema (unknown keys are dropped, long strings cut), and arrays are .npy files loaded
with allow_pickle=False whose dtype and shape are checked. Nothing here ever unpickles.
"""

from __future__ import annotations

import json
import math
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def validate(value: Any, schema: Any, where: str = "result") -> Any:
    """Check `value` against `schema`; return it with unknown keys dropped.

    A schema is a type or tuple of types (bool is not an int; an int is accepted as a float),
    a dict of key -> schema (every key required unless its schema admits None),
    {"*": schema} for a dict with any string keys, or [schema] for a list.
    """
    if isinstance(schema, tuple) and not all(isinstance(t, type) for t in schema):
        problems = []
        for alternative in schema:  # e.g. ([int], type(None)): a list of ints, or null
            try:
                return validate(value, alternative, where)
            except ChildOutputError as e:
                problems.append(str(e))
        raise ChildOutputError(" or ".join(problems))
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise ChildOutputError(f"{where} must be an object, not {type(value).__name__}")
        if set(schema) == {"*"}:
            return {str(k)[:200]: validate(v, schema["*"], f"{where}.{k}") for k, v in list(value.items())[:1000]}
        out = {}
        for key, sub in schema.items():
            if key not in value and not _admits_none(sub):
                raise ChildOutputError(f"{where} lacks the key {key!r}")
            out[key] = validate(value.get(key), sub, f"{where}.{key}")
        return out
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise ChildOutputError(f"{where} must be a list, not {type(value).__name__}")
        return [validate(v, schema[0], f"{where}[{i}]") for i, v in enumerate(value[:100_000])]
    types = schema if isinstance(schema, tuple) else (schema,)
    if isinstance(value, bool) and bool not in types:
        raise ChildOutputError(f"{where} must be {_names(types)}, not a boolean")
    if isinstance(value, int) and not isinstance(value, bool) and float in types and int not in types:
        value = float(value)
    if not isinstance(value, types):
        raise ChildOutputError(f"{where} must be {_names(types)}, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ChildOutputError(f"{where} is not a finite number")
    if isinstance(value, str):
        return value[:MAX_STRING]
    return value


def load_array(path: Path, spec: ArraySpec):
    """The validated array in `path`, or None when there is no such file."""
    import io

    import numpy as np

    raw = _read_regular(path, spec.max_bytes)
    if raw is None:
        return None
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ChildOutputError(f"{path.name} is not a plain .npy array ({e})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in spec.kinds or array.dtype.hasobject:
        raise ChildOutputError(f"{path.name} has dtype {getattr(array, 'dtype', '?')}, expected kind {spec.kinds!r}")
    if spec.shape and (array.ndim != len(spec.shape) or any(
            want is not None and got != want for got, want in zip(array.shape, spec.shape))):
        want = ", ".join("N" if w is None else str(w) for w in spec.shape)
        raise ChildOutputError(f"{path.name} has shape {array.shape}, expected ({want})")
    return array


def _read_regular(path: Path, max_bytes: int) -> bytes | None:
    # The child owns its working folder and could swap out/ for a link: open the last two
    # components without following links, relative to the grader-owned folder above them.
    top = os.open(path.parent.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sub = os.open(path.parent.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
        try:
            fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=sub)
        finally:
            os.close(sub)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise ChildOutputError(f"{path.name} cannot be opened safely ({e.strerror}; a link?)") from None
    finally:
        os.close(top)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ChildOutputError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise ChildOutputError(f"{path.name} is {info.st_size} bytes, over the {max_bytes} limit")
        return f.read(max_bytes + 1)[:max_bytes]


def _admits_none(schema: Any) -> bool:
    return schema is type(None) or (isinstance(schema, tuple) and any(t is type(None) for t in schema))


def _names(types: tuple) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


def _no_constant(name: str):
    raise ValueError(f"{name} is not allowed")


__all__ = ["ArraySpec", "ChildOutputError", "load_array", "read_json", "validate"]


class Capture:
    """Reads one pipe to the end on a thread, keeping the head and the tail."""

    def __init__(self, stream, keep: int):
        self.head, self.tail, self.keep, self.total = bytearray(), bytearray(), keep, 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        fd = stream.fileno()
        while chunk := os.read(fd, 1 << 16):
            self.total += len(chunk)
            room = self.keep - len(self.head)
            if room > 0:
                self.head += chunk[:room]
                chunk = chunk[room:]
            self.tail += chunk
            if len(self.tail) > 2 * self.keep:
                del self.tail[: len(self.tail) - self.keep]
        stream.close()

    def text(self) -> str:
        tail = bytes(self.tail[-self.keep:])
        omitted = self.total - len(self.head) - len(tail)
        middle = f"\n[... {omitted} bytes omitted ...]\n" if omitted > 0 else ""
        return (bytes(self.head).decode("utf-8", "replace") + middle + tail.decode("utf-8", "replace"))
