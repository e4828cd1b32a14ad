"""Retraining the student's classes in the sandbox, with the metrics computed by the parent."""

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from grader.child.config import TrainConfig
from grader.child.protocol import TRAIN_INPUTS, EpochRecord, History
from grader.grading.grade import grade_submission
from grader.rubric import load_rubric
from grader.training.retrain import score_epochs, time_limit
from nbfactory import code, write
from support import REPO, SUBMISSIONS, assert_page_shows_tables_and_curves, chromium


def test_the_child_gets_no_validation_or_test_labels(training_context):
    ctx = training_context
    assert set(ctx.files) == set(TRAIN_INPUTS) == {"train_x", "train_y", "val_x", "test_x"}
    assert set(ctx.labels) == {"val", "test"}  # in memory: no file holds them
    assert np.load(ctx.files["train_x"]).shape == (800, 3, 32, 32)  # the quick budget's subset
    assert np.load(ctx.files["val_x"]).shape[0] == len(ctx.labels["val"]) == 400
    assert not any(name.startswith(("val_y", "test_y")) for name in os.listdir(Path(ctx.files["val_x"]).parent))
    assert set(ctx.references) == {"LeNet5", "ResNet20"}
    assert all(run.history is not None and run.test_accuracy is not None for run in ctx.references.values())


def test_each_submission_is_shown_its_own_secret_draw_of_the_validation_and_test_images(training_context):
    """Every validation image perturbed and half of the test images, in an order and a draw no file
    holds: reproducible for the same code, drawn anew for other code."""
    from dataclasses import replace

    from grader.sandbox.extract import extract_models
    from grader.training.memorization import draw_rng
    from grader.training.retrain import shown_to_child
    from nbfactory import model_notebook

    ctx = training_context
    extraction = extract_models(model_notebook("def forward(self, x):\n    return x", "A"), ["A"])
    other = extract_models(model_notebook("def forward(self, x):\n    return x * 1", "A"), ["A"])
    shown = shown_to_child(ctx, extraction)
    val_x, test_x = np.load(ctx.files["val_x"]), np.load(ctx.files["test_x"])
    published = {image.tobytes(): int(label) for image, label in zip(test_x, ctx.labels["test"])}
    test = shown["test"]
    assert test.perturbed.sum() == len(test_x) // 2 and shown["val"].perturbed.all()
    for image, label, perturbed in zip(test.images, test.labels, test.perturbed):
        # a clean image keeps its label; no perturbed one is any published image (a table of hashes misses it)
        assert published.get(image.tobytes()) == (None if perturbed else label)
    assert not {image.tobytes() for image in shown["val"].images} & {image.tobytes() for image in val_x}
    assert np.array_equal(np.sort(test.labels), np.sort(ctx.labels["test"]))
    again, moved = shown_to_child(ctx, extraction), shown_to_child(ctx, other)
    assert np.array_equal(again["test"].images, test.images) and np.array_equal(again["test"].perturbed, test.perturbed)
    assert not np.array_equal(moved["test"].labels, test.labels) and not np.array_equal(moved["test"].perturbed, test.perturbed)
    assert ctx.draw_key and ctx.draw_key.hex() not in json.dumps(ctx.files)
    unkeyed = replace(ctx, draw_key=b"")  # no key: a fresh secret draw every time
    assert not np.array_equal(shown_to_child(unkeyed, extraction)["test"].labels, shown_to_child(unkeyed, extraction)["test"].labels)
    assert draw_rng(b"k", "a").integers(1 << 30) == draw_rng(b"k", "a").integers(1 << 30) != draw_rng(b"k", "b").integers(1 << 30)


