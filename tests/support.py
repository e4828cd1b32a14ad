"""What several test modules share that is not a fixture: paths, the small rubric, the browser check,
GitHub's reading of workflow commands, the Gradescope autograder run as Gradescope runs it.

Test modules import this (and nbfactory), never each other.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from contextlib import contextmanager
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


@contextmanager
def cpu_hog(processes: int):
    """`processes` busy loops at this process's priority (one a core loads them all), as long as the
    block runs: the busy neighbours of tests/test_one_grade.py and bench/bench_executors.py --hog."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


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


# GitHub's runner, as far as workflow commands go (actions/runner, ActionCommandManager and ActionCommand).

RUNNER_COMMANDS = frozenset({"add-mask", "add-matcher", "add-path", "debug", "echo", "endgroup", "error", "group",
                             "notice", "remove-matcher", "save-state", "set-env", "set-output", "stop-commands",
                             "warning"})


def workflow_commands(log: str) -> list[tuple[str, str, str]]:
    """(command, properties, data) of every workflow command GitHub's runner would run from `log` (stdout
    and stderr as the runner reads them), in order: a line is one (`::name props::data`) when it starts
    with `::` after spaces, or when it holds `##[name props]data` anywhere; between `::stop-commands::TOKEN`
    and `::TOKEN::` none is, and neither the stop nor the resume line is listed."""
    found, token = [], None
    for line in re.split(r"\r\n|\r|\n", log):
        registered = RUNNER_COMMANDS | ({token.lower()} if token else set())
        command = _command_v2(line, registered) or _command_v1(line, registered)
        if command is None:
            continue
        name = command[0].lower()
        if token is not None:
            token = None if name == token.lower() else token
        elif name == "stop-commands":
            token = command[2]
        else:
            found.append(command)
    return found


def _command_v2(line: str, registered: frozenset | set) -> tuple[str, str, str] | None:
    line = line.lstrip()
    end = line.find("::", 2)
    if not line.startswith("::") or end < 0:
        return None
    name, _, properties = line[2:end].partition(" ")
    return (name, properties, _unescape(line[end + 2:])) if name.lower() in registered else None


def _command_v1(line: str, registered: frozenset | set) -> tuple[str, str, str] | None:
    start = line.find("##[")
    end = line.find("]", start) if start >= 0 else -1
    if end < 0:
        return None
    name, _, properties = line[start + 3:end].partition(" ")
    return (name, properties, _unescape(line[end + 1:])) if name.lower() in registered else None


def _unescape(data: str) -> str:
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


# The Gradescope autograder, run as Gradescope runs it. Its results.json is checked against a JSON
# Schema written from Gradescope's specification.

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "html", "simple_format", "md", "ansi"]}
# https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format"): every key the
# specification names, and no other (a misspelt key would be ignored by Gradescope without a word).
RESULTS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "integer", "minimum": 0},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "score": {"type": "number"},
                "max_score": {"type": "number"},
                "status": {"enum": ["passed", "failed"]},
                "name": {"type": "string"},
                "name_format": FORMAT,
                "number": {"type": "string"},
                "output": {"type": "string"},
                "output_format": FORMAT,
                "tags": {"type": "array", "items": {"type": "string"}},
                "visibility": VISIBILITY,
                "extra_data": {"type": "object"},
            },
        }},
        "leaderboard": {"type": "array", "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "value"],
            "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                           "order": {"enum": ["asc", "desc"]}},
        }},
    },
    # "score": optional, but required if not on each test case
    "anyOf": [{"required": ["score"]}, {"required": ["tests"], "properties": {"tests": {"items": {"required": ["score"]}}}}],
}


def valid(payload: dict) -> dict:
    import jsonschema

    jsonschema.validate(payload, RESULTS_SCHEMA)
    return payload


def build(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "autograder.zip"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--out", str(out), *args],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return out


def unpack(zip_path: Path, root: Path) -> Path:
    """As Gradescope does: the zip into ROOT/source (modes kept), run_autograder copied to ROOT, an empty
    ROOT/submission and ROOT/results."""
    source = root / "source"
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, source))
            path.chmod(info.external_attr >> 16 & 0o777)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def autograder_env(root: Path) -> dict[str, str]:
    """The grader bundled in the zip (not this checkout) on the path, and the autograder's own cache (ROOT/cache)."""
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    return {**env, "GRADER_AUTOGRADER_ROOT": str(root), "PYTHONPATH": str(root / "source" / "cnn-grader")}


def run_autograder(root: Path, python: str = sys.executable, env: dict[str, str] | None = None,
                   timeout: float = 900) -> dict:
    """ROOT/run_autograder, as Gradescope runs it; `timeout` only detects a hang."""
    done = subprocess.run([str(root / "run_autograder")], cwd=root, env={**autograder_env(root), "GRADER_PYTHON": python, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return valid(json.loads((root / "results" / "results.json").read_text()))


