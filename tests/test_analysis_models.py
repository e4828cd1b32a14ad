"""Which classes are models, which are CNNs, which are helper blocks; roles."""

from grader.analysis import analyze
from nbfactory import LENET, WIDENET, code, md, notebook


def names(analysis):
    return {m.name: (m.model.is_cnn, m.role.role) for m in analysis.models}


def test_subclass_spellings_and_cnn_through_helpers():
    nb = notebook(code(
        "import torch\nfrom torch.nn import Module, Conv2d, Linear\nimport torch.nn.functional as F\n"
        "class A(torch.nn.Module):\n    def __init__(self):\n        super().__init__(); self.c = Conv2d(3, 8, 3)\n"
        "class B(Module):\n    def forward(self, x, w):\n        return F.conv2d(x, w)\n"
        "class C(A):\n    pass\n"
        "def make_layers():\n    return [torch.nn.LazyConv2d(8, 3)]\n"
        "class D(Module):\n    def __init__(self):\n        super().__init__(); self.layers = make_layers()\n"
        "class MLP(Module):\n    def __init__(self):\n        super().__init__(); self.fc = Linear(3072, 10)\n"
        "class NotAModel:\n    conv = Conv2d\n"
    ))
    found = {m.name: m.model.is_cnn for m in analyze(nb).models}
    assert found == {"A": True, "B": True, "C": True, "D": True, "MLP": False}


def test_helper_blocks_are_not_models():
    nb = notebook(code(
        "import torch.nn as nn\n"
        "class BasicBlock(nn.Module):\n    def __init__(self, c):\n        super().__init__(); self.conv = nn.Conv2d(c, c, 3)\n"
        "class Stage(nn.Module):\n    def __init__(self):\n        super().__init__(); self.b = BasicBlock(8)\n"
        "class ResNet(nn.Module):\n    def __init__(self, block, n):\n        super().__init__(); self.s = Stage(); self.blocks = [block(8) for _ in range(n)]\n"
        "class FocalLoss(nn.Module):\n    def forward(self, logits, target):\n        return logits.mean()\n"
        "model = ResNet(BasicBlock, 2)\n"
    ))
    a = analyze(nb)
    assert [m.name for m in a.models] == ["ResNet"]
    assert {h.name: h.helper_reason for h in a.helpers} == {
        "BasicBlock": "used inside Stage",
        "Stage": "used inside ResNet",
        "FocalLoss": "a loss module",
    }


def test_a_model_also_trained_on_its_own_is_not_a_helper():
    nb = notebook(code(LENET + WIDENET + "class Ensemble(nn.Module):\n    def __init__(self):\n        super().__init__(); self.a = LeNet(); self.b = WideNet()\n"
                       "m1 = LeNet()\nm2 = Ensemble()\n"))
    a = analyze(nb)
    assert [m.name for m in a.models] == ["LeNet", "Ensemble"]
    assert {h.name: h.helper_reason for h in a.helpers} == {"WideNet": "used inside Ensemble"}


def test_later_definition_wins_and_is_warned():
    nb = notebook(code(LENET), code("class LeNet(nn.Module):\n    def __init__(self):\n        super().__init__(); self.fc = nn.Linear(3072, 10)\n"))
    a = analyze(nb)
    assert names(a)["LeNet"][0] is False  # the second LeNet has no convolution
    assert a.models[0].model.cell == 1
    assert any("'LeNet' is defined more than once" in w for w in a.warnings)


def test_magics_leading_indent_and_broken_cells():
    nb = notebook(
        code("!pip install torch\n%matplotlib inline\nfiles = !ls"),
        code(" " + LENET.replace("\n", "\n ")),  # a cell that starts indented, as IPython accepts
        code("def broken(:\n    pass"),
    )
    a = analyze(nb)
    assert a.uses_magics
    assert [m.name for m in a.models] == ["LeNet"]
    assert a.warnings == ("cell 2 line 1 is not valid Python (invalid syntax); it was skipped",)


def test_roles_from_words_names_and_order():
    nb = notebook(
        md("## Proposed model"), code(WIDENET.replace("WideNet", "Fancy")),
        md("## Baseline"), code(LENET.replace("LeNet", "Simple")),
    )
    a = analyze(nb)
    assert names(a) == {"Fancy": (True, "proposed"), "Simple": (True, "baseline")}
    assert (a.baseline, a.proposed) == ("Simple", "Fancy")
    assert not any(m.role.guessed for m in a.models)

    guessed = analyze(notebook(code(LENET + WIDENET), code("a = WideNet()\nb = LeNet()\ntrain(b, epochs=3)\ntrain(a, epochs=3)")))
    roles = {m.name: (m.role.role, m.role.guessed) for m in guessed.models}
    assert roles == {"LeNet": ("baseline", True), "WideNet": ("proposed", True)}


def test_models_that_are_not_classes_are_named():
    nb = notebook(code(
        "import torch.nn as nn\nfrom tensorflow import keras\nimport torchvision\n"
        "seq = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(10))\n"
        "km = keras.Sequential([])\nrn = torchvision.models.resnet18()\n"
    ))
    a = analyze(nb)
    assert a.models == ()
    assert {(o.name, o.kind) for o in a.other_models} == {
        ("seq", "nn.Sequential variable"), ("km", "Keras model"), ("rn", "torchvision model")}


def test_a_chain_of_fifteen_hundred_classes_is_read_without_recursion():
    chain = "import torch.nn as nn\nclass M0(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
            "        self.c = nn.Conv2d(3, 6, 5)\n"
    chain += "".join(f"class M{i}(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                     f"        self.inner = M{i - 1}()\n" for i in range(1, 1500))
    a = analyze(notebook(code(chain)))
    assert [(m.name, m.model.is_cnn) for m in a.models] == [("M1499", True)]  # a CNN through 1,499 blocks
    assert len(a.helpers) == 1499 and a.helpers[0].helper_reason == "used inside M1"
