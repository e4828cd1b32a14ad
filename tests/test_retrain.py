"""Retraining the student's classes in the sandbox, with the metrics computed by the parent."""

import json
import shutil

import numpy as np
import pytest

from conftest import SUBMISSIONS
from grader.config import TrainConfig
from grader.retrain import CHILD_FILES, score_epochs
from grader.rubric import load_rubric
from nbfactory import write, code
from test_feedback import _chromium, assert_page_shows_tables_and_curves

SMALL_RUBRIC = """
[assignment]
name = "test"
generic_model_names = ["Net"]
[data]
train_size = 1600
val_size = 400
[train]
lr = 0.05
batch_size = 64
epochs = 2
schedule = "constant"
[train_quick]
epochs = 2
train_subset = 800
[checks.two_cnn_classes]
points = 20
[checks.models_run]
points = 10
[checks.baseline_works]
points = 5
threshold = 0.05
[checks.proposed_beats_baseline]
points = 10
[checks.proposed_vs_references]
points = 5
[checks.reported_matches]
points = 0
required = false
threshold = 0.1
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small synthetic CIFAR-10 in torchvision's format, a small rubric, and a cache of our own."""
    from grader.data import write_synthetic

    root = tmp_path_factory.mktemp("retrain")
    write_synthetic(root / "data", train=2000, test=500)
    (root / "rubric.toml").write_text(SMALL_RUBRIC)
    return root


@pytest.fixture(scope="module")
def context(small, isolation):
    from grader.retrain import prepare_training

    mp = pytest.MonkeyPatch()
    mp.setenv("XDG_CACHE_HOME", str(small / "cache"))  # references cached here, not in the user's cache
    try:
        yield prepare_training(load_rubric(small / "rubric.toml"), "quick", data_dir=small / "data", isolation=isolation)
    finally:
        mp.undo()


def test_the_child_gets_no_validation_or_test_labels(context):
    assert set(context.files) == set(CHILD_FILES) == {"train_x", "train_y", "val_x", "test_x"}
    assert set(context.labels) == {"val_y", "test_y"}
    assert np.load(context.files["train_x"]).shape == (800, 3, 32, 32)  # the quick budget's subset
    assert np.load(context.files["val_x"]).shape[0] == len(np.load(context.labels["val_y"])) == 400
    assert set(context.references) == {"LeNet5", "ResNet20"}


@pytest.mark.slow
def test_complete_example_retrains_under_quick(small, context):
    from grader.grade import check_with_training

    rubric = load_rubric(small / "rubric.toml")
    report = check_with_training(SUBMISSIONS / "complete.ipynb", rubric=rubric, budget="quick", data_dir=small / "data")
    data = report.to_dict()
    assert set(data["retrain"]) == {"LeNet5", "ResDropNet"}
    for name, entry in data["retrain"].items():
        assert entry["error"] is None, entry
        assert 0.0 <= entry["test_acc"] <= 1.0 and entry["params"] > 0 and entry["seconds"] > 0
        assert [e["epoch"] for e in entry["history"]["epochs"]] == [1, 2]
        assert entry["history"]["selected_epoch"] in (1, 2)
    # The student's LeNet5 is the reference LeNet5, trained the same way: the same result.
    assert data["retrain"]["LeNet5"]["test_acc"] == pytest.approx(data["references"]["LeNet5"]["test_acc"], abs=0.02)
    assert data["run"]["isolation"] in ("bubblewrap", "namespace")
    ids = [c["id"] for c in data["checks"]]
    assert ids[-5:] == ["models_run", "baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"]
    assert next(c for c in data["checks"] if c["id"] == "models_run")["passed"]


