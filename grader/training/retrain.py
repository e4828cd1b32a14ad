"""Retraining: the student's two model classes trained in the sandbox under the fixed config.

`retrain_submission` runs each class's models_run child and, for each class that runs, a
training child. The child returns every epoch's validation and test logits; this module, which
alone holds the labels, computes every loss and accuracy and selects the epoch (`score_epochs`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from grader.child.config import TrainConfig
from grader.child.protocol import EpochRecord, History, Request
from grader.notebook import Notebook
from grader.rubric import Rubric
from grader.sandbox.extract import Extraction
from grader.sandbox.files import ArraySpec
from grader.sandbox.model_child import Timeouts, model_spec, run_model_child
from grader.sandbox.models_run import ModelCheck, run_models
from grader.training.context import TrainingContext
from grader.training.runs import ModelRun


@dataclass(frozen=True)
class Retrained:
    """What running the student's classes found."""

    checks: Mapping[str, ModelCheck]
    """Class name -> whether it builds and maps images to logits (the models_run facts)."""
    runs: Mapping[str, ModelRun]
    """Class name -> its training under the fixed config (or why it did not train)."""
    warnings: tuple[str, ...] = ()
    """What the extraction could not carry over into the sandbox."""


def retrain_submission(notebook: Notebook, names: list[str], rubric: Rubric, ctx: TrainingContext) -> Retrained:
    """models_run for `names`, then a training child for each model that runs."""
    if not names:
        return Retrained({}, {})
    checked = run_models(notebook, names, max_params=rubric.assignment.max_params, isolation=ctx.isolation)
    runs = {}
    for name, check in checked.models.items():
        if check.passed:
            runs[name] = train_in_sandbox(checked.extraction, name, rubric, ctx)
        else:
            runs[name] = ModelRun(name, error=check.message, params=check.params, flops_per_image=check.flops_per_image)
    return Retrained(checked.models, runs, checked.extraction.warnings)


def train_in_sandbox(extraction: Extraction, name: str, rubric: Rubric, ctx: TrainingContext) -> ModelRun:
    """One child trains `name`; the parent turns its logits into the model's results."""
    import numpy as np

    request = Request("train", model_spec(extraction, name), seed=ctx.config.seed,
                      max_params=rubric.assignment.max_params, config=replace(ctx.config, train_subset=0),  # already cut
                      mean=ctx.mean, std=ctx.std, device=ctx.device)
    val_y = np.load(ctx.labels["val_y"], allow_pickle=False)
    test_y = np.load(ctx.labels["test_y"], allow_pickle=False)
    run = run_model_child(
        request, extraction, isolation=ctx.isolation,
        inputs={f"{k}.npy": Path(p) for k, p in ctx.files.items()},
        arrays={"val_logits": ArraySpec("f", (None, len(val_y), 10)), "test_logits": ArraySpec("f", (None, len(test_y), 10))},
        timeouts=replace(Timeouts(), train_s=ctx.train_timeout_s),
    )
    report, seconds = run.report, run.child.seconds
    if run.failure or report is None or report.history is None:
        failure = run.failure or f"{name}: training failed without saying why"
        return ModelRun(name, error=failure, params=report and report.params,
                        flops_per_image=report and report.flops_per_image, seconds=round(seconds, 2))
    history = score_epochs(report.history, run.child.arrays.get("val_logits"), run.child.arrays.get("test_logits"),
                           val_y, test_y, ctx.config)
    if history.selected_epoch is None:
        return ModelRun(name, error=f"training produced no usable epoch ({history.message})", params=history.params,
                        flops_per_image=history.flops_per_image, seconds=round(seconds, 2))
    return ModelRun.trained(name, history, seconds)


def score_epochs(history: History, val_logits, test_logits, val_y, test_y, config: TrainConfig) -> History:
    """The child's history with every epoch's validation metrics, the selected epoch and its test metrics."""
    import numpy as np

    status, message = history.status, history.message
    count = min(len(history.epochs), 0 if val_logits is None else len(val_logits), 0 if test_logits is None else len(test_logits))
    scored: list[EpochRecord] = []
    for i in range(count):
        if not (np.isfinite(val_logits[i]).all() and np.isfinite(test_logits[i]).all()):
            status, message = "diverged", f"the model's outputs became NaN or infinite in epoch {i + 1}; later epochs are ignored"
            break
        val_loss, val_accuracy = _loss_accuracy(val_logits[i], val_y)
        scored.append(replace(history.epochs[i], val_loss=val_loss, val_accuracy=val_accuracy))
    selected = None
    test_loss = test_accuracy = None
    if scored:
        best = len(scored) - 1 if config.select == "last" else int(np.argmax([e.val_accuracy for e in scored]))
        test_loss, test_accuracy = _loss_accuracy(test_logits[best], test_y)
        selected = best + 1
    return replace(history, epochs=tuple(scored), status=status, message=message, selected_epoch=selected,
                   test_loss=test_loss, test_accuracy=test_accuracy, config=config)


def _loss_accuracy(logits, labels) -> tuple[float, float]:
    import numpy as np

    logits = logits.astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    loss = float(np.mean(log_norm - logits[np.arange(len(labels)), labels]))
    return loss, float(np.mean(logits.argmax(axis=1) == labels))


__all__ = ["Retrained", "retrain_submission", "score_epochs", "train_in_sandbox"]
