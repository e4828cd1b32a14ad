"""The graded result of one submission: the single source for every file the grader writes.

`result.json` (schema `grader.result/2`) holds it; the terminal view, feedback.md/html,
Gradescope's results.json and the gradebook row are all renderings of it, so they can be rebuilt
from stored results without grading again. It records where its numbers came from (grader
version, rubric hash, training config, torch version, device, isolation), as airbench and
nanoGPT keep their provenance beside their results. Plain dicts exist only here, at the file:
`to_dict` and `from_dict` (which also reads the `grader.result/1` files of earlier versions).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

from grader.analysis import Discussion, FoundModel, Reported, SameConfig, Selection
from grader.analysis.architecture import Architecture
from grader.analysis.similarity import Signature
from grader.checks import CheckResult
from grader import __version__
from grader.rubric import Budget, Rubric
from grader.training.context import RunIdentity, RunProvenance
from grader.training.effect import Effect
from grader.training.runs import ModelRun
from grader.typed import from_plain, to_plain

SCHEMA = "grader.result/2"
RESULT = "result.json"
"""The file a student's result is stored in, in that student's output folder."""
SCHEMA_V1 = "grader.result/1"


@dataclass(frozen=True)
class Provenance:
    """Where a result came from."""

    grader_version: str
    python: str
    rubric_source: str
    rubric_sha256: str
    """Hash of the rubric file's bytes."""
    budget: Budget
    graded_at: str
    """UTC time, ISO 8601."""
    seconds: float = 0.0
    """Wall time of grading this submission."""
    run: RunProvenance | None = None
    """Device, torch, sandbox, data and training config, when the models were retrained."""

    @classmethod
    def now(cls, rubric: Rubric, budget: Budget) -> "Provenance":
        """This grader, this rubric and budget, graded now."""
        return cls(grader_version=__version__, python=platform.python_version(), rubric_source=rubric.source,
                   rubric_sha256=rubric.sha256, budget=budget,
                   graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class GradeResult:
    """One student's graded submission."""

    student: str
    """The student id (the notebook's or its folder's name)."""
    notebook: str
    """Path of the graded notebook."""
    notebook_sha256: str
    fingerprint: str
    """Hash of everything the grade depends on: unchanged -> not graded again (grader.grading.grade)."""
    status: Literal["graded", "error"]
    """'error' when the submission could not be graded (the reason is in `error`)."""
    max_score: float
    """The rubric's points for every check it scores under this budget."""
    provenance: Provenance
    checks: tuple[CheckResult, ...] = ()
    """The scored checks, in registry order."""
    error: str | None = None
    """Why the submission could not be graded, in one line."""
    traceback: str | None = None
    """The grader's own traceback when it failed on this submission: for the instructor, never shown to students."""
    models: tuple[FoundModel, ...] = ()
    """Model classes, helper blocks and models that are not classes, as the notebook defines them."""
    baseline: str | None = None
    proposed: str | None = None
    reported: Mapping[str, Reported] = field(default_factory=dict)
    """What the notebook's outputs report, per model, each value with where it was read."""
    config: SameConfig | None = None
    """Whether both models were trained the same way."""
    discussion: Discussion | None = None
    selection: Selection | None = None
    """How the notebook chooses its final weights: a best-validation checkpoint, early stopping, or none."""
    architectures: Mapping[str, Architecture] = field(default_factory=dict)
    """The baseline's and the proposed model's architectures as read from their code (source 'code');
    a run's measured one (ModelRun.architecture) is the more exact where it exists."""
    student_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """The optimization settings the notebook used, per model (to judge reported vs reproduced)."""
    runs: Mapping[str, ModelRun] = field(default_factory=dict)
    """What the grader's retraining measured, per model class."""
    references: Mapping[str, ModelRun] = field(default_factory=dict)
    """Reference networks trained under the same config."""
    effect: Effect | None = None
    """The proposed model minus the baseline, as retrained, against the seed-to-seed spread."""
    signature: Signature = field(default_factory=Signature)
    """The proposed model's, for finding near-identical submissions."""
    flags: tuple[str, ...] = ()
    """For the instructor's review; never part of the score."""
    warnings: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 2)

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        """The required checks that failed (a check the budget could not score did not fail)."""
        return tuple(c for c in self.checks if c.outcome == "failed")

    @property
    def test_accuracy(self) -> float | None:
        """The proposed model's reproduced test accuracy (the leaderboard figure)."""
        run = self.runs.get(self.proposed or "")
        return run.test_accuracy if run else None

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **to_plain(self), "score": self.score}

    def to_json(self) -> str:
        """result.json's text (JSON has no NaN: a diverged loss is null)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GradeResult":
        """A stored result; raises ValueError for anything that is not one."""
        schema = data.get("schema") if isinstance(data, Mapping) else None
        if schema == SCHEMA_V1:
            data = _from_v1(data)
        elif schema != SCHEMA:
            raise ValueError(f"not a {SCHEMA} result (schema {schema!r})")
        fields = {k: v for k, v in data.items() if k not in ("schema", "score")}  # the score is derived
        return from_plain(cls, fields, "result")


def architectures_of(result: GradeResult) -> dict[str, Architecture]:
    """Each model's architecture as the grader knows it best: measured in the sandbox (runs[name].architecture)
    where it was retrained, else read from its code (result.architectures)."""
    measured = {name: run.architecture for name, run in result.runs.items() if run.architecture is not None}
    return {**result.architectures, **measured}


def _from_v1(old: Mapping[str, Any]) -> dict:
    """A grader.result/1 dict in the /2 shape: typed models and runs, provenance in fields."""
    prov = old.get("provenance") or {}
    run = None
    if "device" in prov:
        run = {"device": prov["device"], "torch": prov.get("torch", ""), "isolation": prov.get("isolation", ""),
               "isolation_note": prov.get("isolation_note", ""), "data_sha256": prov.get("data_sha256", ""),
               "data_kind": "unknown", "data_source": "", "data_note": prov.get("data_note", ""),
               "train_images": (prov.get("train_config") or {}).get("train_subset") or 0,
               "train_config": prov.get("train_config") or {}}
    rubric = prov.get("rubric") or {}
    provenance = {"grader_version": prov.get("grader_version", ""), "python": prov.get("python", ""),
                  "rubric_source": rubric.get("source", ""), "rubric_sha256": rubric.get("sha256", ""),
                  "budget": prov.get("budget", "none"), "graded_at": prov.get("graded_at", ""),
                  "seconds": prov.get("seconds", 0.0), "run": run}
    signature = ((prov.get("signatures") or {}).get(old.get("proposed") or "") or {})
    models = [{"name": m["name"], "kind": "model", "cell": m["cell"], "line": m["line"], "is_cnn": m["is_cnn"],
               "role": m["role"], "role_guessed": m["role_guessed"], "reason": m["role_reason"]}
              for m in old.get("models") or []]
    if old.get("fingerprint"):  # today's formula over what the result records, so an unchanged run resumes
        fingerprint_now = grade_fingerprint(old.get("notebook_sha256", ""), provenance["rubric_sha256"],
                                            provenance["grader_version"], provenance["budget"],
                                            RunIdentity(run["data_sha256"], run["device"], run["torch"]) if run else None)
    return {
        **{k: old[k] for k in ("student", "notebook", "notebook_sha256", "status", "max_score",
                               "checks", "error", "baseline", "proposed", "reported", "student_settings", "flags",
                               "warnings") if k in old},
        "fingerprint": fingerprint_now if old.get("fingerprint") else "",
        "models": models, "provenance": provenance,
        "signature": {"layers": signature.get("layers", []), "source": signature.get("source", "")},
        "runs": {name: _run_v1(name, entry) for name, entry in (old.get("retrain") or {}).items()},
        "references": {name: _run_v1(name, entry) for name, entry in (old.get("references") or {}).items()},
    }


def _run_v1(name: str, entry: Mapping[str, Any]) -> dict:
    return {"name": name, "history": entry.get("history"), "error": entry.get("error"), "params": entry.get("params"),
            "flops_per_image": entry.get("flops"), "seconds": entry.get("seconds") or 0.0}


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def grade_fingerprint(notebook_sha256: str, rubric_sha256: str, grader_version: str, budget: Budget,
                      run: RunProvenance | RunIdentity | None = None) -> str:
    """Everything a grade depends on: the notebook, the rubric, the grader and the budget, and for a
    retraining the data, the device type and torch (other data must regrade every student)."""
    parts = [notebook_sha256, rubric_sha256, grader_version, budget]
    if budget != "none" and run is not None:
        parts += [run.data_sha256, run.device, run.torch]
    return fingerprint(*parts)


FILE_MODE = 0o644
"""Every file the grader writes is world-readable: feedback is handed to students, results to tools
run by other users (mkstemp alone would leave them 0600, readable by the grader's user only)."""


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file; mode FILE_MODE."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_result(path: Path) -> GradeResult | None:
    """A stored result, or None when it is missing or unreadable (it will be graded again)."""
    try:
        return GradeResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):  # PlainError is a ValueError
        return None


__all__ = ["FILE_MODE", "GradeResult", "architectures_of", "Provenance", "RESULT", "SCHEMA", "grade_fingerprint", "load_result", "write_atomic"]
