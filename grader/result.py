"""The graded result of one submission: the single source for every file the grader writes.

`result.json` (schema `grader.result/1`) holds it; feedback.md/html, Gradescope's results.json,
the gradebook row and the terminal summary are all renderings of it, so they can be rebuilt from
stored results without grading again. It records where its numbers came from (grader version,
rubric hash, training config, seeds, torch version, device, isolation), as airbench and nanoGPT
keep their provenance beside their results.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "grader.result/1"


@dataclass(frozen=True)
class GradeResult:
    """One student's graded submission."""

    student: str
    """The student id (the notebook's or its folder's name)."""
    notebook: str
    """Path of the graded notebook."""
    notebook_sha256: str
    fingerprint: str
    """Hash of notebook, rubric, grader version and training budget: unchanged -> not regraded."""
    status: str
    """'graded', or 'error' when the submission could not be graded (the reason is in `error`)."""
    score: float
    max_score: float
    checks: list[dict]
    """Each {id, passed, points, max_points, message, hint, required}, in rubric order."""
    error: str | None = None
    models: list[dict] = field(default_factory=list)
    baseline: str | None = None
    proposed: str | None = None
    reported: dict[str, dict] = field(default_factory=dict)
    """What the notebook's outputs report, per model."""
    retrain: dict[str, dict] = field(default_factory=dict)
    """What the grader's retraining measured, per model."""
    references: dict[str, dict] = field(default_factory=dict)
    """Reference networks trained under the same config."""
    student_settings: dict[str, dict] = field(default_factory=dict)
    """The optimization settings the notebook used, per model (to judge reported vs reproduced)."""
    flags: list[str] = field(default_factory=list)
    """For the instructor's review; never part of the score."""
    warnings: list[str] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    """grader_version, rubric, budget, train_config, torch, device, isolation, graded_at, seconds."""

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "GradeResult":
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} result (schema {data.get('schema')!r})")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def test_accuracy(self) -> float | None:
        """The proposed model's reproduced test accuracy (the leaderboard figure)."""
        entry = self.retrain.get(self.proposed or "", {})
        value = entry.get("test_acc")
        return float(value) if isinstance(value, (int, float)) else None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
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
    except (OSError, ValueError, TypeError):
        return None
