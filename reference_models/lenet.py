"""LeNet-5 as the PyTorch CIFAR-10 tutorial builds it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    """LeNet-5 with the widths of PyTorch's "Training a Classifier" tutorial (CIFAR-10).

    Source: https://pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html (after LeCun et
    al. 1998): conv 3->6 (5x5), max-pool, conv 6->16 (5x5), max-pool, fc 400-120-84-10, ReLU.
    62,006 parameters. The tutorial reports 54% test accuracy after 2 epochs of SGD (lr 0.001,
    momentum 0.9, batch 4); trained longer it typically reaches 60-65%.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # flatten, not .view: works in channels_last too
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
