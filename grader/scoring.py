"""Scoring against the references: the checks that need the grader's own retraining.

Every number compared here was produced by the grader under one fixed configuration: the
student's two models and the reference networks, same data, same seed, same budget. The student's
reported figures are compared with the reproduced ones only to flag a gap for review; a gap is
never penalised automatically, because the student may have trained longer or differently.

Inputs are plain JSON-shaped mappings (what `result.json` stores), so that a re-run, the batch
and `grader ci` can score from stored results without retraining.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from grader.analysis import Analysis
from grader.check import CheckResult, make_result
from grader.rubric import Rubric

Retrain = Mapping[str, Mapping]
"""Model class -> {"test_acc", "val_acc", "history", "error", ...} from the sandboxed retraining."""
References = Mapping[str, Mapping]
"""Reference class name -> {"test_acc", "val_acc", "history", ...} trained under the same config."""


@dataclass(frozen=True)
class Scored:
    """The run checks, and what they found that an instructor should look at."""

    checks: tuple[CheckResult, ...]
    flags: tuple[str, ...]
    """For review; never part of the score (a reported accuracy the retraining does not reproduce)."""


def score_against_references(analysis: Analysis, retrain: Retrain, references: References, rubric: Rubric) -> Scored:
    """The run checks the rubric lists, in rubric order (models_run is scored by the sandbox stage)."""
    base_name, prop_name = analysis.baseline, analysis.proposed
    base = _accuracy(retrain, base_name)
    prop = _accuracy(retrain, prop_name)
    ref_base = _accuracy(references, rubric.references.baseline)
    ref_strong = _accuracy(references, rubric.references.strong)
    checks = {
        "baseline_works": lambda: _baseline_works(base_name, base, ref_base, rubric),
        "proposed_beats_baseline": lambda: _proposed_beats_baseline(base_name, base, prop_name, prop),
        "proposed_vs_references": lambda: _proposed_vs_references(prop_name, prop, ref_base, ref_strong, rubric),
    }
    results, flags = [], []
    for check_id, check in checks.items():
        if check_id in rubric.checks:
            passed, fraction, message = check()
            results.append(make_result(check_id, rubric, passed, fraction, message))
    if "reported_matches" in rubric.checks:
        passed, message, gap = _reported_matches(analysis, retrain, rubric)
        results.append(make_result("reported_matches", rubric, passed, 0.0, message))
        if gap:
            flags.append(f"reported vs reproduced: {message}")
    return Scored(tuple(results), tuple(flags))


def _accuracy(results: Mapping[str, Mapping], name: str | None) -> float | None:
    entry = results.get(name) if name else None
    value = entry.get("test_acc") if entry else None
    return float(value) if isinstance(value, (int, float)) else None


def _not_run(*names_and_values: tuple[str, float | None]) -> str | None:
    missing = [name for name, value in names_and_values if value is None]
    return f"not scored: no retrained test accuracy for {', '.join(missing)}" if missing else None


def _baseline_works(name: str | None, base: float | None, ref: float | None, rubric: Rubric):
    margin = rubric.checks["baseline_works"].threshold
    reason = _not_run((name or "the baseline", base), (f"the reference {rubric.references.baseline}", ref))
    if reason:
        return False, 0.0, reason
    assert base is not None and ref is not None
    passed = base >= ref - margin
    relation = "within" if passed else "more than"
    return passed, 0.0, (
        f"{name} reached {base:.1%} test accuracy, {relation} {margin:.0%} of the reference "
        f"{rubric.references.baseline} ({ref:.1%}) trained the same way"
    )


def _proposed_beats_baseline(base_name: str | None, base: float | None, prop_name: str | None, prop: float | None):
    reason = _not_run((base_name or "the baseline", base), (prop_name or "the proposed model", prop))
    if reason:
        return False, 0.0, reason
    assert base is not None and prop is not None
    gap = prop - base
    verb = "beats" if gap > 0 else "does not beat"
    return gap > 0, 0.0, f"{prop_name} ({prop:.1%}) {verb} {base_name} ({base:.1%}) by {gap * 100:+.1f} points under the fixed config"


def _proposed_vs_references(name: str | None, prop: float | None, ref_base: float | None, ref_strong: float | None, rubric: Rubric):
    refs = rubric.references
    reason = _not_run((name or "the proposed model", prop), (f"the reference {refs.baseline}", ref_base), (f"the reference {refs.strong}", ref_strong))
    if reason:
        return False, 0.0, reason
    assert prop is not None and ref_base is not None and ref_strong is not None
    span = ref_strong - ref_base
    position = (prop - ref_base) / span if span > 0 else float(prop >= ref_strong)
    fraction = min(max(position, 0.0), 1.0)  # capped: beating the ResNet earns full, not extra, credit
    where = f"{fraction:.0%} of the way from {refs.baseline} ({ref_base:.1%}) to {refs.strong} ({ref_strong:.1%})"
    return fraction >= 1.0, fraction, f"{name} ({prop:.1%}) lands {where}"


def _reported_matches(analysis: Analysis, retrain: Retrain, rubric: Rubric) -> tuple[bool, str, bool]:
    """(passed, message, a gap beyond the tolerance was found)."""
    tolerance = rubric.checks["reported_matches"].threshold
    gaps, compared = [], []
    for name in (analysis.baseline, analysis.proposed):
        reported = analysis.reported.get(name) if name else None
        reproduced = _accuracy(retrain, name)
        if reported is None or reported.test_acc is None or reproduced is None:
            continue
        gap = reported.test_acc - reproduced
        compared.append(f"{name}: reported {reported.test_acc:.1%}, reproduced {reproduced:.1%}")
        if abs(gap) > tolerance:
            gaps.append(name)
    if not compared:
        return False, "not compared: no model has both a reported and a reproduced test accuracy", False
    verdict = (
        f"differs by more than {tolerance:.0%} for {', '.join(gaps)}; flagged for review, not penalised"
        if gaps else f"within {tolerance:.0%}"
    )
    return not gaps, f"{'; '.join(compared)} ({verdict})", bool(gaps)


def guessed_role_flags(analysis: Analysis) -> list[str]:
    """The baseline or proposed role the grader had to guess: worth an instructor's look."""
    return [
        f"role of {m.name} is a guess: {m.role.reason}"
        for m in analysis.models
        if m.role.guessed and m.name in (analysis.baseline, analysis.proposed)
    ]
