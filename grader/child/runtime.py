"""Per-run setup for the trainer: device flags, and what a model can and cannot do.

`run_context` sets threads, determinism and cudnn flags for one run and restores them after.
`logits_of` is the one definition of "the logits of a forward", shared by the forward check and
the trainer. `registered_parameters`, `held` and `count_flops` are the one way the child counts a
model and finds what to train: without calling any method the model's classes could override, and
at the dispatch level for FLOPs, so that a model cannot hide parameters or computation from them.
`prepare_model` meets a model it has never seen: it initializes lazy layers with a dry forward,
finds the logits, checks their shape, counts FLOPs, and probes whether the model survives
channels_last and bf16 autocast, falling back (with a note) when it does not.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import types
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, TypeVar

import numpy as np
import torch
from torch import nn


class ModelError(Exception):
    """The model cannot be trained as given (its output is not logits, uninitialized parameters)."""


class Normalize:
    """uint8 (N,3,32,32) -> normalized float, in one fused multiply-add on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool):
        s = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.scale = 1 / (255 * s)  # ToTensor's /255 and Normalize's /std in one factor
        self.shift = -torch.tensor(mean, device=device).view(1, 3, 1, 1) / s
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(memory_format=self.memory_format)
        return torch.addcmul(self.shift, x.float(), self.scale)


def rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


@contextlib.contextmanager
def run_context(device: torch.device, deterministic: bool) -> Iterator[None]:
    """Threads, determinism and cudnn flags for one run, restored afterwards (no global state)."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if device.type == "cpu":
        torch.set_num_threads(cpu_threads())
        _keep_freed_memory()
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    torch.use_deterministic_algorithms(deterministic, warn_only=True)  # warn: a student op may lack one
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]


def cpu_threads() -> int:
    """Every core this process may use (torch's default can count cores we are not given), at most
    OMP_NUM_THREADS: the CPUs the grader's worker was given, where several train at once."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    given = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(given))) if given.isdigit() else cores


def _keep_freed_memory() -> None:
    """Ask glibc to reuse freed activation buffers instead of returning them to the OS.

    Each CPU step allocates and frees the same few MB of activations; above glibc's mmap
    threshold every allocation is a fresh mmap whose pages fault in again (hundreds of faults a
    step for LeNet-5). A process-wide allocator setting with no effect on results.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: serve blocks up to 32 MiB from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MiB of freed heap
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to tune


def logits_of(out: object) -> tuple[torch.Tensor, str]:
    """The logits of a forward's output, and a note on how they were found ('' for a tensor).

    A tensor is the logits. In a tuple or list (`return logits, probas`) the logits are the
    first tensor, searched depth-first. Anything else (a dict, None) is a ModelError.
    """
    if isinstance(out, torch.Tensor):
        return out, ""
    path = _first_tensor(out) if isinstance(out, (tuple, list)) else None
    if path is None:
        raise ModelError(f"forward returned {_describe(out)}; it must return the logits tensor of shape (N, 10) "
                         "(or a tuple whose first tensor is the logits)")
    tensor = out
    for i in path:
        tensor = tensor[i]  # type: ignore[index]
    where = "".join(f"[{i}]" for i in path)
    return tensor, f"forward returns a {type(out).__name__}; its first tensor (output{where}) is used as the logits"


def _first_tensor(out: tuple | list) -> tuple[int, ...] | None:
    for i, item in enumerate(out):
        if isinstance(item, torch.Tensor):
            return (i,)
        if isinstance(item, (tuple, list)):
            inner = _first_tensor(item)
            if inner is not None:
                return (i, *inner)
    return None


def _describe(out: object) -> str:
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} without a tensor"
    return "None" if out is None else f"a {type(out).__name__}"


def autocast(device: torch.device, precision: str, *, cache: bool = True) -> contextlib.AbstractContextManager:
    """bf16 autocast for precision 'bf16'; `cache=False` under CUDA graph capture (a cached cast
    made during capture would outlive it)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=cache)
    return contextlib.nullcontext()


# ---- what a model holds and computes, whatever it says of itself -----------------------------------

