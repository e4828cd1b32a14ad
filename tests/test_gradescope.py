"""The Gradescope autograder: the zip `grader gradescope build` writes, run as Gradescope runs it
(unpacked into a root like /autograder, run_autograder copied beside source/), and every
results.json it produces checked against a JSON Schema written from Gradescope's specification."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support import REPO, SMALL_RUBRIC, SUBMISSIONS, autograder_env, build, run_autograder, unpack, valid

def grader_check_score(notebook: Path, *args: str) -> float:
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(notebook), "--json", *args],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(done.stdout)["score"]


@pytest.fixture(scope="module")
def static_zip(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("zip"), "--budget", "none")


def test_zip_holds_executable_scripts_the_rubric_and_the_budget(static_zip, tmp_path):
    with zipfile.ZipFile(static_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        config = json.loads(archive.read("autograder.json"))
        rubric = archive.read("rubric.toml")
    for script in ("setup.sh", "run_autograder"):
        assert infos[script].external_attr >> 16 & 0o777 == 0o755
    assert config["budget"] == "none" and config["rubric"] == "rubric.toml" and config["data"] is None
    assert config["timeout_minutes"] == 10  # Gradescope's default: the grader is stopped at 510 s, killed by 520 s
    script = zipfile.ZipFile(static_zip).read("run_autograder").decode()
    assert "DEADLINE=510 " in script and "GRACE=10 " in script and "@" not in script  # every placeholder filled
    assert rubric == (REPO / "rubrics" / "cifar10.toml").read_bytes()
    assert {"cnn-grader/pyproject.toml", "cnn-grader/grader/cli.py", "cnn-grader/grader/child/train.py",
            "cnn-grader/rubrics/cifar10.toml", "cnn-grader/reference_models/__init__.py"} <= set(infos)
    assert not any("__pycache__" in name for name in infos)
    root = unpack(static_zip, tmp_path / "autograder")
    assert subprocess.run(["bash", "-n", str(root / "source" / "setup.sh")]).returncode == 0
    assert subprocess.run(["bash", "-n", str(root / "run_autograder")]).returncode == 0
    setup = (root / "source" / "setup.sh").read_text()
    assert "'torch>=2.2,<2.15' 'torchvision>=0.17,<0.30'" in setup and "@TORCH_REQUIREMENTS@" not in setup
    assert "bubblewrap" in setup and "gradescope prepare" in setup


def test_complete_notebook_scores_as_grader_check(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"name": "Ann Lee", "email": "ann@example.edu", "id": 1}]}))
    results = run_autograder(root)
    assert results["score"] == grader_check_score(SUBMISSIONS / "complete.ipynb") == 70
    assert results["output_format"] == "md" and results["output"].startswith("# Feedback for Ann Lee (ann\\@example.edu)")
    assert results["extra_data"]["budget"] == "none" and len(results["extra_data"]["rubric_sha256"]) == 64
    named = {t["name"]: t for t in results["tests"]}
    assert named["The proposed model has a name of its own"]["status"] == "passed"
    assert "leaderboard" not in results  # nothing was retrained: no value to rank


def test_informational_checks_are_not_failed(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "generic_name.ipynb", root / "submission")
    results = run_autograder(root)
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    readable = by_check["notebook_valid"]  # 0 points in the rubric
    assert "informational" in readable["tags"] and not {"status", "score", "max_score"} & set(readable)
    assert "carries no points" in readable["output"]
    named = by_check["proposed_named"]
    assert named["status"] == "failed" and named["score"] == 0 and named["max_score"] == 5 and "How to fix" in named["output"]
    assert results["score"] == grader_check_score(SUBMISSIONS / "generic_name.ipynb") == 65


@pytest.mark.parametrize("notebooks, expected", [((), "No notebook was found"),
                                                  (("a.ipynb", "extra/b.ipynb"), "holds 2 notebooks")])
def test_no_notebook_or_several_score_zero_and_say_what_to_hand_in(static_zip, tmp_path, notebooks, expected):
    root = unpack(static_zip, tmp_path / "autograder")
    (root / "submission" / "notes.txt").write_text("my answers")
    for name in notebooks:
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission" / name)
    results = run_autograder(root)
    assert results["score"] == 0 and results["tests"] == []
    assert expected in results["output"] and "Hand in exactly one Jupyter notebook" in results["output"]


def test_a_grader_that_cannot_start_still_leaves_a_valid_result(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    results = run_autograder(root, python="/bin/false")
    assert results["score"] == 0 and "tell your instructor" in results["output"]


def test_a_broken_config_is_the_instructors_problem_not_a_traceback(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    (root / "source" / "autograder.json").write_text('{"budget": "fast"}')
    results = run_autograder(root)
    assert results["score"] == 0 and "not a problem with your notebook" in results["output"]
    assert "Traceback" not in results["output"]


def test_build_refuses_data_without_a_training_budget(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--budget", "none",
                           "--data", str(tmp_path), "--out", str(tmp_path / "a.zip")],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "--data is for a training budget" in done.stderr and not (tmp_path / "a.zip").exists()


def test_results_of_a_graded_result_validate(rubric):
    from grader.grading.grade import grade_submission
    from grader.report.gradescope import gradescope_results

    result = grade_submission(SUBMISSIONS / "missing_discussion.ipynb", student="bo", rubric=rubric)
    results = valid(gradescope_results(result, notice="**Heads up.**"))
    assert results["output"].startswith("**Heads up.**")
    assert {t["extra_data"]["check"]: t["status"] for t in results["tests"] if "status" in t}["discussion"] == "failed"


def test_checks_held_back_do_not_show_in_the_always_visible_output(rubric):
    """The rubric holds the retraining comparisons until the due date: their verdicts and the figures that
    would give them away stay out of the top-level output, which Gradescope always shows."""
    from dataclasses import replace

    from grader.checks import CheckResult
    from grader.grading.grade import grade_submission
    from grader.report.gradescope import gradescope_results

    static = grade_submission(SUBMISSIONS / "complete.ipynb", student="al", rubric=rubric)
    held = CheckResult(id="proposed_beats_baseline", passed=False, points=0.0, max_points=10.0,
                       message="SECRET-VERDICT: the baseline won", title="The proposed model beats the baseline",
                       visibility="after_due_date")
    result = replace(static, checks=(*static.checks, held), max_score=static.max_score + 10)
    results = valid(gradescope_results(result))
    output = results["output"]
    assert "SECRET-VERDICT" not in output and "Shown later, as your instructor chose: The proposed model beats the baseline" in output
    assert f"Score: {static.score:g} / {static.max_score:g}" in output  # counts only what is shown now
    test = next(t for t in results["tests"] if t["extra_data"]["check"] == "proposed_beats_baseline")
    assert test["visibility"] == "after_due_date" and "SECRET-VERDICT" in test["output"]  # Gradescope holds this box


def test_without_a_sandbox_the_static_checks_are_graded_and_the_retraining_is_not_scored(tmp_path, synthetic_data, small_rubric):
    root = unpack(build(tmp_path, "--budget", "quick", "--rubric", str(small_rubric), "--data", str(synthetic_data)),
                  tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    # GRADER_ISOLATION=none: the autograder requires walls, so this stands for a container that allows none
    results = run_autograder(root, env={"GRADER_ISOLATION": "none"})
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    assert results["output"].startswith("**Your models were not retrained**")
    for check in ("models_run", "baseline_works", "proposed_beats_baseline", "proposed_vs_references"):
        assert "informational" in by_check[check]["tags"] and "status" not in by_check[check]
        assert "cannot isolate student code" in by_check[check]["output"]
    assert results["score"] == grader_check_score(SUBMISSIONS / "complete.ipynb", "--rubric", str(small_rubric)) == 20
    assert "leaderboard" not in results


@pytest.mark.slow
def test_quick_budget_on_bundled_data_retrains_in_the_sandbox(tmp_path, synthetic_data, isolation):
    rubric = tmp_path / "rubric.toml"
    text = SMALL_RUBRIC
    for check in ("baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"):
        text = text.replace(f"[checks.{check}]\n", f'[checks.{check}]\nvisibility = "after_due_date"\n')
    rubric.write_text(text)
    root = unpack(build(tmp_path, "--budget", "quick", "--rubric", str(rubric), "--data", str(synthetic_data)),
                  tmp_path / "autograder")
    prepared = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "prepare"], env=autograder_env(root),
                              capture_output=True, text=True, timeout=900)  # setup.sh's last step
    assert prepared.returncode == 0, prepared.stderr
    assert "sandbox: " + isolation.kind in prepared.stdout and "(trained, quick budget)" in prepared.stdout
    assert list((root / "cache" / "cnn-grader" / "references").glob("*.json"))  # in the image: no submission retrains them
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    results = run_autograder(root)
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    assert results["extra_data"]["isolation"] == isolation.kind
    for check in ("baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"):
        assert by_check[check]["visibility"] == "after_due_date"
    assert by_check["models_run"]["visibility"] == "visible" and by_check["models_run"]["status"] == "passed"
    assert "informational" in by_check["reported_matches"]["tags"] and "status" not in by_check["reported_matches"]
    assert results["score"] == sum(t.get("score", 0) for t in results["tests"])
    (board,) = results["leaderboard"]
    assert board["name"].startswith("Proposed model: test accuracy (%) when the grader retrains it")
    assert 0 <= board["value"] <= 100 and board["order"] == "desc"
