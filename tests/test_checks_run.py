"""The run checks, judged from ModelRun records as retraining produces them."""

import pytest

from grader.analysis import analyze
from grader.checks import ids
from grader.checks.run import JUDGES, RunFacts, run_checks
from grader.child.protocol import EpochRecord, History
from grader.notebook import load_notebook
from grader.sandbox.models_run import ModelCheck
from grader.training.runs import ModelRun
from support import SUBMISSIONS


def trained(name: str, test_accuracy: float, loss: tuple[float, float] = (2.3, 1.9), cut: str = "",
            val_loss: float = 1.0, val_images: int = 1_000) -> ModelRun:
    """A run as the grader scored it: the validation accuracy of its one epoch is its test accuracy;
    `loss` is the child's account of its training loss (first quarter, last quarter); `cut`, why the run
    is shorter than the budget's ('cost' or 'time', History.budget_cut)."""
    epoch = EpochRecord(1, 1.0, val_loss, test_accuracy, 1.0, 0.1)
    history = History(status="ok", message="", epochs=(epoch,), selected_epoch=1, test_loss=1.0,
                      test_accuracy=test_accuracy, params=10, flops_per_image=None, peak_memory_bytes=0, seconds=1.0,
                      train_images_per_second=1.0, device="cpu", precision="fp32", channels_last=False,
                      loss_start=loss[0], loss_end=loss[1], stopped_early=bool(cut), budget_cut=cut, val_images=val_images)
    return ModelRun.trained(name, history)


REFS = {"LeNet5": trained("LeNet5", 0.60), "ResNet20": trained("ResNet20", 0.80)}
BUILT = {name: ModelCheck(name, True, "ok", "", f"{name}()") for name in ("LeNet5", "ResDropNet")}


@pytest.fixture(scope="module")
def analysis():
    return analyze(load_notebook(SUBMISSIONS / "complete.ipynb"))  # reports 60.12% / 76.54%


def score(analysis, rubric, runs, refs=REFS, models=BUILT, budget="full"):
    return run_checks(RunFacts(analysis, models, runs, refs, rubric, budget))


def scored(analysis, rubric, base, prop, refs=REFS):
    runs = {"LeNet5": trained("LeNet5", base), "ResDropNet": trained("ResDropNet", prop)}
    return {c.id: c for c in score(analysis, rubric, runs, refs).checks}


def test_every_run_check_has_one_judge():
    assert tuple(JUDGES) == ids("run")


def test_a_good_submission(analysis, rubric):
    checks = scored(analysis, rubric, base=0.59, prop=0.75)
    assert [c.id for c in checks.values()] == list(ids("run"))
    assert checks["models_run"].passed and checks["models_run"].points == 10
    assert checks["baseline_works"].passed  # within 5 points of the reference LeNet5
    assert checks["proposed_beats_baseline"].passed
    assert checks["proposed_beats_baseline"].message == "ResDropNet (75.0%) beats LeNet5 (59.0%) by +16.0 points under the fixed config"
    scale = checks["proposed_vs_references"]
    assert scale.passed and scale.points == pytest.approx(0.75 * 5)  # 75% of the way to ResNet20: a grade, not a failure
    assert checks["reported_matches"].passed and checks["models_learn"].passed


def test_credit_is_capped_and_failures_explained(analysis, rubric):
    checks = scored(analysis, rubric, base=0.40, prop=0.35)
    assert not checks["baseline_works"].passed
    assert "more than 5% of the reference LeNet5 (60.0%)" in checks["baseline_works"].message
    assert not checks["proposed_beats_baseline"].passed and checks["proposed_beats_baseline"].points == 0
    assert checks["proposed_vs_references"].points == 0 and checks["proposed_vs_references"].passed  # scored: at 0%
    top = scored(analysis, rubric, base=0.6, prop=0.95)["proposed_vs_references"]
    assert top.passed and top.points == top.max_points


def test_a_reported_gap_is_flagged_not_penalised(analysis, rubric):
    checks = scored(analysis, rubric, base=0.45, prop=0.60)
    gap = checks["reported_matches"]
    assert not gap.passed and not gap.required and gap.max_points == 0
    assert "LeNet5: reported 60.1%, reproduced 45.0%" in gap.message
    assert "flagged for review, not penalised" in gap.message
    runs = {"LeNet5": trained("LeNet5", 0.45), "ResDropNet": trained("ResDropNet", 0.60)}
    assert score(analysis, rubric, runs).flags == (f"reported vs reproduced: {gap.message}",)
    assert score(analysis, rubric, {"LeNet5": trained("LeNet5", 0.60)}).flags == ()


