"""A synthetic CIFAR-10 in torchvision's own file format, for tests and offline demos.

Written as a cifar-10-batches-py folder so that tests exercise the real loader. Each class has a
colour tint and an oriented stripe pattern at a random phase and position, buried in noise: a
LeNet-5 learns it well above chance in one CPU epoch, yet it is not solvable from one pixel.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from grader.data.formats import BATCHES_DIR, CLASSES, META_FILE, TEST_FILES, TRAIN_FILES


def _images(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    angle = labels * (np.pi / len(CLASSES))                # class -> stripe orientation
    freq = 2 * np.pi * (3 + (labels % 3)) / 32             # class -> stripe frequency
    phase = rng.uniform(0, 2 * np.pi, n)                   # random phase: no fixed pixel gives it away
    proj = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
    stripes = np.sin(freq[:, None, None] * proj + phase[:, None, None])
    tint = np.random.default_rng(1234).uniform(-1, 1, (len(CLASSES), 3)).astype(np.float32)
    img = 128 + 50 * stripes[:, None] + 80 * tint[labels][:, :, None, None]
    img += rng.normal(0, 40, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_synthetic(directory: str | Path, *, train: int = 10_000, test: int = 2_000, seed: int = 0) -> Path:
    """Write a synthetic CIFAR-10 to `directory`/cifar-10-batches-py; return that folder."""
    if train < len(TRAIN_FILES) or test < 1:
        raise ValueError(f"need at least {len(TRAIN_FILES)} training and 1 test image")
    out = Path(directory) / BATCHES_DIR
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Balanced classes, shuffled, as in the real batches.
    labels = rng.permutation(np.arange(train + test) % len(CLASSES))
    images = _images(rng, labels).reshape(len(labels), -1)
    train_y, test_y = labels[:train], labels[train:]
    train_x, test_x = images[:train], images[train:]
    bounds = np.linspace(0, train, len(TRAIN_FILES) + 1).astype(int)
    chunks = [(train_x[a:b], train_y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    for (name, _), (x, y) in zip((*TRAIN_FILES, *TEST_FILES), (*chunks, (test_x, test_y))):
        entry = {
            "batch_label": f"synthetic {name} (grader data synthetic, seed {seed})",
            "labels": [int(v) for v in y],
            "data": np.ascontiguousarray(x),
            "filenames": [f"synthetic_{name}_{i:05d}.png" for i in range(len(y))],
        }
        with open(out / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)  # the protocol of the official (Python 2) files
    # "synthetic" marks the folder for the grader, which says so wherever it reports a result.
    meta = {"label_names": list(CLASSES), "num_cases_per_batch": int(bounds[1]), "num_vis": 3072, "synthetic": True}
    with open(out / META_FILE[0], "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return out


__all__ = ["write_synthetic"]
