"""The checks: one ordered registry of what a rubric may score, and the records they produce.

Each check is judged by one function, in checks/static.py (from the notebook alone) or
checks/run.py (from the grader's own runs of the models); a judge returns a `Verdict`, and the
rubric turns it into points (`Rubric.score`). This module imports nothing else of the grader, so
the rubric can validate its [checks.ID] tables against `CHECK_IDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Stage = Literal["static", "run"]

REGISTRY: tuple[tuple[str, Stage], ...] = (
    ("notebook_valid", "static"),
    ("two_cnn_classes", "static"),
    ("proposed_named", "static"),
    ("losses_reported", "static"),
    ("accuracies_reported", "static"),
    ("discussion", "static"),
    ("discussion_names_winner", "static"),
    ("discussion_attributes", "static"),
    ("same_config", "static"),
    ("best_val_selection", "static"),
    ("models_run", "run"),
    ("models_learn", "run"),
    ("baseline_works", "run"),
    ("proposed_beats_baseline", "run"),
    ("proposed_vs_references", "run"),
    ("reported_matches", "run"),
)
"""Every check the grader knows, in the order reports list them, with the stage that judges it:
'static' from the notebook alone, 'run' from retraining the models (a training budget only)."""

CHECK_IDS = tuple(check_id for check_id, _ in REGISTRY)

TITLES: dict[str, str] = {
    "notebook_valid": "The notebook can be read",
    "two_cnn_classes": "Two CNN classes: a baseline and a proposed model",
    "proposed_named": "The proposed model has a name of its own",
    "losses_reported": "Training and validation losses reported",
    "accuracies_reported": "Validation and test accuracies reported",
    "discussion": "Discussion: which model is better and why",
    "discussion_names_winner": "The discussion names the better model, as the numbers show",
    "discussion_attributes": "The discussion credits a real difference between the models",
    "same_config": "Both models trained with the same configuration",
    "best_val_selection": "The final model is the best on the validation set (optional)",
    "models_run": "Both models build and run",
    "models_learn": "Both models learn",
    "baseline_works": "The baseline trains like the reference LeNet-5",
    "proposed_beats_baseline": "The proposed model beats the baseline",
    "proposed_vs_references": "The proposed model against the references",
    "reported_matches": "Reported accuracy matches the retraining",
}
"""The title each check is shown with, when the rubric gives none (`title` in [checks.ID])."""

Outcome = Literal["passed", "failed", "not_met", "unscored"]
"""What a check means for a run: passed; failed (a required check: `grader check` and `grader ci`
exit 1); not_met (an informational check, `required = false`: said, never failing the run);
unscored (the budget could not judge it: neither)."""

Visibility = Literal["visible", "hidden", "after_due_date", "after_published"]
"""When a student may see a check on Gradescope (its own words for it)."""


def ids(stage: Stage) -> tuple[str, ...]:
    return tuple(check_id for check_id, s in REGISTRY if s == stage)


@dataclass(frozen=True)
class Verdict:
    """A judge's finding, before the rubric gives it points."""

    passed: bool
    message: str
    """What the grader found, in words for the student."""
    fraction: float | None = None
    """The share of the points earned, 0..1; None: all of them when passed, none when failed. A check
    on a scale passes with a fraction (it was scored; where it landed is its grade)."""
    cell: int | None = None
    """The notebook cell the finding is about, when there is one."""
    flag: str = ""
    """Something for the instructor to review; never part of the score."""
    scored: bool = True
    """False when the budget cannot support the check (the message says why): no points either way,
    and not a failure."""


@dataclass(frozen=True)
class CheckResult:
    """One scored requirement."""

    id: str
    passed: bool
    points: float
    max_points: float
    message: str
    """What the grader found, in words for the student."""
    hint: str = ""
    """How to fix a failure (empty when the check passed)."""
    required: bool = True
    """A failing required check makes `grader check` and `grader ci` exit 1."""
    cell: int | None = None
    """The notebook cell the check is about (for annotations and feedback), when there is one."""
    scored: bool = True
    """False: not scored under this budget (no points, no maximum, not a failure); the message says why."""
    title: str = ""
    """The check's name for people (the rubric's `title`); empty in results of earlier versions."""
    visibility: Visibility = "visible"
    """When a student may see this check where the grader can hold it back (Gradescope)."""
    instructor_comment: str = ""
    """The instructor's words on this check, from a manual override (overrides.toml)."""
    overridden_from: float | None = None
    """The autograder's points when the instructor overrode them; None when not overridden."""

    @property
    def outcome(self) -> Outcome:
        """The one reading of passed/required/scored that every report (console, CI log, JUnit, annotations) uses."""
        if not self.scored:
            return "unscored"
        if self.passed:
            return "passed"
        return "failed" if self.required else "not_met"

    @property
    def label(self) -> str:
        """The title, or the id for results that have none."""
        return self.title or TITLES.get(self.id, self.id)


@dataclass(frozen=True)
class Scored:
    """Checks of one stage, and what they found that an instructor should look at."""

    checks: tuple[CheckResult, ...]
    flags: tuple[str, ...]
    """For review; never part of the score (a reported accuracy the retraining does not reproduce, a
    discussion crediting a component the models do not differ in)."""


__all__ = ["CHECK_IDS", "CheckResult", "Outcome", "REGISTRY", "Scored", "Stage", "TITLES", "Verdict", "Visibility", "ids"]
