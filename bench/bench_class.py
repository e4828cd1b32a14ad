"""A class graded end to end: N notebooks from a pool of real architectures, `grader grade`, the clock.

Builds N submissions (cycling through the pool below) with submissions/build_examples.py's
notebook builder, grades them with `grader grade` at the given budget, and prints the wall time,
students per hour (and the projected time for 200 students), the GPU's utilisation and peak
memory (sampled with nvidia-smi; "n/a on CPU" without one), and each trained model's figures as
bench/bench_train.py prints them (median s/epoch, training images/s, test accuracy, every epoch).

The pool: LeNet-5 and variants (batch norm, wider), a VGG-ish network, ResNet-ish networks with
BatchNorm and Dropout, a lazy model, a model returning a tuple, models over the rubric's
max_params and max_flops_per_image (refused), and broken notebooks (a syntax error, a shape error).

    grader data synthetic /tmp/syn
    PYTHONPATH=. python bench/bench_class.py --students 6 --budget quick --data /tmp/syn
    PYTHONPATH=. python bench/bench_class.py --students 50 --budget full --data .data/cifar10-jpeg --workers 8 -- --gpu-slots 4

Arguments after `--` go to `grader grade` unchanged (e.g. --gpu-slots where the grader has it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "submissions"))  # build_examples imports its sibling comparative_examples

from bench_train import figures_line  # noqa: E402  (bench/ is this script's own folder)
from build_examples import EXAMPLES, build  # noqa: E402

VGG = '''# Model 2: the proposed model, {name}: VGG-style stacks of 3x3 convolutions with batch norm
class {name}(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        def stack(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                    nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*stack(3, 32), *stack(32, 64), *stack(64, 128))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(128 * 4 * 4, 256), nn.ReLU(),
                                        nn.Linear(256, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))'''

LAZY = '''# Model 2: the proposed model, {name}: lazy layers infer their input sizes
class {name}(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.LazyConv2d(32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.LazyConv2d(64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Flatten(), nn.LazyLinear(128), nn.ReLU(), nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.body(x)'''

TUPLE = '''# Model 2: the proposed model, {name}: returns the logits and the class probabilities
class {name}(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(64 * 8 * 8, num_classes)

    def forward(self, x):
        logits = self.fc(self.conv(x).flatten(1))
        return logits, F.softmax(logits, dim=1)'''

TOO_MANY_PARAMS = '''# Model 2: the proposed model, {name}: one enormous hidden layer (215 million parameters)
class {name}(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.hidden = nn.Linear(3 * 32 * 32, 70_000)
        self.out = nn.Linear(70_000, num_classes)

    def forward(self, x):
        return self.out(F.relu(self.hidden(x.flatten(1))))'''

TOO_MANY_FLOPS = '''# Model 2: the proposed model, {name}: 512 channels at full resolution (about 15 GFLOPs an image)
class {name}(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 512, 3, padding=1), nn.ReLU(),
                                  *[m for _ in range(3) for m in (nn.Conv2d(512, 512, 3, padding=1), nn.ReLU())])
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.body(x), 1).flatten(1))'''

SHAPE_ERROR = '''# Model 2: the proposed model, {name}: its linear layer expects the wrong number of features
class {name}(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 8 * 8, num_classes)

    def forward(self, x):
        return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))'''

SYNTAX_ERROR = '''# Model 2: the proposed model, {name}
class {name}(nn.Module)
    def __init__(self):
        super().__init__()'''

# (kind, build_examples.build options): the class cycles through these in order, ordered so that
# a small class already holds every kind of trouble (over-large, broken, lazy, tuple).
POOL: list[tuple[str, dict]] = [
    ("LeNet-5 + ResNet-ish (BN, dropout)", EXAMPLES["complete"]),
    ("over max_params", dict(proposed_name="HugeNet", proposed_code=TOO_MANY_PARAMS)),
    ("LeNet-5 + lazy model", dict(proposed_name="LazyNet", proposed_code=LAZY)),
    ("broken: shape error", dict(proposed_name="ShapeNet", proposed_code=SHAPE_ERROR)),
    ("LeNet-5 + tuple output", dict(proposed_name="TupleNet", proposed_code=TUPLE)),
    ("broken: syntax error", dict(proposed_name="SyntaxNet", proposed_code=SYNTAX_ERROR)),
    ("LeNet-5 + VGG-ish", dict(proposed_name="VggNet", proposed_code=VGG)),
    ("over max_flops_per_image", dict(proposed_name="HeavyNet", proposed_code=TOO_MANY_FLOPS)),
    ("LeNet-5 + LeNet-5 with BN", EXAMPLES["batchnorm_ablation"]),
    ("plain CNN + ResNet-ish (skips)", EXAMPLES["residual_ablation"]),
    ("LeNet-5 + wide LeNet-5", EXAMPLES["credits_missing_component"]),
]


def write_class(folder: Path, students: int) -> dict[str, str]:
    """N notebooks in `folder`; returns each student's kind of submission."""
    kinds = {}
    for i in range(students):
        kind, options = POOL[i % len(POOL)]
        student = f"student{i + 1:03d}"
        (folder / f"{student}.ipynb").write_text(nbformat.writes(build(**options)), encoding="utf-8")
        kinds[student] = kind
    return kinds


