"""Reference networks the grader trains under the rubric's fixed config for comparison.

    LeNet5    the PyTorch CIFAR-10 tutorial's LeNet-5 (the usual student baseline), 62k params
    ResNet20  He et al. 2016's CIFAR ResNet-20, 0.27M params
    ResNet18  the CIFAR variant of ResNet-18 (3x3 stem, no max-pool), 11.2M params

Each class builds without arguments and maps (N, 3, 32, 32) images to (N, 10) logits.
"""

from reference_models.lenet import LeNet5
from reference_models.resnet import ResNet18, ResNet20

REFERENCE_MODELS = {"LeNet5": LeNet5, "ResNet20": ResNet20, "ResNet18": ResNet18}
"""Name -> class, the names a rubric's [references] may use."""

__all__ = ["REFERENCE_MODELS", "LeNet5", "ResNet18", "ResNet20"]
