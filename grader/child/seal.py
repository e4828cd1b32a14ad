"""What student code in the child's process must not replace, and the child's sealed writer.

Student code runs in the same process as the child program and could replace what the checks and
the trainer rely on (an optimizer that trains longer than the config, a parameter count that
lies, a json.dump that rewrites the report). Two defences, both set up before any student code runs:

- `Seal`: the functions the checks and the trainer rely on, compared after student code has run;
  a replaced function, or one whose code object was swapped, is refused as tamper.
- `write_json`, `write_npy`: the report and the arrays are written with functions captured when
  this module is imported (the C JSON encoder, the os module's system calls), never through
  module attributes (json.dump, os.replace, open, numpy.save), so what student code patches there
  later, a thread of its own included, cannot reach what the parent reads.

Neither makes the child honest: code that rewrites function objects or the interpreter, forks a
process that rewrites out/ after the child wrote it, or writes its own report and exits can still
say anything. That is why the parent decides from facts it computes itself (every metric from the
logits, the time limit from its own clock, the architecture cross-checked against the code) and
treats the report as an account, bounded and cleaned on reading.
"""

from __future__ import annotations

import _json
import builtins
import json
import json.encoder
import os
import sys


class Seal:
    """Attributes as they were when sealed (a function's code and defaults too: swapping either
    changes what it does)."""

    def __init__(self, watched: list[tuple[object, str]]):
        self.watched = watched
        self.original = [self._now(owner, name) for owner, name in watched]

    @staticmethod
    def _now(owner: object, name: str) -> tuple[object, object, object]:
        obj = getattr(owner, name, None)
        return obj, getattr(obj, "__code__", None), getattr(obj, "__defaults__", None)

    def changed(self) -> list[str]:
        """'owner.name' of every watched attribute that is not what it was."""
        return [f"{getattr(owner, '__name__', owner)}.{name}" for (owner, name), then
                in zip(self.watched, self.original) if self._now(owner, name) != then]


def guarded(torch, task: str) -> list[tuple[object, str]]:
    """What the child's checks, the trainer and the report path rely on.

    The optimizers' step methods and torch.manual_seed only for training, and only after an
    optimizer of each kind was constructed once: torch wraps those itself the first time (profiling
    hooks, dynamo), which is not tampering, and the check task need not pay for that import.
    """
    from grader.child import anatomy, runtime, train

    import torch.nn.functional as F

    me = sys.modules[__name__]
    watched = ([(torch.nn.Module, n) for n in ("__call__", "_call_impl", "parameters", "named_parameters", "train",
                                               "eval", "state_dict", "load_state_dict", "to", "zero_grad")]
               + [(torch.Tensor, n) for n in ("numel", "backward")]
               + [(torch.optim, n) for n in ("SGD", "Adam", "AdamW")]
               + [(torch.optim.lr_scheduler, n) for n in ("OneCycleLR", "LambdaLR")]
               + [(F, "cross_entropy"), (torch, "randperm")]
               + [(train, n) for n in ("train", "_fit", "_optimizer", "_schedule", "predict_logits", "_crop_flip",
                                       "steps_per_epoch")]
               + [(runtime, n) for n in ("logits_of", "prepare_model", "Normalize", "run_context", "autocast",
                                         "registered_parameters", "held", "count_flops")]
               + [(runtime.Normalize, "__call__"), (anatomy, "measure")]
               # The report path: the sealed writer, and what a report forger reaches for first.
               + [(me, n) for n in ("write_json", "write_npy", "plain")]
               + [(json, n) for n in ("dump", "dumps", "JSONEncoder")]
               + [(json.JSONEncoder, n) for n in ("default", "encode", "iterencode")]
               + [(json.encoder, n) for n in ("c_make_encoder", "encode_basestring", "encode_basestring_ascii")]
               + [(os, n) for n in ("open", "write", "replace", "rename")] + [(builtins, "open")])
    if task != "train":
        return watched
    optimizers = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
    return watched + [(cls, "step") for cls in optimizers] + [(torch, "manual_seed")]


# Every function below takes what it calls as default arguments, bound when this module is imported
# (before any student code runs): replacing json.dump, os.replace, builtins.open, numpy.save or this
# module's own attributes later does not change what they call.

def plain(value: object, _isinstance=isinstance, _getattr=getattr, _type=type, _str=str, _items=dict.items,
          _fields=object.__getattribute__, _scalars=(str, int, float, bool, type(None))) -> object:
    """`value` (a record of protocol.py, nested) as JSON-ready data: dataclasses as dicts of their
    fields, tuples as lists; a type JSON does not know becomes its str (as json.dump(default=str))."""

    def convert(v: object) -> object:  # a closure of this call: nothing outside can replace it meanwhile
        if _isinstance(v, _scalars):
            return v
        fields = _getattr(_type(v), "__dataclass_fields__", None)
        if _isinstance(fields, dict):
            return {name: convert(_fields(v, name)) for name in fields}
        if _isinstance(v, (list, tuple)):
            return [convert(item) for item in v]
        if _isinstance(v, dict):
            return {_str(key): convert(item) for key, item in _items(v)}
        return _str(v)

    return convert(value)


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not plain data")


def _write_file(path: str, data: bytes, _open=os.open, _write=os.write, _close=os.close, _replace=os.replace,
                _flags=os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _memoryview=memoryview) -> None:
    tmp = path + ".tmp"
    fd = _open(tmp, _flags, 0o644)
    try:
        view = _memoryview(data)
        while view:
            view = view[_write(fd, view):]
    finally:
        _close(fd)
    _replace(tmp, path)


def write_json(path: str, data: object, _encoder=_json.make_encoder, _escape=_json.encode_basestring_ascii,
               _refuse=_refuse, _join="".join, _encode=str.encode, _write=_write_file) -> None:
    """`data` (plain, see `plain`) as JSON at `path`, replaced at once (a reader never sees half of it)."""
    encode = _encoder(None, _refuse, _escape, None, ": ", ", ", False, False, True)  # json.dumps's C encoder
    _write(path, _encode(_join(encode(data, 0))))


def write_npy(path: str, array, _tuple=tuple, _len=len, _repr=repr, _write=_write_file) -> None:
    """A numpy array as an .npy file (format 1.0), written without numpy's own save path."""
    if not array.flags.c_contiguous:
        array = array.copy()
    header = "{'descr': " + _repr(array.dtype.str) + ", 'fortran_order': False, 'shape': " + _repr(_tuple(array.shape)) + ", }"
    header += " " * (63 - (_len(header) + 10) % 64) + "\n"  # the whole preamble a multiple of 64 bytes
    preamble = b"\x93NUMPY\x01\x00" + _len(header).to_bytes(2, "little") + header.encode("latin1")
    _write(path, preamble + array.tobytes())


__all__ = ["Seal", "guarded", "plain", "write_json", "write_npy"]
