"""What the child tells a student about a model that does or does not run (through the real sandbox)."""

from __future__ import annotations

import pytest

from grader.analysis import analyze
from grader.checks.run import RunFacts, models_run
from grader.rubric import load_rubric
from grader.sandbox.model_child import Timeouts
from grader.sandbox.models_run import run_models
from grader.sandbox.process import Limits
from nbfactory import IMPORTS, LENET5, notebook

pytestmark = pytest.mark.slow

CLASSES = '''
class MnistSized(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 10)
    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

class NeedsWidth(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)

class WideResNetLite(nn.Module):
    def __init__(self, num_classes, width=16):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.fc = nn.Linear(width, num_classes)
    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.conv(x), 1).flatten(1))

class Enormous(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(100_000, 100_000)

class SoftmaxOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
    def forward(self, x):
        return F.softmax(self.fc(x.flatten(1)), dim=1)

class Predicts(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
    def forward(self, x):
        return self.fc(x.flatten(1)).argmax(1)

class FlattensWrong(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 5)
        self.fc = nn.Linear(16 * 24 * 24, 10)
    def forward(self, x):
        return self.fc(self.conv(x).view(-1, 16 * 24 * 24))

class TenClassesOf100(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 100)
    def forward(self, x):
        return self.fc(x.flatten(1))

class WithProbas(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
    def forward(self, x):
        logits = self.fc(x.flatten(1))
        return logits, F.softmax(logits, dim=1)

class Lazy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.LazyConv2d(8, 3)
        self.fc = nn.LazyLinear(10)
    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).flatten(1))

class ReturnsDict(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 32 * 32, 10)
    def forward(self, x):
        return {"logits": self.fc(x.flatten(1))}

class AlexNetStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(6))
        self.classifier = nn.Sequential(nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                                        nn.Linear(4096, 10))
    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))

class BasicBlockWithDropout(nn.Module):
    expansion = 1
    def __init__(self, cin, cout, stride=1, p=0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.drop = nn.Dropout(p)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    def forward(self, x):
        out = self.drop(F.relu(self.bn1(self.conv1(x))))
        return F.relu(self.bn2(self.conv2(out)) + self.short(x))

class ResNet18(nn.Module):
    def __init__(self, block, num_blocks, num_classes=10):
        super().__init__()
        self.cin = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layers = nn.Sequential(*[self._layer(block, w, n, s) for w, n, s in
                                      zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2))])
        self.fc = nn.Linear(512 * block.expansion, num_classes)
    def _layer(self, block, width, n, stride):
        blocks = []
        for s in [stride] + [1] * (n - 1):
            blocks.append(block(self.cin, width, s))
            self.cin = width * block.expansion
        return nn.Sequential(*blocks)
    def forward(self, x):
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))

class TooManyFlops(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 512, 3, padding=1),
                                  *[nn.Conv2d(512, 512, 3, padding=1) for _ in range(3)])
        self.fc = nn.Linear(512, 10)
    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.body(x), 1).flatten(1))
'''

NAMES = ["LeNet5", "MnistSized", "NeedsWidth", "WideResNetLite", "Enormous", "SoftmaxOut", "Predicts",
         "FlattensWrong", "TenClassesOf100", "WithProbas", "Lazy", "ReturnsDict", "AlexNetStyle", "ResNet18",
         "TooManyFlops"]
PASSING = {"LeNet5", "WideResNetLite", "SoftmaxOut", "WithProbas", "Lazy", "AlexNetStyle", "ResNet18"}
BUILDS = "model = WideResNetLite(10, width=48)\nn = NeedsWidth(w, 3)\nnet = ResNet18(BasicBlockWithDropout, [2, 2, 2, 2], num_classes=10)"


