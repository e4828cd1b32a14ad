"""`grader gradescope run`: one Gradescope submission, graded into ROOT/results/results.json.

Every path ends in a results.json a student can read, never a traceback: no notebook or several
(score 0 and what to hand in), an autograder that is set up wrongly or a bug in the grader (score 0,
"tell your instructor"; the traceback goes to stdout, which Gradescope shows the instructor only).
The submission is read as the class folder is (grader.untrusted: no link followed out of
ROOT/submission, no FIFO or device, its size checked first). With a training budget the static
checks are written first, with a line that the retraining did not finish in time: run_autograder
stops this process at its deadline (SIGTERM, which stops the sandbox's child on the way out), and
what was written stays.

Isolation: Gradescope runs this as root in a disposable container. Student code runs in the
sandbox (grader/sandbox/) with `require_isolation`, so never as root and never without walls (the
strongest kind the probe finds). Where no kind works, the submission is graded on its static
checks, the retraining checks are listed as not scored, and the student reads what that means for
them; the probe's detail goes to stdout, the instructor's, and the build log
(grader.gradescope.prepare) warned the instructor already.

execution_time counts from run_autograder's start ($GRADER_STARTED_AT), the interpreter's start
and imports included; extra_data names the zip's budget and the isolation the run used.
"""

from __future__ import annotations

import json
import os
import signal
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from grader.checks import Verdict, ids
from grader.errors import GraderError, SandboxError
from grader.gradescope.config import AutograderConfig, AutograderPaths, autograder_paths, load_config
from grader.gradescope.machine import Machine, fit_threads, left_for_a_child, this_container
from grader.grading.grade import grade_submission
from grader.grading.result import GradeResult, write_atomic
from grader.grading.submissions import notebooks_in
from grader.report.gradescope import gradescope_error, gradescope_results
from grader.report.text import markdown as md
from grader.rubric import Rubric, load_rubric
from grader.sandbox.detect import detect_isolation
from grader.sandbox.isolation import require
from grader.training.context import prepare_training

HAND_IN = ("Hand in exactly one Jupyter notebook (`.ipynb`) holding your baseline and proposed CNN classes, "
           "their training outputs and your discussion, then submit again.")
NOT_YOURS = "This is not a problem with your notebook: please tell your instructor."
NOT_RETRAINED = ("**Your instructor's autograder could not run your models; only your notebook was graded.** "
                 "The checks that need your models to run are listed as not scored: your instructor will grade them.")
NOT_FINISHED = ("**The retraining of your models did not finish** within the autograder's time limit, so only the "
                "checks that read your notebook were graded. Your instructor can grade the retraining with more time.")
OUT_OF_TIME = ("The autograder ran out of time before it could grade this submission, so it was not graded. "
               "Please tell your instructor.")
NO_SANDBOX = "none works here"
"""extra_data's isolation when the probe found no sandbox (the detail is in the instructor's stdout)."""
STARTED_AT = "GRADER_STARTED_AT"
"""run_autograder's start (seconds since the epoch): execution_time counts the interpreter's start too."""


class OutOfTime(BaseException):
    """run_autograder's deadline passed (its `timeout` sent SIGTERM). A BaseException, so that no
    `except Exception` on the way takes it for a failure: the sandbox stops its child on the way out."""


def run_autograder(root: Path | None = None) -> dict:
    """Grade the one notebook in ROOT/submission with the zip's rubric and budget; write and return results.json.

    With a training budget, results.json is written twice: with the static checks before the retraining
    (what stays if run_autograder's deadline stops it), then with everything."""
    paths = autograder_paths(root)
    started = _started_at()
    written: list[dict] = []

    def clock() -> float:
        """Seconds since the run started, by the wall clock (run_autograder's start is a wall-clock time)."""
        return max(0.0, time.time() - started)

    def provisional(payload: dict) -> None:
        _write(paths, payload)
        written.append(payload)

    try:
        with _sigterm_raises():
            payload = _grade(paths, clock, provisional)
    except OutOfTime:
        print("stopped at the autograder's deadline: results.json keeps what was graded before it")
        if written:
            return written[-1]
        payload = gradescope_error(OUT_OF_TIME, seconds=clock())
    except GraderError as e:  # the autograder itself is set up wrongly (its config, its data)
        print(f"error: {e}")
        payload = gradescope_error(f"The autograder could not grade this submission. {NOT_YOURS}", seconds=clock())
    except Exception:  # a bug in the grader: the student gets a result, the instructor the traceback
        traceback.print_exc()
        payload = gradescope_error(f"The autograder failed on this submission. {NOT_YOURS}", seconds=clock())
    _write(paths, payload)
    return payload


def _started_at() -> float:
    """run_autograder's start, when it says (and it is not in the future), else now."""
    now = time.time()
    try:
        started = float(os.environ.get(STARTED_AT, ""))
    except ValueError:
        return now
    return started if 0 < started <= now else now


