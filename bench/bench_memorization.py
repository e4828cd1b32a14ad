"""What the memorization probe's perturbation costs honest models: clean against perturbed test accuracy.

Trains each model in this process under the budget, shown the images as a student's model is
(grader.training.references.as_shown: every validation image perturbed, half of the test images),
then scores its selected weights on every test image of the budget clean and under several draws
of the perturbation (grader.training.memorization.perturb). The models: the rubric's references,
ResNet18, and the example notebook's classes (our own notebook, run here without a sandbox).
Prints per model the clean accuracy, the gap (clean minus perturbed, in points) under each draw,
and the threshold a student's model would be flagged beyond with these references, at this
budget's image counts (half the test images clean, half perturbed).

    PYTHONPATH=. python bench/bench_memorization.py --data .data/cifar10-jpeg --budget quick
    PYTHONPATH=. python bench/bench_memorization.py --data DIR --budget full --draws 5   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from grader.child.train import predict_logits, train
from grader.data import load_cifar10, training_data
from grader.notebook import load_notebook
from grader.rubric import load_rubric
from grader.sandbox.extract import extract_models
from grader.training.memorization import Memorization, judge, perturb, probe
from grader.training.references import as_shown
from reference_models import REFERENCE_MODELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rubric", type=Path, default=None)
    parser.add_argument("--budget", choices=("quick", "full"), default="quick")
    parser.add_argument("--notebook", type=Path, default=Path("submissions/complete.ipynb"))
    parser.add_argument("--classes", nargs="*", default=["LeNet5", "ResDropNet"])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--extra", nargs="*", default=["ResNet18"], help="reference_models classes beside the rubric's")
    args = parser.parse_args()

    rubric = load_rubric(args.rubric)
    config = rubric.train_config(args.budget)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    data = training_data(load_cifar10(args.data), rubric.data).for_budget(config)
    n = len(data.test_labels)
    print(f"budget {args.budget}, {n:,} test images, {args.draws} draws, {name}, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    models = {m: REFERENCE_MODELS[m] for m in (rubric.references.baseline, rubric.references.strong, *args.extra)}
    namespace: dict = {}
    exec(extract_models(load_notebook(args.notebook), args.classes).source, namespace)  # our own example notebook
    models |= {f"{args.notebook.stem}:{c}": namespace[c] for c in args.classes}

    shown = as_shown(data)
    found: dict[str, list[Memorization]] = {}
    print("\n| model | clean | gap per draw (points) | mean gap | train s |")
    print("| --- | --- | --- | --- | --- |")
    for label, cls in models.items():
        built: list[torch.nn.Module] = []
        started = time.perf_counter()
        history = train(lambda: built.append(cls()) or built[-1], shown, config, device=device)
        seconds = time.perf_counter() - started
        clean = data.test_images.numpy()
        labels = data.test_labels.numpy()
        found[label] = []
        for draw in range(args.draws):
            images = np.concatenate([clean, perturb(clean, np.random.default_rng(1000 + draw))])
            logits = predict_logits(built[0], torch.from_numpy(images), mean=data.mean, std=data.std,
                                    channels_last=history.channels_last, precision=history.precision).cpu().numpy()
            found[label].append(probe(logits, np.concatenate([labels, labels]), np.arange(2 * n) >= n))
        gaps = [m.gap * 100 for m in found[label]]
        print(f"| {label} | {found[label][0].clean_accuracy:.1%} | {', '.join(f'{g:+.1f}' for g in gaps)} | "
              f"{statistics.fmean(gaps):+.1f} | {seconds:.0f} |")

    references = [found[rubric.references.baseline][0], found[rubric.references.strong][0]]
    half = n - n // 2
    verdict = judge(Memorization(0.5, 0.5, half, n // 2), references)
    print(f"\nflagged beyond a gap of {verdict.threshold * 100:.1f} points ({half:,} clean and {n // 2:,} perturbed test "
          f"images; the references' largest gap {verdict.reference_gap * 100:.1f})")
    worst = max(m.gap for ms in found.values() for m in ms)
    beyond = [label for label, ms in found.items() if any(m.gap > verdict.threshold for m in ms)]
    print(f"largest gap of any model and draw here: {worst * 100:+.1f} points; beyond the threshold: {', '.join(beyond) or 'none'}")


if __name__ == "__main__":
    main()
