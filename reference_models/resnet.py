"""Residual networks for 32x32 images: ResNet-20 (He et al.'s CIFAR design) and ResNet-18."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity (or projected) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        self.pad = 0
        if stride != 1 or cin != cout:
            if shortcut == "A":
                # Option A of He et al.: subsample, zero-pad the new channels (no parameters).
                self.shortcut = nn.AvgPool2d(1, stride)
                self.pad = cout - cin
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = self.shortcut(x)
        if self.pad:
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class _ResNet(nn.Module):
    def __init__(self, widths: tuple[int, ...], blocks: int, shortcut: str, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(blocks):
                layers.append(_BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1, shortcut))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class ResNet20(_ResNet):
    """ResNet-20 for CIFAR-10 from He et al., "Deep Residual Learning for Image Recognition"
    (CVPR 2016), section 4.2: a 3x3 stem, three stages of 3 basic blocks at 16/32/64 channels,
    option-A (parameter-free) shortcuts, global average pooling. 0.27M parameters.
    The paper reports 8.75% test error (91.25% accuracy) with crop+flip augmentation and 164
    epochs of SGD; akamaster/pytorch_resnet_cifar10 reproduces 91.63%.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__((16, 32, 64), 3, "A", num_classes)


class ResNet18(_ResNet):
    """ResNet-18 (He et al. 2016) in its common CIFAR variant: 3x3 stride-1 stem and no
    max-pool, four stages of 2 basic blocks at 64/128/256/512 channels with 1x1 projection
    shortcuts. 11.2M parameters. kuangliu/pytorch-cifar reports 93.02% test accuracy with
    crop+flip augmentation and 200 epochs of SGD with a cosine schedule.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__((64, 128, 256, 512), 2, "B", num_classes)
