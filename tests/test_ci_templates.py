"""The CI templates in ci-templates/: current actions, least privilege, caches, and the JUnit path they publish."""

import shlex

import pytest
import yaml

from support import REPO

TEMPLATES = REPO / "ci-templates"

CURRENT_MAJORS = {
    "actions/checkout": "v7",
    "actions/setup-python": "v7",
    "actions/cache/restore": "v6",
    "actions/cache/save": "v6",
    "actions/upload-artifact": "v7",
    "actions/download-artifact": "v8",
    "mikepenz/action-junit-report": "v6",
}
"""The current major version of every action the workflow uses (looked up in late 2026)."""

WATCHED = {"**.ipynb", "rubric.toml", ".github/workflows/grader.yml"}


@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load((TEMPLATES / ".github" / "workflows" / "grader.yml").read_text())


@pytest.fixture(scope="module")
def gitlab():
    return yaml.safe_load((TEMPLATES / ".gitlab-ci.yml").read_text())["grader"]


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_using(workflow, action):
    (step,) = [s for s in steps(workflow) if s.get("uses", "").startswith(f"{action}@")]
    return step


def junit_written_by(script: str) -> str:
    """The --junit path of the `grader ci` command in a run script."""
    (line,) = [line for line in script.splitlines() if line.strip().startswith("grader ci ")]
    args = shlex.split(line)
    return args[args.index("--junit") + 1]


def test_workflow_uses_the_current_major_of_every_action(workflow):
    used = {s["uses"].partition("@")[0]: s["uses"].partition("@")[2] for s in steps(workflow) if "uses" in s}
    assert used == CURRENT_MAJORS


def test_workflow_triggers_on_notebooks_and_the_rubric_only(workflow):
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers["push"]["paths"]) == WATCHED and set(triggers["pull_request"]["paths"]) == WATCHED


def test_workflow_cancels_superseded_runs_and_keeps_least_privilege(workflow):
    assert workflow["concurrency"] == {"group": "grader-${{ github.ref }}", "cancel-in-progress": True}
    assert workflow["permissions"] == {"contents": "read"}
    check, report = workflow["jobs"]["check"], workflow["jobs"]["report"]
    assert "permissions" not in check  # the job that runs the student's code inherits read-only
    assert report["permissions"] == {"contents": "read", "checks": "write"}
    assert [s["uses"].partition("@")[0] for s in report["steps"]] == [
        "actions/download-artifact", "mikepenz/action-junit-report"]
    assert step_using(workflow, "actions/checkout")["with"]["persist-credentials"] is False


def test_workflow_caches_pip_and_the_references_even_when_the_notebook_fails(workflow):
    assert step_using(workflow, "actions/setup-python")["with"]["cache"] == "pip"
    restore, save = step_using(workflow, "actions/cache/restore"), step_using(workflow, "actions/cache/save")
    key = restore["with"]["key"]
    assert "steps.install.outputs.version" in key and "hashFiles('rubric.toml')" in key
    assert save["if"].startswith("always()") and save["with"]["key"] == "${{ steps.cache.outputs.cache-primary-key }}"
    assert save["with"]["path"] == restore["with"]["path"]
    assert workflow["env"]["GRADER_CACHE"] == "${{ github.workspace }}/.grader-cache"
    assert restore["with"]["path"].split() == [".grader-cache", "!.grader-cache/state"]


def test_workflow_publishes_and_uploads_the_junit_file_grader_ci_writes(workflow):
    (grade,) = [s for s in workflow["jobs"]["check"]["steps"] if "grader ci " in s.get("run", "")]
    junit = junit_written_by(grade["run"])
    assert junit == "grader-junit.xml"
    publish, upload = step_using(workflow, "mikepenz/action-junit-report"), step_using(workflow, "actions/upload-artifact")
    assert publish["with"]["report_paths"] == junit
    assert junit in upload["with"]["path"].split() and upload["if"] == "always()"
    assert step_using(workflow, "actions/download-artifact")["with"]["name"] == upload["with"]["name"]
    assert workflow["jobs"]["report"]["if"].startswith("always()")
    assert any("::group::" in s.get("run", "") for s in steps(workflow))


def test_gitlab_template_reports_junit_and_caches_the_references(gitlab):
    junit = junit_written_by("\n".join(gitlab["script"]))
    assert gitlab["artifacts"]["reports"]["junit"] == junit and gitlab["artifacts"]["when"] == "always"
    assert junit in gitlab["artifacts"]["paths"]
    references = next(c for c in gitlab["cache"] if isinstance(c["key"], dict))
    assert references["key"] == {"files": ["rubric.toml"], "prefix": "grader-$GRADER_VERSION"}
    assert ".grader-cache/references" in references["paths"] and references["when"] == "always"
    assert gitlab["variables"]["GRADER_CACHE"] == "$CI_PROJECT_DIR/.grader-cache"
    assert gitlab["interruptible"] is True
    assert set(gitlab["rules"][0]["changes"]) == {"**/*.ipynb", "rubric.toml", ".gitlab-ci.yml"}


def test_grader_cache_puts_references_and_data_where_the_templates_cache_them(monkeypatch, tmp_path):
    from grader.config import default_data_dir
    from grader.training.references import reference_cache_dir

    monkeypatch.setenv("GRADER_CACHE", str(tmp_path / ".grader-cache"))
    monkeypatch.delenv("GRADER_DATA", raising=False)
    assert reference_cache_dir() == tmp_path / ".grader-cache" / "references"
    assert default_data_dir() == tmp_path / ".grader-cache" / "data"
