"""How much a grade moves with the training seed: one submission graded under several seeds.

Each seed replaces the rubric's `seed` in [train] and [train_quick]: the student's models and the
references are retrained under it (weight init, batch order, dropout), exactly as a grade
would be. Prints, for every check, the points under each seed and their spread (max - min), the
total's spread, and each model's retrained test accuracy per seed. The goal is a total spread
of at most 1 point in 100.

    PYTHONPATH=. python bench/bench_stability.py --data .data/cifar10-jpeg --budget quick
    PYTHONPATH=. python bench/bench_stability.py --data DIR --budget full --seeds 0 1 2   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from grader.grading.grade import grade_submission
from grader.rubric import load_rubric
from grader.training.context import prepare_training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=Path("submissions/complete.ipynb"))
    parser.add_argument("--rubric", type=Path, default=None)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--budget", choices=("quick", "full"), default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    base = load_rubric(args.rubric)
    cpu = platform.processor() or platform.machine()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({cpu}, {os.cpu_count()} cores)"
    print(f"{args.notebook}, budget {args.budget}, seeds {args.seeds}, {device}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.2f}")
    results = []
    for seed in args.seeds:
        rubric = replace(base, train=replace(base.train, seed=seed), quick=replace(base.quick, seed=seed))
        started = time.perf_counter()
        context = prepare_training(rubric, args.budget, data_dir=args.data)
        result = grade_submission(args.notebook, student=f"seed{seed}", rubric=rubric, budget=args.budget, context=context)
        results.append(result)
        accuracies = ", ".join(f"{name} {run.test_accuracy:.2%}" if run.test_accuracy is not None else f"{name} -"
                               for name, run in {**result.runs, **{f"{n} (ref)": r for n, r in result.references.items()}}.items())
        print(f"seed {seed}: {result.score:g}/{result.max_score:g} in {time.perf_counter() - started:.0f} s; {accuracies}")

    print(f"\n| check | {' | '.join(f'seed {s}' for s in args.seeds)} | spread |")
    print(f"| --- | {' | '.join('---' for _ in args.seeds)} | --- |")
    for i, check in enumerate(results[0].checks):
        cells = [_points(r.checks[i]) for r in results]
        scored = [r.checks[i].points for r in results if r.checks[i].scored]
        spread = max(scored) - min(scored) if len(scored) == len(results) else None
        print(f"| {check.id} | {' | '.join(cells)} | {'-' if spread is None else f'{spread:.2f}'} |")
    totals = [r.score / r.max_score * 100 if r.max_score else 0.0 for r in results]
    print(f"| total (of 100) | {' | '.join(f'{t:.2f}' for t in totals)} | {max(totals) - min(totals):.2f} |")
    _accuracy_spreads(results)


def _accuracy_spreads(results) -> None:
    """Each model's test-accuracy spread (points) and the proposed-minus-baseline gap's: what the
    rubric's references.seed_spread stands for."""
    print("\ntest accuracy spread across seeds (points, max - min):")
    series = {name: [r.runs[name].test_accuracy if name in r.runs else None for r in results] for name in results[0].runs}
    series |= {f"{n} (ref)": [r.references[n].test_accuracy if n in r.references else None for r in results]
               for n in results[0].references}
    series["gap (proposed - baseline)"] = [r.effect.test_accuracy if r.effect else None for r in results]
    for name, values in series.items():
        known = [v for v in values if v is not None]
        spread = f"{(max(known) - min(known)) * 100:.1f}" if len(known) == len(values) else "-"
        print(f"  {name}: {spread}")


def _points(check) -> str:
    return f"{check.points:g}/{check.max_points:g}" if check.scored else "not scored"


if __name__ == "__main__":
    main()
