"""One model as the grader trained it: the record every later stage reads.

A student's class retrained in the sandbox and a reference network trained in the grader end as
the same record, so scoring, feedback, the gradebook and the console treat them alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from grader.analysis.architecture import Architecture
from grader.child.protocol import History
from grader.training.memorization import Memorization


@dataclass(frozen=True)
class ModelRun:
    """One model trained under the fixed config, or the reason it was not."""

    name: str
    """The class name."""
    history: History | None = None
    """The run, with every metric computed by the grader; None when the model never trained."""
    error: str | None = None
    """Why the model did not train, or how its run stopped early; None when it trained to the end."""
    params: int | None = None
    """Parameters, as counted in its sandbox (known even when it did not train)."""
    flops_per_image: int | None = None
    """Forward FLOPs per 3x32x32 image."""
    seconds: float = 0.0
    """Wall time of the run, the sandbox's start included."""
    uid: int | None = None
    """The uid the training child ran as (each concurrent child has its own)."""
    gpu_seconds: float | None = None
    """An estimate of the grading budget's training time on the grading GPU (from the model's FLOPs
    and an H200's measured throughput): what a quick self-check can tell of the full run."""
    architecture: Architecture | None = None
    """What the model is made of, measured by the models_run child on the built model (source 'run')."""
    memorization: Memorization | None = None
    """The selected epoch on the clean and on the perturbed test images, and whether the gap says the
    model memorized the test set (grader.training.memorization)."""

    @classmethod
    def trained(cls, name: str, history: History, seconds: float | None = None, uid: int | None = None,
                memorization: Memorization | None = None) -> "ModelRun":
        error = None if history.status == "ok" else history.message
        return cls(name, history, error, history.params, history.flops_per_image,
                   round(history.seconds if seconds is None else seconds, 2), uid, memorization=memorization)

    @property
    def test_accuracy(self) -> float | None:
        """The test accuracy the grader scores, 0..1: the selected epoch's on the test images as the
        model was shown them (a secret half perturbed), or on the perturbed ones alone when it is
        flagged as memorizing the test set."""
        if self.memorization is not None and self.memorization.flagged:
            return self.memorization.perturbed_accuracy
        return self.history.test_accuracy if self.history else None

    @property
    def val_accuracy(self) -> float | None:
        """Validation accuracy of the selected epoch, 0..1."""
        selected = self.history.selected if self.history else None
        return selected.val_accuracy if selected else None

    @property
    def notes(self) -> tuple[str, ...]:
        """What the trainer adapted to, for the student (a tuple output, a fallback)."""
        return self.history.notes if self.history else ()


__all__ = ["ModelRun"]
