"""The fixed training configuration: one set of optimization settings applied to every model.

The rubric's [train] and [train_quick] tables are read into it (grader.rubric); the trainer runs
under it, in the grader and in the sandboxed child, which is why it lives in this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TrainConfig:
    """One fixed optimization configuration, applied identically to every model."""

    optimizer: Literal["adam", "adamw", "sgd"] = "sgd"
    """Optimizer family."""
    lr: float = 0.01
    """Peak learning rate."""
    momentum: float = 0.9
    """SGD momentum (ignored by Adam)."""
    nesterov: bool = False
    """Nesterov momentum for SGD."""
    weight_decay: float = 5e-4
    """L2 weight decay (decoupled for AdamW)."""
    schedule: Literal["constant", "cosine", "onecycle"] = "cosine"
    """Learning-rate schedule over the whole run."""
    batch_size: int = 64
    """Training batch size."""
    epochs: int = 10
    """Passes over the training images."""
    train_subset: int = 0
    """Train on only this many of the training images (0 = all); used by the quick budget."""
    augment: Literal["none", "crop_flip"] = "none"
    """Training augmentation: none, or random crop with 4-pixel padding plus horizontal flip."""
    seed: int = 0
    """Seed for weight init, batch order and augmentation."""
    deterministic: bool = False
    """Bit-identical reruns (slower on CUDA: no cudnn.benchmark, deterministic kernels)."""
    select: Literal["best_val", "last"] = "best_val"
    """Which epoch's weights are evaluated on the test set."""
    max_flops: float = 0.0
    """The run's compute allowance in FLOPs (0: none), counted from the model's measured forward
    FLOPs: a model that needs more for the budget's images trains and is scored on fewer, as many as
    the allowance buys, the same on every machine and under any load (grader.child.plan)."""
    max_seconds: float = 0.0
    """A safety net (0: none): training stops after this many seconds of training steps. The budget
    is max_flops; this catches only a model whose cost its FLOPs do not show, or a machine far slower
    than planned for. A run it stops is regraded or said to be the model's own cost, never compared
    with other runs (grader.training.retrain)."""
    eval_subset: int = 0
    """Validate and test on only this many of the validation and test images (0 = all): the quick
    budget's, since a large model's forward over 20,000 images can take longer than its training."""

