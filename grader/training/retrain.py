"""Retraining: the student's two model classes trained in the sandbox under the fixed config.

`retrain_submission` runs each class's models_run child and, for each class that runs, a
training child. The child is shown its own secret draw of the validation and test images
(grader.training.memorization) and returns every epoch's logits for them; this module, which
alone holds the labels and the draw, computes every loss and accuracy, selects the epoch
(`score_epochs`) and judges the selected epoch's clean and perturbed test accuracy against the
references' (`memorization_of`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from grader.child.config import TrainConfig
from grader.child.plan import RunPlan, plan_run
from grader.child.protocol import EpochRecord, History, Report, Request
from grader.notebook import Notebook
from grader.rubric import Rubric
from grader.sandbox.extract import Extraction
from grader.sandbox.files import ArraySpec
from grader.sandbox.model_child import Timeouts, model_spec, run_model_child
from grader.sandbox.models_run import ModelCheck, run_models
from grader.sandbox.process import Limits
from grader.training.context import TrainingContext, npy_bytes
from grader.training.memorization import Memorization, Shown, draw_rng, judge, probe, show_splits
from grader.training.progress import OnProgress, ProgressEvent, child_epochs
from grader.training.runs import ModelRun
from grader.training.slots import lease, slots_on_a_gpu


@dataclass(frozen=True)
class Retrained:
    """What running the student's classes found."""

    checks: Mapping[str, ModelCheck]
    """Class name -> whether it builds and maps images to logits (the models_run facts)."""
    runs: Mapping[str, ModelRun]
    """Class name -> its training under the fixed config (or why it did not train)."""
    warnings: tuple[str, ...] = ()
    """What the extraction could not carry over into the sandbox."""
    flags: tuple[str, ...] = ()
    """Where a child's account disagrees with the fixed config or with the other child: for review."""


def retrain_submission(notebook: Notebook, names: list[str], rubric: Rubric, ctx: TrainingContext,
                       on_progress: OnProgress | None = None) -> Retrained:
    """models_run for `names`, then a training child for each model that runs; `on_progress` hears
    each check start and each training's epochs (grader.training.progress)."""
    if not names:
        return Retrained({}, {})
    checked = run_models(notebook, names, max_params=rubric.assignment.max_params,
                         max_flops=rubric.assignment.max_flops_per_image, isolation=ctx.isolation,
                         limits=Limits(**_memory(ctx)),
                         on_check=(lambda name: on_progress(ProgressEvent(name, "check"))) if on_progress else None)
    runs, flags = {}, [check.flag for check in checked.models.values() if check.flag]
    for name, check in checked.models.items():
        if check.passed:
            run, disagreements = train_in_sandbox(checked.extraction, name, rubric, ctx, check.params, on_progress,
                                                  check.flops_per_image)
            flags += disagreements
        else:
            run = ModelRun(name, error=check.message, params=check.params, flops_per_image=check.flops_per_image)
        runs[name] = replace(run, gpu_seconds=gpu_seconds(run.flops_per_image or check.flops_per_image, rubric),
                             architecture=check.architecture)
    return Retrained(checked.models, runs, checked.extraction.warnings, tuple(flags))


# The grading GPU as measured on an H200 (BENCHMARKS.md): a training step takes at least about
# 3.6 ms (LeNet-5 at batch 64 is bound by kernel launches), and a larger model trains at about
# 17 TFLOP/s (ResNet-18: 5,197 images/s at 3.3 GFLOP per image for its forward and backward pass).
GPU_STEP_FLOOR_S = 0.0036
GPU_FLOP_PER_S = 17e12
TEST_IMAGES = 10_000


