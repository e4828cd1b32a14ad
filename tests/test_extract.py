"""Extraction: the model classes' dependency closure and nothing else."""

from __future__ import annotations

import ast
import sys

import pytest

from grader.sandbox.extract import extract_models
from grader.sandbox.models_run import check_model
from nbfactory import IMPORTS, LENET5, md, notebook

NOTEBOOK = notebook(
    "%matplotlib inline\n!pip install torchsummary\nfrom __future__ import annotations",
    IMPORTS + "import torchvision\nimport torchvision.transforms as transforms\nimport matplotlib.pyplot as plt\nimport numpy as np",
    "transform = transforms.Compose([transforms.ToTensor()])\n"
    "trainset = torchvision.datasets.CIFAR10(root='./data', train=True, download=True, transform=transform)\n"
    "trainloader = torch.utils.data.DataLoader(trainset, batch_size=4)",
    md("# Models"),
    "DROPOUT = 0.25\nWIDTHS = [32, 64]\ndevice = torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
    "def conv_block(c_in, c_out):\n    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))",
    "class Block(nn.Module):\n    pass",
    "class Block(nn.Module):\n    def __init__(self, c):\n        super().__init__()\n        self.body = conv_block(c, c)",
    "class ProposedNet(Block):\n    def __init__(self, n_classes=10):\n        nn.Module.__init__(self)\n"
    "        self.features = nn.Sequential(conv_block(3, WIDTHS[0]), conv_block(WIDTHS[0], WIDTHS[1]))\n"
    "        self.drop = nn.Dropout(DROPOUT)\n        self.fc = nn.Linear(WIDTHS[1] * 8 * 8, n_classes)\n"
    "    def forward(self, x):\n        return self.fc(self.drop(torch.flatten(self.features(x), 1)))",
    LENET5,
    "class Unused(nn.Module):\n    pass",
    "def train(model, loader):\n    for x, y in loader:\n        model(x)\n"
    "model = ProposedNet(10).to(device)\ntrain(model, trainloader)\nplt.plot([1, 2])",
    "class LeNet5(nn.Module):\n    def __init__(self, n=10):\n        super().__init__()\n        self.fc = nn.Linear(3072, n)\n"
    "    def forward(self, x):\n        return self.fc(x.flatten(1))\nlenet = LeNet5(n=10)",
)


def test_the_module_holds_the_closure_and_nothing_else():
    ex = extract_models(NOTEBOOK, ["LeNet5", "ProposedNet"])
    assert ex.source.splitlines()[2] == "from __future__ import annotations"
    names = set(ex.names)
    assert {"LeNet5", "ProposedNet", "Block", "conv_block", "DROPOUT", "WIDTHS"} <= names
    assert not names & {"Unused", "train", "trainset", "trainloader", "transform", "model", "lenet", "device"}
    for forbidden in ("get_ipython", "DataLoader", "CIFAR10", "plt.plot", "matplotlib", "torchvision", "numpy"):
        assert forbidden not in ex.source, forbidden
    compile(ex.source, "submission.py", "exec")


def test_the_last_definition_wins_and_bases_come_first():
    ex = extract_models(NOTEBOOK, ["LeNet5", "ProposedNet"])
    tree = ast.parse(ex.source)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert [c.name for c in classes].count("LeNet5") == 1
    lenet = next(c for c in classes if c.name == "LeNet5")
    assert "nn.Linear(3072, n)" in ast.unparse(lenet)  # the redefinition in the last cell
    order = [c.name for c in classes]
    assert order.index("Block") < order.index("ProposedNet")
    block = next(c for c in classes if c.name == "Block")
    assert "conv_block" in ast.unparse(block)  # the second Block, not the empty first one


def test_the_extracted_module_runs_on_its_own():
    ex = extract_models(NOTEBOOK, ["LeNet5", "ProposedNet"])
    namespace: dict = {}
    exec(compile(ex.source, "submission.py", "exec"), namespace)
    import torch

    assert namespace["ProposedNet"]()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_the_call_that_builds_the_trained_object_is_found():
    ex = extract_models(NOTEBOOK, ["LeNet5", "ProposedNet"])
    proposed = ex.instantiations["ProposedNet"]
    assert (proposed.arguments, proposed.trained, proposed.source) == ("10", True, "ProposedNet(10)")
    assert ex.instantiations["LeNet5"].arguments == "n=10"