@pytest.mark.slow
def test_a_failing_and_a_diverging_model(small, context, tmp_path):
    from grader.grade import grade_submission

    source = (
        "import torch\nimport torch.nn as nn\n"
        "class Tiny(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n        self.fc = nn.Linear(4 * 30 * 30, 10)\n"
        "    def forward(self, x):\n        return self.fc(self.conv(x).flatten(1))\n"
        "class Exploding(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n        self.fc = nn.Linear(4 * 30 * 30, 10)\n"
        "    def forward(self, x):\n        return self.fc(self.conv(x).flatten(1)) * 1e30\n"
    )
    nb = write(tmp_path / "nb.ipynb", code(source), code("a = Tiny()\ntrain(a, lr=0.1)"), code("b = Exploding()\ntrain(b, lr=0.1)"))
    result = grade_submission(nb, student="x", rubric=load_rubric(small / "rubric.toml"), budget="quick", context=context)
    exploding = result.retrain["Exploding"]
    assert exploding["test_acc"] is None or exploding["error"], exploding
    assert "NaN or infinite" in (exploding["error"] or "")
    assert result.retrain["Tiny"]["error"] is None


def test_parent_selects_the_epoch_from_logits():
    val_y, test_y = np.array([0, 1, 2, 3]), np.array([0, 1])
    good, bad = np.eye(10)[[0, 1, 2, 3]] * 5, np.eye(10)[[9, 9, 9, 9]] * 5
    val = np.stack([bad, good, bad]).astype(np.float32)  # epoch 2 is the best on validation
    test = np.stack([np.eye(10)[[9, 9]], np.eye(10)[[0, 1]], np.eye(10)[[9, 1]]]).astype(np.float32) * 5
    history = {"status": "ok", "message": "", "params": 10, "flops_per_image": None,
               "epochs": [{"epoch": i, "train_loss": 1.0, "seconds": 0.1, "lr": 0.1} for i in (1, 2, 3)]}
    best = score_epochs(history, val, test, val_y, test_y, TrainConfig(select="best_val"), 1.0)
    assert (best["history"]["selected_epoch"], best["val_acc"], best["test_acc"]) == (2, 1.0, 1.0)
    last = score_epochs(history, val, test, val_y, test_y, TrainConfig(select="last"), 1.0)
    assert (last["history"]["selected_epoch"], last["test_acc"]) == (3, 0.5)
    val[2, 0, 0] = np.nan
    stopped = score_epochs(history, val, test, val_y, test_y, TrainConfig(select="last"), 1.0)
    assert stopped["history"]["selected_epoch"] == 2 and "epoch 3" in stopped["error"]


@pytest.mark.slow
def test_batch_quick_grading_writes_retraining_and_curves(small, context, tmp_path, monkeypatch):
    from grader.batch import grade_batch

    monkeypatch.setenv("XDG_CACHE_HOME", str(small / "cache"))
    root = tmp_path / "class"
    root.mkdir()
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "ann.ipynb")
    rubric = load_rubric(small / "rubric.toml")
    first = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=small / "data")
    stored = json.loads((tmp_path / "out" / "ann" / "result.json").read_text())
    assert set(stored["retrain"]) == {"LeNet5", "ResDropNet"} and stored["provenance"]["budget"] == "quick"
    assert (tmp_path / "out" / "ann" / "curves.png").exists()
    assert "Reproduced test acc" in (tmp_path / "out" / "ann" / "feedback.md").read_text()
    second = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=small / "data")
    assert first.graded == ["ann"] and second.reused == ["ann"] and second.graded == []
    if _chromium():
        assert_page_shows_tables_and_curves(tmp_path / "out" / "ann" / "feedback.html", tmp_path)


@pytest.mark.slow
def test_grader_ci_with_the_quick_retrain(small, context, tmp_path, monkeypatch):
    import subprocess

    from click.testing import CliRunner

    from grader.cli import cli

    monkeypatch.setenv("XDG_CACHE_HOME", str(small / "cache"))
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(SUBMISSIONS / "complete.ipynb", repo / "hw.ipynb")
    result = CliRunner().invoke(cli, ["ci", str(repo), "--data", str(small / "data"), "--rubric", str(small / "rubric.toml"),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {c["id"] for c in stored["checks"]} >= {"models_run", "proposed_beats_baseline"}
    assert set(stored["retrain"]) == {"LeNet5", "ResDropNet"}
