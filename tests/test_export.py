"""grader export: a graded folder as a CSV per check, or as a Canvas gradebook import file."""

import csv
import io

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.errors import GraderError
from grader.grading.batch import grade_batch
from grader.grading.overrides import load_overrides
from grader.report.export import export_canvas, export_csv, load_graded
from grader.report.roster import load_roster, match_roster
from grader.report.spreadsheet import safe_cell
from support import SUBMISSIONS, class_folder

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]

ROSTER = """\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,HW3 (12345),Current Score
    Points Possible,,,,,100,(read only)
"Lovelace, Ann",101,s-101,ANN,CS 101 A,,
"=HYPERLINK(""http://x""),Bob",102,s-102,bob@uni.edu,CS 101 B,,
"Turing, Alan",103,s-103,aturing,CS 101 A,,
"""
"""A Canvas gradebook export: ann by SIS Login ID (other case), bob by his email's login, Alan with no submission."""


def table(text):
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def graded(tmp_path, rubric):
    """ann (70 of 70), bob (55, raised to 59 by an override), @carl (not in the roster) and erin (no notebook)."""
    root = class_folder(tmp_path / "class", {"ann": "complete", "bob": "missing_discussion", "@carl": "generic_name"},
                        without_notebook=("erin",))
    overrides = tmp_path / "overrides.toml"
    overrides.write_text('[[override]]\nstudent = "bob"\ncheck = "discussion"\npoints = 4\n')
    out = tmp_path / "out"
    grade_batch(root, out, rubric=rubric, budget="none", overrides=load_overrides(overrides, rubric))
    return out


def test_csv_has_total_max_and_a_column_per_check_under_its_title(graded):
    rows = table(export_csv(load_graded(graded)).text)
    assert rows[0][:5] == ["student", "status", "total", "max", "max_scored"]
    assert rows[0][5:] == ["The notebook can be read", "Two CNN classes: a baseline and a proposed model",
                           "The proposed model has a name of its own", "Training and validation losses reported",
                           "Validation and test accuracies reported", "Discussion: which model is better and why",
                           "The discussion names the better model, as the numbers show",
                           "The discussion credits a real difference between the models",
                           "Both models trained with the same configuration",
                           "The final model is the best on the validation set (optional)"]  # no run checks under --no-train
    by_student = {r[0]: r for r in rows[1:]}
    assert list(by_student) == ["'@carl", "ann", "bob", "erin"]  # a leading @ would be a formula in a spreadsheet
    assert by_student["bob"][:5] == ["bob", "graded", "59", "70", "70"] and by_student["bob"][10] == "4"
    assert by_student["ann"][1:5] == ["graded", "70", "70", "70"]
    assert by_student["erin"][:5] == ["erin", "error", "0", "70", "70"] and by_student["erin"][6:] == [""] * 9


def test_canvas_without_a_roster_puts_the_graders_id_in_sis_login_id(graded):
    export = export_canvas(load_graded(graded), assignment="HW3 (12345)")
    rows = table(export.text)
    assert rows[0] == [*IDENTITY, "HW3 (12345)"]
    assert rows[1] == ["Points Possible", "", "", "", "", "70"]
    assert rows[2:] == [["'@carl", "", "", "'@carl", "", "65"], ["ann", "", "", "ann", "", "70"],
                        ["bob", "", "", "bob", "", "59"], ["erin", "", "", "erin", "", "0"]]
    assert export.problems == ()


