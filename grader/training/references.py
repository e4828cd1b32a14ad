"""Reference runs: the rubric's LeNet-5 and ResNet trained under its fixed config, cached.

A reference result depends on the model's code, the config, the data, torch and the device
type, and on nothing else; the cache key hashes exactly those, so a later call with the same
inputs reads the JSON instead of retraining (minutes on a GPU, hours on a CPU).

A reference is measured as a student's model is (grader.training.memorization): its validation
images all perturbed, its test images half perturbed, by a fixed draw of the same perturbation.
Its trained weights are then scored on every test image clean and perturbed: the gap a CNN
trained this way shows, which a student's model is judged against. The draw is fixed because the
result is cached; the gap is the perturbation's, not one draw's.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from torch import nn

from grader.child.config import TrainConfig
from grader.child.protocol import EpochRecord, History
from grader.child.train import TrainingData, eval_batch_size, predict_logits, train
from grader.config import user_cache_dir
from grader.data import load_cifar10, training_data
from grader.errors import GraderError
from grader.rubric import Rubric, load_rubric
from grader.training.memorization import REFERENCE_SEED, Memorization, perturb, probe, show_splits
from grader.training.progress import OnProgress, ProgressEvent, epoch_event
from grader.typed import from_plain, to_plain

CACHE_SCHEMA = "grader.reference/2"


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
    memorization: Memorization | None = None
    """The selected weights on every test image, clean and perturbed (None: no epoch was selected)."""


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
    cache_dir: Path | None = None, on_progress: OnProgress | None = None, keep_cut: bool = False,
) -> list[ReferenceRun]:
    """Train (or read from cache) the rubric's baseline and strong references; `on_progress` hears
    each training's start and epochs (nothing for a reference read from the cache). `keep_cut`: cache a
    run the budget's safety net stopped too (an autograder's image keeps whatever its build trained)."""
    from reference_models import REFERENCE_MODELS

    rub = rubric if isinstance(rubric, Rubric) else load_rubric(rubric)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GraderError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    config = rub.train_config(budget)
    dataset = load_cifar10(data_dir)
    data = training_data(dataset, rub.data, config)
    seen = as_shown(data)
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
                    runs.append(ReferenceRun(role, name, key, True, from_plain(History, stored["history"], "history"),
                                             from_plain(Memorization | None, stored["memorization"], "memorization")))
                    continue
            except (OSError, ValueError, KeyError):  # PlainError is a ValueError: a stale or foreign entry
                pass  # unreadable or stale entry: retrain and overwrite it
        if on_progress:
            on_progress(ProgressEvent(name, "reference", 0, config.epochs))
        built: list[nn.Module] = []  # train() builds it under the config's seed and leaves the selected weights in it

        def build(cls: type[nn.Module] = REFERENCE_MODELS[name]) -> nn.Module:
            built.append(cls())
            return built[-1]

        history = train(build, seen, config, device=dev, on_epoch=_epochs(name, config, on_progress) if on_progress else None)
        memorization = _clean_and_perturbed(built[0], history, data, config) if history.selected_epoch else None
        if keep_cut or history.budget_cut != "time":  # a run the safety net stopped measured this machine's load
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"schema": CACHE_SCHEMA, "key": key, "inputs": inputs,
                                       "history": to_plain(history),
                                       "memorization": to_plain(memorization)}, indent=1, allow_nan=False))
            tmp.replace(path)
        runs.append(ReferenceRun(role, name, key, False, history, memorization))
    return runs


def as_shown(data: TrainingData) -> TrainingData:
    """`data` as a student's model is shown it, by the references' fixed draw: every validation image
    perturbed, half of the test images."""
    assert data.test_images is not None and data.val_labels is not None and data.test_labels is not None
    shown = show_splits({"val": data.val_images.numpy(), "test": data.test_images.numpy()},
                        {"val": data.val_labels.numpy(), "test": data.test_labels.numpy()},
                        np.random.default_rng(REFERENCE_SEED))
    return replace(data, **{f"{split}_{part}": torch.from_numpy(getattr(s, part))
                            for split, s in shown.items() for part in ("images", "labels")})


def _clean_and_perturbed(model: nn.Module, history: History, data: TrainingData, config: TrainConfig) -> Memorization | None:
    """The trained model on every test image of `data` and on a perturbed copy of each (the fixed draw)."""
    if data.test_images is None or data.test_labels is None or not len(data.test_labels):
        return None
    clean = data.test_images.numpy()
    images = np.concatenate([clean, perturb(clean, np.random.default_rng(REFERENCE_SEED))])
    logits = predict_logits(model, torch.from_numpy(images), mean=data.mean, std=data.std,
                            channels_last=history.channels_last, precision=history.precision,
                            batch_size=eval_batch_size(history.device, config)).cpu().numpy()
    labels = data.test_labels.numpy()
    return probe(logits, np.concatenate([labels, labels]), np.arange(len(images)) >= len(clean))


def _epochs(name: str, config: TrainConfig, on_progress: OnProgress) -> Callable[[EpochRecord], None]:
    """The trainer's on_epoch for a reference: its own records, timed by the epochs they report."""
    elapsed = [0.0]

    def seen(record: EpochRecord) -> None:
        elapsed[0] += record.seconds
        on_progress(epoch_event(name, "reference", record.epoch, config, elapsed[0], val_accuracy=record.val_accuracy))

    return seen


__all__ = ["ReferenceRun", "as_shown", "reference_cache_dir", "reference_key", "run_references"]