def test_a_gap_far_beyond_the_references_is_flagged_and_scored_on_the_perturbed_images():
    from dataclasses import replace

    from grader.training.memorization import Memorization, judge, probe
    from grader.training.retrain import memorization_of
    from grader.training.runs import ModelRun
    from support import run

    references = [Memorization(0.6, 0.59, 1000, 1000), Memorization(0.8, 0.77, 1000, 1000), None]
    # 250 and 250 images: the references' 3 points plus 4 standard deviations of the gap at its noisiest (17.9)
    memorizer = judge(Memorization(1.0, 0.1, 250, 250), references)
    assert memorizer.flagged and (memorizer.reference_gap, memorizer.threshold) == (0.03, pytest.approx(0.03 + 0.1789, abs=1e-4))
    assert not judge(Memorization(0.5, 0.32, 250, 250), references).flagged  # 18 points: within the noise of 250 images
    assert judge(Memorization(0.5, 0.41, 5000, 5000), references).flagged  # 9 points: beyond it at 5,000 (threshold 8)
    assert not judge(Memorization(0.5, 0.43, 5000, 5000), references).flagged
    honest = run("Honest", [0.5], 10, 0.55)
    assert replace(honest, memorization=judge(Memorization(0.56, 0.54, 250, 250), references)).test_accuracy == 0.55
    assert replace(honest, memorization=memorizer).test_accuracy == 0.1
    assert ModelRun("Broken").test_accuracy is None
    labels, perturbed = np.array([0, 1, 2, 3]), np.array([False, True, False, True])
    assert probe(np.eye(10)[[0, 1, 2, 9]], labels, perturbed) == Memorization(1.0, 0.5, 2, 2)
    assert probe(np.eye(10)[[0, 2]], labels[[0, 2]], perturbed[[0, 2]]) is None  # no perturbed image was scored
    # The selected epoch's logits of every image the child was shown, judged clean and perturbed apart.
    from types import SimpleNamespace

    history = replace(honest.history, selected_epoch=1)
    shown = SimpleNamespace(labels=labels, perturbed=perturbed)
    ctx = SimpleNamespace(references={"R": replace(honest, memorization=references[0])})
    found = memorization_of(history, np.eye(10)[None, [0, 1, 9, 3]], shown, ctx)
    assert (found.clean_accuracy, found.clean_images, found.perturbed_accuracy, found.perturbed_images) == (0.5, 2, 1.0, 2)
    assert memorization_of(history, np.eye(10)[None, [0, 1, 9]], shown, ctx) is None  # fewer logits than images
    assert memorization_of(history, np.eye(10)[None, [0, 1, 2, 3, 4]], shown, ctx) is None  # more logits than images


@pytest.mark.slow
def test_complete_example_retrains_under_quick(training_context, small_rubric):
    result = grade_submission(SUBMISSIONS / "complete.ipynb", student="ann", rubric=load_rubric(small_rubric),
                              budget="quick", context=training_context)
    assert set(result.runs) == {"LeNet5", "ResDropNet"}
    for name, run in result.runs.items():
        assert run.error is None, run
        assert 0.0 <= run.test_accuracy <= 1.0 and run.params > 0 and run.seconds > 0
        assert [e.epoch for e in run.history.epochs] == [1, 2]
        assert run.history.selected_epoch in (1, 2) and run.val_accuracy == run.history.selected.val_accuracy
        assert run.history.config == training_context.config  # the rubric's config, not the child's copy
    # The student's LeNet5 is the reference LeNet5, trained the same way: the same result.
    assert result.runs["LeNet5"].test_accuracy == pytest.approx(result.references["LeNet5"].test_accuracy, abs=0.02)
    assert result.provenance.run.isolation in ("bubblewrap", "namespace")
    checks = {c.id: c for c in result.checks}
    assert list(checks)[-6:] == ["models_run", "models_learn", "baseline_works", "proposed_beats_baseline",
                                 "proposed_vs_references", "reported_matches"]
    assert checks["models_run"].passed and checks["models_learn"].passed
    assert all(run.history.loss_end < run.history.loss_start for run in result.runs.values())
    assert all(run.gpu_seconds and run.gpu_seconds > 0 for run in result.runs.values())  # the grading budget's estimate
    # The notebook's 10-epoch figures are not compared with a 2-epoch quick retraining.
    assert not checks["reported_matches"].scored and "not compared under the quick budget" in checks["reported_matches"].message


