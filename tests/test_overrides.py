"""An instructor's overrides: points and comments set without grading anyone again, undone by deleting them."""

import json
from dataclasses import replace

import pytest

from grader.grading.batch import grade_batch
from grader.grading.executors.base import GradeOptions
from grader.grading.overrides import NOT_JUDGED, OverrideError, apply_overrides, load_overrides
from grader.grading.result import load_result
from support import class_folder

COMMENT = "Good argument; cite your numbers next time."


class NoGrading:
    """An executor that fails the test if it is asked to grade anyone."""

    def grade(self, todo, options: GradeOptions, on_progress=None):
        assert [sub.student for sub in todo] == [], "an override must not grade anyone again"
        yield from ()


@pytest.fixture
def graded(tmp_path, rubric):
    """A class graded once (static budget): ann passes everything, bob has no discussion (55 of 70)."""
    root = class_folder(tmp_path / "class", {"ann": "complete", "bob": "missing_discussion"})
    out = tmp_path / "out"
    grade_batch(root, out, rubric=rubric, budget="none")
    return root, out


def write(tmp_path, text, name="overrides.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def entry(student="bob", check="discussion", points=4, comment=COMMENT):
    return f'[[override]]\nstudent = "{student}"\ncheck = "{check}"\npoints = {points}\ncomment = "{comment}"\n'


def row(out, student):
    return next(line for line in (out / "gradebook.csv").read_text().splitlines() if line.startswith(student + ","))


def test_an_override_changes_points_and_total_everywhere_without_grading_again(graded, tmp_path, rubric):
    root, out = graded
    before = load_result(out / "bob" / "result.json")
    overrides = load_overrides(write(tmp_path, entry()), rubric)
    report = grade_batch(root, out, rubric=rubric, budget="none", executor=NoGrading(), overrides=overrides)
    assert report.graded == [] and sorted(report.reused) == ["ann", "bob"]

    stored = load_result(out / "bob" / "result.json")
    discussion = next(c for c in stored.checks if c.id == "discussion")
    assert (discussion.points, discussion.overridden_from, discussion.instructor_comment) == (4, 0, COMMENT)
    assert stored.score == before.score + 4 == 59 and stored.max_score == 70
    assert stored.fingerprint == before.fingerprint  # overrides are not part of what a grade depends on
    gradescope = json.loads((out / "bob" / "results.json").read_text())
    assert gradescope["score"] == 59
    test = next(t for t in gradescope["tests"] if t["extra_data"]["check"] == "discussion")
    assert test["score"] == 4 and COMMENT in test["output"] and "autograder gave 0" in test["output"]
    assert row(out, "bob").startswith("bob,graded,59,70,70,") and row(out, "bob").endswith(",discussion")
    assert row(out, "ann").startswith("ann,graded,70,70,70,")  # nobody else changes


def test_deleting_an_override_restores_the_autograders_points_on_the_next_run(graded, tmp_path, rubric):
    root, out = graded
    original = load_result(out / "bob" / "result.json")
    grade_batch(root, out, rubric=rubric, budget="none", executor=NoGrading(),
                overrides=load_overrides(write(tmp_path, entry()), rubric))
    report = grade_batch(root, out, rubric=rubric, budget="none", executor=NoGrading(),
                         overrides=load_overrides(write(tmp_path, ""), rubric))
    assert report.graded == []
    assert load_result(out / "bob" / "result.json") == original
    assert row(out, "bob").startswith("bob,graded,55,70,70,") and row(out, "bob").endswith(",")
    assert json.loads((out / "bob" / "results.json").read_text())["score"] == 55


def test_applying_is_idempotent_and_a_changed_override_replaces_the_earlier_one(graded, tmp_path, rubric):
    _, out = graded
    original = load_result(out / "bob" / "result.json")
    twelve = load_overrides(write(tmp_path, entry()), rubric)
    once = apply_overrides(original, twelve, rubric)
    assert apply_overrides(once, twelve, rubric) == once
    five = apply_overrides(once, load_overrides(write(tmp_path, entry(points=5, comment="")), rubric), rubric)
    discussion = next(c for c in five.checks if c.id == "discussion")
    assert (discussion.points, discussion.overridden_from, five.score) == (5, 0, 60)  # from the autograder's 0, not 4
    assert apply_overrides(five, (), rubric) == original


def test_a_check_the_budget_did_not_score_counts_out_of_its_rubric_points(graded, tmp_path, rubric):
    """Under --no-train the run checks are not in the result: an override adds one and its maximum."""
    _, out = graded
    original = load_result(out / "ann" / "result.json")
    overrides = load_overrides(write(tmp_path, entry("ann", "models_run", 7, "Ran it myself.")), rubric)
    result = apply_overrides(original, overrides, rubric)
    added = next(c for c in result.checks if c.id == "models_run")
    assert (added.points, added.max_points, added.overridden_from, added.message) == (7, 10, 0, NOT_JUDGED)
    assert (result.score, result.max_score) == (77, 80)
    assert [c.id for c in result.checks].index("models_run") == len(original.checks)  # in registry order
    assert apply_overrides(result, (), rubric) == original

    unscored = replace(original, checks=original.checks + (replace(added, points=0.0, max_points=0.0, passed=False,
                       overridden_from=None, instructor_comment="", message="the budget was too small"),),
                       max_score=70)  # as a training budget leaves a check it could not judge
    result = apply_overrides(unscored, overrides, rubric)
    assert (result.score, result.max_score) == (77, 80)
    assert apply_overrides(result, (), rubric) == unscored


def test_an_ungradable_submission_may_be_scored_by_hand(tmp_path, rubric):
    root = class_folder(tmp_path / "class", {}, without_notebook=("erin",))
    out = tmp_path / "out"
    overrides = load_overrides(write(tmp_path, entry("erin", "two_cnn_classes", 20, "Emailed; graded by hand.")), rubric)
    report = grade_batch(root, out, rubric=rubric, budget="none", overrides=overrides)
    erin = report.results["erin"]
    assert erin.status == "error" and (erin.score, erin.max_score) == (20, 70)  # the budget's maximum already counts it
    assert load_result(out / "erin" / "result.json") == erin
    assert row(out, "erin").startswith("erin,error,20,70,70,")


@pytest.mark.parametrize("text, message", [
    (entry(check="discusion"), "line 1: unknown check 'discusion'; the rubric's checks are notebook_valid, "),
    ("# a comment\n\n" + entry(points=16), "line 3: points = 16 for 'discussion' must be between 0 and 5"),
    (entry() + "\n" + entry(check="two_cnn_classes", points=-1), "line 7: points = -1 for 'two_cnn_classes' must be"),
    ('[[override]]\nstudent = "bob"\ncheck = "discussion"\n', "missing key override.points in "),
    ('[[override]]\nstudent = "bob"\ncheck = "discussion"\npoints = "12"\n', "override.points = '12' in "),
    (entry() + "pts = 3\n", "unknown key override.pts in "),
    (entry() + "\n" + entry(points=3), "line 7: student 'bob' has check 'discussion' overridden a second time (first at"),
    ("[override]\nstudent = 'bob'\n", "must be [[override]] tables"),
    ("[[overide]]\nstudent = 'bob'\n", "unknown key 'overide'"),
    ("[[override]\n", "is not valid TOML"),
])
def test_a_bad_overrides_file_is_one_line_naming_the_entry(tmp_path, rubric, text, message):
    path = write(tmp_path, text)
    with pytest.raises(OverrideError) as caught:
        load_overrides(path, rubric)
    said = str(caught.value)
    assert message in said and "\n" not in said
    assert str(path) in said


def test_overrides_of_students_not_in_the_class_stop_the_batch_before_grading(graded, tmp_path, rubric):
    root, out = graded
    overrides = load_overrides(write(tmp_path, entry("bbo") + "\n" + entry("carol")), rubric)
    with pytest.raises(OverrideError) as caught:
        grade_batch(root, out, rubric=rubric, budget="none", executor=NoGrading(), overrides=overrides)
    said = str(caught.value)
    assert "\n" not in said and said.startswith(f"overrides for students not in {root}: 'bbo' at ")
    assert "line 1 (did you mean 'bob'?)" in said and "'carol' at " in said and "line 7" in said


def test_the_command_line_applies_overrides_and_reports_bad_files_in_one_line(graded, tmp_path):
    from click.testing import CliRunner

    from grader.cli import cli

    root, out = graded
    good = CliRunner().invoke(cli, ["grade", str(root), "--out", str(out), "--no-train",
                                    "--overrides", str(write(tmp_path, entry()))])
    assert good.exit_code == 0, good.output
    assert load_result(out / "bob" / "result.json").score == 59
    bad = CliRunner().invoke(cli, ["grade", str(root), "--out", str(out), "--no-train",
                                   "--overrides", str(write(tmp_path, entry(points=99), "bad.toml"))])
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "must be between 0 and 5" in bad.output
    missing = CliRunner().invoke(cli, ["grade", str(root), "--out", str(out), "--no-train",
                                       "--overrides", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 2 and "does not exist; pass --overrides with a TOML file" in missing.output
