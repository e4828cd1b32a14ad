"""The rubric: points per check, the fixed training config, the references.

A rubric is a TOML file (rubrics/cifar10.toml is the default). It is loaded into frozen
dataclasses; an unknown key, a wrong type or a missing field is rejected with the key's dotted
name and what was expected, so a typo never silently changes a grade.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping

from grader.checks import CHECK_IDS, TITLES, CheckResult, Verdict, Visibility, ids
from grader.child.config import TrainConfig
from grader.config import DataConfig, from_mapping
from grader.errors import RubricError
from grader.typed import PlainError, from_plain

DEFAULT_RUBRIC = "cifar10.toml"

Budget = Literal["none", "quick", "full"]
"""How much the grader trains: nothing (static checks only), the student's quick self-check, or the grading config."""


@dataclass(frozen=True)
class CheckSpec:
    """How one check is scored."""

    points: float
    """Points awarded when the check passes."""
    required: bool = True
    """A failing required check makes `grader check` / `grader ci` exit 1."""
    hint: str = ""
    """One line telling the student how to fix a failure."""
    threshold: float = 0.0
    """A check-specific number (an accuracy margin, a tolerance); 0 when unused."""
    title: str = ""
    """The check's name in feedback, CI and Gradescope (default: grader.checks.TITLES)."""
    visibility: Visibility = "visible"
    """When students see the check on Gradescope: visible, hidden, after_due_date or after_published."""


@dataclass(frozen=True)
class Assignment:
    """What the assignment asks for, beyond the points."""

    name: str
    """Shown in reports."""
    generic_model_names: tuple[str, ...] = ()
    """Class names that do not count as a name of the student's own (case-insensitive)."""
    max_params: int = 200_000_000
    """Models with more parameters are refused before any memory is allocated. It protects memory:
    parameters, their gradients and the optimizer's state take about 16 bytes each (3.2 GB here)."""
    max_gpu_memory_mb: int = 24_000
    """GPU memory a student's training child may hold (MB; 0: no cap but its share of the GPU, the GPU's
    memory divided by the children sharing it). Over it, the child is stopped and the model named."""
    max_flops_per_image: int = 12_000_000_000
    """Models whose forward pass takes more floating-point operations per 32x32 image are refused.
    It protects time: a run costs about three times this per training image and epoch."""
    proposed_name_pattern: str = ""
    """A regular expression the proposed model's class name must match in full (e.g. "[A-Z][a-z]+Net"
    for the assignment's "<Your name here>Net"); case-sensitive unless it says otherwise ("(?i)...");
    empty: any name that is not generic."""
    notebook: str = ""
    """Which notebook `grader ci` grades in a repository holding several: a glob matched against
    paths relative to the repository (e.g. "hw3*.ipynb", "notebooks/*.ipynb"); empty = the only one."""


@dataclass(frozen=True)
class References:
    """The reference networks trained under the same config for comparison."""

    baseline: str = "LeNet5"
    """Class in reference_models that a working baseline should match."""
    strong: str = "ResNet20"
    """Class in reference_models that marks the top of the partial-credit scale."""
    min_accuracy: float = 0.2
    """The baseline reference must reach this test accuracy under a budget (chance is 0.1) for the
    comparisons with the references to be scored: below it the budget is too small to tell models apart."""
    min_separation: float = 0.05
    """The strong reference must beat the baseline reference by this much in test accuracy for the
    scale between them (proposed_vs_references) to be scored: a shorter scale grades noise."""
    seed_spread: float = 0.01
    """How far one model's test accuracy moves between training seeds (a fraction; bench/bench_stability.py,
    BENCHMARKS.md): the feedback calls a proposed-minus-baseline gap within it noise. Not scored."""


