"""Ray against the local executor: the overhead per submission, and how fast their trainings run.

Both executors grade the same class (every notebook in submissions/, `--copies` times) with the
same CPUs on this machine: a local pool of `--workers` processes, and a local Ray instance with
as many CPUs (one per task). Each budget is graded local, Ray (the first batch on a new Ray
instance: worker processes start and import the grader), local, Ray again (warm workers), each
into a new output folder. Budget quick trains on synthetic data with the small rubric of
tests/test_retrain.py; its references are trained before the clock starts. For it the bench
also prints the training children's speed (History.train_images_per_second) and Ray's over the
local executor's, each training against the same student's same model: a ratio from one run.
`--hog N` keeps N processes busy at normal priority beside every batch, as a shared machine's
neighbours do: a task at a lower priority than the local workers shows there, not at idle (and
only where the kernel does not group processes by session). Run from the repository root:

    python bench/bench_executors.py [--budgets none quick] [--copies 1] [--workers 2] [--hog 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from grader.grading.batch import grade_batch  # noqa: E402
from grader.grading.executors.local import LocalExecutor  # noqa: E402
from grader.grading.executors.ray import RayExecutor  # noqa: E402
from grader.rubric import load_rubric  # noqa: E402
from support import cpu_hog  # noqa: E402


def make_class(root: Path, copies: int) -> int:
    root.mkdir(parents=True)
    notebooks = sorted((REPO / "submissions").glob("*.ipynb"))
    for i in range(copies):
        for nb in notebooks:
            shutil.copy(nb, root / f"{nb.stem}_{i}.ipynb")
    return len(notebooks) * copies


@dataclass(frozen=True)
class Batch:
    seconds: float
    speeds: dict[tuple[str, str], float]
    """(student, model) -> its training child's History.train_images_per_second."""


def timed(label: str, root: Path, out: Path, executor, **options) -> Batch:
    start = time.perf_counter()
    report = grade_batch(root, out, executor=executor, **options)
    seconds = time.perf_counter() - start
    errors = [s for s, r in report.results.items() if r.status == "error"]
    speeds = {(student, name): run.history.train_images_per_second for student, r in report.results.items()
              for name, run in r.runs.items() if run.history and run.history.train_images_per_second}
    # The models differ 20-fold in speed: a geometric mean, which a ratio between batches does not depend on.
    mean = statistics.geometric_mean(speeds.values()) if speeds else 0.0
    trained = f", {mean:6.0f} images/s (geometric mean of {len(speeds)} trainings)" if speeds else ""
    print(f"  {label:<12} {seconds:8.2f} s{trained}  ({len(report.graded)} graded"
          f"{', errors: ' + ', '.join(errors) if errors else ''})")
    return Batch(seconds, speeds)


def speed_ratio(ray_: Batch, local: Batch) -> str:
    """Ray's training speed over the local executor's, each training against the same one (student and model)."""
    ratios = sorted(ray_.speeds[key] / local.speeds[key] for key in ray_.speeds.keys() & local.speeds.keys())
    if not ratios:
        return ""
    return (f", training images/s Ray / local = {statistics.median(ratios):.2f} (median of {len(ratios)} trainings, "
            f"{ratios[0]:.2f} to {ratios[-1]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", nargs="+", choices=["none", "quick"], default=["none", "quick"])
    parser.add_argument("--copies", type=int, default=1, help="Each example notebook this many times.")
    parser.add_argument("--workers", type=int, default=2, help="Local processes, and Ray CPUs (one per task).")
    parser.add_argument("--hog", type=int, default=0, help="Busy processes beside every batch (default none).")
    args = parser.parse_args()
    import ray

    work = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # references of the synthetic data, not the user's
    try:
        n = make_class(work / "class", args.copies)
        print(f"python {platform.python_version()}, ray {ray.__version__}, {os.cpu_count()} CPUs, "
              f"{n} submissions, {args.workers} local workers vs a local Ray instance with {args.workers} CPUs, "
              f"{args.hog} busy processes beside")
        start = time.perf_counter()
        ray.init(address="local", num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        print(f"ray.init (a new local instance): {time.perf_counter() - start:.2f} s, not counted below")
        for budget in args.budgets:
            options = dict(rubric=load_rubric(), budget=budget)
            if budget == "quick":
                options = _synthetic(work, budget)
            print(f"budget {budget}:")
            runs: dict[str, list[Batch]] = {"local": [], "ray": []}
            with cpu_hog(args.hog):
                for round_ in ("1", "2"):
                    runs["local"].append(timed(f"local {round_}", work / "class", work / f"out-{budget}-local-{round_}",
                                               LocalExecutor(args.workers), **options))
                    runs["ray"].append(timed(f"ray {round_}", work / "class", work / f"out-{budget}-ray-{round_}",
                                             RayExecutor(), **options))
            for i, what in enumerate(("first Ray batch (cold workers)", "second Ray batch (warm workers)")):
                local, ray_ = runs["local"][i], runs["ray"][i]
                extra = ray_.seconds - local.seconds
                print(f"  {what}: Ray - local = {extra:+.2f} s, {extra / n:+.3f} s per submission"
                      f"{speed_ratio(ray_, local)}")
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


def _synthetic(work: Path, budget: str) -> dict:
    """Synthetic data, the small test rubric, and its references trained before timing starts."""
    from grader.data import write_synthetic
    from grader.training.context import prepare_training
    from support import SMALL_RUBRIC

    write_synthetic(work / "data", train=2000, test=500)
    (work / "rubric.toml").write_text(SMALL_RUBRIC)
    rubric = load_rubric(work / "rubric.toml")
    prepare_training(rubric, budget, data_dir=work / "data")
    return dict(rubric=rubric, budget=budget, data_dir=work / "data")


if __name__ == "__main__":
    main()
