"""Progress while models are built and trained: what the grader tells its user, for display only.

Training takes from 30 s to many minutes; these events let the command line say which model is
training, how far it got and about how long is left. An event is built in the trusted parent:
from the reference trainer's own epoch records, or, for a sandboxed child, from nothing but the
epoch number the child announces (grader.sandbox.process), clamped and never allowed to go
back, timed by the parent's clock against the parent's config. Nothing here is graded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from grader.child.config import TrainConfig

Stage = Literal["check", "train", "reference"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one model: its check starts, its training starts, or an epoch ended."""

    model: str
    """The class name (a student's choice: renderers clean it)."""
    stage: Stage
    """check: built and run on a batch in the sandbox; train: retrained in the sandbox; reference:
    a reference network trained in the grader."""
    epoch: int = 0
    """Epochs completed; 0 when the stage starts."""
    epochs: int = 0
    """Epochs the config asks for (0 for a check)."""
    seconds: float = 0.0
    """Wall-clock seconds since the stage started."""
    eta: float | None = None
    """About how many seconds are left (None when unknown or done)."""
    val_accuracy: float | None = None
    """Validation accuracy of the epoch, 0..1, where the grader holds the labels (references only:
    a sandboxed child never sees them, and the parent scores its epochs at the end)."""
    student: str = ""
    """Whose submission ('' for references and a single check)."""


OnProgress = Callable[[ProgressEvent], None]


def eta_seconds(epoch: int, epochs: int, seconds: float, limit_s: float = 0.0) -> float | None:
    """Seconds left after `epoch` of `epochs` took `seconds` in all: the mean epoch so far times the
    epochs left, but never past `limit_s` (a time budget that stops the run sooner; 0: none)."""
    if epoch <= 0 or epochs <= 0 or epoch >= epochs:
        return None
    left = seconds / epoch * (epochs - epoch)
    return min(left, max(0.0, limit_s - seconds)) if limit_s > 0 else left


def epoch_event(model: str, stage: Stage, epoch: int, config: TrainConfig, seconds: float, *,
                limit_s: float = 0.0, val_accuracy: float | None = None) -> ProgressEvent:
    """The event after `epoch` of a run under `config` that has taken `seconds` so far."""
    limits = [s for s in (config.max_seconds, limit_s) if s > 0]
    eta = eta_seconds(epoch, config.epochs, seconds, min(limits, default=0.0))
    return ProgressEvent(model, stage, epoch, config.epochs, seconds, eta, val_accuracy)


def child_epochs(model: str, config: TrainConfig, timeout_s: float, on_progress: OnProgress,
                 clock: Callable[[], float] = time.monotonic) -> Callable[[str, int], None]:
    """A sandbox's progress hook (phase, epoch) that turns a training child's announcements into events.

    The child is untrusted: the epoch it names is clamped to the config's, an epoch that does not
    move forward is dropped, and every number shown is the parent's (its clock, its config, the
    train phase's timeout as the ETA's limit). Epochs the sandbox's poll missed (two ended between
    polls) are told too, so each epoch has its event and a child causes at most config.epochs + 1.
    """
    shown = {"epoch": -1, "start": clock()}

    def seen(phase: str, epoch: int) -> None:
        if phase != "train":
            return
        if shown["epoch"] < 0:
            shown["start"] = clock()  # the train phase's clock starts when it is first announced
        last, shown["epoch"] = shown["epoch"], max(shown["epoch"], min(epoch, config.epochs))
        seconds = clock() - shown["start"]
        for done in range(last + 1, shown["epoch"] + 1):
            on_progress(epoch_event(model, "train", done, config, seconds, limit_s=timeout_s))

    return seen


__all__ = ["OnProgress", "ProgressEvent", "Stage", "child_epochs", "epoch_event", "eta_seconds"]
