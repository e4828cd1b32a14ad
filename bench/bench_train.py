"""Seconds per epoch: the assignment notebook's naive loop against grader.child.train, in one run.

Both train the same model class from the same seed for the same epochs on the same split
(the rubric's 40,000/10,000, seed 5) with the notebook's optimizer (SGD lr 0.01, momentum 0.9,
constant) and batch size:

  naive   torchvision's CIFAR10 dataset (its __getitem__: uint8 HWC -> PIL -> ToTensor ->
          Normalize) and a DataLoader (batch 64, shuffle, no workers), validation and test
          loaders with batch 1000: the loop of the assignment's notebook.
  grader  grader.child.train.train: resident uint8 data, index-gathers, normalization on the device.

An epoch is the training pass plus the validation pass, for both. Prints the median seconds
per epoch (robust to a neighbour's process stealing a core for one epoch; every epoch's time is
printed too), their ratio (naive / grader), training images/s and both test accuracies.

    PYTHONPATH=. python bench/bench_train.py --data .data/cifar10-jpeg --model LeNet5 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torchvision.transforms as T
from torch import nn
from torchvision.datasets import CIFAR10

from grader.child.config import TrainConfig
from grader.child.train import train
from grader.config import DataConfig
from grader.data import load_cifar10, training_data
from reference_models import REFERENCE_MODELS


class _ArrayCIFAR10(CIFAR10):
    """torchvision's CIFAR10 over arrays we already hold (our data may not be the md5-checked
    release): its own __getitem__ (PIL image, then the transform) is what the notebook runs."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()  # HWC, as CIFAR10 stores it
        self.targets = labels.tolist()
        self.transform, self.target_transform = transform, None


def naive(model_cls, data, config: TrainConfig, device: torch.device) -> dict:
    """The notebook's loop, line for line (see submissions/complete.ipynb)."""
    torch.manual_seed(config.seed)
    tf = T.Compose([T.ToTensor(), T.Normalize(data.mean, data.std)])
    n = config.train_subset or len(data.train_labels)
    train_set = _ArrayCIFAR10(data.train_images[:n], data.train_labels[:n], tf)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch_size, shuffle=True)
    valid_loader = torch.utils.data.DataLoader(_ArrayCIFAR10(data.val_images, data.val_labels, tf), batch_size=1000)
    test_loader = torch.utils.data.DataLoader(_ArrayCIFAR10(data.test_images, data.test_labels, tf), batch_size=1000)
    model = model_cls().to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)

    def evaluate(loader):
        model.eval()
        total, correct, count = 0.0, 0, 0
        with torch.no_grad():
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                out = model(images)
                total += criterion(out, labels).item() * labels.size(0)
                correct += (out.argmax(1) == labels).sum().item()
                count += labels.size(0)
        return total / count, correct / count

    epochs, train_seconds = [], 0.0
    for _ in range(config.epochs):
        t0 = time.perf_counter()
        model.train()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
            loss.item()  # the notebook's running loss: one sync per step
        train_seconds += time.perf_counter() - t0
        val_loss, val_acc = evaluate(valid_loader)
        epochs.append({"seconds": time.perf_counter() - t0, "val_accuracy": val_acc})
    return {"epochs": epochs, "test_accuracy": evaluate(test_loader)[1],
            "train_images_per_second": n * config.epochs / train_seconds}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {len(os.sched_getaffinity(0))} cores"
    except OSError:
        pass
    return platform.machine()


def figures_line(label: str, r: dict) -> str:
    """One run's figures in a line: median s/epoch, training images/s, test accuracy, every epoch."""
    return (f"{label}: {r['seconds_per_epoch']:8.2f} s/epoch  {r['train_images_per_second']:9.0f} train img/s  "
            f"test accuracy {r['test_accuracy']:.2%}  (epochs: {', '.join(f'{s:.2f}' for s in r['epoch_seconds'])})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="CIFAR-10 folder (batches or image folder); default $GRADER_DATA")
    ap.add_argument("--model", default="LeNet5", choices=sorted(REFERENCE_MODELS))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--train-subset", type=int, default=0, help="train on this many images (0 = all 40,000)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--only", choices=["naive", "grader"], default=None, help="run one loop only")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()

    device = torch.device(args.device)
    dataset = load_cifar10(args.data)
    data = training_data(dataset, DataConfig())
    config = TrainConfig(optimizer="sgd", lr=0.01, momentum=0.9, nesterov=False, weight_decay=0.0,
                         schedule="constant", batch_size=args.batch_size, epochs=args.epochs,
                         train_subset=args.train_subset, augment="none", seed=0, select="last")
    cls = REFERENCE_MODELS[args.model]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    print(f"{args.model}, {args.epochs} epochs, batch {args.batch_size}, {config.train_subset or len(data.train_labels)} "
          f"training images, {device.type} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"data {dataset.format} {dataset.sha256[:12]}")
    result: dict = {"model": args.model, "epochs": args.epochs, "batch_size": args.batch_size, "device": device.type,
                    "device_name": name, "torch": torch.__version__}
    if args.only != "grader":
        r = naive(cls, data, config, device)
        result["naive"] = {"seconds_per_epoch": statistics.median(e["seconds"] for e in r["epochs"]),
                           "test_accuracy": r["test_accuracy"], "train_images_per_second": r["train_images_per_second"],
                           "epoch_seconds": [e["seconds"] for e in r["epochs"]]}
    if args.only != "naive":
        h = train(cls, data, config, device=device)
        result["grader"] = {"seconds_per_epoch": statistics.median(e.seconds for e in h.epochs),
                            "test_accuracy": h.test_accuracy, "train_images_per_second": h.train_images_per_second,
                            "epoch_seconds": [e.seconds for e in h.epochs], "notes": list(h.notes),
                            "precision": h.precision, "channels_last": h.channels_last}
    for loop in ("naive", "grader"):
        if loop in result:
            print(figures_line(f"{loop:>7}", result[loop]))
    if "naive" in result and "grader" in result:
        result["ratio"] = result["naive"]["seconds_per_epoch"] / result["grader"]["seconds_per_epoch"]
        print(f"  ratio: grader.child.train is {result['ratio']:.2f}x faster per epoch than the naive loop")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
