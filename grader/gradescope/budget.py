"""The autograder's budget: the rubric's quick budget fitted to the container each submission gets
(`grader gradescope build --cpus --memory`; Gradescope's half a CPU and 768 MB by default) and to the
assignment's timeout.

What a submission must get there: both models built and run, trained enough to show that they
learn, and compared only where that can be supported (the run checks leave the rest unscored, with
the reason). The rubric's [train_quick] is written for a laptop: on half a CPU its 10,000 training
images per model take a ResNet-20 two and a half minutes, and its 20 s limit would cut every model
of that size. So the build keeps the quick budget's epochs, batch, schedule and evaluation images and
fits three keys, as a layer over [train_quick] (the way [train_quick] lies over [train]):

- `max_seconds`, the safety net per model: what is left of the deadline after the fixed costs
  (FIXED_CPU_SECONDS: Python, the notebook's reading, four sandboxed children), shared by the two models;
- `max_flops`, the allowance per model (grader.child.plan): what CPU_FLOPS a core trains in that
  time, divided by SAFETY: a model that costs more trains on fewer images, the same on every machine;
- `train_subset`, the training images: as many as a model as costly as the rubric's strong reference
  trains within the allowance, scoring included; at most the rubric's own. The references are then
  compared in full, and the net stops only a model whose FLOPs do not show its cost.

Memory is not a key of the budget (its images are a few MB): a run was measured to need MIN_MEMORY_MB
at most (the grader's process and one child together), and the build refuses a machine with less.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from grader.child.plan import run_flops
from grader.errors import GraderError
from grader.gradescope.config import Deadline
from grader.gradescope.machine import Machine
from grader.rubric import Budget, Rubric

CPU_FLOPS = 40e9
"""FLOPs a second one core trains at, as torch's counter counts a forward pass (a multiply-add is 2),
times three for the backward: the ResNet-20 reference trained 184 images/s (81 MFLOPs each) with one
thread under a quota of half a CPU on this project's Xeon (AVX-512), 90 GFLOP/s a core; less than half
of that is assumed for a machine we have not seen (AVX2 alone halves it)."""
FIXED_CPU_SECONDS = 30.0
"""CPU time a submission takes besides training: Python and torch started five times (the grader, a
models_run and a training child per model), the notebook read, the results written (measured: 14 s
for the complete example under half a CPU, as 28 s of its 51)."""
MIN_MEMORY_MB = 700
"""What a run of the complete example was measured to hold at once, with a little to spare: 679 MB of
anonymous and shared memory, the grader's 247 MB and its ResDropNet training child's 400 MB (CPU
torch, half a CPU, bubblewrap). The grader caps each child at what it leaves (grader.gradescope.run)."""
SAFETY = 2.0
"""How much longer than the allowance takes at CPU_FLOPS the safety net is."""


@dataclass(frozen=True)
class FittedBudget:
    """A budget fitted to a machine and a deadline."""

    budget: Budget
    machine: Machine
    train: Mapping[str, Any]
    """The keys that replace the rubric's for this budget (empty: the rubric's budget as it is)."""
    words: str
    """What the build chose and why, for its log."""


def fit_budget(rubric: Rubric, budget: Budget, machine: Machine, deadline: Deadline) -> FittedBudget:
    """`budget` fitted to `machine` within `deadline`: the quick budget's images, allowance and safety net (above);
    `none` needs nothing fitted, and `full` is the grading budget, never cut down (hours on a CPU)."""
    if budget == "none":
        return FittedBudget(budget, machine, {}, "static checks only: nothing is trained")
    if machine.memory_mb < MIN_MEMORY_MB:
        raise GraderError(f"--memory {machine.memory_mb} is less than the {MIN_MEMORY_MB} MB a retraining needs; "
                          f"give the autograder {MIN_MEMORY_MB} MB or more on Gradescope and pass it as --memory")
    if budget == "full":
        return FittedBudget(budget, machine, {}, "the grading budget as the rubric sets it (hours on a CPU: grade it "
                                                 "with `grader grade` on a GPU instead)")
    quick = rubric.quick
    per_model = (deadline.seconds - FIXED_CPU_SECONDS / machine.cpus) / 2
    limit = math.floor(per_model / 10) * 10
    allowance = float(f"{machine.cpus * CPU_FLOPS * limit / SAFETY:.2g}")  # a round number in the log
    strong = strong_reference_flops(rubric)
    scoring = run_flops(quick, 0, quick.eval_subset or rubric.data.val_size, strong)
    images = math.floor((allowance - scoring) / (run_flops(quick, 1, 0, strong)) / 100) * 100
    own = quick.train_subset or rubric.data.train_size
    if limit <= 0 or images < quick.batch_size * 10:
        raise GraderError(f"{machine.cpus:g} CPU and a deadline of {deadline.seconds} s leave too little time to train "
                          f"({max(limit, 0)} s per model); give the autograder more CPU or a longer timeout on "
                          "Gradescope and pass them as --cpus and --timeout-minutes")
    train = {"train_subset": min(images, own), "max_flops": allowance, "max_seconds": float(limit)}
    words = (f"fitted to {machine}: {quick.epochs} epochs on {train['train_subset']:,} training images (the rubric's "
             f"[train_quick]: {own:,}), at most {allowance / 1e12:.3g} TFLOP per model (a model that costs more "
             f"trains on fewer images), a safety net of {limit:g} s per model (the rubric's: {quick.max_seconds:g} s); "
             f"the strong reference {rubric.references.strong} should take about {limit / SAFETY:g} s")
    return FittedBudget(budget, machine, train, words)


def strong_reference_flops(rubric: Rubric) -> int:
    """Forward FLOPs per image of the rubric's strong reference, as the sandbox counts a student's model."""
    import torch

    from grader.child.runtime import count_flops
    from reference_models import REFERENCE_MODELS

    name = rubric.references.strong
    if name not in REFERENCE_MODELS:
        raise GraderError(f"references.strong = {name!r} in the rubric; reference_models has {', '.join(REFERENCE_MODELS)}")
    model = REFERENCE_MODELS[name]().eval()
    with torch.no_grad():
        _, flops = count_flops(lambda: model(torch.zeros(1, 3, 32, 32)))
    if not flops:
        raise GraderError(f"cannot count the FLOPs of the reference {name}; choose another references.strong")
    return flops


__all__ = ["CPU_FLOPS", "FIXED_CPU_SECONDS", "FittedBudget", "MIN_MEMORY_MB", "fit_budget", "strong_reference_flops"]
