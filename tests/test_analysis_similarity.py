"""Near-identical proposed models across a class: renamed copies are found, different models are not."""

import pytest

from grader.analysis import analyze
from grader.analysis.similarity import model_signature, similar_pairs
from nbfactory import LENET, WIDENET, code, notebook


def signature(source, name):
    return model_signature(analyze(notebook(code(source))).definitions, name)


def test_renamed_copies_are_similar_and_different_models_are_not():
    renamed = (WIDENET.replace("WideNet", "MyBrilliantNet").replace("features", "body").replace("self.fc", "self.head")
               .replace("(x)", "(inputs)").replace("x)", "inputs)"))
    signatures = {
        "ann": signature("import torch.nn as nn\n" + WIDENET, "WideNet"),
        "bob": signature("import torch.nn as nn\n" + renamed, "MyBrilliantNet"),
        "cat": signature(LENET, "LeNet"),
    }
    pairs = similar_pairs(signatures)
    assert [(p.a, p.b) for p in pairs] == [("ann", "bob")]
    assert pairs[0].ratio == pytest.approx(1.0)
    assert signatures["ann"].layers == ("Conv2d(3, 64, 3, padding=1)", "ReLU()", "AdaptiveAvgPool2d(1)", "Linear(64, 10)")