def test_arguments_naming_the_notebooks_classes_and_constants_are_rebuilt():
    nb = notebook(
        IMPORTS,
        "class BasicBlockWithDropout(nn.Module):\n    def __init__(self, c):\n        super().__init__()",
        "class ResNet18(nn.Module):\n    def __init__(self, block, layers, num_classes):\n        super().__init__()\n"
        "        self.blocks = [block(c) for c in layers]\n        self.fc = nn.Linear(8, num_classes)",
        "LAYERS = [2, 2, 2, 2]\nprobe = ResNet18(BasicBlockWithDropout, [1, 1], num_classes=100)",
        "net = ResNet18(BasicBlockWithDropout, LAYERS * 1, num_classes=len(LAYERS) + 6)\ntrain(net, loader)",
        "later = ResNet18(BasicBlockWithDropout, [3, 3], num_classes=10)\nlater.eval()")
    ex = extract_models(nb, ["ResNet18"])
    inst = ex.instantiations["ResNet18"]
    # The call whose object is trained wins over a later one that is not.
    assert inst.arguments == "BasicBlockWithDropout, LAYERS * 1, num_classes=len(LAYERS) + 6" and inst.trained
    assert {"BasicBlockWithDropout", "LAYERS"} <= set(ex.names) and inst.needs == ("BasicBlockWithDropout", "LAYERS")
    namespace: dict = {}
    exec(compile(ex.source, "submission.py", "exec"), namespace)
    args, kwargs = eval(f"(lambda *a, **k: (a, k))({inst.arguments})", namespace)
    assert namespace["ResNet18"](*args, **kwargs).fc.out_features == 10


def test_arguments_the_module_cannot_rebuild_are_skipped():
    nb = notebook(IMPORTS, "N = 10\nclass A(nn.Module):\n    def __init__(self, k):\n        super().__init__()",
                  "a = A(N)\nb = A(len(trainset))")
    inst = extract_models(nb, ["A"]).instantiations["A"]
    assert inst is not None and inst.arguments == "N"  # A(len(trainset)) needs the data: skipped
    assert extract_models(notebook(IMPORTS, "class B(nn.Module):\n    pass", "b = B(*sizes)"), ["B"]).instantiations["B"] is None


def test_a_dependency_on_data_is_reported():
    nb = notebook(IMPORTS, "classes = trainset.classes",
                  "class A(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                  "        self.fc = nn.Linear(10, len(classes))")
    ex = extract_models(nb, ["A"])
    assert "classes" not in ex.names
    assert any("A uses classes, which cell 1 computes" in w for w in ex.warnings)


def test_missing_classes_are_listed():
    ex = extract_models(notebook(IMPORTS, LENET5), ["LeNet5", "Ghost"])
    assert ex.classes == ("LeNet5",) and ex.missing == ("Ghost",)
    assert ex.missing == ("Ghost",)


def test_classes_from_a_cell_with_a_broken_statement_are_extracted():
    nb = notebook(IMPORTS, LENET5 + "model = LeNet5()\nmodel.eval()_\nprint('size', len(" + "\nWIDTH = 16\n")
    ex = extract_models(nb, ["LeNet5"])
    assert ex.classes == ("LeNet5",) and ex.missing == ()
    namespace: dict = {}
    exec(compile(ex.source, "submission.py", "exec"), namespace)
    import torch

    assert namespace["LeNet5"]()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_a_class_read_without_its_broken_statements_is_not_run():
    broken = "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.conv1 = ???\n"
    uses = "class Wrapper(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.inner = Net()"
    ex = extract_models(notebook(IMPORTS, LENET5, broken, uses), ["LeNet5", "Net", "Wrapper"])
    assert ex.classes == ("LeNet5", "Wrapper") and ex.missing == ()
    assert ex.cannot_run == {"Net": "Net is written in cell 2 lines 1-4 with statements that are not valid Python (line 4), "
                                    "so the grader cannot run it; fix them"}
    assert "Wrapper uses Net, written in cell 2 lines 1-4 with statements that are not valid Python (line 4): " \
           "the grader cannot run it" in ex.warnings
    assert "class Net" not in ex.source


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the cases are newer than Python 3.11")
def test_newer_syntax_runs_when_rewritten_exactly_and_is_refused_when_not():
    exact = ('class Tagged(nn.Module):\n    def __init__(self, tags={"kind": "cnn"}):\n        super().__init__()\n'
             '        self.name = f"{tags["kind"]}-{len(tags)}"\n        self.conv = nn.Conv2d(3, 4, 3)\n'
             '    def forward(self, x):\n        return self.conv(x)')
    generic = "class Generic[T](nn.Module):\n    def forward(self, x: T) -> T:\n        return x"
    uses_generic = ("class Wrapper(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.inner = Generic()")
    nb = notebook(IMPORTS, exact, generic, uses_generic)
    ex = extract_models(nb, ["Tagged", "Generic", "Wrapper"])
    assert ex.classes == ("Tagged", "Wrapper") and ex.missing == ()
    assert ex.cannot_run == {"Generic": "Generic is written in cell 2 lines 1-3 with type parameters (Python 3.12), syntax "
                                        "the grader's Python 3.11 has no equivalent for, so the grader cannot run it; "
                                        "write the class without that syntax"}
    assert any(w.startswith("Wrapper uses Generic, written in cell 2 lines 1-3") for w in ex.warnings)
    namespace: dict = {}
    exec(compile(ex.source, "submission.py", "exec"), namespace)  # the rewritten f-string runs on 3.11
    assert namespace["Tagged"]().name == "cnn-1"
    assert "Generic" not in namespace
    check = check_model(ex, "Generic", max_params=10**6, iso=None)  # refused before any child starts
    assert (check.passed, check.kind, check.message) == (False, "newer_syntax", ex.cannot_run["Generic"])
