"""Batch grading: every file written, nothing regraded when nothing changed, nothing lost."""

import json
import shutil

import pytest

from grader.errors import GraderError
from grader.grading import grade as grade_module
from grader.grading.batch import grade_batch
from grader.grading.result import load_result
from grader.grading.submissions import discover
from support import SUBMISSIONS, class_folder

FILES = {"result.json", "results.json", "feedback.md", "feedback.html", "instructor.md", "instructor.html"}


@pytest.fixture
def class_dir(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    for name in ("complete", "generic_name", "missing_discussion"):
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", root / f"{name}.ipynb")
    folder = root / "dana smith"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "different_config.ipynb", folder / "hw3.ipynb")
    shutil.copy(SUBMISSIONS / "different_config.ipynb", folder / ".ipynb_checkpoints" / "hw3-checkpoint.ipynb")
    (root / "erin").mkdir()
    (root / "erin" / "notes.txt").write_text("forgot the notebook")
    return root


def test_discover_ids_and_problems(class_dir):
    subs = {s.student: s for s in discover(class_dir)}
    assert set(subs) == {"complete", "generic_name", "missing_discussion", "dana_smith", "erin"}
    assert subs["dana_smith"].notebook.name == "hw3.ipynb"  # checkpoints ignored
    assert subs["erin"].notebook is None and "holds no notebook" in subs["erin"].problem
    with pytest.raises(GraderError, match="holds no .ipynb files"):
        discover(class_dir / "erin")


def test_batch_writes_everything_and_reuses_unchanged(class_dir, tmp_path, rubric):
    out = tmp_path / "out"
    first = grade_batch(class_dir, out, rubric=rubric, budget="none")
    assert sorted(first.graded) == ["complete", "dana_smith", "erin", "generic_name", "missing_discussion"]
    for student in first.graded:
        assert FILES <= {p.name for p in (out / student).iterdir()}
    assert first.results["erin"].status == "error" and "holds no notebook" in first.results["erin"].error
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0].startswith("student,status,total,max,max_scored,notebook_valid,two_cnn_classes")
    assert [r.split(",")[0] for r in rows[1:]] == ["complete", "dana_smith", "erin", "generic_name", "missing_discussion"]
    assert rows[1].startswith("complete,graded,70,70,70,")

    second = grade_batch(class_dir, out, rubric=rubric, budget="none")
    assert second.graded == ["erin"]  # an ungradable folder is retried; the rest is unchanged
    assert sorted(second.reused) == ["complete", "dana_smith", "generic_name", "missing_discussion"]

    (class_dir / "complete.ipynb").write_text((SUBMISSIONS / "missing_discussion.ipynb").read_text())
    (out / "generic_name" / "result.json").write_text("{truncated")
    third = grade_batch(class_dir, out, rubric=rubric, budget="none")
    assert sorted(third.graded) == ["complete", "erin", "generic_name"]
    assert third.results["complete"].score == 55


def test_interrupted_batch_keeps_finished_results_and_resumes(class_dir, tmp_path, rubric):
    out = tmp_path / "out"
    seen = []

    def stop_after_two(result, reused):
        seen.append(result.student)
        if len(seen) == 2:
            raise KeyboardInterrupt

    first = grade_batch(class_dir, out, rubric=rubric, budget="none", on_done=stop_after_two)
    assert first.interrupted and len(first.graded) == 2
    for student in first.graded:
        assert load_result(out / student / "result.json") is not None
    second = grade_batch(class_dir, out, rubric=rubric, budget="none")
    assert set(second.reused) == set(first.graded) - {"erin"}
    assert set(second.graded) | set(second.reused) == {"complete", "dana_smith", "erin", "generic_name", "missing_discussion"}


def test_a_grader_bug_on_one_student_is_that_students_error_and_the_batch_goes_on(class_dir, tmp_path, rubric,
                                                                              monkeypatch):
    """With the default single worker, an unexpected exception must not cost the class its gradebook."""
    real = grade_module.analyze

    def analyze(notebook):
        if notebook.path.endswith("generic_name.ipynb"):
            raise RuntimeError("a bug the grader has only on this notebook")
        return real(notebook)

    monkeypatch.setattr(grade_module, "analyze", analyze)
    report = grade_batch(class_dir, tmp_path / "out", rubric=rubric, budget="none", workers=1)
    assert len(report.graded) == 5
    broken = load_result(tmp_path / "out" / "generic_name" / "result.json")
    assert broken.status == "error" and broken.fingerprint == ""  # graded again by the next run
    assert broken.error.startswith("the grader failed on this submission (RuntimeError: a bug the grader has only")
    assert "Traceback" in broken.traceback and "a bug the grader has only on this notebook" in broken.traceback
    assert "Traceback" not in (tmp_path / "out" / "generic_name" / "feedback.md").read_text()  # the student's view
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert rows[1].startswith("complete,graded,70,70,70,") and rows[4].startswith("generic_name,error,0,70,70,")


