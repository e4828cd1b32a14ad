"""What every training child of a batch needs, prepared once in the trusted parent.

`prepare_training` loads and splits CIFAR-10, writes the arrays a child may see (training images
with labels; validation and test images WITHOUT labels) as .npy files in the grader's private
state (each child is shown them read-only), trains or reads the cached references, and picks the
isolation. The validation and test labels are never written anywhere: the parent holds them in
memory and alone computes metrics (grader.training.retrain). The validation and test images here
are clean and in the split's order; each training child is shown its own draw of them
(grader.training.memorization), made from these.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from grader.child.config import TrainConfig
from grader.rubric import Budget, Rubric
from grader.sandbox.detect import detect_isolation
from grader.sandbox.isolation import Isolation, require
from grader.sandbox.state import state_dir
from grader.training.memorization import draw_key
from grader.training.progress import OnProgress
from grader.training.runs import ModelRun
from grader.training.gpus import Gpu, GpuSlots, cuda_peaks, describe, slots_per_gpu, visible_gpus
from grader.training.slots import GpuPlacement, SlotPool

# A student model may train this many times slower than the strong reference before it is stopped.
TIMEOUT_FACTOR = 20.0
MIN_TRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RunIdentity:
    """What a retraining's numbers depend on besides the notebook and the rubric."""

    data_sha256: str
    device: str
    """'cpu' or 'cuda'."""
    torch: str


def run_identity(data_dir: Path | None, device: str | None = None) -> RunIdentity:
    """The identity of a retraining on `data_dir` here. Loads the data (decoded once, then cached):
    a missing or unreadable data folder is a DataError now, before anything is graded."""
    import torch

    from grader.data import load_cifar10

    return RunIdentity(load_cifar10(data_dir).sha256, device or default_device(), torch.__version__)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class RunProvenance:
    """Where the numbers of a training run came from."""

    device: str
    """'cpu' or 'cuda'."""
    torch: str
    """torch version in the grader."""
    isolation: str
    """The kind of sandbox the student's code ran in: bubblewrap, namespace or none."""
    isolation_note: str
    """Why that kind: what the stronger kinds lacked here."""
    data_sha256: str
    data_kind: str
    """'official' (the CIFAR-10 release), 'other' (CIFAR-10 from elsewhere) or 'synthetic' (not CIFAR-10)."""
    data_source: str
    """The folder the images were read from."""
    data_note: str
    """Anything unusual about the data split (a dataset smaller than the rubric's split)."""
    train_images: int
    """Training images each run saw (the budget's subset)."""
    train_config: TrainConfig


@dataclass(frozen=True)
class TrainingContext:
    """Everything a training child needs, prepared once; plain data, so workers can share it."""

    budget: Budget
    config: TrainConfig
    device: str
    files: Mapping[str, str]
    """train_x, train_y, val_x, test_x (.npy paths): the first two shown read-only to each training child,
    the other two the clean images its own draw is made from (grader.training.memorization)."""
    train_size: int
    """Training images in train_x (the budget's subset)."""
    file_sha256: Mapping[str, str]
    """The hash of each file: a copy on another node is used only when its bytes match."""
    labels: Mapping[str, Any]
    """'val' and 'test' -> int64 label arrays of val_x and test_x: the parent's alone, in memory only."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    data_sha256: str
    data_kind: str
    data_source: str
    data_note: str
    references: Mapping[str, ModelRun]
    """The rubric's reference networks trained under the same config, by class name."""
    isolation: Isolation
    train_timeout_s: float
    gpus: GpuPlacement | None = None
    """Which GPU each training child gets (grader.training.slots); None: the default device as it is."""
    draw_key: bytes = b""
    """The grader's secret for the images each child is shown (grader.training.memorization.draw_key);
    empty: a fresh secret draw for every child."""
    child_memory_bytes: int = 0
    """Memory each model's child may hold (0: the sandbox's default): where the grader and its child share
    a container's memory (Gradescope's 768 MB), what the grader leaves, so a child over it is stopped and
    named rather than the container's OOM killer ending the grader."""
    regrade_cut: bool = True
    """Train once more a run the safety net stopped though its plan fits the budget (the machine was busy);
    False where there is no time for it (Gradescope's deadline): the run is then left for a regrade."""

    @property
    def eval_size(self) -> int:
        """Validation or test images per split a run is scored on at most (the budget's)."""
        return max(len(self.labels["val"]), len(self.labels["test"]))

    @property
    def identity(self) -> RunIdentity:
        import torch

        return RunIdentity(self.data_sha256, self.device, torch.__version__)

    def provenance(self) -> RunProvenance:
        import torch

        return RunProvenance(device=self.device, torch=torch.__version__, isolation=self.isolation.kind,
                             isolation_note=self.isolation.note, data_sha256=self.data_sha256,
                             data_kind=self.data_kind, data_source=self.data_source, data_note=self.data_note,
                             train_images=self.train_size, train_config=self.config)