def test_a_model_that_did_not_train_fails_its_comparisons_and_a_missing_reference_leaves_them_unscored(analysis, rubric):
    scored = score(analysis, rubric, {"LeNet5": ModelRun("LeNet5", error="timed out")}, refs={})
    assert scored.flags == ()
    checks = {c.id: c for c in scored.checks}
    works = checks["baseline_works"]  # scored 0 / 5: its message never says "not scored"
    assert works.message == "no retrained test accuracy for LeNet5 (it did not train), so there is nothing to compare"
    assert (works.scored, works.points, works.max_points, works.outcome) == (True, 0, 5, "failed")
    assert all(c.points == 0 for c in checks.values() if c.id != "models_run")
    without_refs = {c.id: c for c in score(analysis, rubric, {"LeNet5": trained("LeNet5", 0.6)}, refs={}).checks}
    works = without_refs["baseline_works"]  # the reference is missing: no fault of the student's
    assert works.message == "not scored: no test accuracy for the reference LeNet5"
    assert (works.scored, works.max_points, works.outcome) == (False, 0, "unscored")


def test_models_run_scores_the_share_of_models_that_run_and_keeps_notes(analysis, rubric):
    models = {"LeNet5": ModelCheck("LeNet5", True, "ok", "", "LeNet5()", note="LeNet5: forward returns a tuple; ..."),
              "ResDropNet": ModelCheck("ResDropNet", False, "timeout", "ResDropNet timed out", "ResDropNet()")}
    check = score(analysis, rubric, {}, models=models).checks[0]
    assert check.id == "models_run" and not check.passed and check.points == 5
    assert check.message == "ResDropNet timed out\nLeNet5: forward returns a tuple; ..."
    nothing = score(analysis, rubric, {}, models={}).checks[0]
    assert nothing.message == "no baseline or proposed model class to run" and nothing.points == 0


def test_a_model_that_does_not_learn_fails_models_learn(analysis, rubric):
    runs = {"LeNet5": trained("LeNet5", 0.5), "ResDropNet": trained("ResDropNet", 0.1, loss=(2.30, 2.31), val_loss=2.31)}
    learn = {c.id: c for c in score(analysis, rubric, runs).checks}["models_learn"]
    assert not learn.passed and learn.required
    assert ("ResDropNet does not learn: 10.0% validation accuracy on 1,000 images (chance is 10%; a model that learned "
            "nothing reaches 13.8% at most), validation loss 2.31 (chance: 2.3)") in learn.message
    assert "LeNet5 learns: 50.0% validation accuracy on 1,000 images" in learn.message
    assert "its training loss went 2.3 -> 1.9 (as its child reported)" in learn.message


@pytest.mark.parametrize("accuracy, val_loss, images, learns", [
    (0.137, 2.4, 1_000, False),  # within four standard errors of chance on 1,000 images
    (0.139, 2.4, 1_000, True),
    (0.139, 2.4, 400, False),  # the same accuracy on fewer images is noise
    (0.10, 2.28, 1_000, True),  # a validation loss below what class counts alone give
    (0.10, 2.29, 1_000, False),
])
def test_learning_is_judged_from_the_graders_validation_figures_against_chance(analysis, rubric, accuracy, val_loss,
                                                                               images, learns):
    runs = {"LeNet5": trained("LeNet5", accuracy, val_loss=val_loss, val_images=images)}
    learn = {c.id: c for c in score(analysis, rubric, runs, models={"LeNet5": BUILT["LeNet5"]}).checks}["models_learn"]
    assert learn.passed == learns, learn.message


