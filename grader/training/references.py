"""Reference runs: the rubric's LeNet-5 and ResNet trained under its fixed config, cached.

A reference result depends on the model's code, the config, the data, torch and the device
type, and on nothing else; the cache key hashes exactly those, so a later call with the same
inputs reads the JSON instead of retraining (minutes on a GPU, hours on a CPU).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

import torch

from grader.child.config import TrainConfig
from grader.child.protocol import EpochRecord, History
from grader.child.train import train
from grader.config import user_cache_dir
from grader.data import load_cifar10, training_data
from grader.errors import GraderError
from grader.rubric import Rubric, load_rubric
from grader.training.progress import OnProgress, ProgressEvent, epoch_event
from grader.typed import from_plain, to_plain

CACHE_SCHEMA = "grader.reference/1"


@dataclass(frozen=True)
class ReferenceRun:
    """One reference model's result under the rubric's config."""

    role: Literal["baseline", "strong"]
    """Which reference of the rubric this is."""
    model: str
    """Class name in reference_models."""
    key: str
    """Cache key: sha256 of model source, config, data hash, torch version and device type."""
    cached: bool
    """True when read from the cache rather than trained now."""
    history: History
    """The training run."""


def reference_cache_dir() -> Path:
    """Where reference results are kept: <user cache>/references."""
    return user_cache_dir() / "references"


def reference_key(*, model: str, config: dict, data_sha256: str, device_type: str) -> dict:
    """The inputs a reference result depends on (hashed into its cache key)."""
    from reference_models import REFERENCE_MODELS

    source = inspect.getsource(inspect.getmodule(REFERENCE_MODELS[model]))  # type: ignore[arg-type]
    return {"model": model, "model_source_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "config": config, "data_sha256": data_sha256, "torch": torch.__version__, "device_type": device_type}


def run_references(
    *, rubric: Rubric | str | Path | None = None, data_dir: str | Path | None = None,
    device: str | None = None, force: bool = False, budget: Literal["full", "quick"] = "full",
    cache_dir: Path | None = None, on_progress: OnProgress | None = None,
) -> list[ReferenceRun]:
    """Train (or read from cache) the rubric's baseline and strong references; `on_progress` hears
    each training's start and epochs (nothing for a reference read from the cache)."""
    from reference_models import REFERENCE_MODELS

    rub = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GraderError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    config = rub.train_config(budget)
    dataset = load_cifar10(data_dir)
    data = training_data(dataset, rub.data)
    folder = cache_dir or reference_cache_dir()
    runs = []
    for role, name in (("baseline", rub.references.baseline), ("strong", rub.references.strong)):
        if name not in REFERENCE_MODELS:
            raise GraderError(f"references.{role} = {name!r} in the rubric; reference_models has {', '.join(REFERENCE_MODELS)}")
        inputs = reference_key(model=name, config={"train": asdict(config), "data": asdict(rub.data)},
                               data_sha256=dataset.sha256, device_type=dev.type)
        key = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
        path = folder / f"{name}-{key[:20]}.json"
        if not force and path.is_file():
            try:
                stored = json.loads(path.read_text())
                if stored.get("schema") == CACHE_SCHEMA and stored.get("key") == key:
                    runs.append(ReferenceRun(role, name, key, True, from_plain(History, stored["history"], "history")))
                    continue
            except (OSError, ValueError, KeyError):  # PlainError is a ValueError: a stale or foreign entry
                pass  # unreadable or stale entry: retrain and overwrite it
        if on_progress:
            on_progress(ProgressEvent(name, "reference", 0, config.epochs))
        history = train(REFERENCE_MODELS[name], data, config, device=dev,
                        on_epoch=_epochs(name, config, on_progress) if on_progress else None)
        if not history.stopped_early:  # a run cut by a time limit measured this machine's load: not kept
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"schema": CACHE_SCHEMA, "key": key, "inputs": inputs,
                                       "history": to_plain(history)}, indent=1, allow_nan=False))
            tmp.replace(path)
        runs.append(ReferenceRun(role, name, key, False, history))
    return runs


def _epochs(name: str, config: TrainConfig, on_progress: OnProgress) -> Callable[[EpochRecord], None]:
    """The trainer's on_epoch for a reference: its own records, timed by the epochs they report."""
    elapsed = [0.0]

    def seen(record: EpochRecord) -> None:
        elapsed[0] += record.seconds
        on_progress(epoch_event(name, "reference", record.epoch, config, elapsed[0], val_accuracy=record.val_accuracy))

    return seen


__all__ = ["ReferenceRun", "reference_cache_dir", "reference_key", "run_references"]