def gpu_seconds(flops_per_image: int | None, rubric: Rubric) -> float | None:
    """An estimate of the grading budget ([train]) on the grading GPU for a model of these FLOPs."""
    from grader.child.train import steps_per_epoch

    if not flops_per_image:
        return None
    config = rubric.train
    images = config.train_subset or rubric.data.train_size
    evaluated = config.eval_subset * 2 if config.eval_subset else rubric.data.val_size + TEST_IMAGES
    step = max(GPU_STEP_FLOOR_S, 3 * flops_per_image * config.batch_size / GPU_FLOP_PER_S)  # forward + backward
    epoch = steps_per_epoch(images, config.batch_size) * step + evaluated * flops_per_image / GPU_FLOP_PER_S
    return round(config.epochs * epoch, 1)


def train_in_sandbox(extraction: Extraction, name: str, rubric: Rubric, ctx: TrainingContext,
                     checked_params: int | None = None, on_progress: OnProgress | None = None,
                     checked_flops: int | None = None) -> tuple[ModelRun, list[str]]:
    """One child trains `name` on the images its plan buys (grader.child.plan, from the models_run
    child's FLOPs, `checked_flops`); the parent turns its logits into the model's results and checks
    the child's account of the run (`audit`) against the plan and the models_run child's count.

    A run the safety net (config.max_seconds) stopped although its plan fits the allowance measured
    the machine, not the model: it is trained once more (ctx.regrade_cut), and a second stop is left
    unscored for comparison with a flag to regrade it. One whose smallest plan is over the allowance
    is stopped by its own cost, and said to be."""
    plan = plan_run(ctx.config, ctx.train_size, ctx.eval_size, checked_flops)
    attempts = 2 if ctx.regrade_cut else 1
    for attempt in range(1, attempts + 1):
        run, flags, stopped = _train_once(extraction, name, rubric, ctx, plan, checked_params, on_progress)
        if not stopped or plan.over or not checked_flops:
            break
    if stopped:
        flags.append(_stopped_by_time(name, plan, checked_flops, attempt, ctx.config))
    return run, flags


def _stopped_by_time(name: str, plan: RunPlan, flops: int | None, attempts: int, config: TrainConfig) -> str:
    """The flag on a run the safety net stopped: whose fault it is, judged from the model's measured cost."""
    limit = f"the budget's {config.max_seconds:g} s safety net stopped {name}'s training"
    if not flops:
        return f"{limit}; its FLOPs could not be counted, so its cost is unknown: its comparisons are not scored"
    if not config.max_flops:
        return (f"{limit}{' twice' if attempts > 1 else ''}; the budget has no FLOP allowance (max_flops), so a time limit "
                "decides how far a model trains: give the rubric's budget a max_flops (its comparisons are not scored)")
    if plan.over:
        return (f"{limit}: its own cost, {plan.flops / 1e12:.3g} TFLOP for the smallest run the budget plans, over "
                f"the {config.max_flops / 1e12:.3g} TFLOP allowance; its comparisons are not scored")
    return (f"{limit}{' twice' if attempts > 1 else ''} although its plan ({plan.flops / 1e12:.3g} TFLOP) fits the "
            "allowance: the grading machine was too busy, or the model's cost lies in operations its FLOP count does "
            "not see; regrade it on an idle machine (its comparisons are not scored)")


