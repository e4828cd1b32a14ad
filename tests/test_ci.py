"""`grader ci` in a student's repository: exit codes, notebook picking, annotations, log sections, JUnit."""

import dataclasses
import re
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, Skipped

from grader.cli import cli
from grader.errors import GraderError
from grader.grading.grade import grade_submission
from grader.grading.submissions import find_notebook
from grader.report.ci_log import section
from grader.report.github import command
from grader.report.junit import junit_xml
from grader.rubric import load_rubric
from support import REPO, SUBMISSIONS, workflow_commands

NO_CI = {"GITHUB_ACTIONS": None, "GITLAB_CI": None, "GITHUB_WORKSPACE": None, "CI_PROJECT_DIR": None,
         "GITHUB_STEP_SUMMARY": None}
GITHUB = {"GITHUB_ACTIONS": "true"}
DISCUSSION = "Discussion: which model is better and why"
WINNER = "The discussion names the better model, as the numbers show"
ATTRIBUTES = "The discussion credits a real difference between the models"


def repo_with(tmp_path, example, name="assignment.ipynb"):
    repo = tmp_path / "repo"
    repo.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SUBMISSIONS / f"{example}.ipynb", repo / name)
    return repo


def run_ci(target, *args, env=None, out=None):
    out = out or (target if target.is_dir() else target.parent) / "grader-results"
    return CliRunner(env={"COLUMNS": "240", **NO_CI, **(env or {})}).invoke(
        cli, ["ci", str(target), "--no-train", "--out", str(out), *map(str, args)])


def suite_of(path):
    """The one <testsuite> of a report, read by a JUnit library (as CI publishers read it)."""
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    return xml, suites[0]


def properties(case):
    return {p.get("name"): p.get("value") for p in case._elem.iter("property")}


def outcome(case):
    kinds = {type(r) for r in case.result}
    return {Failure: "failure", Error: "error", Skipped: "skipped"}[kinds.pop()] if kinds else "passed"


