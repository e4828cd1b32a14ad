"""result.json: the typed result survives the file, and results of earlier versions still resume."""

import json
import shutil

import pytest

from grader.grading.batch import grade_batch
from grader.grading.grade import grade_submission
from grader.grading.result import SCHEMA, GradeResult, Provenance, load_result, write_atomic
from grader.rubric import load_rubric
from support import SUBMISSIONS, TEST_DATA

V1 = TEST_DATA / "result-v1"


def test_a_result_round_trips_through_its_file(tmp_path, rubric):
    result = grade_submission(SUBMISSIONS / "complete.ipynb", student="ann", rubric=rubric)
    path = tmp_path / "ann" / "result.json"
    write_atomic(path, result.to_json())
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temporary file left
    stored = json.loads(path.read_text())
    assert stored["schema"] == SCHEMA and stored["score"] == 70
    assert stored["reported"]["LeNet5"]["evidence"]["test_acc"] == "cell 14: Baseline test accuracy: 60.12%"
    assert load_result(path) == result
    path.write_text(json.dumps({"schema": "other/1"}))
    assert load_result(path) is None
    path.write_text(json.dumps({**stored, "checks": [{"id": "discussion"}]}))  # a check without its fields
    assert load_result(path) is None


def test_a_trained_result_round_trips(tmp_path):
    """The /1 results hold retraining histories; read, written as /2 and read again, nothing changes."""
    old = load_result(V1 / "out" / "ann" / "result.json")
    assert old is not None and old.status == "graded"
    assert GradeResult.from_dict(json.loads(old.to_json())) == old


def test_results_of_the_first_schema_are_read_with_their_runs():
    ann = load_result(V1 / "out" / "ann" / "result.json")
    assert (ann.baseline, ann.proposed, ann.score, ann.max_score) == ("LeNet5", "ResDropNet", 50, 50)
    assert ann.runs["ResDropNet"].test_accuracy == 0.902 and ann.runs["LeNet5"].test_accuracy == 0.32
    assert ann.runs["LeNet5"].val_accuracy == ann.runs["LeNet5"].history.selected.val_accuracy
    assert ann.references["ResNet20"].params == 269_722 and ann.references["ResNet20"].history.config.epochs == 2
    assert ann.provenance.run.isolation == "bubblewrap" and ann.provenance.budget == "quick"
    assert ann.signature.layers and [m.name for m in ann.models] == ["LeNet5", "ResDropNet"]
    erin = load_result(V1 / "out" / "erin" / "result.json")
    assert erin.status == "error" and "holds no notebook" in erin.error and erin.max_score == 50


def test_results_of_the_first_schema_resume_and_give_the_same_gradebook(tmp_path, synthetic_data):
    """A batch graded by the previous version is not graded again; its gradebook is rebuilt byte for byte."""
    root = tmp_path / "class"
    root.mkdir()
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "ann.ipynb")
    shutil.copy(SUBMISSIONS / "generic_name.ipynb", root / "bob.ipynb")
    (root / "erin").mkdir()
    out = tmp_path / "out"
    shutil.copytree(V1 / "out", out)
    report = grade_batch(root, out, rubric=load_rubric(V1 / "rubric.toml"), budget="quick", data_dir=synthetic_data)
    assert sorted(report.reused) == ["ann", "bob"] and report.graded == ["erin"]
    assert (out / "gradebook.csv").read_text() == (V1 / "gradebook.csv").read_text()


@pytest.mark.parametrize("passed, required, scored, outcome", [
    (True, True, True, "passed"), (False, True, True, "failed"), (False, False, True, "not_met"),
    (False, True, False, "unscored"), (True, False, True, "passed"),
])
def test_one_outcome_per_check_decides_the_exit_code(passed, required, scored, outcome):
    """Every report reads a check through CheckResult.outcome; only 'failed' fails the run (exit 1)."""
    from grader.checks import CheckResult

    check = CheckResult(id="discussion", passed=passed, points=0.0, max_points=5.0, message="m", required=required,
                        scored=scored)
    assert check.outcome == outcome
    result = GradeResult(student="s", notebook="n.ipynb", notebook_sha256="", fingerprint="", status="graded",
                         max_score=5.0, provenance=Provenance("0", "3.11", "r", "", "none", "now"), checks=(check,))
    assert bool(result.failing) == (outcome == "failed")