def _train_once(extraction: Extraction, name: str, rubric: Rubric, ctx: TrainingContext, plan: RunPlan,
                checked_params: int | None, on_progress: OnProgress | None) -> tuple[ModelRun, list[str], bool]:
    """One training child under `plan`: (the run, flags, whether the safety net stopped it)."""
    # The child trains the plan's first images and is shown its first scored ones: it plans nothing itself.
    config = replace(ctx.config, train_subset=plan.train_images, eval_subset=0, max_flops=0)
    request = Request("train", model_spec(extraction, name), seed=ctx.config.seed, max_params=rubric.assignment.max_params,
                      config=config, mean=ctx.mean, std=ctx.std, device=ctx.device)
    shown = {split: s.first(plan.eval_images) for split, s in shown_to_child(ctx, extraction).items()}
    with lease(ctx.gpus) as gpu_env:  # a GPU slot for the child's whole run, given back however it ends
        run = run_model_child(
            request, extraction, isolation=ctx.isolation,
            inputs={**{f"{k}.npy": Path(p) for k, p in ctx.files.items()},
                    **{f"{split}_x.npy": npy_bytes(s.images) for split, s in shown.items()}},
            arrays={"val_logits": ArraySpec("f", (None, None, 10)), "test_logits": ArraySpec("f", (None, None, 10))},
            timeouts=replace(Timeouts(), train_s=ctx.train_timeout_s), env=gpu_env,
            limits=Limits(gpu_memory_bytes=rubric.assignment.max_gpu_memory_mb * 2**20, gpu_slots=slots_on_a_gpu(ctx.gpus),
                          **_memory(ctx)),
            on_progress=child_epochs(name, ctx.config, ctx.train_timeout_s, on_progress) if on_progress else None,
        )
    report, seconds, uid = run.report, round(run.child.seconds, 2), run.child.isolation.uid
    if run.failure or report is None or report.history is None:
        failure = run.failure or f"{name}: training failed without saying why"
        return ModelRun(name, error=failure, params=report and report.params,
                        flops_per_image=report and report.flops_per_image, seconds=seconds, uid=uid), [], False
    flags = audit(name, report, checked_params, config, plan.train_images)
    val_logits, test_logits = run.child.arrays.get("val_logits"), run.child.arrays.get("test_logits")
    history = score_epochs(report.history, val_logits, test_logits, shown["val"].labels, shown["test"].labels, ctx.config)
    stopped, contradicted = time_limit(name, report.history, history, run.child.phase_seconds.get("train", 0.0), ctx.config)
    cut = "time" if stopped else "cost" if plan.cut else ""
    notes = (*history.notes, f"planned by its cost: {plan.cut}") if plan.cut else history.notes
    history = replace(history, stopped_early=bool(cut), budget_cut=cut, notes=notes,
                      val_images=len(shown["val"].labels) if history.epochs else 0)
    flags += contradicted
    if history.selected_epoch is None:
        return ModelRun(name, error=f"training produced no usable epoch ({history.message})", params=history.params,
                        flops_per_image=history.flops_per_image, seconds=seconds, uid=uid), flags, stopped
    trained = ModelRun.trained(name, history, seconds, uid, memorization_of(history, test_logits, shown["test"], ctx))
    return trained, flags, stopped


def _memory(ctx: TrainingContext) -> dict[str, int]:
    """The context's memory cap for a child, when it sets one (else the sandbox's default)."""
    return {"memory_bytes": ctx.child_memory_bytes} if ctx.child_memory_bytes else {}


def shown_to_child(ctx: TrainingContext, extraction: Extraction) -> dict[str, Shown]:
    """The validation and test images as this submission's training children are shown them: the
    draw of the grader's key for these images and this code. Only the images leave the parent."""
    import numpy as np

    splits = ("val", "test")
    rng = draw_rng(ctx.draw_key, *(ctx.file_sha256[f"{split}_x"] for split in splits), extraction.source)
    return show_splits({split: np.load(ctx.files[f"{split}_x"]) for split in splits}, ctx.labels, rng)


def memorization_of(history: History, test_logits, test: Shown, ctx: TrainingContext) -> Memorization | None:
    """The selected epoch's accuracy on the clean and on the perturbed test images the child was shown,
    judged against the references' gap."""
    if history.selected_epoch is None or test_logits is None or test_logits.shape[1] != len(test.labels):
        return None
    found = probe(test_logits[history.selected_epoch - 1], test.labels, test.perturbed)
    return found and judge(found, (run.memorization for run in ctx.references.values()))


