"""`grader ci` in a student's repository: exit codes, annotations at the cell, summary, JUnit."""

import shutil
import subprocess
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.errors import GraderError
from grader.grading.submissions import find_notebook
from grader.report.github import cell_lines
from support import SUBMISSIONS


def repo_with(tmp_path, example):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(SUBMISSIONS / f"{example}.ipynb", repo / "assignment.ipynb")
    return repo


def run_ci(repo, *args, env=None):
    return CliRunner(env={"COLUMNS": "240", **(env or {})}).invoke(
        cli, ["ci", str(repo), "--no-train", "--out", str(repo / "grader-results"), *map(str, args)])


def test_complete_example_passes(tmp_path):
    repo = repo_with(tmp_path, "complete")
    summary = tmp_path / "summary.md"
    result = run_ci(repo, "--junit", tmp_path / "junit.xml", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert result.exit_code == 0, result.output
    assert "every required check passes" in result.output
    assert "::error" not in result.output
    assert summary.read_text().startswith("# Feedback for assignment")
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("failures") == "0" and len(suite.findall("testcase")) == 7
    assert (repo / "grader-results" / "result.json").exists()


def test_missing_test_accuracy_fails_with_an_annotation_at_the_cell(tmp_path):
    repo = repo_with(tmp_path, "missing_test_accuracy")
    result = run_ci(repo, "--junit", tmp_path / "junit.xml")
    assert result.exit_code == 1
    notebook = repo / "assignment.ipynb"
    line = cell_lines(notebook)[12]  # the proposed model's training cell
    annotation = next(l for l in result.output.splitlines() if l.startswith("::error"))
    assert annotation.startswith(f"::error file={notebook},line={line},title=accuracies_reported (cell 12)::")
    assert "LeNet5 has no test accuracy; ResDropNet has no test accuracy" in annotation
    failure = ET.parse(tmp_path / "junit.xml").getroot().find("testcase[@name='accuracies_reported']/failure")
    assert "no test accuracy" in failure.get("message")


def test_find_notebook(tmp_path):
    with pytest.raises(GraderError, match="no .ipynb notebook"):
        find_notebook(tmp_path)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "a-checkpoint.ipynb").write_text("{}")
    (tmp_path / "a.ipynb").write_text("{}")
    assert find_notebook(tmp_path) == tmp_path / "a.ipynb"
    (tmp_path / "b.ipynb").write_text("{}")
    with pytest.raises(GraderError, match=r"several notebooks .* \(a.ipynb, b.ipynb\)"):
        find_notebook(tmp_path)


def test_unusable_notebook_exits_2(tmp_path):
    (tmp_path / "x.ipynb").write_text("not json")
    result = CliRunner().invoke(cli, ["ci", str(tmp_path), "--no-train", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "::error file=" in result.output and "is not valid JSON" in result.output
