"""The GPUs a batch may train on, and how many training children each takes at once.

`visible_gpus()` reads the GPUs the grader sees (torch.cuda; none where CUDA is absent). A test
hands a tuple of `Gpu` of its own instead: nothing here needs a GPU to be exercised.

`slots_per_gpu` turns `--gpu-slots` into a number of children per GPU: a number given is used
as it is; `auto` divides each GPU's free memory by what one child is expected to need, its
largest recorded peak (History.peak_memory_bytes of earlier runs on a GPU: the references, and the
class's earlier results) plus a CUDA context, else a conservative default.

`pin_env` is the one way a child is put on a GPU: CUDA_VISIBLE_DEVICES in its environment, so
that its 'cuda' device is that GPU and no other is visible to it (grader.sandbox.process passes
the variable through to the sandbox).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from grader.errors import GraderError

GpuSlots = int | Literal["auto"]
"""What `--gpu-slots` asks for: children per GPU, or 'auto' (from free memory and recorded peaks)."""

CONTEXT_BYTES = 1 * 2**30
"""What a child's CUDA context, cuDNN and cuBLAS workspaces take besides its tensors (about 0.5 to
1 GB with torch on an H100/H200): added to every recorded peak."""
DEFAULT_CHILD_BYTES = 6 * 2**30
"""A child's GPU memory where no run has recorded a peak: well above a small CNN at batch 128."""
USABLE_FRACTION = 0.9
"""Of a GPU's free memory, what `auto` plans on: the rest absorbs fragmentation and growth."""
MAX_AUTO_SLOTS = 8
"""`auto` never packs more children on one GPU: each needs a CPU core to feed it, and beyond a
few the GPU is busy anyway (to be measured on an H100/H200, see README)."""


@dataclass(frozen=True)
class Gpu:
    """One GPU as the grader sees it."""

    index: int
    """Its torch ordinal in the grader ('cuda:INDEX')."""
    visible_id: str
    """How a child's CUDA_VISIBLE_DEVICES names it: the grader's own entry for it where the grader
    runs under CUDA_VISIBLE_DEVICES (an id or a GPU-UUID), else the index."""
    total_bytes: int
    free_bytes: int


def visible_gpus() -> tuple[Gpu, ...]:
    """The GPUs torch sees here, with their memory now; () without CUDA (or without torch's CUDA)."""
    import torch

    if not torch.cuda.is_available():
        return ()
    ids = visible_ids(os.environ.get("CUDA_VISIBLE_DEVICES"), torch.cuda.device_count())
    gpus = []
    for index, visible_id in enumerate(ids):
        free, total = torch.cuda.mem_get_info(index)
        gpus.append(Gpu(index, visible_id, total, free))
    return tuple(gpus)


def visible_ids(variable: str | None, count: int) -> list[str]:
    """Each of the `count` GPUs torch numbers 0.., named as the machine names it: torch's ordinal i
    is the i-th entry of the grader's CUDA_VISIBLE_DEVICES, where that is set."""
    entries = [entry.strip() for entry in (variable or "").split(",") if entry.strip()]
    return entries[:count] if variable is not None and len(entries) >= count else [str(i) for i in range(count)]


def pin_env(visible_ids: Iterable[str]) -> dict[str, str]:
    """The environment that puts a child on these GPUs (one, as a rule) and hides the others."""
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in visible_ids)}


def parse_gpu_slots(text: str) -> GpuSlots:
    """`--gpu-slots`: a positive number of children per GPU, or 'auto'."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        slots = int(text)
    except ValueError:
        slots = 0
    if slots < 1:
        raise GraderError(f"--gpu-slots takes a number of trainings per GPU (1 or more) or auto, not {text!r}")
    return slots


def child_bytes(peaks: Iterable[int]) -> int:
    """What one training child is planned to take on a GPU: the largest recorded peak plus a context,
    else DEFAULT_CHILD_BYTES. The largest, not a typical one: a class's biggest model must fit too."""
    recorded = [peak for peak in peaks if peak > 0]
    return max(recorded) + CONTEXT_BYTES if recorded else DEFAULT_CHILD_BYTES


def slots_per_gpu(gpus: tuple[Gpu, ...], asked: GpuSlots, peaks: Iterable[int] = ()) -> tuple[int, ...]:
    """Children per GPU, in the order of `gpus`: `asked` on each, or for 'auto' as many as its free
    memory holds (at least 1, at most MAX_AUTO_SLOTS)."""
    if isinstance(asked, int):
        return tuple(asked for _ in gpus)
    need = child_bytes(peaks)
    return tuple(max(1, min(MAX_AUTO_SLOTS, int(gpu.free_bytes * USABLE_FRACTION) // need)) for gpu in gpus)


def cuda_peaks(histories: Iterable[object]) -> list[int]:
    """The peak GPU memory of each run that trained on CUDA (History objects; None entries skipped)."""
    return [h.peak_memory_bytes for h in histories if h is not None and getattr(h, "device", "") == "cuda"]


def describe(gpus: tuple[Gpu, ...], slots: tuple[int, ...]) -> str:
    """One line on the plan, for the instructor: 'GPU 0 (80 GB free): 4 trainings at once; ...'."""
    return "; ".join(f"GPU {gpu.visible_id} ({gpu.free_bytes / 2**30:.0f} GB free): {n} training"
                     f"{'s' if n != 1 else ''} at once" for gpu, n in zip(gpus, slots))


__all__ = ["CONTEXT_BYTES", "DEFAULT_CHILD_BYTES", "Gpu", "GpuSlots", "MAX_AUTO_SLOTS", "USABLE_FRACTION", "child_bytes",
           "cuda_peaks", "describe", "parse_gpu_slots", "pin_env", "slots_per_gpu", "visible_gpus", "visible_ids"]