@pytest.fixture(scope="module")
def runs(isolation):
    nb = notebook(IMPORTS, LENET5, CLASSES, BUILDS)
    # 1 GB: the 10-billion-parameter model must be refused before anything is allocated.
    assignment = load_rubric().assignment
    return run_models(nb, NAMES, max_params=assignment.max_params, max_flops=assignment.max_flops_per_image,
                      isolation=isolation,
                      timeouts=Timeouts(instantiate_s=30, forward_s=30), limits=Limits(memory_bytes=2**30))


def test_a_working_model_passes_with_its_size(runs):
    lenet = runs.models["LeNet5"]
    assert lenet.passed and lenet.built_as == "LeNet5()"
    assert lenet.params == 62006
    assert lenet.flops_per_image == 2 * (6 * 28 * 28 * 75 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10)
    assert lenet.note == "" and lenet.message == ""


def test_a_linear_layer_sized_for_another_image_size_is_named_with_both_shapes(runs):
    m = runs.models["MnistSized"]
    assert m.kind == "shape"
    assert "layer fc1 = Linear(in_features=256, out_features=120) receives 400 features" in m.message
    assert "nn.Linear(400, 120)" in m.message


def test_arguments_are_taken_from_the_notebook_or_asked_for(runs):
    built = runs.models["WideResNetLite"]
    assert built.passed and built.built_as == "WideResNetLite(10, width=48)"
    needs = runs.models["NeedsWidth"]
    assert needs.kind == "needs_args"
    assert "NeedsWidth(width, depth) needs arguments" in needs.message


def test_too_many_parameters_are_refused_before_allocation(runs):
    m = runs.models["Enormous"]
    assert m.kind == "too_many_params"
    assert "10,000,100,000 parameters, over the limit of 200,000,000" in m.message


def test_a_large_classic_model_is_within_the_limits(runs):
    m = runs.models["AlexNetStyle"]
    assert m.passed, m.message
    assert m.params > 50_000_000  # AlexNet-sized: the old 50M limit refused it


def test_a_model_built_from_a_block_class_and_a_list_is_built_as_the_notebook_builds_it(runs):
    m = runs.models["ResNet18"]
    assert m.passed, m.message
    assert m.built_as == "ResNet18(BasicBlockWithDropout, [2, 2, 2, 2], num_classes=10)"
    assert 11_000_000 < m.params < 11_300_000


def test_a_model_too_slow_to_train_in_the_budget_is_refused_by_its_flops(runs):
    m = runs.models["TooManyFlops"]
    assert not m.passed and m.kind == "too_many_flops"
    assert "GFLOPs per 32x32 image, over the limit of 12" in m.message and "make it smaller" in m.message


def test_softmax_output_passes_with_a_logits_hint(runs):
    m = runs.models["SoftmaxOut"]
    assert m.passed
    assert "CrossEntropyLoss expects raw logits" in m.note


def test_a_forward_returning_logits_and_probabilities_passes_with_a_note(runs):
    m = runs.models["WithProbas"]
    assert m.passed and m.kind == "ok"
    assert m.note == "WithProbas: forward returns a tuple; its first tensor (output[0]) is used as the logits"


def test_a_model_of_lazy_layers_builds_and_is_counted_after_its_first_forward(runs):
    m = runs.models["Lazy"]
    assert m.passed, m.message
    assert m.params == (3 * 9 * 8 + 8) + (8 * 30 * 30 * 10 + 10)


def test_a_forward_returning_a_dict_is_named(runs):
    m = runs.models["ReturnsDict"]
    assert not m.passed and m.kind == "not_tensor"
    assert "forward returned a dict; it must return the logits tensor of shape (N, 10)" in m.message


def test_outputs_that_are_not_logits_fail(runs):
    assert "int64 values (class ids?)" in runs.models["Predicts"].message
    assert "to (4, 100) instead of (4, 10)" in runs.models["TenClassesOf100"].message
    assert "reshapes to [-1, 9216]" in runs.models["FlattensWrong"].message