def test_complete_example_passes(tmp_path):
    repo = repo_with(tmp_path, "complete")
    summary = tmp_path / "summary.md"
    result = run_ci(repo, "--junit", tmp_path / "junit.xml", env={**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 0, result.output
    *_, last, resume = result.output.splitlines()  # the last line with the notebook's name is the resume line's
    assert last == "assignment.ipynb: 70/70; every required check passes" and re.fullmatch(r"::[0-9a-f]{32}::", resume)
    # no error annotation; a warning for the optional best_val_selection (informational, not met)
    assert [name for name, *_ in workflow_commands(result.output)] == ["group", "endgroup"] * 2 + ["warning"]
    assert summary.read_text().startswith("# Feedback for assignment")
    xml, suite = suite_of(tmp_path / "junit.xml")
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (10, 0, 0, 0)
    assert [outcome(c) for c in suite] == ["passed"] * 10  # the optional best_val_selection: informational, not met
    assert (REPO / "grader-results").exists() is False and (repo / "grader-results" / "result.json").exists()


def test_junit_of_a_failing_notebook_counts_and_names_the_failure(tmp_path):
    repo = repo_with(tmp_path, "missing_discussion", name="hw/hw3.ipynb")
    result = run_ci(repo, "--junit", tmp_path / "junit.xml")
    assert result.exit_code == 1
    xml, suite = suite_of(tmp_path / "junit.xml")
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (10, 3, 0, 0)
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (10, 3, 0, 0)
    assert suite.name == "grader: hw/hw3.ipynb" and suite._elem.get("file") == "hw/hw3.ipynb"
    assert suite.timestamp and float(suite.time) >= 0 and xml.time == suite.time
    failed = [c for c in suite if outcome(c) == "failure"]
    assert [(c.name, c.classname) for c in failed] == [
        (DISCUSSION, "grader.discussion"), (WINNER, "grader.discussion_names_winner"),
        (ATTRIBUTES, "grader.discussion_attributes")]
    failure = failed[0].result[0]
    assert failure.message == "no markdown cell discusses the results after the models are trained"
    assert failure.text.startswith("Add a markdown cell that says which model performs better")
    assert {c._elem.get("file") for c in suite} == {"hw/hw3.ipynb"}
    assert properties(failed[0]) == {
        "check": "discussion", "required": "true", "cell": "15"}


def test_junit_of_an_unusable_notebook_is_one_error(tmp_path):
    (tmp_path / "x.ipynb").write_text("not json")
    result = run_ci(tmp_path, "--junit", tmp_path / "junit.xml")
    assert result.exit_code == 2
    xml, suite = suite_of(tmp_path / "junit.xml")
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (1, 0, 1, 0)
    (case,) = list(suite)
    assert outcome(case) == "error" and len(case.result) == 1
    assert case.name == "The notebook can be read" and case._elem.get("file") == "x.ipynb"
    assert "is not valid JSON" in case.result[0].message


@pytest.fixture(scope="module")
def failing_result():
    return grade_submission(SUBMISSIONS / "missing_discussion.ipynb", student="s", rubric=load_rubric(), budget="none")


def test_junit_skipped_and_informational_checks(tmp_path, failing_result):
    # A check the budget could not score is skipped with its reason; a failing informational
    # (not required) check passes, marked as not met: neither is a failure.
    checks = tuple(
        dataclasses.replace(c, required=False) if c.id.startswith("discussion")
        else dataclasses.replace(c, scored=False, passed=False, message="the budget is too small to tell")
        if c.id == "same_config" else c
        for c in failing_result.checks)
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml(dataclasses.replace(failing_result, checks=checks), "hw3.ipynb"))
    xml, suite = suite_of(path)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (10, 0, 0, 1)
    by_name = {c.name: c for c in suite}
    skipped = by_name["Both models trained with the same configuration"]
    assert outcome(skipped) == "skipped" and skipped.result[0].message == "the budget is too small to tell"
    informational = by_name[DISCUSSION]
    assert outcome(informational) == "passed"
    assert properties(informational)["outcome"] == "not met (informational)"
    assert "no markdown cell discusses" in informational.system_out


def test_annotations_escape_a_notebook_name_with_colon_and_comma(tmp_path):
    repo = repo_with(tmp_path, "missing_discussion", name="HW3: CNN, final.ipynb")
    result = run_ci(repo, env=GITHUB)
    assert result.exit_code == 1
    annotation, *_ = [line for line in result.output.splitlines() if line.startswith("::error")]  # the discussion's first
    assert annotation.startswith(
        "::error file=HW3%3A CNN%2C final.ipynb,title=Cell 15%3A Discussion%3A which model is better and why::"
        "no markdown cell discusses the results after the models are trained — Add a markdown cell")
    assert ",line=" not in annotation


def test_annotation_message_keeps_newlines_and_percent():
    line = command("warning", "accuracy 50% \nthen 60%\r\n\x1b[2Jdone", file="a,b.ipynb", title="x: y")
    assert line == "::warning file=a%2Cb.ipynb,title=x%3A y::accuracy 50%25 %0Athen 60%25%0D%0A[2Jdone"
    message = line.split("::", 2)[2]
    assert message.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%") == "accuracy 50% \nthen 60%\r\n[2Jdone"


def test_annotation_file_is_relative_to_the_workspace(tmp_path):
    repo = repo_with(tmp_path, "missing_test_accuracy", name="work/hw3.ipynb")
    result = run_ci(repo / "work" / "hw3.ipynb", env={**GITHUB, "GITHUB_WORKSPACE": str(repo)})
    assert result.exit_code == 1
    annotation = next(line for line in result.output.splitlines() if line.startswith("::error"))
    assert annotation.startswith("::error file=work/hw3.ipynb,title=Cell 12%3A Validation and test accuracies reported::")
    assert "LeNet5 has no test accuracy; ResDropNet has no test accuracy" in annotation


def test_log_sections_on_github_gitlab_and_plain(tmp_path):
    repo = repo_with(tmp_path, "missing_discussion")
    github = run_ci(repo, env=GITHUB).output.splitlines()
    assert github.count("::group::grader: checks of assignment.ipynb") == 1
    assert github.count("::endgroup::") == 2
    assert f"FAIL  Cell 15: {DISCUSSION} (0/5): no markdown cell discusses the results after the models are trained" in github
    plain = run_ci(repo).output.splitlines()
    assert not [line for line in plain if line.startswith("::")]  # no workflow commands outside GitHub
    assert "== grader: checks of assignment.ipynb" in plain and plain[-1] == "assignment.ipynb: 55/70; failing: discussion, discussion_names_winner, discussion_attributes"
    gitlab = run_ci(repo, env={"GITLAB_CI": "true"}).output
    assert "\x1b[0Ksection_start:" in gitlab and "\x1b[0Ksection_end:" in gitlab
    assert section("a b", ["x"], "gitlab", now=7) == [
        "\x1b[0Ksection_start:7:a_b[collapsed=true]\r\x1b[0Ka b", "x", "\x1b[0Ksection_end:7:a_b\r\x1b[0K"]


def test_unusable_notebook_exits_2(tmp_path):
    (tmp_path / "x.ipynb").write_text("not json")
    result = run_ci(tmp_path, env=GITHUB)
    assert result.exit_code == 2
    assert "::error file=x.ipynb,title=The notebook cannot be graded::" in result.output
    assert "is not valid JSON" in result.output


def test_find_notebook(tmp_path):
    with pytest.raises(GraderError, match="no .ipynb notebook"):
        find_notebook(tmp_path)
    for hidden in (".ipynb_checkpoints/a-checkpoint.ipynb", ".git/x.ipynb", "sub/.hidden/y.ipynb"):
        (tmp_path / hidden).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / hidden).write_text("{}")
    (tmp_path / "a.ipynb").write_text("{}")
    assert find_notebook(tmp_path) == tmp_path / "a.ipynb"
    (tmp_path / "sub" / "hw3.ipynb").write_text("{}")
    with pytest.raises(GraderError) as several:
        find_notebook(tmp_path)
    assert str(several.value) == (
        f"several notebooks in {tmp_path} (a.ipynb, sub/hw3.ipynb); name the one to grade: "
        "grader ci PATH/TO/NOTEBOOK.ipynb, or the rubric's [assignment] notebook = \"GLOB\"")
    assert find_notebook(tmp_path, "hw3*.ipynb") == tmp_path / "sub" / "hw3.ipynb"
    assert find_notebook(tmp_path, "sub/*.ipynb") == tmp_path / "sub" / "hw3.ipynb"
    with pytest.raises(GraderError, match=r"no notebook .* matches .*'hw4\*\.ipynb' \(found: a.ipynb, sub/hw3.ipynb\)"):
        find_notebook(tmp_path, "hw4*.ipynb")
    with pytest.raises(GraderError, match=r"several notebooks that match assignment.notebook = '\*.ipynb'"):
        find_notebook(tmp_path, "*.ipynb")


def test_rubric_names_the_notebook_ci_grades(tmp_path):
    repo = repo_with(tmp_path, "complete", name="hw3_final.ipynb")
    shutil.copy(SUBMISSIONS / "missing_discussion.ipynb", repo / "scratch.ipynb")
    assert "several notebooks" in run_ci(repo).output  # stderr is mixed into output by CliRunner
    rubric = tmp_path / "rubric.toml"
    rubric.write_text((REPO / "rubrics" / "cifar10.toml").read_text().replace('notebook = ""', 'notebook = "hw3*.ipynb"'))
    assert load_rubric(rubric).assignment.notebook == "hw3*.ipynb"
    result = run_ci(repo, "--rubric", rubric)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "hw3_final.ipynb: 70/70; every required check passes"