def prepare_training(rubric: Rubric, budget: Budget, *, data_dir: Path | None = None, device: str | None = None,
                     require_isolation: bool = False, isolation: Isolation | None = None,
                     on_progress: OnProgress | None = None) -> TrainingContext:
    """Load the data, write the sandbox's arrays, train or read the references (`on_progress` hears
    their epochs), pick the isolation.

    The data comes first: a missing or unreadable data folder fails before any probing or training.
    """
    from grader.data import load_cifar10, training_data
    from grader.training.references import run_references

    dataset = load_cifar10(data_dir)
    config = rubric.train_config(budget)
    seen = training_data(dataset, rubric.data, config)  # the child gets the budget's images, already cut
    iso = isolation or detect_isolation()
    if require_isolation:
        require(iso)
    dev = device or default_device()
    arrays = {"train_x": seen.train_images, "train_y": seen.train_labels, "val_x": seen.val_images,
              "test_x": seen.test_images}
    key = hashlib.sha256(json.dumps([seen.data_sha256, asdict(rubric.data), config.train_subset,
                                     config.eval_subset]).encode()).hexdigest()[:16]
    written = write_arrays(state_dir("arrays", key), {k: v.numpy() for k, v in arrays.items()})
    runs = run_references(rubric=rubric, data_dir=data_dir, device=dev, budget=budget, on_progress=on_progress)
    slowest = max((run.history.seconds for run in runs), default=0.0)
    return TrainingContext(
        budget=budget, config=config, device=dev,
        files={k: path for k, (path, _) in written.items()}, train_size=len(seen.train_labels),
        file_sha256={k: sha for k, (_, sha) in written.items()},
        labels={"val": seen.val_labels.numpy(), "test": seen.test_labels.numpy()},
        mean=seen.mean, std=seen.std, data_sha256=seen.data_sha256, data_kind=dataset.kind,
        data_source=dataset.source, data_note=seen.note,
        references={run.model: ModelRun.trained(run.model, run.history, memorization=run.memorization) for run in runs},
        isolation=iso, train_timeout_s=max(MIN_TRAIN_TIMEOUT_S, TIMEOUT_FACTOR * slowest), draw_key=draw_key(),
    )


def place_on_gpus(ctx: TrainingContext, asked: GpuSlots, peaks: Iterable[int] = (),
                  inventory: Callable[[], tuple[Gpu, ...]] | None = None,
                  folder: Path | None = None) -> tuple[TrainingContext, str]:
    """`ctx` with a SlotPool over the GPUs here, and one line on the plan for the instructor.

    Without a GPU (or training on the CPU) nothing changes: the line says so, the batch goes on.
    'auto' plans on the largest peak GPU memory recorded: `peaks` (the class's earlier results) and
    the references trained for this context. `inventory` (tests: a fake) defaults to the GPUs here;
    `folder` holds the slots' lock files.
    """
    gpus = (inventory or visible_gpus)() if ctx.device == "cuda" else ()
    if not gpus:
        return ctx, "no GPU here: --gpu-slots has no effect; the models train on the CPU as without it"
    slots = slots_per_gpu(gpus, asked, [*peaks, *cuda_peaks(run.history for run in ctx.references.values())])
    pool = SlotPool(gpus, slots, str(folder or state_dir("gpu-slots")))
    return replace(ctx, gpus=pool), describe(gpus, slots)


def write_arrays(folder: Path, arrays: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Each array as NAME.npy in `folder` -> (path, sha256). A file already there is kept only when
    its bytes are the array's: nothing found on disk is trusted because of its name."""
    written = {}
    for name, array in arrays.items():
        data = npy_bytes(array)
        digest = hashlib.sha256(data).hexdigest()
        path = folder / f"{name}.npy"
        if not matches(path, digest):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o644)  # readable by the child's uid through its read-only bind; the folder is private
            os.replace(tmp, path)
        written[name] = (str(path), digest)
    return written


def npy_bytes(array: Any) -> bytes:
    """`array` as the bytes of a .npy file (never a pickle)."""
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def matches(path: Path, sha256: str) -> bool:
    """The regular file at `path` (not a link) holds bytes with this hash."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == sha256


__all__ = ["RunIdentity", "RunProvenance", "default_device", "run_identity", "TrainingContext", "matches", "npy_bytes",
           "place_on_gpus", "prepare_training", "write_arrays"]
