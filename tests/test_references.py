"""reference_models and grader.training.references: the networks, and their cached runs."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from grader.cli import cli
from grader.data import write_synthetic
from grader.errors import GraderError
from grader.training.references import run_references
from reference_models import REFERENCE_MODELS, LeNet5, ResNet18, ResNet20

TINY_RUBRIC = """
[assignment]
name = "test"
[data]
train_size = 400
val_size = 100
[train]
optimizer = "adam"
lr = 0.001
schedule = "constant"
batch_size = 64
epochs = 1
train_subset = 128
[references]
baseline = "LeNet5"
strong = "ResNet20"
"""


@pytest.mark.parametrize("cls,params", [(LeNet5, 62_006), (ResNet20, 269_722), (ResNet18, 11_173_962)])
def test_reference_models_build_and_map_images_to_logits(cls, params):
    m = cls()
    assert sum(p.numel() for p in m.parameters()) == params
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert "accuracy" in cls.__doc__ and ("He et al" in cls.__doc__ or "tutorial" in cls.__doc__)


def test_registry_names_every_reference():
    assert set(REFERENCE_MODELS) == {"LeNet5", "ResNet20", "ResNet18"}


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_synthetic(tmp_path / "data", train=500, test=100)
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(TINY_RUBRIC)
    return tmp_path / "data", rubric


def test_references_are_trained_once_then_read_from_cache(setup, tmp_path):
    data, rubric = setup
    first = run_references(rubric=rubric, data_dir=data, device="cpu")
    assert [(r.role, r.model, r.cached) for r in first] == [("baseline", "LeNet5", False), ("strong", "ResNet20", False)]
    assert all(r.history.status == "ok" and r.history.test_accuracy is not None for r in first)
    files = sorted((tmp_path / "cache" / "cnn-grader" / "references").glob("*.json"))
    assert len(files) == 2
    stored = json.loads(files[0].read_text())
    assert set(stored["inputs"]) == {"model", "model_source_sha256", "config", "data_sha256", "torch", "device_type"}

    # Each reference is measured on every test image clean and perturbed: the gap a student's model is judged against.
    assert all((r.memorization.clean_images, r.memorization.perturbed_images) == (100, 100) for r in first)
    assert all(abs(r.memorization.gap) < 0.2 for r in first)

    again = run_references(rubric=rubric, data_dir=data, device="cpu")
    assert [r.cached for r in again] == [True, True]
    assert [r.history for r in again] == [r.history for r in first]  # the whole record, read back from JSON
    assert [r.memorization for r in again] == [r.memorization for r in first]

    forced = run_references(rubric=rubric, data_dir=data, device="cpu", force=True)
    assert [r.cached for r in forced] == [False, False]


def test_references_are_shown_the_images_as_a_students_model_is(setup):
    """Every validation image perturbed, half of the test images, in a fixed draw (the results are cached)."""
    import numpy as np

    from grader.data import load_cifar10, training_data
    from grader.rubric import load_rubric
    from grader.training.references import as_shown

    data_dir, rubric = setup
    data = training_data(load_cifar10(data_dir), load_rubric(rubric).data)
    shown, again = as_shown(data), as_shown(data)
    assert torch.equal(shown.test_images, again.test_images) and torch.equal(shown.val_images, again.val_images)
    published = {image.numpy().tobytes(): int(label) for image, label in zip(data.test_images, data.test_labels)}
    kept = [published.get(image.numpy().tobytes()) for image in shown.test_images]
    assert sum(k is not None for k in kept) == len(kept) // 2  # half of the test images as published
    assert all(k == int(label) for k, label in zip(kept, shown.test_labels) if k is not None)  # with their own labels
    assert not {image.numpy().tobytes() for image in shown.val_images} & {image.numpy().tobytes() for image in data.val_images}
    assert np.array_equal(np.sort(shown.val_labels.numpy()), np.sort(data.val_labels.numpy()))


def test_a_reference_run_cut_by_its_time_limit_is_not_kept(setup, tmp_path):
    data, rubric = setup
    capped = tmp_path / "capped.toml"
    capped.write_text(rubric.read_text() + "\n[train_quick]\nmax_seconds = 1e-9\n")
    runs = run_references(rubric=capped, data_dir=data, device="cpu", budget="quick")
    assert all(r.history.stopped_early for r in runs)
    assert not list((tmp_path / "cache" / "cnn-grader" / "references").glob("*.json"))  # trained again next time


def test_a_different_config_or_dataset_is_a_different_key(setup, tmp_path):
    data, rubric = setup
    base = run_references(rubric=rubric, data_dir=data, device="cpu")
    rubric.write_text(TINY_RUBRIC.replace("lr = 0.001", "lr = 0.002"))
    other = run_references(rubric=rubric, data_dir=data, device="cpu")
    assert [r.cached for r in other] == [False, False] and other[0].key != base[0].key
    write_synthetic(tmp_path / "data2", train=500, test=100, seed=7)
    assert not run_references(rubric=rubric, data_dir=tmp_path / "data2", device="cpu")[0].cached


def test_unknown_reference_name_is_a_user_error(setup):
    data, rubric = setup
    rubric.write_text(TINY_RUBRIC.replace('strong = "ResNet20"', 'strong = "VGG16"'))
    with pytest.raises(GraderError, match="references.strong = 'VGG16' in the rubric; reference_models has LeNet5"):
        run_references(rubric=rubric, data_dir=data, device="cpu")


def test_cli_references(setup):
    data, rubric = setup
    r = CliRunner().invoke(cli, ["references", "--rubric", str(rubric), "--data", str(data), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "baseline LeNet5" in r.output and "trained" in r.output
    r = CliRunner().invoke(cli, ["references", "--rubric", str(rubric), "--data", str(data), "--device", "cpu", "--json"])
    runs = json.loads(r.output)
    assert [x["cached"] for x in runs] == [True, True] and runs[1]["model"] == "ResNet20"


def test_cli_references_without_data_is_one_line(setup, tmp_path):
    _, rubric = setup
    r = CliRunner().invoke(cli, ["references", "--rubric", str(rubric), "--data", str(tmp_path / "none")])
    assert r.exit_code == 2 and r.output.startswith("error: data folder") and r.output.count("\n") == 1
