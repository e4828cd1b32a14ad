"""Run the grader's child program on one model class: the parent's half of the protocol.

One function for both tasks (the models_run check and training): it writes the `Request`, gives
the child the extracted module, the child package (grader/child, copied whole: no list of files
to keep in step) and the task's inputs, a deadline per phase, and reads back the typed `Report`
and the arrays. `ChildRun.failure` is the one description of a child that did not finish.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import grader.child
from grader.child.protocol import PHASE_LABELS, PHASES, SUBMISSION, ModelSpec, Report, Request, Task
from grader.sandbox.extract import Extraction
from grader.sandbox.files import ArraySpec
from grader.sandbox.isolation import Isolation
from grader.sandbox.process import ChildResult, Limits, Phase, run_in_sandbox

CHILD_PACKAGE = Path(grader.child.__file__).resolve().parent


@dataclass(frozen=True)
class Timeouts:
    """Wall-clock seconds per phase of a model's child."""

    import_s: float = 120.0
    """Importing torch, the trainer and the extracted module."""
    instantiate_s: float = 60.0
    """Counting parameters on the meta device and building the model."""
    forward_s: float = 60.0
    """check: one forward pass on a small batch."""
    train_s: float = 300.0
    """train: the whole training run (the training context sets it from the references' time)."""

    def phases(self, task: Task) -> tuple[Phase, ...]:
        seconds = {"import": self.import_s, "instantiate": self.instantiate_s, "forward": self.forward_s,
                   "train": self.train_s}
        return tuple(Phase(name, seconds[name], PHASE_LABELS[name]) for name in PHASES[task])


@dataclass(frozen=True)
class ChildRun:
    """One model's child: what the sandbox saw, and what the child reported."""

    name: str
    child: ChildResult

    @property
    def report(self) -> Report | None:
        return self.child.payload

    @property
    def failure(self) -> str:
        """'' when the child did its task; else what went wrong, in words a student can act on."""
        if not self.child.ok:
            tail = self.child.stderr_tail(3) if self.child.status == "crashed" else ""
            return f"{self.name} {self.child.detail}" + (f"; last lines of its error output:\n{tail}" if tail else "")
        if self.report is None or not self.report.ok:
            message = self.report.message if self.report else ""
            return f"{self.name}: {message or 'failed without saying why'}"
        return ""


def model_spec(extraction: Extraction, name: str) -> ModelSpec:
    """How to build `name`: as the notebook builds the object it trains, else without arguments."""
    inst = extraction.instantiations.get(name)
    return ModelSpec(name, inst.arguments if inst else "")


def run_model_child(request: Request, extraction: Extraction, *, isolation: Isolation,
                    inputs: Mapping[str, Path | bytes] = {}, arrays: Mapping[str, ArraySpec] = {},
                    timeouts: Timeouts = Timeouts(), limits: Limits = Limits(), env: Mapping[str, str] = {},
                    on_progress: Callable[[str, int], None] | None = None) -> ChildRun:
    """Run `request` on the extracted module in the sandbox; `on_progress(phase, epoch)` hears how
    far the child says it got (grader.sandbox.process), for display only. `env` is added to the
    child's scrubbed environment (its GPU: grader.training.gpus.pin_env)."""
    files: dict[str, Path | bytes] = {SUBMISSION: extraction.source.encode(), **child_package(), **inputs}
    child = run_in_sandbox(CHILD_PACKAGE / "__main__.py", phases=timeouts.phases(request.task), isolation=isolation,
                           request=request.to_json(), report=Report, inputs=files, arrays=arrays, limits=limits,
                           env=env, on_progress=on_progress, cuda=request.device == "cuda")
    return ChildRun(request.model.name, child)


def child_package() -> dict[str, Path | bytes]:
    """The child package's files as the sandbox's inputs: grader/child/ whole, under an empty grader/."""
    files: dict[str, Path | bytes] = {"grader/__init__.py": b""}
    for path in sorted(CHILD_PACKAGE.rglob("*.py")):
        files[f"grader/child/{path.relative_to(CHILD_PACKAGE).as_posix()}"] = path.read_bytes()
    return files


__all__ = ["ChildRun", "Timeouts", "child_package", "model_spec", "run_model_child"]
