"""The Ray executor on a local Ray instance (2 CPUs, loopback only): the same gradebook as the
local executor, lost workers retried, and the data and sandbox prepared again on another node."""

import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from grader.grading.batch import grade_batch  # noqa: E402
from grader.grading.executors.base import GradeOptions  # noqa: E402
from grader.grading.executors.ray import (RayExecutor, SharedData, as_reserved, grade_on_node,  # noqa: E402
                                          node_isolation, node_options)
from grader.grading.result import load_result  # noqa: E402
from grader.grading.submissions import Submission  # noqa: E402
from grader.rubric import load_rubric  # noqa: E402
from grader.sandbox.process import default_threads  # noqa: E402
from nbfactory import model_cells, write  # noqa: E402
from support import SUBMISSIONS  # noqa: E402

CLASS = ("complete", "one_cnn_class")  # two models to train, and one


@pytest.fixture(scope="module")
def local_ray():
    # address="local": always a new instance of our own, never a cluster someone started here.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def class_dir(root: Path, names=CLASS) -> Path:
    root.mkdir()
    for name in names:
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", root / f"{name}.ipynb")
    (root / "erin").mkdir()  # a student folder without a notebook: an 'error' result either way
    return root


@pytest.mark.slow
def test_ray_grades_like_the_local_executor(local_ray, synthetic_data, small_rubric, training_context, tmp_path):
    root = class_dir(tmp_path / "class")
    rubric = load_rubric(small_rubric)
    options = dict(rubric=rubric, budget="quick", data_dir=synthetic_data)  # references: from the session's cache
    local = grade_batch(root, tmp_path / "local", **options)
    remote = grade_batch(root, tmp_path / "ray", executor=RayExecutor(), **options)
    assert sorted(remote.graded) == sorted(local.graded) == sorted([*CLASS, "erin"])
    gradebook = (tmp_path / "ray" / "gradebook.csv").read_text()
    assert gradebook == (tmp_path / "local" / "gradebook.csv").read_text()
    header = gradebook.splitlines()[0]
    assert "seconds" not in header and "graded_at" not in header  # nothing in it differs between runs
    stored = load_result(tmp_path / "ray" / "complete" / "result.json")
    assert stored.status == "graded" and set(stored.runs) == {"LeNet5", "ResDropNet"}
    assert stored.notebook == str(root / "complete.ipynb")  # the driver's path, not the task's copy
    assert all(run.error is None for run in stored.runs.values())
    again = grade_batch(root, tmp_path / "ray", executor=RayExecutor(), **options)
    assert sorted(again.reused) == sorted(CLASS) and again.graded == ["erin"]  # resumable as before


def test_a_lost_worker_is_retried_and_the_batch_completes(local_ray, tmp_path, rubric):
    root = class_dir(tmp_path / "class", names=("complete", "generic_name"))
    shutil.copy(SUBMISSIONS / "missing_discussion.ipynb", root / "victim.ipynb")
    marker = tmp_path / "killed-once"

    def kill_first_attempt(sub, source, options, shared):
        result = grade_on_node(sub, source, options, shared)
        if sub.student == "victim" and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)  # after the work, so all of it is lost, as when a node dies
        return result

    report = grade_batch(root, tmp_path / "out", rubric=rubric, budget="none", executor=RayExecutor(task=kill_first_attempt))
    assert marker.exists()  # the worker was killed once
    assert sorted(report.graded) == ["complete", "erin", "generic_name", "victim"]
    victim = load_result(tmp_path / "out" / "victim" / "result.json")
    assert victim.status == "graded" and victim.score == 55
    assert (tmp_path / "out" / "gradebook.csv").read_text().count("\n") == 5


