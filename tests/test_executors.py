"""Executors as the command line meets them: local by default without Ray, Ray's options only with Ray."""

import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from grader.child.runtime import cpu_threads
from grader.cli import cli
from grader.grading.batch import grade_batch
from grader.grading.executors.base import train_on
from grader.grading.executors.local import LocalExecutor
from grader.sandbox.process import default_threads
from support import REPO, SUBMISSIONS


def run(*args):
    return CliRunner(env={"COLUMNS": "240"}).invoke(cli, list(map(str, args)))


@pytest.fixture
def two(tmp_path):
    root = tmp_path / "class"
    root.mkdir()
    for name in ("complete", "one_cnn_class"):
        shutil.copy(SUBMISSIONS / f"{name}.ipynb", root / f"{name}.ipynb")
    return root


def test_local_grading_never_imports_ray(two, tmp_path):
    code = ("import sys; from pathlib import Path; from grader.grading.batch import grade_batch; from grader.rubric import load_rubric;"
            f"grade_batch(Path({str(two)!r}), Path({str(tmp_path / 'out')!r}), rubric=load_rubric(), budget='none', workers=2);"
            "assert 'ray' not in sys.modules, 'ray was imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "gradebook.csv").exists()


def test_without_ray_the_ray_executor_says_how_to_install_it(two, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    result = run("grade", two, "--out", tmp_path / "out", "--no-train", "--executor", "ray")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: Ray is not installed; pip install 'cnn-grader[ray]'"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--gpus-per-task", "0.25"], "error: --gpus-per-task applies to the Ray executor only; add --executor ray or drop --gpus-per-task"),
    (["--ray-address", "auto"], "error: --ray-address applies to the Ray executor only; add --executor ray or drop --ray-address"),
    (["--executor", "ray", "--workers", "4"], "error: --workers applies to the local executor only; with Ray, "
                                              "--cpus-per-task and --gpus-per-task decide how many submissions run at once"),
])
def test_each_executors_options_belong_to_it(two, tmp_path, args, message):
    result = run("grade", two, "--out", tmp_path / "out", "--no-train", *args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert not (tmp_path / "out").exists()


def test_an_executor_object_grades_like_workers(two, tmp_path, rubric):
    by_workers = grade_batch(two, tmp_path / "a", rubric=rubric, budget="none", workers=1)
    by_executor = grade_batch(two, tmp_path / "b", rubric=rubric, budget="none", executor=LocalExecutor(2))
    assert sorted(by_workers.graded) == sorted(by_executor.graded) == ["complete", "one_cnn_class"]
    assert (tmp_path / "a" / "gradebook.csv").read_text() == (tmp_path / "b" / "gradebook.csv").read_text()


def test_a_worker_trains_its_children_on_the_cpus_it_was_given(monkeypatch):
    # Two children of two threads each on two cores train at half the speed of two of one (BENCHMARKS.md).
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # restored (unset) after the test
    monkeypatch.delenv("OMP_NUM_THREADS")
    cores = len(os.sched_getaffinity(0))
    assert (default_threads(), cpu_threads()) == (min(8, cores), cores)  # one grading at a time: every core
    train_on(cores / 2)  # one of two local workers
    assert (default_threads(), cpu_threads()) == (min(8, max(1, cores // 2)), max(1, cores // 2))
    train_on(0.25)  # a Ray task that reserved a quarter of a CPU
    assert default_threads() == cpu_threads() == 1
