"""What an autograder zip carries besides the grader (autograder.json), and where things are once
Gradescope has unpacked it.

Gradescope's layout (https://gradescope-autograders.readthedocs.io/en/latest/specs/): the zip is
unpacked into ROOT/source, each submission lands in ROOT/submission with
ROOT/submission_metadata.json beside it, and ROOT/results/results.json is what Gradescope reads
back. ROOT is /autograder there; tests point $GRADER_AUTOGRADER_ROOT at a folder of their own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from grader.config import default_data_dir
from grader.errors import GraderError
from grader.gradescope.machine import GRADESCOPE, Machine
from grader.rubric import Budget, Rubric
from grader.typed import from_plain, to_plain

CONFIG = "autograder.json"
"""The zip's own settings, at its root."""
SCHEMA = "grader.gradescope/1"
DEFAULT_ROOT = Path("/autograder")


DEFAULT_TIMEOUT_MINUTES = 10.0
"""Gradescope's autograder timeout unless the assignment's settings change it."""


@dataclass(frozen=True)
class Deadline:
    """How long run_autograder lets the grader run: it sends SIGTERM at `seconds`, SIGKILL `grace` later,
    and then writes the fallback results.json, all before Gradescope's own timeout ends the container."""

    seconds: int
    grace: int


def deadline(timeout_minutes: float) -> Deadline:
    """The deadline under an assignment timeout: 85% of it, so that the kill, the fallback result and
    Gradescope's reading of it fit in the rest (a minute and a half of the default 10)."""
    total = timeout_minutes * 60
    return Deadline(seconds=max(1, int(total * 0.85)), grace=max(1, min(10, int(total * 0.05))))


@dataclass(frozen=True)
class AutograderConfig:
    """What `grader gradescope build` chose, read back by `prepare` (image build) and `run` (each submission)."""

    budget: Budget
    """The training budget every submission is graded under."""
    rubric: str
    """The rubric file, relative to ROOT/source."""
    data: str | None
    """The bundled CIFAR-10 folder, relative to ROOT/source; None: downloaded by setup.sh."""
    grader_version: str
    """The grader that built the zip (the one bundled in it)."""
    timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES
    """The assignment's autograder timeout on Gradescope: run_autograder stops the grader before it."""
    machine: Machine = GRADESCOPE
    """The container the budget was fitted to (`--cpus`, `--memory`)."""
    train: Mapping[str, Any] = field(default_factory=dict)
    """The budget's training keys over the rubric's, fitted to `machine` (grader.gradescope.budget)."""
    schema: str = SCHEMA

    @property
    def deadline(self) -> "Deadline":
        return deadline(self.timeout_minutes)

    def fitted(self, rubric: Rubric) -> Rubric:
        """`rubric` with this zip's budget: its `train` keys over the rubric's, as [train_quick] lies over [train]."""
        return rubric.sized(self.budget, self.train, f"{CONFIG} train") if self.train else rubric

    def to_json(self) -> str:
        return json.dumps(to_plain(self), indent=2)


@dataclass(frozen=True)
class AutograderPaths:
    """Gradescope's folders under one root."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "source"

    @property
    def submission(self) -> Path:
        return self.root / "submission"

    @property
    def metadata(self) -> Path:
        return self.root / "submission_metadata.json"

    @property
    def results(self) -> Path:
        return self.root / "results" / "results.json"

    @property
    def cache(self) -> Path:
        """The grader's cache (references, decoded data, sandbox state): filled by setup.sh, kept in the image."""
        return self.root / "cache"

    def data_dir(self, config: AutograderConfig) -> Path:
        return self.source / config.data if config.data else default_data_dir()


def autograder_paths(root: Path | None = None) -> AutograderPaths:
    """ROOT's folders; ROOT is `root`, else $GRADER_AUTOGRADER_ROOT, else /autograder.

    Both setup.sh's `prepare` and each submission's `run` must find the same cache: unless the
    environment already chose one, it is ROOT/cache (setup.sh and run_autograder may see a
    different $HOME, and the default cache hangs on it).
    """
    paths = AutograderPaths(Path(root or os.environ.get("GRADER_AUTOGRADER_ROOT") or DEFAULT_ROOT))
    os.environ.setdefault("XDG_CACHE_HOME", str(paths.cache))
    return paths


def load_config(paths: AutograderPaths) -> AutograderConfig:
    file = paths.source / CONFIG
    rebuild = "rebuild the zip with `grader gradescope build` and upload it to Gradescope again"
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        raise GraderError(f"cannot read {file} ({e.strerror}); {rebuild}") from None
    try:
        return from_plain(AutograderConfig, json.loads(text), CONFIG)
    except ValueError as e:  # not JSON, or a PlainError naming the wrong key
        raise GraderError(f"{file} is not this grader's autograder config ({e}); {rebuild}") from None


__all__ = ["AutograderConfig", "AutograderPaths", "CONFIG", "DEFAULT_TIMEOUT_MINUTES", "Deadline", "autograder_paths",
           "deadline", "load_config"]