@pytest.mark.slow
@pytest.mark.realdata
def test_the_complete_example_passes_its_quick_self_check_on_real_images(real_cifar10, tmp_path):
    """The command a student runs, on the rubric's quick budget and the 60,000 real images.

    The rubric's own quick budget, as a student runs it: its allowance is FLOPs, so a machine busy
    with other work gives the same runs, only later."""
    import subprocess
    import sys

    from grader.grading.result import GradeResult
    from grader.report.budget import budget_lines

    rubric = REPO / "rubrics" / "cifar10.toml"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(SUBMISSIONS / "complete.ipynb"),
                           "--train", "quick", "--data", str(real_cifar10), "--rubric", str(rubric), "--json"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    result = GradeResult.from_dict(json.loads(done.stdout))
    checks = {c.id: c for c in result.checks}
    assert result.failing == () and checks["models_run"].passed and checks["models_learn"].passed
    lenet = result.references["LeNet5"].test_accuracy
    assert lenet > 0.2 and checks["baseline_works"].scored  # the baseline reference learned: comparisons scored
    assert result.runs["ResDropNet"].test_accuracy > result.runs["LeNet5"].test_accuracy
    assert not any(run.history.stopped_early for run in (*result.runs.values(), *result.references.values()))
    assert not checks["reported_matches"].scored
    lines = budget_lines(result)
    assert lines[0].startswith("Budget: quick, a quick self-check, not the grading budget: 2 epochs on 5,000 training "
                               "images, at most 3 TFLOP per model (a model that costs more trains on fewer images)")
    assert lines[1].startswith("Data: CIFAR-10 from another source")
    assert lines[2].startswith("The grading budget would take about LeNet5 ")


@pytest.mark.slow
def test_a_quick_grade_says_what_it_could_not_score(training_context, small_rubric, tmp_path):
    strict = tmp_path / "rubric.toml"
    strict.write_text(small_rubric.read_text().replace('[checks.two_cnn_classes]', '[references]\nmin_accuracy = 0.99\n[checks.two_cnn_classes]'))
    rubric = load_rubric(strict)
    result = grade_submission(SUBMISSIONS / "complete.ipynb", student="ann", rubric=rubric, budget="quick",
                              context=training_context)
    unscored = [c.id for c in result.checks if not c.scored]
    assert unscored == ["baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"]
    assert result.max_score == rubric.max_score("quick") - 5 - 10 - 5 and result.failing == ()
    from grader.report.budget import budget_lines

    lines = budget_lines(result)
    assert lines[:2] == [
        f"Budget: quick, a quick self-check, not the grading budget: 2 epochs on 800 training images, on {training_context.device}.",
        f"Data: SYNTHETIC images, not CIFAR-10: the accuracies only show that the pipeline works, read from "
        f"{training_context.data_source}."]
    assert lines[2].startswith("The grading budget would take about LeNet5 ") and "ResDropNet" in lines[2]


@pytest.mark.slow
def test_a_diverging_model_and_a_lazy_one_returning_logits_and_probabilities(training_context, small_rubric, tmp_path):
    source = (
        "import torch\nimport torch.nn as nn\n"
        "class Tiny(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.LazyConv2d(4, 3)\n        self.fc = nn.LazyLinear(10)\n"
        "    def forward(self, x):\n        logits = self.fc(self.conv(x).flatten(1))\n"
        "        return logits, logits.softmax(1)\n"
        "class Exploding(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 4, 3)\n        self.fc = nn.Linear(4 * 30 * 30, 10)\n"
        "    def forward(self, x):\n        return self.fc(self.conv(x).flatten(1)) * 1e30\n"
    )
    nb = write(tmp_path / "nb.ipynb", code(source), code("a = Tiny()\ntrain(a, lr=0.1)"), code("b = Exploding()\ntrain(b, lr=0.1)"))
    result = grade_submission(nb, student="x", rubric=load_rubric(small_rubric), budget="quick", context=training_context)
    exploding = result.runs["Exploding"]
    assert exploding.test_accuracy is None or exploding.error, exploding
    assert "NaN or infinite" in (exploding.error or "")
    tiny = result.runs["Tiny"]  # lazy layers, and `return logits, probas`: trained on its logits, with a note
    assert tiny.error is None and tiny.test_accuracy is not None
    assert tiny.params == (3 * 9 * 4 + 4) + (4 * 30 * 30 * 10 + 10)
    assert "forward returns a tuple; its first tensor (output[0]) is used as the logits" in tiny.notes
    models_run = next(c for c in result.checks if c.id == "models_run")
    assert models_run.passed and "Tiny: forward returns a tuple" in models_run.message


