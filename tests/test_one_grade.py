"""One grade whatever runs it: the same class (every example submission and two edge cases) graded by
the local executor, by the local executor beside a CPU hog, and by Ray gives one gradebook, and no
honest student is flagged.

The quick budget is counted in FLOPs (grader.child.plan): a model that costs more than the allowance
trains on fewer images, the same ones under any load, and the wall-clock limit is only a safety net.
Only a grader whose budget still depended on time would grade the loaded class differently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.grading.batch import grade_batch
from grader.grading.result import load_result
from grader.rubric import load_rubric
from nbfactory import model_cells, write
from support import SMALL_RUBRIC, SUBMISSIONS, class_folder, cpu_hog

COSTLY = """
def __init__(self):
    super().__init__()
    # 117 MFLOPs an image: over the allowance below for the budget's 800 images, within it for 640
    self.features = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(64, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    self.fc = nn.Linear(32, 10)

def forward(self, x):
    return self.fc(self.features(x).flatten(1))
"""

RAISES = """
def __init__(self):
    super().__init__()
    raise ValueError("my layer sizes are wrong")

def forward(self, x):
    return x
"""

ALLOWANCE = "[train_quick]\nepochs = 2\ntrain_subset = 800\nmax_flops = 0.7e12\nmax_seconds = 120\n"
"""The small rubric's quick budget with an allowance that admits the complete example's ResDropNet and
the ResNet-20 reference (0.59 and 0.55 TFLOP) whole, and a safety net far above what they take (seconds
at idle; a minute on this 2-core machine with two other sessions' work, two workers and the hog)."""

TAMPER = ("may have changed the grader's trainer", "may have forged")
EXAMPLES = sorted(path.stem for path in SUBMISSIONS.glob("*.ipynb"))
"""Every example submission: honest students all."""


@pytest.fixture(scope="module")
def setting(tmp_path_factory, synthetic_data):
    root = tmp_path_factory.mktemp("one-grade")
    rubric = root / "rubric.toml"
    rubric.write_text(SMALL_RUBRIC.replace("[train_quick]\nepochs = 2\ntrain_subset = 800\n", ALLOWANCE))
    students = class_folder(root / "class", {name: name for name in EXAMPLES})
    write(students / "costly.ipynb", *model_cells(COSTLY, "CostlyNet"))
    write(students / "raises.ipynb", *model_cells(RAISES, "BrokenNet"))
    return students, load_rubric(rubric), synthetic_data, root


def graded(setting, out: str, **options) -> Path:
    students, rubric, data, root = setting
    report = grade_batch(students, root / out, rubric=rubric, budget="quick", data_dir=data, workers=2, **options)
    assert sorted(report.graded) == sorted([*EXAMPLES, "costly", "raises"])
    return root / out


@pytest.mark.slow
def test_the_same_class_gets_one_gradebook_under_load_and_under_ray(setting):
    alone = graded(setting, "alone")
    with cpu_hog(os.cpu_count() or 1):
        loaded = graded(setting, "loaded")
    ray = pytest.importorskip("ray")
    from grader.grading.executors.ray import RayExecutor

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = graded(setting, "ray", executor=RayExecutor())
    finally:
        ray.shutdown()

    gradebook = (alone / "gradebook.csv").read_text()
    assert (loaded / "gradebook.csv").read_text() == gradebook
    assert (on_ray / "gradebook.csv").read_text() == gradebook
    for out in (alone, loaded, on_ray):
        ann, ben, cat = (load_result(out / name / "result.json") for name in ("complete", "costly", "raises"))
        # The complete example: both models trained whole, the comparisons of its models scored.
        assert all(not run.history.stopped_early for run in ann.runs.values())
        checks = {c.id: c for c in ann.checks}
        assert all(checks[c].scored for c in ("models_learn", "baseline_works", "proposed_beats_baseline"))
        # The costly model: the same 576 images everywhere, said why, and not compared.
        costly = ben.runs["CostlyNet"].history
        assert costly.budget_cut == "cost" and "it trained on 640 and was scored on 500" in " ".join(costly.notes)
        beats = next(c for c in ben.checks if c.id == "proposed_beats_baseline")
        assert not beats.scored and "CostlyNet costs more FLOPs than the budget allows" in beats.message
        assert "my layer sizes are wrong" in cat.runs["BrokenNet"].error
        for name in [*EXAMPLES, "costly", "raises"]:
            result = load_result(out / name / "result.json")
            assert result.runs, name  # every student's models were run
            assert not [f for f in result.flags if any(words in f for words in TAMPER)], (out.name, name, result.flags)
    test_accuracy = {out.name: load_result(out / "complete" / "result.json").runs["ResDropNet"].test_accuracy
                     for out in (alone, loaded, on_ray)}
    assert len(set(test_accuracy.values())) == 1, test_accuracy  # the same run, to the last bit
