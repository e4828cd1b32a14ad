"""What several test modules share that is not a fixture: paths, the small rubric, the browser check.

Test modules import this (and nbfactory), never each other.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SUBMISSIONS = REPO / "submissions"
TEST_DATA = Path(__file__).resolve().parent / "data"

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
[checks.models_learn]
points = 0
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
"""Two epochs on a small synthetic split: retraining a class in seconds on a CPU."""


def class_folder(root: Path, notebooks: dict[str, str], without_notebook: tuple[str, ...] = ()) -> Path:
    """A class's submissions folder: student id -> the example notebook (submissions/NAME.ipynb) they
    hand in, and student folders that hold no notebook."""
    root.mkdir(parents=True)
    for student, example in notebooks.items():
        shutil.copy(SUBMISSIONS / f"{example}.ipynb", root / f"{student}.ipynb")
    for student in without_notebook:
        (root / student).mkdir()
    return root


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


needs_chromium = pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed (.ci/run installs it)")


def screenshot(page: Path, tmp_path: Path, *, height: int = 2400):
    """`page` as headless Chromium draws it, an RGB array (saved as tmp_path/shot.png)."""
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size=1100,{height}", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return mpimg.imread(shot)[..., :3]


def pixels_of(pixels, rgb: tuple[int, int, int], tolerance: float = 0.05) -> int:
    """How many pixels have colour `rgb` (0-255), within `tolerance` per channel."""
    match = abs(pixels[..., 0] - rgb[0] / 255) < tolerance
    for channel in (1, 2):
        match &= abs(pixels[..., channel] - rgb[channel] / 255) < tolerance
    return int(match.sum())


MATPLOTLIB_BLUE = (31, 119, 180)
"""The first line colour of matplotlib's default cycle."""


def assert_page_shows_tables_and_curves(page: Path, tmp_path: Path) -> None:
    """Screenshot `page` in headless Chromium: not blank, and the curves image is drawn."""
    pixels = screenshot(page, tmp_path, height=9000)  # the whole page, curves included
    assert pixels.shape[0] >= 2000
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert pixels_of(pixels, MATPLOTLIB_BLUE) > 50  # the learning-curve image is drawn: a blank or missing one has none
    assert "<table>" in page.read_text() or '<table class="checks">' in page.read_text()


# A synthetic retraining, for rendering tests that need runs without training anything.

def run(name, accuracies, params, test_accuracy, notes=()):
    from grader.child.protocol import EpochRecord, History
    from grader.training.runs import ModelRun

    epochs = tuple(EpochRecord(i + 1, 2.0 - a, 1.0, a, 1.0, 0.1) for i, a in enumerate(accuracies))
    history = History(status="ok", message="", epochs=epochs, selected_epoch=len(epochs), test_loss=1.0,
                      test_accuracy=test_accuracy, params=params, flops_per_image=None, peak_memory_bytes=0, seconds=2.0,
                      train_images_per_second=1.0, device="cpu", precision="fp32", channels_last=True, notes=tuple(notes))
    return ModelRun.trained(name, history)


def with_runs(base, epochs=3):
    """`base` as if both models and two references had been retrained for `epochs` epochs."""
    acc = [0.3, 0.45, 0.56, 0.6][:epochs]
    return replace(
        base,
        runs={"LeNet5": run("LeNet5", acc, 62006, 0.55),
              "ResDropNet": run("ResDropNet", [0.4, 0.6, 0.71, 0.75][:epochs], 120000, 0.70,
                                ["forward returns a tuple; its first tensor (output[0]) is used as the logits"])},
        references={"LeNet5": run("LeNet5", [a + 0.02 for a in acc], 62006, 0.56), "ResNet20": run("ResNet20", [a + 0.2 for a in acc], 272474, 0.82)},
        flags=("reported vs reproduced: example flag",),
    )