def test_parent_refuses_logits_for_other_images_than_it_showed():
    """The plan fixes the images a child is shown; logits for fewer or more are no epoch at all."""
    history = History(status="ok", message="", epochs=(EpochRecord(1, 1.0, None, None, 0.1, 0.1),), selected_epoch=None,
                      test_loss=None, test_accuracy=None, params=10, flops_per_image=None, peak_memory_bytes=0,
                      seconds=1.0, train_images_per_second=1.0, device="cpu", precision="fp32", channels_last=False)
    val_y, test_y = np.array([0, 1, 2, 3]), np.array([0, 1, 5, 5])
    right = np.eye(10, dtype=np.float32)[None, [0, 1, 2, 5]] * 5
    scored = score_epochs(history, right, right, val_y, test_y, TrainConfig())
    assert (scored.selected.val_accuracy, scored.test_accuracy) == (0.75, 0.75)
    for n in (2, 5):
        wrong = np.eye(10, dtype=np.float32)[None, list(range(n))]
        refused = score_epochs(history, wrong, wrong, val_y, test_y, TrainConfig())
        assert refused.selected_epoch is None and refused.epochs == ()
        assert f"logits for {n:,} validation and {n:,} test images where it was shown 4 of each" in refused.message


def test_parent_selects_the_epoch_from_logits():
    val_y, test_y = np.array([0, 1, 2, 3]), np.array([0, 1])
    good, bad = np.eye(10)[[0, 1, 2, 3]] * 5, np.eye(10)[[9, 9, 9, 9]] * 5
    val = np.stack([bad, good, bad]).astype(np.float32)  # epoch 2 is the best on validation
    test = np.stack([np.eye(10)[[9, 9]], np.eye(10)[[0, 1]], np.eye(10)[[9, 1]]]).astype(np.float32) * 5
    history = History(status="ok", message="", epochs=tuple(EpochRecord(i, 1.0, None, None, 0.1, 0.1) for i in (1, 2, 3)),
                      selected_epoch=None, test_loss=None, test_accuracy=None, params=10, flops_per_image=None,
                      peak_memory_bytes=0, seconds=1.0, train_images_per_second=1.0, device="cpu", precision="fp32",
                      channels_last=False)
    best = score_epochs(history, val, test, val_y, test_y, TrainConfig(select="best_val"))
    assert (best.selected_epoch, best.selected.val_accuracy, best.test_accuracy) == (2, 1.0, 1.0)
    assert [e.val_accuracy for e in best.epochs] == [0.0, 1.0, 0.0]
    last = score_epochs(history, val, test, val_y, test_y, TrainConfig(select="last"))
    assert (last.selected_epoch, last.test_accuracy) == (3, 0.5)
    val[2, 0, 0] = np.nan
    stopped = score_epochs(history, val, test, val_y, test_y, TrainConfig(select="last"))
    assert stopped.selected_epoch == 2 and stopped.status == "diverged" and "epoch 3" in stopped.message


def _account(epochs: int, stopped_early: bool = False) -> History:
    """A training child's account of a run of `epochs` epochs (no validation figures: it holds no labels)."""
    return History(status="ok", message="", epochs=tuple(EpochRecord(i, 1.0, None, None, 0.1, 0.1) for i in range(1, epochs + 1)),
                   selected_epoch=None, test_loss=None, test_accuracy=None, params=10, flops_per_image=None,
                   peak_memory_bytes=0, seconds=1.0, train_images_per_second=1.0, device="cpu", precision="fp32",
                   channels_last=False, stopped_early=stopped_early)


