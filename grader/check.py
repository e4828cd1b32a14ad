"""The static checks: what the assignment asks for, judged from the notebook alone.

`check_notebook` is what `grader check` runs: load the rubric and the notebook, analyze, then
apply each check in `STATIC_CHECKS` (ids and order from grader.rubric.STATIC_CHECK_IDS). A check is a
small function of the analysis and the rubric that returns `(passed, fraction, message)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grader import __version__
from grader.analysis import Analysis, analyze
from grader.errors import NotebookError
from grader.notebook import Notebook, load_notebook
from grader.rubric import STATIC_CHECK_IDS, Rubric, load_rubric

SCHEMA = "grader.check/1"


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
    cell: int | None = None
    """The notebook cell the check is about (for annotations and feedback), when there is one."""

    def to_dict(self) -> dict:
        return {
            "id": self.id, "passed": self.passed, "points": self.points, "max_points": self.max_points,
            "message": self.message, "hint": self.hint, "required": self.required, "cell": self.cell,
        }


@dataclass(frozen=True)
class CheckReport:
    """The result of `grader check`: the analysis and the scored static checks."""

    notebook: str
    rubric: Rubric
    analysis: Analysis | None
    """None when the notebook could not be read."""
    checks: tuple[CheckResult, ...]
    error: str | None = None
    extra: dict = field(default_factory=dict)
    """Later stages' additions to the JSON (retraining results)."""

    @property
    def valid(self) -> bool:
        return self.error is None

    @property
    def score(self) -> float:
        return round(sum(c.points for c in self.checks), 2)

    @property
    def max_score(self) -> float:
        return round(sum(c.max_points for c in self.checks), 2)

    @property
    def exit_code(self) -> int:
        if not self.valid:
            return 2
        return 1 if any(c.required and not c.passed for c in self.checks) else 0

    def to_dict(self) -> dict:
        a = self.analysis
        return {
            "schema": SCHEMA,
            "grader_version": __version__,
            "notebook": self.notebook,
            "rubric": {"source": self.rubric.source, "sha256": self.rubric.sha256},
            "valid": self.valid,
            "error": self.error,
            "models": [m.to_dict() for m in a.models] if a else [],
            "baseline": a.baseline if a else None,
            "proposed": a.proposed if a else None,
            "helpers": [h.name for h in a.helpers] if a else [],
            "other_models": [{"name": o.name, "kind": o.kind, "cell": o.cell} for o in a.other_models] if a else [],
            "reported": {name: r.to_dict() for name, r in a.reported.items()} if a else {},
            "config": a.config.to_dict() if a else {"same": None, "detail": ""},
            "discussion": a.discussion.to_dict() if a else {"present": False, "cell": None},
            "warnings": list(a.warnings) if a else [],
            "checks": [c.to_dict() for c in self.checks],
            "score": self.score,
            "max_score": self.max_score,
            **self.extra,
        }


def check_notebook(path: str | Path, *, rubric_path: str | Path | None = None, rubric: Rubric | None = None) -> CheckReport:
    """Analyze and score a notebook. A bad rubric raises; a bad notebook is a failed report."""
    return read_and_check(path, rubric or load_rubric(rubric_path))[1]


def read_and_check(path: str | Path, rubric: Rubric) -> tuple[Notebook | None, CheckReport]:
    """The notebook (None when unusable) and its static report: the start of every command."""
    try:
        notebook = load_notebook(path)
    except NotebookError as e:
        return None, _unreadable_report(path, rubric, e)
    return notebook, check_analysis(notebook, analyze(notebook), rubric)


def _unreadable_report(path: str | Path, rubric: Rubric, error: NotebookError) -> CheckReport:
    """The report for a file that is not a usable notebook: notebook_valid fails, nothing else runs."""
    failed = make_result("notebook_valid", rubric, False, 0.0, str(error))
    return CheckReport(str(path), rubric, None, (failed,), error=str(error))