def test_the_check_scores_the_share_of_models_that_run(runs):
    assert {name for name, m in runs.models.items() if m.passed} == PASSING
    rubric = load_rubric()
    check = rubric.score("models_run", models_run(RunFacts(analyze(notebook(IMPORTS)), runs.models, {}, {}, rubric)))
    assert not check.passed and check.id == "models_run"
    assert check.points == pytest.approx(check.max_points * len(PASSING) / len(NAMES), abs=0.01)
    assert "MnistSized" in check.message and "WithProbas: forward returns a tuple" in check.message


# ---- the child's sealed writer and counts, in this process ----------------------------------------

def test_the_report_is_written_past_whatever_student_code_patches_later(tmp_path, monkeypatch):
    """main() holds the writer from before student code runs: json.dump, os.replace, open, numpy's save
    and the seal module's own names, replaced later (by a thread, after the last seal check), are not
    on its path."""
    import builtins
    import json
    import os
    from dataclasses import asdict

    import numpy as np

    from grader.child import seal
    from grader.child.protocol import Anatomy, Report

    write_json, write_npy, plain = seal.write_json, seal.write_npy, seal.plain  # as main() holds them
    report = Report("Honest", ok=True, params=62006, out_shape=(4, 10), anatomy=Anatomy(conv_layers=2, widths=(6, 16)))

    def forge(*args, **kwargs):
        raise AssertionError("the forger's function was called")

    for owner, name in [(json, "dump"), (json, "dumps"), (json.encoder, "c_make_encoder"), (os, "replace"),
                        (os, "open"), (os, "write"), (np, "save"), (np.lib.format, "write_array"),
                        (seal, "_write_file"), (seal, "plain"), (seal, "write_json")]:
        monkeypatch.setattr(owner, name, forge)
    monkeypatch.setattr(json.JSONEncoder, "encode", forge)
    with monkeypatch.context() as m:
        m.setattr(builtins, "open", forge)
        write_json(str(tmp_path / "result.json"), plain(report))
        write_npy(str(tmp_path / "logits.npy"), np.arange(40, dtype=np.float32).reshape(4, 10))
    monkeypatch.undo()
    assert json.loads((tmp_path / "result.json").read_text()) == json.loads(json.dumps(asdict(report)))
    assert np.array_equal(np.load(tmp_path / "logits.npy", allow_pickle=False), np.arange(40).reshape(4, 10))


def test_the_counts_do_not_ask_the_model():
    """A class whose parameters() lists one layer is counted whole, trained whole, and its functional
    convolutions on bare parameters are counted as FLOPs."""
    import torch
    from torch import nn

    from grader.child.runtime import Held, count_flops, held, registered_parameters

    class Hider(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 3, 3, 3))
            self.fc = nn.Linear(8, 10)
            self.bare = [torch.zeros(500)]  # a tensor kept outside the registered parameters

        def parameters(self, recurse=True):
            return iter([self.fc.bias])

        def forward(self, x):
            return self.fc(torch.nn.functional.conv2d(x, self.w, padding=1).mean((2, 3)))

    model = Hider()
    assert held(model) == Held(registered=8 * 27 + 8 * 10 + 10, outside=500)
    assert [p.shape for p in registered_parameters(model)] == [(8, 3, 3, 3), (10, 8), (10,)]
    with torch.no_grad():
        _, flops = count_flops(lambda: model(torch.zeros(2, 3, 32, 32)))
    assert flops == 2 * (2 * 32 * 32 * 8 * 27 + 2 * 8 * 10)
    class Vault:  # says it is torch's, keeps its tensor in a slot
        __module__, __slots__ = "torch.nn", ("w",)

        def __init__(self):
            self.w = torch.zeros(1_000)

    class Small(torch.Tensor):
        def numel(self):
            return 1

    model.vault, model.small = Vault(), torch.zeros(300).as_subclass(Small)
    model.fc.weight.note = torch.zeros(7)  # a tensor hung on a parameter
    assert held(model).outside == 500 + 1_000 + 300 + 7
    honest = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(10))
    assert [id(p) for p in registered_parameters(honest)] == [id(p) for p in honest.parameters()]