def test_a_safety_net_stop_is_decided_by_the_graders_clock():
    """A claimed stop or fewer epochs than the config are believed only when the train phase lasted,
    by the grader's clock, as long as the safety net allows."""
    config = TrainConfig(epochs=2, max_seconds=20)
    claim = _account(2, stopped_early=True)
    assert time_limit("M", claim, claim, 19.5, config) == (True, [])
    cut, flags = time_limit("M", claim, claim, 3.0, config)
    assert not cut and flags == ["M: its child says the time limit stopped it, yet it trained for 3.0 s by the grader's "
                                 "clock, under the budget's 20 s limit: the run is taken as complete and its comparisons "
                                 "are scored; the model code may have forged its child's account"]
    short = _account(1)
    cut, flags = time_limit("M", short, short, 2.0, config)
    assert not cut and "it returned 1 of the config's 2 epochs, yet it trained for 2.0 s" in flags[0]
    cut, flags = time_limit("M", claim, claim, 500.0, TrainConfig(epochs=2))  # the grading budget: no limit
    assert not cut and "under no time limit (the budget has none)" in flags[0]
    honest = _account(2)
    assert time_limit("M", honest, honest, 1.0, config) == (False, [])


def test_an_honest_run_the_safety_net_stopped_is_no_disagreement_with_the_config():
    """The audit compares what ran with what the trainer planned for it: a stopped run's last epoch ends
    mid-schedule and it has fewer epochs; neither is a tamper flag. A forged learning rate still is."""
    from grader.child.protocol import Report
    from grader.child.train import scheduled_lrs
    from grader.training.retrain import audit

    config = TrainConfig(epochs=3, batch_size=64, schedule="onecycle", lr=0.05)
    lrs = scheduled_lrs(config, 1_344)
    stopped = replace(_account(2, stopped_early=True), epochs=(EpochRecord(1, 2.0, None, None, 1.0, lrs[0]),
                                                                 EpochRecord(2, 1.9, None, None, 1.0, 0.0497)))
    assert audit("M", Report("M", ok=True, params=10, history=stopped), 10, config, 1_344) == []
    complete = replace(stopped, stopped_early=False, epochs=tuple(EpochRecord(i + 1, 2.0, None, None, 1.0, lr)
                                                                  for i, lr in enumerate(lrs)))
    assert audit("M", Report("M", ok=True, params=10, history=complete), 10, config, 1_344) == []
    forged = replace(complete, epochs=(replace(complete.epochs[0], lr=0.0497), *complete.epochs[1:]))
    assert "epoch 1 ran at learning rate 0.0497" in audit("M", Report("M", ok=True, params=10, history=forged), 10,
                                                          config, 1_344)[0]
    unclaimed = replace(complete, epochs=complete.epochs[:2])
    assert "2 epochs reported where the config has 3" in audit("M", Report("M", ok=True, params=10, history=unclaimed), 10,
                                                               config, 1_344)[0]


@pytest.mark.slow
def test_batch_quick_grading_writes_retraining_and_curves(synthetic_data, small_rubric, training_context, tmp_path):
    from grader.grading.batch import grade_batch

    root = tmp_path / "class"
    root.mkdir()
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "ann.ipynb")
    rubric = load_rubric(small_rubric)
    first = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=synthetic_data)
    stored = json.loads((tmp_path / "out" / "ann" / "result.json").read_text())
    assert set(stored["runs"]) == {"LeNet5", "ResDropNet"} and stored["provenance"]["budget"] == "quick"
    assert (tmp_path / "out" / "ann" / "curves.png").exists()
    assert "Reproduced test acc" in (tmp_path / "out" / "ann" / "feedback.md").read_text()
    second = grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", data_dir=synthetic_data)
    assert first.graded == ["ann"] and second.reused == ["ann"] and second.graded == []
    if chromium():
        assert_page_shows_tables_and_curves(tmp_path / "out" / "ann" / "feedback.html", tmp_path)


