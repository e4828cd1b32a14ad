"""Retraining: the student's two model classes trained in the sandbox under the fixed config.

`prepare_training` runs once per batch in the trusted parent: it loads and splits CIFAR-10,
writes the arrays the child may see (training images with labels; validation and test images
WITHOUT labels) to .npy files that every sandbox hard-links, trains or reads the cached
references, and picks the isolation. `retrain_submission` then runs the models_run check and,
for each model that runs, one training child. The child returns per-epoch logits; this module,
which alone holds the labels, computes every loss and accuracy and selects the epoch.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from grader.check import CheckResult, make_result
from grader.config import TrainConfig
from grader.isolation import Isolation, detect_isolation, require
from grader.notebook import Notebook
from grader.run_models import CHILD_SCRIPT, MODEL_SCHEMA, run_models
from grader.rubric import Rubric
from grader.sandbox import Phase, run_in_sandbox
from grader.sandbox_io import ArraySpec

GRADER_DIR = Path(__file__).resolve().parent
# The trainer and what it imports, copied into the sandbox (under bubblewrap the child cannot
# see the grader's own files).
SANDBOX_MODULES = ("__init__.py", "config.py", "errors.py", "runtime.py", "train.py",
                   "data/__init__.py", "data/dataset.py", "data/download.py", "data/formats.py", "data/synthetic.py")
CHILD_FILES = ("train_x", "train_y", "val_x", "test_x")
PARENT_FILES = ("val_y", "test_y")
# A student model may train this many times slower than the strong reference before it is stopped.
TIMEOUT_FACTOR = 20.0
MIN_TRAIN_TIMEOUT_S = 300.0

HISTORY_SCHEMA = {
    "status": str, "message": str, "params": int, "flops_per_image": (int, type(None)),
    "peak_memory_bytes": int, "seconds": float, "device": str, "precision": str, "channels_last": bool,
    "notes": [str], "train_images_per_second": float,
    "epochs": [{"epoch": int, "train_loss": (float, type(None)), "seconds": float, "lr": float}],
}
TRAIN_SCHEMA = {"model": {**MODEL_SCHEMA, "history": (HISTORY_SCHEMA, type(None))}, "attempts": [str]}


@dataclass(frozen=True)
class TrainingContext:
    """Everything a training child needs, prepared once; plain data, so workers can share it."""

    budget: str
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
    references: Mapping[str, Mapping[str, Any]]
    isolation: Isolation
    train_timeout_s: float

    def provenance(self) -> dict:
        import torch

        return {"device": self.device, "torch": torch.__version__, "isolation": self.isolation.kind,
                "sandbox_uid": self.isolation.uid, "data_sha256": self.data_sha256,
                "train_config": asdict(self.config), "data_note": self.data_note}


@dataclass(frozen=True)
class RetrainOutcome:
    checks: tuple[CheckResult, ...]
    """models_run."""
    retrain: dict[str, dict]
    references: dict[str, dict]
    warnings: tuple[str, ...]
    provenance: dict


def prepare_training(rubric: Rubric, budget: str, *, data_dir: Path | None = None, device: str | None = None,
                     require_isolation: bool = False, isolation: Isolation | None = None) -> TrainingContext:
    """Load the data, write the sandbox's arrays, train or read the references, pick the isolation."""
    import numpy as np
    import torch

    from grader.data import load_cifar10, training_data
    from grader.references import run_references

    iso = isolation or detect_isolation()
    if require_isolation:
        require(iso)
    config = rubric.quick if budget == "quick" else rubric.train
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
    runs = run_references(rubric=rubric, data_dir=data_dir, device=dev, budget="quick" if budget == "quick" else "full")
    references = {run.model: _reference_entry(run.history) for run in runs}
    slowest = max((run.history.seconds for run in runs), default=0.0)
    return TrainingContext(
        budget=budget, config=config, device=dev,
        files={k: paths[k] for k in CHILD_FILES}, labels={k: paths[k] for k in PARENT_FILES},
        mean=data.mean, std=data.std, data_sha256=data.data_sha256, data_note=data.note,
        references=references, isolation=iso, train_timeout_s=max(MIN_TRAIN_TIMEOUT_S, TIMEOUT_FACTOR * slowest),
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


def _reference_entry(history) -> dict:
    h = history.to_dict()
    selected = next((e for e in h["epochs"] if e["epoch"] == h["selected_epoch"]), None)
    return {"test_acc": h["test_accuracy"], "val_acc": selected["val_accuracy"] if selected else None,
            "params": h["params"], "flops": h["flops_per_image"], "seconds": round(h["seconds"], 2), "history": h}


def retrain_submission(notebook: Notebook, names: list[str], rubric: Rubric, ctx: TrainingContext) -> RetrainOutcome:
    """models_run for `names`, then a training child for each model that runs."""
    if not names:
        check = make_result("models_run", rubric, False, 0.0, "no baseline or proposed model class to run")
        return RetrainOutcome((check,), {}, dict(ctx.references), (), ctx.provenance())
    runs = run_models(notebook, names, rubric, isolation=ctx.isolation)
    retrain = {}
    for name in names:
        outcome = runs.models[name]
        if outcome.passed:
            retrain[name] = train_in_sandbox(runs.extraction, name, rubric, ctx)
        else:
            retrain[name] = _failed(outcome.message, outcome.params, outcome.flops, 0.0)
    return RetrainOutcome((runs.check,), retrain, dict(ctx.references), tuple(runs.warnings),
                          {**ctx.provenance(), "isolation_note": ctx.isolation.note})


def train_in_sandbox(extraction, name: str, rubric: Rubric, ctx: TrainingContext) -> dict:
    """One child trains `name`; the parent turns its logits into the model's results."""
    import numpy as np

    inst = extraction.instantiations.get(name)
    request = {
        "task": "train", "module": "submission.py", "seed": ctx.config.seed, "max_params": rubric.assignment.max_params,
        "model": {"name": name, "args": list(inst.args) if inst else None, "kwargs": dict(inst.kwargs) if inst else {}},
        "config": asdict(ctx.config), "data": {k: f"{k}.npy" for k in CHILD_FILES},
        "mean": list(ctx.mean), "std": list(ctx.std), "device": ctx.device,
    }
    inputs: dict[str, Path | bytes] = {"submission.py": extraction.source.encode()}
    inputs.update({f"{k}.npy": Path(p) for k, p in ctx.files.items()})
    inputs.update({f"grader/{m}": GRADER_DIR / m for m in SANDBOX_MODULES})
    val_y = np.load(ctx.labels["val_y"], allow_pickle=False)
    test_y = np.load(ctx.labels["test_y"], allow_pickle=False)
    arrays = {"val_logits": ArraySpec("f", (None, len(val_y), 10)), "test_logits": ArraySpec("f", (None, len(test_y), 10))}
    phases = [Phase("import", 120, "the import of the model code"), Phase("instantiate", 60, "the constructor"),
              Phase("train", ctx.train_timeout_s, "training")]
    child = run_in_sandbox(CHILD_SCRIPT, phases=phases, isolation=ctx.isolation, request=request,
                           schema=TRAIN_SCHEMA, inputs=inputs, arrays=arrays)
    report = (child.payload or {}).get("model") or {}
    if not child.ok:
        tail = child.stderr_tail(3)
        extra = f"; last lines of its error output: {tail}" if child.status == "crashed" and tail else ""
        return _failed(f"{name} {child.detail}{extra}", report.get("params"), report.get("flops"), child.seconds)
    if not report.get("ok") or not report.get("history"):
        return _failed(f"{name}: {report.get('message') or 'training failed without saying why'}",
                       report.get("params"), report.get("flops"), child.seconds)
    return score_epochs(report["history"], child.arrays.get("val_logits"), child.arrays.get("test_logits"),
                        val_y, test_y, ctx.config, child.seconds)


def score_epochs(history: dict, val_logits, test_logits, val_y, test_y, config: TrainConfig, seconds: float) -> dict:
    """Per-epoch validation metrics, the selected epoch and its test metrics, from logits."""
    import numpy as np

    epochs = list(history.get("epochs") or [])
    scored, status, message = [], history["status"], history["message"]
    count = min(len(epochs), 0 if val_logits is None else len(val_logits), 0 if test_logits is None else len(test_logits))
    for i in range(count):
        if not (np.isfinite(val_logits[i]).all() and np.isfinite(test_logits[i]).all()):
            status, message = "diverged", f"the model's outputs became NaN or infinite in epoch {i + 1}; later epochs are ignored"
            break
        val_loss, val_acc = _loss_accuracy(val_logits[i], val_y)
        scored.append({**epochs[i], "val_loss": val_loss, "val_accuracy": val_acc})
    if not scored:
        return _failed(f"training produced no usable epoch ({message})", history.get("params"), history.get("flops_per_image"), seconds)
    best = len(scored) - 1 if config.select == "last" else int(np.argmax([e["val_accuracy"] for e in scored]))
    test_loss, test_acc = _loss_accuracy(test_logits[best], test_y)
    full = {**history, "epochs": scored, "status": status, "message": message, "selected_epoch": best + 1,
            "test_loss": test_loss, "test_accuracy": test_acc}
    return {"history": full, "val_acc": scored[best]["val_accuracy"], "test_acc": test_acc,
            "params": history.get("params"), "flops": history.get("flops_per_image"),
            "seconds": round(seconds, 2), "error": None if status == "ok" else message}


def _loss_accuracy(logits, labels) -> tuple[float, float]:
    import numpy as np

    logits = logits.astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    loss = float(np.mean(log_norm - logits[np.arange(len(labels)), labels]))
    return loss, float(np.mean(logits.argmax(axis=1) == labels))


def _failed(message: str, params, flops, seconds: float) -> dict:
    return {"history": None, "val_acc": None, "test_acc": None, "params": params, "flops": flops,
            "seconds": round(seconds, 2), "error": message}
