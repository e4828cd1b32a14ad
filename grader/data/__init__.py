"""CIFAR-10 for the grader: loading (batches folder or image folder), caching, splitting, synthetic.

    load_cifar10(path)          -> Cifar10 (uint8 tensors, content hash)
    training_data(ds, config)   -> TrainingData (grader.child.train; the rubric's train/validation split)
    write_synthetic(dir, ...)   a learnable fake CIFAR-10 in torchvision's format
    download_cifar10(dir)       the official release, through torchvision

Imports torch; the static `grader check` path never imports this package.
"""

from grader.data.dataset import (
    Cifar10,
    load_cifar10,
    split_indices,
    training_data,
)
from grader.data.download import download_cifar10
from grader.data.formats import CLASSES
from grader.data.synthetic import write_synthetic

__all__ = [
    "CLASSES", "Cifar10", "download_cifar10", "load_cifar10", "split_indices", "training_data", "write_synthetic",
]
