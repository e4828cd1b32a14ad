"""Scoring against the references, with retraining results given as the stored JSON shapes."""

import pytest

from conftest import SUBMISSIONS
from grader.analysis import analyze
from grader.notebook import load_notebook
from grader.scoring import score_against_references

REFS = {"LeNet5": {"test_acc": 0.60}, "ResNet20": {"test_acc": 0.80}}


@pytest.fixture(scope="module")
def analysis():
    return analyze(load_notebook(SUBMISSIONS / "complete.ipynb"))  # reports 60.12% / 76.54%


def scored(analysis, rubric, base, prop, refs=REFS):
    retrain = {"LeNet5": {"test_acc": base}, "ResDropNet": {"test_acc": prop}}
    return {c.id: c for c in score_against_references(analysis, retrain, refs, rubric).checks}


def test_a_good_submission(analysis, rubric):
    checks = scored(analysis, rubric, base=0.59, prop=0.75)
    assert checks["baseline_works"].passed  # within 5 points of the reference LeNet5
    assert checks["proposed_beats_baseline"].passed
    assert checks["proposed_beats_baseline"].message == "ResDropNet (75.0%) beats LeNet5 (59.0%) by +16.0 points under the fixed config"
    partial = checks["proposed_vs_references"]
    assert not partial.passed and partial.points == pytest.approx(0.75 * 5)  # 75% of the way to ResNet20
    assert checks["reported_matches"].passed


def test_credit_is_capped_and_failures_explained(analysis, rubric):
    checks = scored(analysis, rubric, base=0.40, prop=0.35)
    assert not checks["baseline_works"].passed
    assert "more than 5% of the reference LeNet5 (60.0%)" in checks["baseline_works"].message
    assert not checks["proposed_beats_baseline"].passed and checks["proposed_beats_baseline"].points == 0
    assert checks["proposed_vs_references"].points == 0
    top = scored(analysis, rubric, base=0.6, prop=0.95)["proposed_vs_references"]
    assert top.passed and top.points == top.max_points


def test_a_reported_gap_is_flagged_not_penalised(analysis, rubric):
    checks = scored(analysis, rubric, base=0.45, prop=0.60)
    gap = checks["reported_matches"]
    assert not gap.passed and not gap.required and gap.max_points == 0
    assert "LeNet5: reported 60.1%, reproduced 45.0%" in gap.message
    assert "flagged for review, not penalised" in gap.message
    retrain = {"LeNet5": {"test_acc": 0.45}, "ResDropNet": {"test_acc": 0.60}}
    flags = score_against_references(analysis, retrain, REFS, rubric).flags
    assert flags == (f"reported vs reproduced: {gap.message}",)
    assert score_against_references(analysis, {"LeNet5": {"test_acc": 0.60}}, REFS, rubric).flags == ()


def test_missing_runs_are_not_scored(analysis, rubric):
    scored = score_against_references(analysis, {"LeNet5": {"test_acc": None, "error": "timed out"}}, {}, rubric)
    assert scored.flags == ()
    checks = {c.id: c for c in scored.checks}
    assert checks["baseline_works"].message == "not scored: no retrained test accuracy for LeNet5, the reference LeNet5"
    assert all(c.points == 0 for c in checks.values())