def test_canvas_with_a_roster_uses_canvas_ids_and_reports_who_is_missing(graded, tmp_path, rubric):
    roster = tmp_path / "canvas.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    export = export_canvas(load_graded(graded), roster=load_roster(roster))
    rows = table(export.text)
    assert rows[0] == [*IDENTITY, rubric.assignment.name]  # the default column: the rubric's assignment
    assert rows[1][0] == "Points Possible" and rows[1][-1] == "70"
    assert rows[2:] == [
        ["'@carl", "", "", "'@carl", "", "65"],
        ["Lovelace, Ann", "101", "s-101", "ANN", "CS 101 A", "70"],
        ["'=HYPERLINK(\"http://x\"),Bob", "102", "s-102", "bob@uni.edu", "CS 101 B", "59"],
        ["erin", "", "", "erin", "", "0"],
    ]
    assert export.problems == (
        "graded '@carl' is not in the roster; exported under its own id (SIS Login ID)",
        "graded 'erin' is not in the roster; exported under its own id (SIS Login ID)",
        "roster student 'Turing, Alan' (aturing) has no graded submission; left out of the file",
    )


def test_roster_matching_order_and_ambiguity(tmp_path):
    roster = tmp_path / "canvas.csv"
    roster.write_text("Student,ID,SIS User ID,SIS Login ID,Section\nPoints Possible,,,,\n"
                      "A,1,x1,dana,S\nB,2,dana,d2,S\nC,3,u3,kim@a.edu,S\nD,4,u4,kim@b.edu,S\nE,55,u5,e5,S\n")
    students = load_roster(roster)
    assert [s.name for s in students] == ["A", "B", "C", "D", "E"]  # the Points Possible row is not a student
    match = match_roster(["DANA", "kim", "55", "dana"], students)
    assert {k: v.name for k, v in match.students.items()} == {"DANA": "A", "55": "E"}  # SIS Login ID before SIS User ID
    assert match.problems[:2] == (
        "graded 'kim' matches several roster students ('C', 'D'); not matched, exported under its own id",
        "graded 'dana' matches roster student 'A', already matched by 'DANA'; not matched, exported under its own id")
    assert match.problems[2:] == tuple(f"roster student {s!r} ({login}) has no graded submission; left out of the file"
                                       for s, login in (("B", "d2"), ("C", "kim@a.edu"), ("D", "kim@b.edu")))


def test_not_a_roster_or_not_a_graded_folder_is_one_line(tmp_path, graded):
    bad = tmp_path / "grades.csv"
    bad.write_text("name,score\nann,3\n")
    with pytest.raises(GraderError, match="is not a Canvas gradebook export: its header needs Student"):
        load_roster(bad)
    with pytest.raises(GraderError, match="holds no graded results"):
        load_graded(tmp_path / "class")
    other = tmp_path / "other.toml"
    other.write_text((SUBMISSIONS.parent / "rubrics" / "cifar10.toml").read_text() + "\n# changed\n")
    with pytest.raises(GraderError, match="was graded with another rubric than .*other.toml .*pass --rubric"):
        load_graded(graded, other)


def test_safe_cell_quotes_what_a_spreadsheet_would_run():
    assert [safe_cell(t) for t in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "ann", "")] == \
        ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "ann", ""]


def test_the_export_command_writes_the_file_and_one_line_per_problem(graded, tmp_path):
    roster = tmp_path / "canvas.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    target = tmp_path / "canvas-import.csv"
    done = CliRunner().invoke(cli, ["export", "canvas", str(graded), "--out", str(target),
                                                    "--roster", str(roster), "--assignment", "HW3 (12345)"])
    assert done.exit_code == 0, done.output
    assert done.stdout == f"wrote {target}: 4 students, out of 70 points\n"
    assert done.stderr.count("\n") == 3 and done.stderr.startswith("warning: graded '@carl' is not in the roster")
    assert table(target.read_text())[0][-1] == "HW3 (12345)"
    flat = CliRunner().invoke(cli, ["export", "csv", str(graded), "--out", str(tmp_path / "flat.csv")])
    assert flat.exit_code == 0 and (tmp_path / "flat.csv").read_text().startswith("student,status,total,max,")
    wrong = CliRunner().invoke(cli, ["export", "csv", str(graded), "--out", str(tmp_path / "x.csv"), "--roster", str(roster)])
    assert wrong.exit_code == 2 and wrong.output.count("\n") == 1 and "apply to grader export canvas only" in wrong.output