def test_a_bad_data_folder_stops_the_batch_before_anything_runs(class_dir, tmp_path, rubric):
    from click.testing import CliRunner

    from grader.cli import cli
    from grader.errors import DataError

    with pytest.raises(DataError, match="does not exist"):
        grade_batch(class_dir, tmp_path / "out", rubric=rubric, budget="quick", data_dir=tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(cli, ["grade", str(class_dir), "--out", str(tmp_path / "out"), "--quick",
                                      "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and result.output.startswith("error: data folder")


@pytest.mark.slow
def test_other_data_regrades_every_student(synthetic_data, small_rubric, training_context, tmp_path):
    from grader.data import write_synthetic
    from grader.rubric import load_rubric

    root = tmp_path / "class"
    root.mkdir()
    shutil.copy(SUBMISSIONS / "one_cnn_class.ipynb", root / "ann.ipynb")
    rubric = load_rubric(small_rubric)
    first = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=synthetic_data)
    again = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=synthetic_data)
    other = tmp_path / "other-data"
    write_synthetic(other, train=2_000, test=500, seed=7)
    changed = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=other)
    assert first.graded == ["ann"] and again.reused == ["ann"] and changed.graded == ["ann"]
    stored = load_result(tmp_path / "out" / "ann" / "result.json")
    assert stored.provenance.run.data_sha256 != first.results["ann"].provenance.run.data_sha256


def test_parallel_workers_give_the_same_gradebook(class_dir, tmp_path, rubric):
    grade_batch(class_dir, tmp_path / "a", rubric=rubric, budget="none", workers=1)
    grade_batch(class_dir, tmp_path / "b", rubric=rubric, budget="none", workers=2)
    assert (tmp_path / "a" / "gradebook.csv").read_text() == (tmp_path / "b" / "gradebook.csv").read_text()


def test_gradescope_results(tmp_path, rubric):
    root = tmp_path / "c"
    root.mkdir()
    shutil.copy(SUBMISSIONS / "generic_name.ipynb", root / "ann.ipynb")
    grade_batch(root, tmp_path / "out", rubric=rubric, budget="none")
    data = json.loads((tmp_path / "out" / "ann" / "results.json").read_text())
    assert data["score"] == 65
    named = next(t for t in data["tests"] if t["name"] == "The proposed model has a name of its own")
    assert named["status"] == "failed" and named["max_score"] == 5 and "How to fix" in named["output"]
    assert {t.get("status", "informational") for t in data["tests"]} == {"passed", "failed", "informational"}


def test_killed_batch_resumes_without_redoing_finished_students(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "class"
    root.mkdir()
    for i in range(40):
        shutil.copy(SUBMISSIONS / "complete.ipynb", root / f"s{i:02d}.ipynb")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "grader.cli", "grade", str(root), "--out", str(out), "--no-train"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*/result.json"))) < 3 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # no chance to clean up: like a power cut
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}
    assert 3 <= len(finished) < 40
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}
    assert len(after) == 40
    assert all(after[s] == t for s, t in finished.items())  # finished students were not regraded
    assert f"{40 - len(finished)} graded now, {len(finished)} unchanged" in done.stderr


def test_the_gradebook_has_one_max_per_rubric_and_each_students_own_beside_it(tmp_path, rubric, monkeypatch):
    """A training budget that could not judge a check, and a student with no notebook: max is the
    rubric's for the budget on every row; max_scored keeps what each student could be scored on."""
    from dataclasses import replace

    from grader.grading import batch
    from grader.grading.executors.base import error_result
    from grader.grading.grade import grade_submission

    class Stub:
        """Grades like a quick training whose budget was too small to judge proposed_vs_references."""

        def grade(self, todo, options, on_progress=None):
            for sub in todo:
                if sub.notebook is None:
                    yield error_result(sub, sub.problem, options)
                    continue
                static = grade_submission(sub.notebook, student=sub.student, rubric=rubric)
                unjudged = replace(static.checks[0], id="proposed_vs_references", points=0.0, max_points=0.0,
                                   scored=False, passed=False, message="the references did not separate")
                yield replace(static, checks=static.checks + (unjudged,), max_score=options.rubric.max_score("quick") - 5)

    monkeypatch.setattr(batch, "run_identity", lambda data_dir: None)
    monkeypatch.setattr(batch, "prepare_training", lambda *args, **kwargs: None)
    root = class_folder(tmp_path / "class", {"ann": "complete"}, without_notebook=("erin",))
    grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", executor=Stub())
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert rows[0].startswith("student,status,total,max,max_scored,")
    assert rows[1].startswith("ann,graded,70,100,95,") and rows[2].startswith("erin,error,0,100,100,")