@dataclass(frozen=True)
class Rubric:
    """A loaded, validated rubric."""

    assignment: Assignment
    data: DataConfig
    train: TrainConfig
    """The grading config (`--train full`)."""
    quick: TrainConfig
    """The student self-check budget (`--train quick`): [train] with [train_quick] on top."""
    references: References
    checks: Mapping[str, CheckSpec]
    """Check id -> scoring, in registry order (grader.checks.CHECK_IDS)."""
    source: str
    """Where the rubric was read from."""
    sha256: str
    """Hash of the rubric file's bytes, recorded in every result."""

    def is_generic_name(self, class_name: str) -> bool:
        generic = {n.lower() for n in self.assignment.generic_model_names}
        return class_name.lower() in generic

    def matches_name_pattern(self, class_name: str) -> bool:
        """Whether a class name matches the assignment's pattern (always, when there is none)."""
        pattern = self.assignment.proposed_name_pattern
        return not pattern or re.fullmatch(pattern, class_name) is not None

    def train_config(self, budget: Budget) -> TrainConfig:
        """The configuration a training budget trains under."""
        return self.quick if budget == "quick" else self.train

    def sized(self, budget: Budget, layer: Mapping[str, Any], where: str) -> "Rubric":
        """This rubric with `layer` (any [train] keys) over `budget`'s configuration, as [train_quick] lies over
        [train]: a budget fitted to a machine (grader.gradescope.budget); `where` names the layer in messages."""
        if budget == "none":
            return self
        try:
            config = from_plain(TrainConfig, layer, where, base=self.train_config(budget))
        except PlainError as e:
            raise RubricError(str(e)) from None
        return replace(self, **{"quick" if budget == "quick" else "train": config})

    def applicable(self, budget: Budget) -> tuple[str, ...]:
        """The checks this rubric scores under `budget`, in report order (run checks need training)."""
        stages = ids("static") + (ids("run") if budget != "none" else ())
        return tuple(check_id for check_id in CHECK_IDS if check_id in self.checks and check_id in stages)

    def max_score(self, budget: Budget) -> float:
        return round(sum(self.checks[check_id].points for check_id in self.applicable(budget)), 2)

    def score(self, check_id: str, verdict: Verdict) -> CheckResult:
        """The verdict with this rubric's points and hint (a check not scored has neither points nor maximum)."""
        spec = self.checks[check_id]
        credit = verdict.fraction if verdict.fraction is not None else float(verdict.passed)
        return CheckResult(
            id=check_id, passed=verdict.passed and verdict.scored,
            points=round(spec.points * credit, 2) if verdict.scored else 0.0,
            max_points=spec.points if verdict.scored else 0.0, message=verdict.message,
            hint=spec.hint if verdict.scored and not verdict.passed else "", required=spec.required,
            cell=verdict.cell, scored=verdict.scored, title=spec.title or TITLES[check_id],
            visibility=spec.visibility,
        )


_TOP_LEVEL = {"assignment", "data", "train", "train_quick", "references", "checks"}


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and validate a rubric; None means the default rubric shipped with the grader."""
    if path is None:
        raw = resources.files("rubrics").joinpath(DEFAULT_RUBRIC).read_bytes()
        source = f"rubrics/{DEFAULT_RUBRIC}"
    else:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise RubricError(f"rubric {p} does not exist; pass --rubric with a TOML file") from None
        except (IsADirectoryError, PermissionError) as e:
            raise RubricError(f"rubric {p} cannot be read ({e.strerror}); pass a TOML file") from None
        source = str(p)
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RubricError(f"rubric {source} is not valid TOML: {e}") from None
    return parse_rubric(table, source=source, sha256=hashlib.sha256(raw).hexdigest())


def parse_rubric(table: Mapping[str, Any], *, source: str, sha256: str = "") -> Rubric:
    unknown = sorted(set(table) - _TOP_LEVEL)
    if unknown:
        raise RubricError(
            f"unknown table [{unknown[0]}] in rubric {source}; expected: {', '.join(sorted(_TOP_LEVEL))}"
        )
    if "assignment" not in table:
        raise RubricError(f"rubric {source} has no [assignment] table")
    train = from_mapping(TrainConfig, table.get("train", {}), "train")
    quick = from_mapping(TrainConfig, table.get("train_quick", {}), "train_quick", base=train)
    data = from_mapping(DataConfig, table.get("data", {}), "data")
    if data.train_size + data.val_size > 50_000 or data.train_size <= 0 or data.val_size <= 0:
        raise RubricError(
            f"data.train_size + data.val_size must be positive and at most 50000 in rubric {source}"
        )
    references = from_mapping(References, table.get("references", {}), "references")
    if not 0 <= references.seed_spread < 1:
        raise RubricError(f"references.seed_spread must be a fraction of test accuracy from 0 to 1 (0.01 is one point) "
                          f"in rubric {source}")
    assignment = from_mapping(Assignment, table["assignment"], "assignment")
    _check_pattern(assignment.proposed_name_pattern, "assignment.proposed_name_pattern", source)
    return Rubric(
        assignment=assignment,
        data=data,
        train=train,
        quick=quick,
        references=references,
        checks=_parse_checks(table.get("checks", {}), source),
        source=source,
        sha256=sha256,
    )


def _check_pattern(pattern: str, key: str, source: str) -> None:
    try:
        re.compile(pattern)
    except re.error as e:
        raise RubricError(f"{key} in rubric {source} is not a valid regular expression ({e}); "
                          "fix it or set it to \"\" for no pattern") from None


def _parse_checks(table: Mapping[str, Any], source: str) -> dict[str, CheckSpec]:
    if not isinstance(table, Mapping):
        raise RubricError(f"[checks] in rubric {source} must be a table of check tables")
    unknown = sorted(set(table) - set(CHECK_IDS))
    if unknown:
        raise RubricError(
            f"unknown check checks.{unknown[0]} in rubric {source}; known checks: {', '.join(CHECK_IDS)}"
        )
    return {cid: from_mapping(CheckSpec, table[cid], f"checks.{cid}") for cid in CHECK_IDS if cid in table}