def test_another_node_writes_the_arrays_once_and_probes_its_own_sandbox(local_ray, small_rubric, training_context,
                                                                        isolation, tmp_path, monkeypatch):
    rubric, ctx = load_rubric(small_rubric), training_context
    arrays = {name: np.load(path) for name, path in ctx.files.items()}
    # As the driver's context looks on another node: its array files are not there.
    elsewhere = tmp_path / "driver" / "arrays-test"
    moved = replace(ctx, files={k: str(elsewhere / f"{k}.npy") for k in ctx.files})
    monkeypatch.setenv("GRADER_STATE_DIR", str(tmp_path / "node"))  # that node's own private state
    node_isolation.cache_clear()
    options = GradeOptions(rubric=rubric, budget="quick", context=moved)
    local = node_options(options, SharedData([ray.put(arrays)], driver_host="another-host")).context
    for name, path in local.files.items():
        assert Path(path).parent == tmp_path / "node" / "arrays" / "arrays-test"
        assert np.array_equal(np.load(path), arrays[name])
    assert set(local.files) == set(ctx.files) and local.labels is ctx.labels  # labels travel in memory only
    assert local.isolation.kind == isolation.kind and node_isolation.cache_info().misses == 1
    # A later task on that node finds the files, checks their bytes: nothing is fetched (here: nothing could be).
    later = node_options(options, SharedData([], driver_host="another-host")).context
    assert later.files == local.files and node_isolation.cache_info().hits == 1
    # A file changed behind the grader's back is written again from the object store, never used.
    Path(local.files["train_y"]).write_bytes(b"planted")
    again = node_options(options, SharedData([ray.put(arrays)], driver_host="another-host")).context
    assert np.array_equal(np.load(again.files["train_y"]), arrays["train_y"])


def test_a_grader_failure_in_the_task_is_that_students_result(tmp_path, rubric, training_context):
    ctx = replace(training_context, files={"train_x": str(tmp_path / "gone" / "train_x.npy")})
    notebook = SUBMISSIONS / "complete.ipynb"
    result = grade_on_node(Submission("ann", notebook), notebook.read_bytes(),
                           GradeOptions(rubric=rubric, budget="quick", context=ctx), SharedData([], "another-host"))
    assert result.status == "error" and result.fingerprint == ""  # graded again by the next run
    assert "neither on this node nor in Ray's object store" in result.error
    assert result.notebook == str(notebook)


def test_the_notebook_travels_with_the_task(tmp_path, rubric):
    driver_only = tmp_path / "driver" / "ann.ipynb"  # the submissions folder is not on the worker's node
    result = grade_on_node(Submission("ann", driver_only), (SUBMISSIONS / "complete.ipynb").read_bytes(),
                           GradeOptions(rubric=rubric, budget="none", context=None), SharedData())
    assert (result.status, result.score, result.notebook) == ("graded", 70, str(driver_only))


def test_a_task_trains_on_the_cpus_it_reserved_at_the_drivers_priority(local_ray):
    @ray.remote(num_cpus=2)
    def worker(shared):
        started = os.getpriority(os.PRIO_PROCESS, 0)
        as_reserved(shared)
        return started, os.getpriority(os.PRIO_PROCESS, 0), default_threads()

    here = os.getpriority(os.PRIO_PROCESS, 0)
    started, now, threads = ray.get(worker.remote(SharedData(cpus=2, niceness=here)))
    assert threads == 2  # its training children's threads
    # Ray starts its workers at niceness 15; only root may raise a process's priority again.
    assert now == (here if os.geteuid() == 0 else started)


RAISES = """
def __init__(self):
    super().__init__()
    raise ValueError("this model cannot be built")

def forward(self, x):
    return x
"""


def test_messages_name_the_students_file_never_the_tasks_copy(local_ray, small_rubric, synthetic_data,
                                                              training_context, tmp_path):
    root = tmp_path / "class"
    (root / "zoe").mkdir(parents=True)
    (root / "zz_malformed.ipynb").write_text('{"cells": [')  # read at once: the notebook's own error
    write(root / "zoe" / "raises.ipynb", *model_cells(RAISES, "Broken"))  # fails in its sandbox, later
    grade_batch(root, tmp_path / "out", rubric=load_rubric(small_rubric), budget="quick", data_dir=synthetic_data,
                executor=RayExecutor())
    malformed = load_result(tmp_path / "out" / "zz_malformed" / "result.json")
    assert malformed.status == "error" and str(root / "zz_malformed.ipynb") in malformed.error
    raises = load_result(tmp_path / "out" / "zoe" / "result.json")
    assert "this model cannot be built" in (raises.runs["Broken"].error or "")
    assert raises.notebook == str(root / "zoe" / "raises.ipynb")
    for student in ("zz_malformed", "zoe"):  # result.json, the feedback, every file the batch wrote of them
        for written in (tmp_path / "out" / student).rglob("*"):
            if written.is_file():
                assert "grader-notebook-" not in written.read_text(errors="replace"), written
