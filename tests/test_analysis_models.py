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


def models_and_helpers(source: str) -> tuple[list[str], dict[str, str]]:
    """The models and the helper blocks (with why each is one) of a notebook of one code cell."""
    a = analyze(notebook(code(source)))
    return [m.name for m in a.models], {h.name: h.helper_reason for h in a.helpers}


LIGHTNING = ("import pytorch_lightning as pl\n"
             "class Lit(pl.LightningModule):\n    def __init__(self, model, lr=0.1):\n        super().__init__(); self.model = model\n"
             "    def forward(self, x):\n        return self.model(x)\n")


def test_a_lightning_data_module_is_not_a_model_and_a_wrapper_handed_the_model_is_a_helper():
    data = "class Data(pl.LightningDataModule):\n    def setup(self, stage=None):\n        self.train = []\n"
    handed = "net = LeNet()\nlit = Lit(net, lr=0.01)\ntrainer.fit(lit, datamodule=Data())\n"
    assert models_and_helpers(LENET + LIGHTNING + data + handed) == (["LeNet"], {"Lit": "a Lightning wrapper around another model"})
    # The model built in the wrapper's call is what it trains, not a part of it.
    assert models_and_helpers(LENET + LIGHTNING + "lit = Lit(LeNet())\n")[0] == ["LeNet"]


def test_a_class_built_only_as_a_layer_of_nn_sequential_is_a_helper():
    flatten = "class Flatten(nn.Module):\n    def forward(self, x):\n        return x.view(x.size(0), -1)\n"
    seq = "seq = nn.Sequential(nn.Conv2d(3, 8, 3), Flatten(), nn.LazyLinear(10))\n"
    assert models_and_helpers(LENET + flatten + seq) == (["LeNet"], {"Flatten": "passed to nn.Sequential(...)"})


def test_a_block_a_model_is_built_from_is_a_helper_though_built_alone_to_test_it():
    assert models_and_helpers(
        "import torch.nn as nn\n"
        "class Block(nn.Module):\n    def __init__(self, c):\n        super().__init__(); self.conv = nn.Conv2d(c, c, 3)\n"
        "class ResNet(nn.Module):\n    def __init__(self, block, n):\n        super().__init__(); self.blocks = [block(8) for _ in range(n)]\n"
        "m = Block(4)\nout = m(x)  # a sanity check of the block\nmodel = ResNet(Block, 2)\n"
    ) == (["ResNet"], {"Block": "passed to ResNet(...)"})


VIT = """import torch.nn as nn
class PatchEmbedding(nn.Module):
    def __init__(self, patch=4, dim=64):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch, stride=patch)
class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = PatchEmbedding()
        self.blocks = nn.TransformerEncoder(nn.TransformerEncoderLayer(64, 4), 6)
        self.head = nn.Linear(64, 10)
"""


def test_a_model_whose_only_convolution_is_a_patch_embedding_is_not_a_cnn():
    a = analyze(notebook(code(VIT + "class Mixer(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                    "        self.stem = nn.Conv2d(3, 64, 4, 4)\n        self.mlp = nn.Linear(64, 64)\n"
                                    "class Pointwise(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                    "        self.conv = nn.Conv2d(3, 64, kernel_size=1, stride=1)\n"
                                    "class Strided(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                    "        self.down = nn.Conv2d(3, 64, (2, 2), (2, 2))\n"
                                    "class Hybrid(ViT):\n    def __init__(self):\n        super().__init__()\n"
                                    "        self.stem = nn.Conv2d(3, 3, kernel_size=3, padding=1)\n")))
    assert {m.name: m.model.is_cnn for m in a.models} == {"ViT": False, "Mixer": False, "Pointwise": True, "Strided": True, "Hybrid": True}
    assert {h.name: h.is_cnn for h in a.helpers} == {"PatchEmbedding": True}  # a block that holds a convolution


def test_only_words_that_name_a_role_are_a_reading_and_hints_are_guesses():
    nb = notebook(
        md("## Original model"), code(LENET.replace("LeNet", "First")),
        md("## Modified: with dropout"), code(WIDENET.replace("WideNet", "Second")),
    )
    roles = {m.name: (m.role.role, m.role.guessed) for m in analyze(nb).models}
    assert roles == {"First": ("baseline", True), "Second": ("proposed", True)}
    reason = analyze(nb).models[1].role.reason
    assert reason == "the text above its class says 'Modified' (a hint: it does not name the role)"


def test_a_baseline_score_names_no_model_and_a_baseline_compared_with_names_the_other():
    score = analyze(notebook(md("### Dumb baselines\nWe get a dumb baseline score to compare our model against."),
                             code(LENET), md("### Performance baseline"), code("x = 1")))
    assert (score.models[0].role.role, score.models[0].role.guessed) == ("proposed", True)  # 'our model', a hint
    compared = analyze(notebook(
        md("# Part a"), code(LENET.replace("LeNet", "Net")),
        md("b. Extend your CNN with one more layer and compare its accuracy over the baseline implementation in part a."),
        code(WIDENET.replace("WideNet", "ExtendedNet")),
    ))
    roles = {m.name: (m.role.role, m.role.guessed, m.role.reason) for m in compared.models}
    assert roles["ExtendedNet"] == ("proposed", False, "the text above its class compares it with 'baseline'")
    assert roles["Net"][:2] == ("baseline", True)


def test_models_built_by_functions_are_named_by_the_function_where_the_notebook_keeps_one():
    nb = notebook(code(
        "import torch.nn as nn\nfrom keras.models import Sequential\n"
        "def define_model():\n    model = Sequential()\n    model.add(Conv2D(32, (3, 3)))\n    return model\n"
        "def unused_model():\n    return Sequential()\n"
        "def conv_block(c_in, c_out):\n    return nn.Sequential(nn.Conv2d(c_in, c_out, 3), nn.ReLU())\n"
        "def make_cnn():\n    return nn.Sequential(conv_block(3, 8), nn.Flatten(), nn.LazyLinear(10))\n"
        "def run():\n    model = define_model()\n    model.fit(x, y)\n"
        "net = make_cnn()\n"
    ))
    assert {(o.name, o.kind) for o in analyze(nb).other_models} == {
        ("define_model()", "Keras model"), ("make_cnn()", "nn.Sequential variable")}