class GpuSampler:
    """nvidia-smi's utilisation and memory in use, every half second, while grading runs."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (utilisation %, MiB in use), summed over GPUs per tick
        self.proc: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> "GpuSampler":
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                          "--format=csv,noheader,nounits", "-lms", "500"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            try:
                util, mem = (float(v) for v in line.split(","))
            except ValueError:
                continue
            self.samples.append((util, mem))

    def __exit__(self, *_exc) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait()

    def summary(self) -> str:
        if not self.samples:
            return "GPU: n/a on CPU (no nvidia-smi)" if self.proc is None else "GPU: no samples"
        utils = [u for u, _ in self.samples]
        return (f"GPU: utilisation mean {statistics.mean(utils):.0f}%, median {statistics.median(utils):.0f}% "
                f"over {len(utils)} samples; peak memory in use {max(m for _, m in self.samples):,.0f} MiB")


def model_lines(out: Path, kinds: dict[str, str]) -> list[str]:
    """Each student's score, then each trained model's figures, as bench_train.py prints them."""
    lines = []
    for student, kind in kinds.items():
        path = out / student / "result.json"
        if not path.exists():
            lines.append(f"{student} ({kind}): no result")
            continue
        result = json.loads(path.read_text())
        score = f"{result['score']:.2f}/{result['max_score']:.0f}" if result["status"] == "graded" else result["error"]
        lines.append(f"{student} ({kind}): {result['status']}, {score}")
        for name, run in result.get("runs", {}).items():
            history = run.get("history")
            if not history or not history["epochs"]:
                lines.append(f"  {name}: not trained ({run.get('error') or 'no epochs'})")
                continue
            seconds = [e["seconds"] for e in history["epochs"]]
            figures = {"seconds_per_epoch": statistics.median(seconds), "train_images_per_second": history["train_images_per_second"],
                       "test_accuracy": history["test_accuracy"] or 0.0, "epoch_seconds": seconds}
            lines.append(f"  {figures_line(name, figures)}")
            lines.append(f"    {history['device']}, {history['precision']}, channels_last={history['channels_last']}, "
                         f"peak memory {history['peak_memory_bytes'] / 2**20:,.0f} MiB, run {run['seconds']:.1f} s"
                         + "".join(f"\n    note: {n}" for n in history["notes"]))
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=len(POOL))
    ap.add_argument("--budget", choices=["quick", "full"], default="quick")
    ap.add_argument("--data", default=None, help="CIFAR-10 folder; default $GRADER_DATA")
    ap.add_argument("--workers", type=int, default=1, help="passed to `grader grade --workers`")
    ap.add_argument("--keep", type=Path, default=None, help="build and grade in this folder (kept) instead of a temporary one")
    ap.add_argument("grade_args", nargs="*", help="after --: more `grader grade` options (e.g. --gpu-slots 4)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_class_"))
    submissions, out = work / "submissions", work / "out"
    submissions.mkdir(parents=True, exist_ok=True)
    kinds = write_class(submissions, args.students)
    command = [sys.executable, "-m", "grader.cli", "grade", str(submissions), "--out", str(out),
               "--workers", str(args.workers), *(["--quick"] if args.budget == "quick" else []),
               *(["--data", args.data] if args.data else []), *args.grade_args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"{args.students} students, budget {args.budget}, {' '.join(command[2:])}", flush=True)
    with GpuSampler() as gpu:
        start = time.perf_counter()
        done = subprocess.run(command, env=env, cwd=ROOT)
        wall = time.perf_counter() - start
    print("\n".join(model_lines(out, kinds)))
    per_hour = args.students / wall * 3600
    print(f"wall time {wall:.1f} s for {args.students} students (exit {done.returncode}): {per_hour:.0f} students/hour, "
          f"200 students projected at {200 / per_hour * 60:.1f} min (linear; the references' one-off training shared out)")
    print(gpu.summary())
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
