import json

import pytest

from grader.analysis import analyze
from grader.analysis.similarity import model_signature, similar_pairs
from grader.result import GradeResult, load_result, write_atomic
from nbfactory import LENET, WIDENET, code, notebook


def test_atomic_write_and_round_trip(tmp_path):
    result = GradeResult(student="a", notebook="a.ipynb", notebook_sha256="x", fingerprint="f", status="graded",
                         score=1.0, max_score=2.0, checks=[{"id": "discussion", "points": 1.0}])
    path = tmp_path / "a" / "result.json"
    write_atomic(path, json.dumps(result.to_dict()))
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]  # no temporary file left
    assert load_result(path) == result
    path.write_text(json.dumps({"schema": "other/1"}))
    assert load_result(path) is None


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
