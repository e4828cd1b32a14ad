"""A run's plan: how many images a model trains and is scored on under a budget, from its FLOPs.

A budget that must end in minutes on a CPU (the quick self-check, Gradescope's half a CPU) cannot
give every model the same images: a model fifty times LeNet-5's cost would take an hour. It used to
stop a run at a wall-clock limit, and then the grade depended on the machine's load and on the
executor. The budget is counted in FLOPs instead (config.max_flops): a model trains on as many of
the budget's images as its measured cost per image buys, and the same model gets the same plan on
every machine, under any load. The wall-clock limit (config.max_seconds) stays only as a safety net
(grader.training.retrain says what happens when it fires).

Costs are as torch's FLOP counter counts a forward pass (a multiply-add is 2); a training image
costs three forward passes (forward and backward), a scored image one.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.child.config import TrainConfig

MIN_EVALUATED = 100
"""Images per split scored even for a model over the allowance: an accuracy, if a rough one."""
MIN_BATCHES = 10
"""Training batches per epoch kept even for a model over the allowance: enough steps to show learning."""


@dataclass(frozen=True)
class RunPlan:
    """What a run trains and scores: the budget's images, or fewer for a model that costs more."""

    train_images: int
    """Training images each epoch passes over (the first ones of the budget's)."""
    eval_images: int
    """Validation and test images scored per split, each epoch (the first ones of the budget's)."""
    flops: float
    """The planned run's FLOPs (0 when the model's are unknown)."""
    cut: str = ""
    """Why the run gets fewer images than the budget's, in words ('' when it gets them all)."""
    over: bool = False
    """Even the smallest plan costs more than the allowance: a safety-net stop is the model's own cost."""


def run_flops(config: TrainConfig, train_images: int, eval_images: int, flops_per_image: float) -> float:
    """FLOPs of `config.epochs` epochs over `train_images`, scoring `eval_images` of two splits each."""
    return config.epochs * flops_per_image * (3 * train_images + 2 * eval_images)


def plan_run(config: TrainConfig, n_train: int, n_eval: int, flops_per_image: int | None) -> RunPlan:
    """The plan for a model of `flops_per_image` under `config`, given the budget's `n_train` training
    and `n_eval` scored images per split: all of them when they fit config.max_flops (or the budget has
    no allowance, or the model's FLOPs are unknown); else scoring keeps at most half the allowance and
    training gets the rest, in whole batches, never under the minimums above."""
    f, allowance = float(flops_per_image or 0), config.max_flops
    if not f or not allowance or run_flops(config, n_train, n_eval, f) <= allowance:
        return RunPlan(n_train, n_eval, run_flops(config, n_train, n_eval, f))
    eval_images = min(n_eval, max(MIN_EVALUATED, int(allowance / 2 / (2 * config.epochs * f))))
    left = allowance - run_flops(config, 0, eval_images, f)
    batches = int(left / (3 * config.epochs * f * config.batch_size))
    train_images = min(n_train, max(MIN_BATCHES, batches) * config.batch_size)
    flops = run_flops(config, train_images, eval_images, f)
    cut = (f"at {f / 1e6:,.0f} MFLOPs per image it would need {run_flops(config, n_train, n_eval, f) / 1e12:.3g} TFLOP "
           f"for the budget's {n_train:,} training and {n_eval:,} scored images, over its {allowance / 1e12:.3g} TFLOP "
           f"allowance: it trained on {train_images:,} and was scored on {eval_images:,}")
    return RunPlan(train_images, eval_images, flops, cut, over=flops > allowance)


__all__ = ["MIN_BATCHES", "MIN_EVALUATED", "RunPlan", "plan_run", "run_flops"]