def audit(name: str, report: Report, checked_params: int | None, config: TrainConfig, n_train: int) -> list[str]:
    """Where the training child's account disagrees with what the fixed config makes of its plan's
    `n_train` images, or with the models_run child's count of parameters: code in the child's process
    could have changed the grader's trainer. A run the safety net stopped ends early, which is no
    disagreement (its epochs are compared as far as they go). Flags for the instructor, never points."""
    from grader.child.train import scheduled_lrs

    history, found = report.history, []
    assert history is not None
    if len(history.epochs) > config.epochs or (history.status == "ok" and not history.stopped_early
                                               and len(history.epochs) < config.epochs):
        found.append(f"{len(history.epochs)} epochs reported where the config has {config.epochs}")
    expected = scheduled_lrs(config, n_train)
    # A stopped run's last epoch ends at the step the net stopped, not at the epoch's scheduled end.
    whole = history.epochs[:-1] if history.stopped_early else history.epochs
    wrong = next((e for e in whole if e.epoch > len(expected)
                  or not math.isclose(e.lr, expected[e.epoch - 1], rel_tol=1e-4, abs_tol=1e-12)), None)
    if wrong is not None:
        should = f"{expected[wrong.epoch - 1]:.3g}" if wrong.epoch <= len(expected) else "no such epoch"
        found.append(f"epoch {wrong.epoch} ran at learning rate {wrong.lr:.3g} where the config's schedule gives {should}")
    if checked_params is not None and report.params is not None and report.params != checked_params:
        found.append(f"{report.params:,} parameters when trained, {checked_params:,} when first built")
    return [f"{name}: the training run does not match the fixed config ({'; '.join(found)}); the model code may "
            "have changed the grader's trainer"] if found else []


CLOCK_SLACK_S = 1.0
"""How much shorter than the child's own training the grader's clock may see its train phase (the
grader sees an announcement at its next poll)."""


def time_limit(name: str, claimed: History, scored: History, train_seconds: float,
               config: TrainConfig) -> tuple[bool, list[str]]:
    """Whether the safety net (config.max_seconds) stopped the run, decided by the grader's clock: the
    child's claim (`claimed.stopped_early`) or fewer epochs than the config are evidence of a stop,
    believed only when the train phase lasted, by the grader's clock, as long as the net allows.
    Evidence the clock contradicts is a flag, and the run counts as complete (its comparisons scored)."""
    evidence = []
    if claimed.stopped_early:
        evidence.append("its child says the time limit stopped it")
    if scored.status == "ok" and 0 < len(scored.epochs) < config.epochs:
        evidence.append(f"it returned {len(scored.epochs)} of the config's {config.epochs} epochs")
    if not evidence:
        return False, []
    if config.max_seconds and train_seconds + CLOCK_SLACK_S >= config.max_seconds:
        return True, []
    limit = f"the budget's {config.max_seconds:g} s limit" if config.max_seconds else "no time limit (the budget has none)"
    return False, [f"{name}: {'; '.join(evidence)}, yet it trained for {train_seconds:.1f} s by the grader's clock, "
                   f"under {limit}: the run is taken as complete and its comparisons are scored; the model code may "
                   "have forged its child's account"]


def score_epochs(history: History, val_logits, test_logits, val_y, test_y, config: TrainConfig) -> History:
    """The child's history with every epoch's validation metrics, the selected epoch and its test
    metrics; the labels are in the order the child was shown the images."""
    import numpy as np

    status, message = history.status, history.message
    if val_logits is not None and test_logits is not None:
        if val_logits.shape[1] != len(val_y) or test_logits.shape[1] != len(test_y):
            message = (f"the training child returned logits for {val_logits.shape[1]:,} validation and "
                       f"{test_logits.shape[1]:,} test images where it was shown {len(val_y):,} of each")
            val_logits = test_logits = None
    count = min(len(history.epochs), 0 if val_logits is None else len(val_logits), 0 if test_logits is None else len(test_logits))
    if not (len(val_y) and len(test_y)):
        count = 0
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


__all__ = ["Retrained", "memorization_of", "retrain_submission", "score_epochs", "shown_to_child", "time_limit",
           "train_in_sandbox"]