def _write(paths: AutograderPaths, payload: dict) -> None:
    write_atomic(paths.results, json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False))


@contextmanager
def _sigterm_raises():
    def stop(signum, frame):
        raise OutOfTime()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _grade(paths: AutograderPaths, clock: Callable[[], float], provisional: Callable[[dict], None]) -> dict:
    config = load_config(paths)
    rubric = config.fitted(load_rubric(paths.source / config.rubric))
    due = {"budget": config.budget, "machine": str(config.machine)}  # the zip's, whatever part of it this run got to
    found = notebooks_in(paths.submission) if paths.submission.is_dir() else []
    if len(found) != 1:
        return gradescope_error(_hand_in_problem(found, paths.submission), seconds=clock(),
                                rubric_sha256=rubric.sha256, extra_data=due)
    notebook, student = found[0], submitters(paths.metadata) or found[0].stem
    static = grade_submission(notebook, student=student, rubric=rubric, below=paths.submission)
    full_score = rubric.max_score(config.budget)
    if config.budget == "none" or static.status == "error":
        return gradescope_results(static, seconds=clock(), full_score=full_score, extra_data=due)
    container = _fit_to_container(config)
    try:
        isolation = detect_isolation()
        require(isolation)
    except SandboxError as e:  # the detail is the instructor's (stdout); the student reads what it means for them
        print(f"no sandbox works in this container, so the models were not retrained: {e}")
        why = "not run: your instructor's autograder could not run your models; only your notebook was graded"
        return gradescope_results(_not_run(static, rubric, config, why), notice=NOT_RETRAINED, seconds=clock(),
                                  extra_data={**due, "isolation": NO_SANDBOX})
    ran = {**due, "isolation": isolation.kind}
    late = f"not run: the retraining did not finish within the autograder's {config.timeout_minutes:g} minutes"
    provisional(gradescope_results(_not_run(static, rubric, config, late), notice=NOT_FINISHED, seconds=clock(),
                                   extra_data=ran))
    # No second try of a run the safety net stops: the deadline has no room for it (Gradescope's Regrade has).
    context = replace(prepare_training(rubric, config.budget, data_dir=paths.data_dir(config), isolation=isolation,
                                       require_isolation=True), regrade_cut=False)
    if container is not None:  # the grader and its child share the container's memory
        left, words = left_for_a_child(container)
        print(words)
        context = replace(context, child_memory_bytes=left)
    result = grade_submission(notebook, student=student, rubric=rubric, budget=config.budget, context=context,
                              below=paths.submission)
    print(f"graded under the {config.budget} budget in {clock():.1f} s, student code under {isolation.kind}")
    return gradescope_results(result, seconds=clock(), extra_data=ran)


def _fit_to_container(config: AutograderConfig) -> Machine | None:
    """This container's CPU and memory (None: not limited), torch's threads fitted to its CPU quota; the
    instructor told (stdout) when it has less than the zip's budget was fitted to."""
    container = this_container()
    if container is None:
        return None
    if container.cpus < config.machine.cpus or container.memory_mb < config.machine.memory_mb:
        print(f"WARNING: this container has {container}, less than the {config.machine} the zip's budget was fitted "
              "to: set the autograder's CPU and memory on Gradescope to those, or rebuild the zip with "
              f"--cpus {container.cpus:g} --memory {container.memory_mb}")
    print(fit_threads(container.cpus))
    return container


def _hand_in_problem(found: list[Path], folder: Path) -> str:
    if not found:
        return f"**No notebook was found in your submission.** {HAND_IN}"
    names = ", ".join(md(p.relative_to(folder).as_posix()) for p in found[:5]) + (", ..." if len(found) > 5 else "")
    return f"**Your submission holds {len(found)} notebooks** ({names}), so the grader cannot tell which to grade. {HAND_IN}"


def _not_run(static: GradeResult, rubric: Rubric, config: AutograderConfig, reason: str) -> GradeResult:
    """The static grade, with each retraining check the budget would have scored listed as not scored, for `reason`."""
    unscored = tuple(rubric.score(check_id, Verdict(passed=False, message=reason, scored=False))
                     for check_id in rubric.applicable(config.budget) if check_id in ids("run"))
    return replace(static, checks=static.checks + unscored)


def submitters(metadata: Path) -> str:
    """'Name (email), ...' of the submission's users (a group has several), for display; '' when unknown."""
    try:
        users = json.loads(metadata.read_text(encoding="utf-8")).get("users") or []
    except (OSError, ValueError, AttributeError):
        return ""
    return ", ".join(_person(u) for u in users if isinstance(u, dict) and _person(u))


def _person(user: dict) -> str:
    name, email = str(user.get("name") or ""), str(user.get("email") or "")
    return f"{name} ({email})" if name and email else name or email


__all__ = ["run_autograder", "submitters"]
