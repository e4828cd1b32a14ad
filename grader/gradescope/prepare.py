"""`grader gradescope prepare`: the last step of setup.sh, once per image, while the network is up.

It gets the data (the bundled folder, else the official CIFAR-10 downloaded now), trains the
rubric's references under the autograder's budget into the cache (ROOT/cache, kept in the image),
so that no submission retrains a ResNet, and probes the sandbox: the build log says whether
student code will run behind walls, and what happens when it cannot (grader.gradescope.run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from grader.errors import SandboxError
from grader.gradescope.config import autograder_paths, load_config


def prepare_autograder(root: Path | None = None, *, say: Callable[[str], None] = print) -> None:
    """Data, references and a sandbox probe for the autograder unpacked under `root`."""
    paths = autograder_paths(root)
    config = load_config(paths)
    if config.budget == "none":
        say("budget none: static checks only; no data, references or sandbox are needed")
        return
    from grader.data import download_cifar10, load_cifar10
    from grader.training.references import run_references

    data_dir = paths.data_dir(config)
    if config.data is None:
        download_cifar10(data_dir, show_progress=False)
    say(f"data: {data_dir} (sha256 {load_cifar10(data_dir).sha256})")
    for run in run_references(rubric=paths.source / config.rubric, data_dir=data_dir, budget=config.budget):
        accuracy = run.history.test_accuracy
        say(f"reference {run.model}: test accuracy {'n/a' if accuracy is None else f'{accuracy:.2%}'} "
            f"({'cached' if run.cached else 'trained'}, {config.budget} budget)")
    say(sandbox_report())


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


__all__ = ["prepare_autograder", "sandbox_report"]