def check_analysis(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> CheckReport:
    results = []
    for check_id, check in STATIC_CHECKS.items():
        if check_id not in rubric.checks:
            continue  # a rubric may leave a check out; it then neither scores nor fails
        passed, fraction, message = check(notebook, analysis, rubric)
        results.append(make_result(check_id, rubric, passed, fraction, message, cell=cell_for(check_id, notebook, analysis)))
    return CheckReport(notebook.path, rubric, analysis, tuple(results))


def make_result(check_id: str, rubric: Rubric, passed: bool, fraction: float, message: str, cell: int | None = None) -> CheckResult:
    """A CheckResult with the rubric's points and hint; `fraction` is the partial credit of a failure."""
    spec = rubric.checks.get(check_id)
    max_points = spec.points if spec else 0.0
    return CheckResult(
        id=check_id,
        passed=passed,
        points=round(max_points * (1.0 if passed else fraction), 2),
        max_points=max_points,
        message=message,
        hint="" if passed or spec is None else spec.hint,
        required=spec.required if spec else True,
        cell=cell,
    )


def cell_for(check_id: str, notebook: Notebook, analysis: Analysis) -> int | None:
    """Where in the notebook a student should look for what a check is about."""
    proposed = analysis.model(analysis.proposed)
    trained = {m: c for c, u in sorted(analysis.usage.cells.items(), reverse=True) for m in u.trained}
    if check_id == "proposed_named" and proposed:
        return proposed.model.cell
    if check_id in ("losses_reported", "accuracies_reported", "same_config"):
        return trained.get(analysis.proposed or "") or trained.get(analysis.baseline or "")
    if check_id == "two_cnn_classes":
        return analysis.models[0].model.cell if analysis.models else None
    if check_id == "discussion":
        return analysis.discussion.cell if analysis.discussion.present else (notebook.cells[-1].index if notebook.cells else None)
    return None


# --- the checks -------------------------------------------------------------------------------

Verdict = tuple[bool, float, str]


def notebook_valid(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    skipped = sum(1 for c in analysis.cells if c.tree is None)
    note = f"; {skipped} cell(s) are not valid Python and were skipped" if skipped else ""
    upgraded = f" (upgraded from nbformat {notebook.upgraded_from})" if notebook.upgraded_from else ""
    return True, 1.0, f"a readable notebook with {len(notebook.code_cells)} code cells{upgraded}{note}"


def two_cnn_classes(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    cnns = [m.name for m in analysis.models if m.model.is_cnn]
    if len(cnns) >= 2:
        return True, 1.0, f"{len(cnns)} CNN classes: {', '.join(cnns)}"
    reasons = []
    not_cnn = [m.name for m in analysis.models if not m.model.is_cnn]
    if not_cnn:
        reasons.append(f"{', '.join(not_cnn)} use no convolution (nn.Conv2d)")
    keras = [o.name for o in analysis.other_models if o.kind == "Keras model"]
    if keras:
        reasons.append(f"the notebook builds Keras models ({', '.join(keras)}); the assignment needs PyTorch nn.Module classes")
    variables = [o.name for o in analysis.other_models if o.kind != "Keras model"]
    if variables:
        kinds = sorted({o.kind for o in analysis.other_models if o.kind != 'Keras model'})
        reasons.append(f"{', '.join(variables)} {'is' if len(variables) == 1 else 'are'} built as {' / '.join(kinds)}, not as a class")
    found = f"found {len(cnns)} CNN class{'es' if len(cnns) != 1 else ''}" + (f" ({', '.join(cnns)})" if cnns else "")
    return False, len(cnns) / 2, "; ".join([found + ", the assignment needs two", *reasons])


def proposed_named(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    name = analysis.proposed
    if name is None:
        return False, 0.0, "no proposed model was found"
    if rubric.is_generic_name(name):
        return False, 0.0, f"the proposed model is called '{name}', a generic name"
    return True, 1.0, f"the proposed model is named '{name}'"


def _reported_check(metrics: tuple[str, str], words: tuple[str, str]) -> Callable[[Notebook, Analysis, Rubric], Verdict]:
    """One check for 'both models report these two metrics' (losses; accuracies)."""

    def check(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
        pair = [n for n in (analysis.baseline, analysis.proposed) if n]
        if not pair:
            return False, 0.0, "no baseline or proposed model to report for"
        missing = []
        for name in pair:
            reported = analysis.reported.get(name)
            for metric, word in zip(metrics, words):
                if reported is None or getattr(reported, metric) is None:
                    missing.append(f"{name} has no {word}")
        found = 2 * len(pair) - len(missing)
        total = 4  # two metrics for each of two models
        if not missing and len(pair) == 2:
            values = "; ".join(_format_pair(analysis, n, metrics) for n in pair)
            return True, 1.0, f"reported for both models ({values})"
        if len(pair) < 2:
            missing.append("only one of the two models was found")
        return False, found / total, "; ".join(missing)

    return check


def _format_pair(analysis: Analysis, name: str, metrics: tuple[str, str]) -> str:
    r = analysis.reported[name]
    parts = []
    for metric in metrics:
        value = getattr(r, metric)
        parts.append(f"{metric}={value:.1%}" if metric.endswith("acc") else f"{metric}={value:.3g}")
    return f"{name}: {', '.join(parts)}"


def discussion(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    d = analysis.discussion
    if d.present:
        return True, 1.0, f"cell {d.cell} discusses the results ({d.words} words)"
    return False, 0.0, "no markdown cell discusses the results after the models are trained"


def same_config(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    c = analysis.config
    return bool(c.same), 0.0, c.detail


# The ids and their order come from grader.rubric (the rubric validates against them); this maps
# each id to the function that judges it.
STATIC_CHECKS: dict[str, Callable[[Notebook, Analysis, Rubric], Verdict]] = {
    "notebook_valid": notebook_valid,
    "two_cnn_classes": two_cnn_classes,
    "proposed_named": proposed_named,
    "losses_reported": _reported_check(("train_loss", "val_loss"), ("training loss", "validation loss")),
    "accuracies_reported": _reported_check(("val_acc", "test_acc"), ("validation accuracy", "test accuracy")),
    "discussion": discussion,
    "same_config": same_config,
}
assert tuple(STATIC_CHECKS) == STATIC_CHECK_IDS, "grader.rubric.STATIC_CHECK_IDS and STATIC_CHECKS must agree"
