"""What differs between two models, measured on the built models in the real sandbox child, and
how the parent treats the child's account of it (untrusted: the student's code ran there).

The sandbox cases build four classes in one models_run (no training): LeNet5, the same with a
BatchNorm2d after each convolution, and a small net with and without its skip connections.
"""

from __future__ import annotations

import pytest

from grader.analysis.architecture import clean_ablation, differences
from grader.child.protocol import Anatomy
from grader.sandbox.models_run import measured_architecture, run_models
from nbfactory import IMPORTS, LENET5, code, notebook

LENET5_BN = """
class LeNet5BN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.bn1 = nn.BatchNorm2d(6)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.conv1(x))))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
"""

# The same blocks with and without `+ x`: a functional ReLU, a loop over blocks (fx-unfriendly
# control flow is fine on the real forward) and an in-place skip.
SKIP_PAIR = """
class Block(nn.Module):
    def __init__(self, channels, skip):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.skip = skip

    def forward(self, x):
        out = self.conv(x)
        if self.skip:
            out += x
        return F.relu(out)


class PlainNet(nn.Module):
    def __init__(self, skip=False):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.blocks = nn.ModuleList([Block(16, skip) for _ in range(2)])
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1) + 0.0)


class SkipNet(PlainNet):
    def __init__(self):
        super().__init__(skip=True)
"""


@pytest.fixture(scope="module")
def measured(isolation):
    nb = notebook(*[code(source) for source in (IMPORTS, LENET5, LENET5_BN, SKIP_PAIR)])
    run = run_models(nb, ["LeNet5", "LeNet5BN", "PlainNet", "SkipNet"], max_params=10**6, isolation=isolation)
    assert all(check.passed for check in run.models.values()), [c.message for c in run.models.values()]
    return {name: check.architecture for name, check in run.models.items()}


def test_lenet5_as_measured_in_the_sandbox(measured):
    lenet = measured["LeNet5"]
    assert (lenet.source, lenet.conv_layers, lenet.linear_layers, lenet.widths) == ("run", 2, 3, (6, 16))
    assert (lenet.norms, lenet.dropout_layers, lenet.residual) == ((), 0, 0)
    assert (lenet.pooling, lenet.activations, lenet.params) == (("MaxPool2d",), ("ReLU",), 62006)


def test_a_batchnorm_ablation_is_one_normalization_difference_and_clean(measured):
    found = differences(measured["LeNet5"], measured["LeNet5BN"])
    assert [d.factor for d in found] == ["normalization", "size"]
    assert found[0].text == "+ BatchNorm2d (2 layers)"
    assert clean_ablation(found) == "normalization"


def test_a_skip_connection_ablation_is_one_residual_difference(measured):
    plain, skip = measured["PlainNet"], measured["SkipNet"]
    assert (plain.residual, skip.residual) == (0, 2)  # `+ 0.0` (a constant) and the broadcast are not skips
    assert (plain.pooling, plain.activations) == (("AdaptiveAvgPool2d",), ("ReLU",))  # functional ones count
    found = differences(plain, skip)
    assert [d.text for d in found] == ["+ 2 residual connections"]
    assert clean_ablation(found) == "residual"


# ---- the parent's checks of the child's account ---------------------------------------------------

def test_kind_names_outside_torch_nn_are_shown_as_other():
    anatomy = Anatomy(conv_layers=1, widths=(8,), norms=("<script>alert(1)</script>", "BatchNorm2d"),
                      activations=("ReLU", "x" * 4000), pooling=("MaxPool2d",))
    arch = measured_architecture(anatomy, 100, 2000)
    assert (arch.norms, arch.activations, arch.pooling) == (("BatchNorm2d", "other"), ("ReLU", "other"), ("MaxPool2d",))


@pytest.mark.parametrize("lie", [
    dict(conv_layers=-1), dict(residual=10**9), dict(widths=(0,)), dict(widths=(2**40,)), dict(widths=(8,) * 10_001),
])
def test_an_implausible_account_is_dropped_whole(lie):
    assert measured_architecture(Anatomy(**lie), 100, 2000) is None


def test_negative_sizes_are_unknown_and_no_account_is_none():
    assert measured_architecture(Anatomy(conv_layers=1, widths=(4,)), -5, -1).params is None
    assert measured_architecture(None, 100, 200) is None