@pytest.mark.slow
def test_grader_ci_with_the_quick_retrain(synthetic_data, small_rubric, training_context, tmp_path):
    import subprocess

    from click.testing import CliRunner

    from grader.cli import cli

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shutil.copy(SUBMISSIONS / "complete.ipynb", repo / "hw.ipynb")
    result = CliRunner().invoke(cli, ["ci", str(repo), "--data", str(synthetic_data), "--rubric", str(small_rubric),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "out" / "result.json").read_text())
    assert {c["id"] for c in stored["checks"]} >= {"models_run", "proposed_beats_baseline"}
    assert set(stored["runs"]) == {"LeNet5", "ResDropNet"}



@pytest.mark.parametrize("busy, regrade, flops, attempts, flag", [
    (1, True, 86_705_408, 2, None),  # the machine was busy once: the second run is the grade, nothing to say
    (2, True, 86_705_408, 2, "safety net stopped M's training twice although its plan (2.95 TFLOP) fits the allowance: "
                             "the grading machine was too busy"),
    (1, False, 86_705_408, 1, "safety net stopped M's training although its plan (2.95 TFLOP) fits"),  # Gradescope
    (1, True, 12_000_000_000, 1, "safety net stopped M's training: its own cost, 50.9 TFLOP for the smallest run the "
                                 "budget plans, over the 3 TFLOP allowance"),
    (1, True, None, 1, "its FLOPs could not be counted, so its cost is unknown"),
])
def test_a_run_the_safety_net_stopped_is_trained_again_unless_its_own_cost_stopped_it(monkeypatch, busy, regrade, flops,
                                                                                      attempts, flag):
    """Stopped by the clock with a plan that fits the allowance, a run measured the machine: it is trained
    again, and a second stop is left for a regrade with a flag; a model whose smallest plan is over the
    allowance, or whose cost is unknown, is not trained twice."""
    from types import SimpleNamespace

    from grader.training import retrain
    from grader.training.runs import ModelRun

    plans = []

    def train_once(extraction, name, rubric, ctx, plan, checked_params, on_progress):
        plans.append(plan)
        return ModelRun(name, error=f"run {len(plans)}"), [], len(plans) <= busy

    monkeypatch.setattr(retrain, "_train_once", train_once)
    ctx = SimpleNamespace(config=TrainConfig(epochs=2, batch_size=64, max_flops=3e12, max_seconds=300), train_size=5_000,
                          eval_size=1_000, regrade_cut=regrade)
    run, flags = retrain.train_in_sandbox(None, "M", None, ctx, checked_flops=flops)
    assert len(plans) == attempts and run.error == f"run {attempts}"
    assert len(set(plans)) == 1  # every try trains the same plan
    assert flags == [] if flag is None else flag in flags[0] and len(flags) == 1


def test_a_budget_with_a_time_limit_and_no_flop_allowance_says_to_give_it_one(monkeypatch):
    """A rubric written before the FLOP allowance ([train_quick] max_seconds = 20 alone): a stopped run
    is tried again, and the flag says what decides the grade there and how to change it."""
    from types import SimpleNamespace

    from grader.training import retrain
    from grader.training.runs import ModelRun

    tries = []
    monkeypatch.setattr(retrain, "_train_once", lambda *args: (tries.append(1), (ModelRun("M"), [], True))[1])
    ctx = SimpleNamespace(config=TrainConfig(epochs=2, max_seconds=20), train_size=5_000, eval_size=1_000, regrade_cut=True)
    _, flags = retrain.train_in_sandbox(None, "M", None, ctx, checked_flops=86_705_408)
    assert len(tries) == 2 and flags == [
        "the budget's 20 s safety net stopped M's training twice; the budget has no FLOP allowance (max_flops), so a time "
        "limit decides how far a model trains: give the rubric's budget a max_flops (its comparisons are not scored)"]
