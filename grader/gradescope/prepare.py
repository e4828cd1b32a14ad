"""`grader gradescope prepare`: the last step of setup.sh, once per image, while the network is up.

It gets the data (the bundled folder, else the official CIFAR-10 downloaded now), trains the
rubric's references under the zip's budget into the cache (ROOT/cache, kept in the image) so that
no submission retrains a ResNet, and probes the sandbox. A reference the budget's safety net stopped is
kept as it is, like any other: every submission is compared with the same one, and the run checks
leave unscored what it cannot support. The build log says what happened to each reference (trained
or found, cut or not, what it reached and what that leaves unscored) and whether student code will
run behind walls.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from grader.errors import SandboxError
from grader.gradescope.config import autograder_paths, load_config
from grader.gradescope.machine import fit_threads, this_container
from grader.rubric import Budget, Rubric, load_rubric

if TYPE_CHECKING:
    from grader.training.references import ReferenceRun


def prepare_autograder(root: Path | None = None, *, say: Callable[[str], None] = print) -> None:
    """Data, references and a sandbox probe for the autograder unpacked under `root`."""
    paths = autograder_paths(root)
    config = load_config(paths)
    if config.budget == "none":
        say("budget none: static checks only; no data, references or sandbox are needed")
        return
    from grader.data import download_cifar10, load_cifar10
    from grader.training.references import run_references

    rubric = config.fitted(load_rubric(paths.source / config.rubric))
    container = this_container()
    if container is not None:  # the image's build may run under a quota too: one thread a core it buys
        say(fit_threads(container.cpus))
    data_dir = paths.data_dir(config)
    if config.data is None:
        download_cifar10(data_dir, show_progress=False)
    say(f"data: {data_dir} (sha256 {load_cifar10(data_dir).sha256})")
    runs = run_references(rubric=rubric, data_dir=data_dir, budget=config.budget, keep_cut=True)
    for run in runs:
        say(reference_line(run, rubric, config.budget))
    say(sandbox_report())


def reference_line(run: "ReferenceRun", rubric: Rubric, budget: Budget) -> str:
    """What happened to one reference and what it means for the comparisons, in one line."""
    history, config = run.history, rubric.train_config(budget)
    accuracy = history.test_accuracy
    done = "found in the cache" if run.cached else f"trained in {history.seconds:.0f} s"
    line = (f"reference {run.model}: test accuracy {'n/a' if accuracy is None else f'{accuracy:.2%}'} "
            f"({done}, {budget} budget, kept in the image")
    if history.budget_cut == "time":
        line += (f"; stopped by the budget's {config.max_seconds:g} s safety net after {len(history.epochs)} of "
                 f"{config.epochs} epochs: the comparisons that need it are not scored")
    elif history.budget_cut == "cost":
        line += (f"; it costs more FLOPs than the budget's {config.max_flops / 1e12:.3g} TFLOP allow, so it trained on "
                 "fewer images: the comparisons that need it are not scored")
    elif run.role == "baseline" and accuracy is not None and accuracy < rubric.references.min_accuracy:
        line += (f"; below references.min_accuracy ({rubric.references.min_accuracy:.0%}): the comparisons with the "
                 "references are not scored under this budget")
    return line + ")"


def sandbox_report() -> str:
    """One line on the isolation student code will get here."""
    from grader.sandbox.detect import detect_isolation
    from grader.sandbox.isolation import require

    try:
        iso = detect_isolation()
        require(iso)
    except SandboxError as e:
        return (f"WARNING: no sandbox works in this image ({e}). Each submission will be graded on its static "
                "checks only and told that its models were not retrained; grade the retraining with "
                "`grader grade` on a machine where the sandbox works")
    return f"sandbox: {iso.kind}" + (f" ({iso.note})" if iso.note else "")


__all__ = ["prepare_autograder", "reference_line", "sandbox_report"]
