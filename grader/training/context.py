"""What every training child of a batch needs, prepared once in the trusted parent.

`prepare_training` loads and splits CIFAR-10, writes the arrays a child may see (training images
with labels; validation and test images WITHOUT labels) to .npy files every sandbox links to,
trains or reads the cached references, and picks the isolation. The labels the child must not
see stay with the parent, which alone computes metrics (grader.training.retrain).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from grader.child.config import TrainConfig
from grader.child.protocol import TRAIN_INPUTS
from grader.rubric import Budget, Rubric
from grader.sandbox.isolation import Isolation, detect_isolation, require
from grader.training.runs import ModelRun

LABELS = ("val_y", "test_y")
"""The parent's alone: never in a child's inputs."""
# A student model may train this many times slower than the strong reference before it is stopped.
TIMEOUT_FACTOR = 20.0
MIN_TRAIN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RunProvenance:
    """Where the numbers of a training run came from."""

    device: str
    """'cpu' or 'cuda'."""
    torch: str
    """torch version in the grader."""
    isolation: str
    """The kind of sandbox the student's code ran in: bubblewrap, namespace or none."""
    sandbox_uid: int
    isolation_note: str
    """Why that kind: what the stronger kinds lacked here."""
    data_sha256: str
    data_note: str
    """Anything unusual about the data split (a dataset smaller than the rubric's split)."""
    train_config: TrainConfig


@dataclass(frozen=True)
class TrainingContext:
    """Everything a training child needs, prepared once; plain data, so workers can share it."""

    budget: Budget
    config: TrainConfig
    device: str
    files: Mapping[str, str]
    """What the child gets: train_x, train_y, val_x, test_x (.npy paths)."""
    labels: Mapping[str, str]
    """val_y and test_y (.npy paths): the parent's alone."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    data_sha256: str
    data_note: str
    references: Mapping[str, ModelRun]
    """The rubric's reference networks trained under the same config, by class name."""
    isolation: Isolation
    train_timeout_s: float

    def provenance(self) -> RunProvenance:
        import torch

        return RunProvenance(device=self.device, torch=torch.__version__, isolation=self.isolation.kind,
                             sandbox_uid=self.isolation.uid, isolation_note=self.isolation.note,
                             data_sha256=self.data_sha256, data_note=self.data_note, train_config=self.config)


def prepare_training(rubric: Rubric, budget: Budget, *, data_dir: Path | None = None, device: str | None = None,
                     require_isolation: bool = False, isolation: Isolation | None = None) -> TrainingContext:
    """Load the data, write the sandbox's arrays, train or read the references, pick the isolation."""
    import numpy as np
    import torch

    from grader.data import load_cifar10, training_data
    from grader.training.references import run_references

    iso = isolation or detect_isolation()
    if require_isolation:
        require(iso)
    config = rubric.train_config(budget)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    data = training_data(load_cifar10(data_dir), rubric.data)
    subset = config.train_subset or len(data.train_labels)
    arrays = {
        "train_x": data.train_images[:subset], "train_y": data.train_labels[:subset],
        "val_x": data.val_images, "test_x": data.test_images, "val_y": data.val_labels, "test_y": data.test_labels,
    }
    key = hashlib.sha256(json.dumps([data.data_sha256, asdict(rubric.data), subset]).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"grader-arrays-{key}"
    paths = write_arrays(folder, {k: np.ascontiguousarray(v.numpy()) for k, v in arrays.items()})
    runs = run_references(rubric=rubric, data_dir=data_dir, device=dev, budget=budget)
    slowest = max((run.history.seconds for run in runs), default=0.0)
    return TrainingContext(
        budget=budget, config=config, device=dev,
        files={k: paths[k] for k in TRAIN_INPUTS}, labels={k: paths[k] for k in LABELS},
        mean=data.mean, std=data.std, data_sha256=data.data_sha256, data_note=data.note,
        references={run.model: ModelRun.trained(run.model, run.history) for run in runs},
        isolation=iso, train_timeout_s=max(MIN_TRAIN_TIMEOUT_S, TIMEOUT_FACTOR * slowest),
    )


def write_arrays(folder: Path, arrays: Mapping[str, Any]) -> dict[str, str]:
    """Save arrays as .npy once (readable by the sandbox user), returning their paths."""
    import numpy as np

    folder.mkdir(mode=0o755, exist_ok=True)
    folder.chmod(0o755)  # the sandbox user reads the hard links of these files
    paths = {}
    for name, array in arrays.items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            tmp = folder / f".{name}.tmp.npy"  # np.save adds .npy to any other name
            np.save(tmp, array, allow_pickle=False)
            tmp.chmod(0o644)
            tmp.replace(path)
        paths[name] = str(path)
    return paths


__all__ = ["LABELS", "RunProvenance", "TrainingContext", "prepare_training", "write_arrays"]