def test_a_training_loss_claimed_to_fall_at_chance_is_a_flag_and_no_credit(analysis, rubric):
    """The child's account (losses from the training loop) is shown, never judged: a forged fall
    does not pass, and the disagreement with the grader's own figures goes to the instructor."""
    runs = {"LeNet5": trained("LeNet5", 0.5), "ResDropNet": trained("ResDropNet", 0.1, loss=(2.30, 0.05), val_loss=2.31)}
    scored = score(analysis, rubric, runs)
    learn = {c.id: c for c in scored.checks}["models_learn"]
    assert not learn.passed and learn.points == 0
    assert scored.flags[0] == ("ResDropNet: its child's account says the training loss fell from 2.3 to 0.05, yet the "
                            "grader's scoring of its validation logits is at chance (10.0% on 1,000 images): the model "
                            "code may have forged the account, or the model memorizes its training images")


def test_a_run_the_clock_says_was_cut_is_not_judged_until_it_shows_learning(analysis, rubric):
    runs = {"LeNet5": trained("LeNet5", 0.5), "ResDropNet": trained("ResDropNet", 0.11, val_loss=2.31, cut="time")}
    learn = {c.id: c for c in score(analysis, rubric, runs, budget="quick").checks}["models_learn"]
    assert learn.passed and learn.points == learn.max_points
    assert ("ResDropNet is not judged: it was stopped by the budget's time limit before the end and showed no learning"
            in learn.message)
    alone = {"ResDropNet": runs["ResDropNet"]}
    learn = {c.id: c for c in score(analysis, rubric, alone, models={"ResDropNet": BUILT["ResDropNet"]},
                                    budget="quick").checks}["models_learn"]
    assert not learn.scored


def test_comparisons_a_budget_cannot_support_are_not_scored(analysis, rubric):
    runs = {"LeNet5": trained("LeNet5", 0.13), "ResDropNet": trained("ResDropNet", 0.32)}
    weak = {"LeNet5": trained("LeNet5", 0.13), "ResNet20": trained("ResNet20", 0.35)}  # the reference did not learn
    checks = {c.id: c for c in score(analysis, rubric, runs, refs=weak, budget="quick").checks}
    for check_id in ("baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"):
        check = checks[check_id]
        assert not check.scored and not check.passed and (check.points, check.max_points) == (0, 0), check_id
        assert check.message.startswith(("not scored under the quick budget", "not compared under the quick budget"))
    assert "the reference LeNet5 reached only 13.0%" in checks["baseline_works"].message
    capped = {"LeNet5": trained("LeNet5", 0.5), "ResDropNet": trained("ResDropNet", 0.6, cut="time")}
    beats = {c.id: c for c in score(analysis, rubric, capped, budget="quick").checks}["proposed_beats_baseline"]
    assert not beats.scored and "ResDropNet was stopped by the budget's time limit before the end" in beats.message
    costly = {"LeNet5": trained("LeNet5", 0.5), "ResDropNet": trained("ResDropNet", 0.6, cut="cost")}
    beats = {c.id: c for c in score(analysis, rubric, costly, budget="quick").checks}["proposed_beats_baseline"]
    assert not beats.scored and beats.message == (
        "not scored under the quick budget: ResDropNet costs more FLOPs than the budget allows, so it trained on fewer "
        "images (see its notes), so the runs are not comparable; the grading budget scores it")


def test_a_scale_without_length_or_a_cut_reference_is_not_scored(analysis, rubric):
    runs = {"LeNet5": trained("LeNet5", 0.30), "ResDropNet": trained("ResDropNet", 0.40)}
    close = {"LeNet5": trained("LeNet5", 0.30), "ResNet20": trained("ResNet20", 0.27)}  # ResNet below LeNet
    checks = {c.id: c for c in score(analysis, rubric, runs, refs=close, budget="quick").checks}
    scale = checks["proposed_vs_references"]
    assert not scale.scored and (scale.points, scale.max_points) == (0, 0)
    assert "the reference ResNet20 (27.0%) did not beat LeNet5 (30.0%) by 5%" in scale.message
    assert checks["proposed_beats_baseline"].scored and checks["proposed_beats_baseline"].passed
    cut = {"LeNet5": trained("LeNet5", 0.30), "ResNet20": trained("ResNet20", 0.50, cut="cost")}
    checks = {c.id: c for c in score(analysis, rubric, runs, refs=cut, budget="quick").checks}
    assert not checks["proposed_vs_references"].scored
    assert "the reference ResNet20 costs more FLOPs than the budget allows" in checks["proposed_vs_references"].message
    assert checks["baseline_works"].scored and checks["proposed_beats_baseline"].scored  # they do not use ResNet20
