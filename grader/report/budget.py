"""What a result's numbers stand on, in words: the first lines of every rendering.

A quick self-check on synthetic data and a full grade on the official release look alike in a
table; these lines say which one a student or an instructor is reading before any number.
"""

from __future__ import annotations

from pathlib import PurePath

from grader.grading.result import GradeResult

_DATA = {
    "official": "the official CIFAR-10 release (md5-checked)",
    "other": "CIFAR-10 from another source (not the official release files: accuracies can differ slightly)",
    "synthetic": "SYNTHETIC images, not CIFAR-10: the accuracies only show that the pipeline works",
    "unknown": "not recorded (a result of an earlier grader version)",
}


def budget_lines(result: GradeResult, *, for_student: bool = False) -> list[str]:
    """One line on the budget, one on the data (none when nothing was trained).

    `for_student`: the data folder by its name only, not its path on the grading machine."""
    prov, run = result.provenance, result.provenance.run
    if prov.budget == "none" or run is None:
        return ["Static checks only: the notebook was read; nothing in it was run or trained."]
    config = run.train_config
    cap = (f", at most {config.max_flops / 1e12:.3g} TFLOP per model (a model that costs more trains on fewer images)"
           if config.max_flops else "")
    what = "the grading budget" if prov.budget == "full" else "a quick self-check, not the grading budget"
    epochs = f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}"
    lines = [f"Budget: {prov.budget}, {what}: {epochs} on {run.train_images:,} training images{cap}, on {run.device}.",
             f"Data: {_DATA.get(run.data_kind, run.data_kind)}, read from {_source(run.data_source, for_student)}."]
    estimates = [f"{name} {_duration(r.gpu_seconds)}" for name, r in result.runs.items() if r.gpu_seconds]
    if prov.budget != "full" and estimates:
        lines.append(f"The grading budget would take about {', '.join(estimates)} on the grading GPU "
                     "(estimated from each model's FLOPs).")
    return lines


def _source(folder: str, for_student: bool) -> str:
    if not folder:
        return "an unrecorded folder"
    return f"a folder named {PurePath(folder).name}" if for_student else folder


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


__all__ = ["budget_lines"]