MAX_VISITED = 1_000_000
"""Objects `held` looks at, at most (a second or two); a model that links more is refused, uncounted."""
T = TypeVar("T")


_MODULE_STATE = nn.Module.__dict__["__dict__"].__get__
"""The interpreter's own attribute dict of a module, captured from nn.Module: a `__dict__` property, a
`__getattr__` or a `__getattribute__` that a subclass defines does not stand in its way."""
_CLASS_STATE = type.__dict__["__dict__"].__get__
_ARRAY_SIZE, _NUMEL = np.ndarray.size.__get__, torch.Tensor.numel


def _state(module: nn.Module) -> dict:
    try:
        state = _MODULE_STATE(module)
    except TypeError:  # not a module after all
        return {}
    return state if type(state) is dict else {}


def _values(container: object) -> list:
    """The items of a dict, list, tuple or set, read with the builtin types' own methods (a subclass
    that overrides values() or __iter__ cannot hide any)."""
    if isinstance(container, dict):
        return list(dict.values(container))
    for kind in (list, tuple, set, frozenset):
        if isinstance(container, kind):
            return list(kind.__iter__(container))
    return []


def registered_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters torch registers in `model` and its submodules, each once, in the order
    model.parameters() lists them, found without calling parameters(), named_parameters(),
    named_modules() or children(): the trainer trains these and the counts count them, whatever a
    class that overrides those methods says of itself."""
    found: list[nn.Parameter] = []
    seen: set[int] = set()
    stack: list[object] = [model]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        state = _state(module)
        for p in _values(state.get("_parameters")):
            if issubclass(type(p), torch.Tensor) and id(p) not in seen:
                seen.add(id(p))
                found.append(p)  # type: ignore[arg-type]
        stack += reversed([m for m in _values(state.get("_modules")) if issubclass(type(m), nn.Module)])
    return found


@dataclass(frozen=True)
class Held:
    """The numbers a model holds in tensors (lazy, uninitialized parameters aside)."""

    registered: int
    """In the parameters torch registers: what model.parameters() lists when nothing overrides it."""
    outside: int
    """In every other tensor or numpy array reachable from the model (its attributes, containers,
    closures, objects) and from the module that defines it, registered buffers aside: parameters
    kept in a plain list, weights held as bare tensors."""

    complete: bool = True
    """False when the model links more objects than `held` looks at (MAX_VISITED): what it holds is unknown."""

    @property
    def total(self) -> int:
        return self.registered + self.outside


def held(model: nn.Module, namespace: dict | None = None) -> Held:
    """What `model` holds, counted from the objects themselves; `namespace`: the globals of the code
    that defines it (tensors a forward could use without holding them)."""
    registered = {id(p): p for p in registered_parameters(model)}
    buffers: set[int] = set()
    tensors: dict[int, torch.Tensor] = {}
    seen: set[int] = set()
    queue: list[object] = [model, *(_values(namespace) if namespace else ())]
    while queue and len(seen) < MAX_VISITED:
        obj = queue.pop()
        kind = type(obj)  # never obj.__class__, which a class can make lie
        if id(obj) in seen or issubclass(kind, (type(None), bool, int, float, complex, str, bytes, types.ModuleType)):
            continue
        seen.add(id(obj))
        if issubclass(kind, (torch.Tensor, np.ndarray)):
            tensors[id(obj)] = obj  # and on: a tensor can carry attributes of its own
        elif issubclass(kind, nn.Module):
            buffers.update(id(b) for b in _values(_state(obj).get("_buffers")))
        queue += _references(obj)
    outside = [t for i, t in tensors.items() if i not in registered and i not in buffers]
    return Held(_size(registered.values()), _size(outside), complete=not queue)


def _size(arrays) -> int:
    """Numbers in tensors and arrays, asked of torch's and numpy's own types (a subclass's numel() may lie)."""
    return sum(int(_ARRAY_SIZE(a)) if issubclass(type(a), np.ndarray) else _NUMEL(a) for a in arrays
               if not issubclass(type(a), nn.parameter.UninitializedParameter))


def _references(obj: object) -> list:
    """What an object refers to that could hold a tensor: a container's items, a function's closure
    and defaults, a bound method's object, a class's attributes, and whatever any other object holds
    as the interpreter's garbage collector sees it (its attributes and slots, past any __dict__,
    __getattr__ or __slots__ trick its class plays)."""
    kind = type(obj)
    if issubclass(kind, (dict, list, tuple, set, frozenset)):
        return _values(obj)
    if kind is types.FunctionType:
        cells = [c.cell_contents for c in obj.__closure__ or () if _filled(c)]  # type: ignore[attr-defined]
        return cells + list(obj.__defaults__ or ()) + _values(obj.__kwdefaults__ or {})  # type: ignore[attr-defined]
    if kind is types.MethodType:
        return [obj.__self__, obj.__func__]  # type: ignore[attr-defined]
    if issubclass(kind, type):
        return list(_CLASS_STATE(obj).values())  # type: ignore[arg-type]
    return gc.get_referents(obj)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def count_flops(run: Callable[[], T]) -> tuple[T, int | None]:
    """`run()`'s result and the floating-point operations it took, counted at the dispatch level
    (torch.utils.flop_counter): a convolution or a matrix product counts however it is called (a
    module, F.conv2d on a bare tensor, a matmul). None when the counter cannot follow the run: it
    runs again uncounted, and a failure then is the run's own."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with FlopCounterMode(display=False) as counter:
            out = run()
        return out, int(counter.get_total_flops())
    except Exception:
        return run(), None


@dataclass
class Setup:
    model: nn.Module
    params: int
    flops: int | None
    channels_last: bool
    precision: Literal["fp32", "bf16"]
    notes: list[str]


def prepare_model(model: nn.Module, probe: torch.Tensor, num_classes: int, device: torch.device) -> Setup:
    """Move the model, initialize lazy layers, check the output, pick memory format and precision.

    `probe` is two normalized images on `device`.
    """
    notes: list[str] = []
    model.to(device)
    # A dry forward in eval mode initializes lazy modules before the optimizer sees the
    # parameters, without touching BatchNorm statistics or the dropout RNG stream.
    model.eval()
    with torch.no_grad():
        logits, note = logits_of(model(probe))
    if note:
        notes.append(note)
    if logits.shape != (len(probe), num_classes):
        raise ModelError(f"the model maps {tuple(probe.shape)} images to {tuple(logits.shape)}; "
                         f"it must return ({len(probe)}, {num_classes}) logits")
    parameters = registered_parameters(model)
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in parameters):
        raise ModelError("the model still has uninitialized lazy parameters after a forward pass")
    params = sum(p.numel() for p in parameters if p.requires_grad)
    if params == 0:
        raise ModelError("the model has no trainable parameters")
    with torch.no_grad():
        flops = count_flops(lambda: model(probe[:1]))[1]
    channels_last = _try(model, probe, notes, channels_last=True, precision="fp32")
    precision: Literal["fp32", "bf16"] = "fp32"
    if device.type == "cuda" and _try(model, probe, notes, channels_last=channels_last, precision="bf16"):
        precision = "bf16"
    model.train()
    return Setup(model, params, flops, channels_last, precision, notes)


def _try(model: nn.Module, probe: torch.Tensor, notes: list[str], *, channels_last: bool, precision: str) -> bool:
    """Can the model do forward+backward this way? (eval mode, gradients discarded)."""
    what = "channels_last" if precision == "fp32" else "bf16 autocast"
    try:
        if channels_last:
            model.to(memory_format=torch.channels_last)
            probe = probe.contiguous(memory_format=torch.channels_last)
        with autocast(probe.device, precision):
            out = logits_of(model(probe))[0].float()
        out.sum().backward()
        ok = bool(torch.isfinite(out).all())
        reason = "non-finite outputs"
    except Exception as e:  # any failure of student code under this mode means: don't use it
        ok, reason = False, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    model.zero_grad(set_to_none=True)
    if not ok:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        notes.append(f"model fails under {what} ({reason}); ran without it")
    return ok


__all__ = ["Held", "ModelError", "Normalize", "Setup", "autocast", "count_flops", "held", "logits_of", "prepare_model",
           "registered_parameters", "rng_devices", "run_context"]
