"""Progress while models train: the events, the ETA, the plain lines of CI logs, the live line."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from grader.child.config import TrainConfig
from grader.report.progress import ProgressDisplay, duration, live_wanted, progress_line
from grader.training.progress import ProgressEvent, child_epochs, epoch_event, eta_seconds
from support import SUBMISSIONS

ANSI_OR_CR = re.compile(r"\x1b|\r")


class _Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def test_plain_lines_say_model_epoch_accuracy_time_and_eta():
    lines = [progress_line(e) for e in (
        ProgressEvent("LeNet5", "check", student="ann"),
        ProgressEvent("ResDropNet", "train", 0, 15),
        ProgressEvent("ResDropNet", "train", 2, 15, 12.34, 97.0),
        ProgressEvent("LeNet5", "reference", 1, 2, 4.1, 4.1, val_accuracy=0.412),
        ProgressEvent("ResDropNet", "train", 15, 15, 120.0, None),
    )]
    assert lines == [
        "ann: building and checking LeNet5 ...",
        "training ResDropNet: 15 epochs ...",
        "training ResDropNet: epoch 2/15, 12.3 s, about 2 min left",
        "training reference LeNet5: epoch 1/2, val acc 41.2%, 4.1 s, about 4 s left",
        "training ResDropNet: epoch 15/15, 120.0 s",
    ]


def test_names_a_student_chose_cannot_move_the_cursor_or_flood_the_line():
    line = progress_line(ProgressEvent("Net\x1b[2J\r\nX" + "y" * 500, "train", 1, 2, 1.0, 1.0, student="eve\x1b]0;pwned\x07"))
    assert not ANSI_OR_CR.search(line) and "\n" not in line
    assert line.startswith("eve]0;pwned: training Net[2J X") and len(line) < 200


def test_eta_is_the_mean_epoch_times_the_epochs_left_within_the_time_limit():
    assert eta_seconds(2, 10, 20.0) == pytest.approx(80.0)
    assert eta_seconds(2, 10, 20.0, limit_s=30.0) == pytest.approx(10.0)  # the budget stops it sooner
    assert eta_seconds(2, 10, 40.0, limit_s=30.0) == 0.0
    assert eta_seconds(10, 10, 20.0) is None and eta_seconds(0, 10, 0.0) is None
    event = epoch_event("M", "reference", 1, TrainConfig(epochs=3, max_seconds=20), 8.0)
    assert (event.epochs, event.eta) == (3, pytest.approx(12.0))  # 16 s at this pace, 12 s left of the 20 s limit
    assert [duration(s) for s in (4.4, 59.4, 125, 3900)] == ["4 s", "59 s", "2 min", "1 h 5 min"]


def test_a_childs_epochs_are_clamped_forward_only_and_timed_by_the_parent():
    now = [100.0]
    events: list[ProgressEvent] = []
    seen = child_epochs("Attack", TrainConfig(epochs=3), 300.0, events.append, clock=lambda: now[0])
    seen("instantiate", 5)  # not training: nothing
    now[0] = 110.0
    seen("train", 0)  # the train phase starts its clock here
    now[0] = 116.0
    seen("train", 2)  # the poll missed epoch 1: both are told
    seen("train", 1)  # going back: dropped
    now[0] = 119.0
    seen("train", 10**9)  # more epochs than the config has: the last one, once
    seen("train", 10**9 + 1)
    assert [(e.epoch, e.epochs, e.seconds) for e in events] == [(0, 3, 0.0), (1, 3, 6.0), (2, 3, 6.0), (3, 3, 9.0)]
    assert events[2].eta == pytest.approx(3.0) and events[3].eta is None


def test_plain_lines_off_a_terminal_and_in_ci():
    out = io.StringIO()
    with ProgressDisplay(out) as show:
        show(ProgressEvent("LeNet5", "train", 1, 2, 3.0, 3.0, student="ann"))
    assert out.getvalue() == "training LeNet5: epoch 1/2, 3.0 s, about 3 s left\n"  # one notebook: no name

    assert live_wanted(_Tty(), {"TERM": "xterm"}) and not live_wanted(_Tty(), {"CI": "true", "TERM": "xterm"})
    assert not live_wanted(out, {"TERM": "xterm"})


def test_a_terminal_gets_one_line_that_updates():
    out = _Tty()
    with ProgressDisplay(out, live=True) as show:
        for epoch in (1, 2):
            show(ProgressEvent("LeNet5", "train", epoch, 2, float(epoch), None))
    shown = out.getvalue()
    assert "training LeNet5: epoch 2/2, 2.0 s" in shown and "\x1b[" in shown  # a live line, redrawn in place
    assert shown.endswith("\x1b[2K")  # and erased at the end: the results follow on a clean screen


@pytest.mark.slow
def test_check_with_quick_training_prints_one_plain_line_per_epoch_per_model(synthetic_data, small_rubric, tmp_path):
    """The command a student runs, with stderr a pipe as in CI: references train (an empty cache)."""
    import os

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(SUBMISSIONS / "complete.ipynb"), "--train",
                           "quick", "--data", str(synthetic_data), "--rubric", str(small_rubric), "--json"],
                          capture_output=True, text=True, env=env)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert not ANSI_OR_CR.search(done.stderr)
    epochs = re.findall(r"^training (reference )?(\w+): epoch (\d+)/2, .*$", done.stderr, re.MULTILINE)
    assert sorted(epochs) == sorted((ref, name, k) for ref, name in [
        ("reference ", "LeNet5"), ("reference ", "ResNet20"), ("", "LeNet5"), ("", "ResDropNet")] for k in "12")
    assert "building and checking ResDropNet ..." in done.stderr.splitlines()
    assert re.search(r"^training reference LeNet5: epoch 1/2, val acc \d+\.\d%, \d+\.\d s, about \d+ s left$",
                     done.stderr, re.MULTILINE)
    assert done.stdout.lstrip().startswith("{")  # stdout is the result alone


def test_the_batch_view_names_the_students_model_and_epoch_on_its_bar(monkeypatch):
    from rich.console import Console

    from grader.report.batchview import BatchView

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    out = _Tty()
    with BatchView(Console(file=out, force_terminal=True, width=200)) as view:
        view.step(ProgressEvent("LeNet5", "reference", 1, 2, 3.0, 3.0, 0.3))  # before the bar: the references
        view.start(3, 3)
        view.step(ProgressEvent("ResDropNet", "train", 2, 15, 12.3, 97.0, student="ann[bold]"))
        view.progress.refresh()
        shown = out.getvalue()
    assert "training reference LeNet5: epoch 1/2" in shown
    assert "ann[bold]: training ResDropNet: epoch 2/15, 12.3 s, about 2 min left" in shown  # not read as markup


def test_off_a_terminal_the_batch_view_prints_plain_lines_with_the_student():
    from rich.console import Console

    from grader.report.batchview import BatchView

    out = io.StringIO()
    with BatchView(Console(file=out, width=80)) as view:
        view.step(ProgressEvent("ResDropNet", "check", student="ann"))
    assert out.getvalue() == "ann: building and checking ResDropNet ...\n"


def test_one_local_worker_passes_progress_through_to_each_submission(tmp_path, rubric, monkeypatch):
    import grader.grading.executors.base as base
    from grader.grading.batch import grade_batch
    from nbfactory import write

    def fake_grade(notebook, *, student, on_progress=None, **_):
        on_progress(ProgressEvent("Net", "check", student=student))
        raise base.GraderError("stop here")

    monkeypatch.setattr(base, "grade_submission", fake_grade)
    (tmp_path / "class").mkdir()
    for name in ("ann", "bob"):
        write(tmp_path / "class" / f"{name}.ipynb")
    events: list[ProgressEvent] = []
    grade_batch(tmp_path / "class", tmp_path / "out", rubric=rubric, budget="none", on_progress=events.append)
    assert [(e.student, e.model) for e in events] == [("ann", "Net"), ("bob", "Net")]
