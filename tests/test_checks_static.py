"""The static checks on the example submissions: each variant fails exactly the check it was built to miss."""

import pytest

from grader.analysis import analyze
from grader.checks import ids
from grader.checks.static import JUDGES
from grader.grading.grade import grade_submission
from grader.notebook import load_notebook
from grader.rubric import load_rubric
from support import SUBMISSIONS


def check_notebook(path, rubric):
    return grade_submission(path, student=path.stem, rubric=rubric)

# best_val_selection is optional (0 points, not required): only best_val_selection.ipynb passes it.
OPTIONAL = {"best_val_selection"}
EXPECTED_FAILURES = {
    "complete": set(),
    "missing_discussion": {"discussion", "discussion_names_winner", "discussion_attributes"},
    "generic_name": {"proposed_named"},
    "missing_validation": {"losses_reported", "accuracies_reported"},
    "missing_test_accuracy": {"accuracies_reported"},
    "different_config": {"same_config"},
    "one_cnn_class": {"two_cnn_classes", "proposed_named", "losses_reported", "accuracies_reported", "same_config"},
    "batchnorm_ablation": set(),
    "residual_ablation": set(),
    "credits_missing_component": set(),
    "wrong_winner": {"discussion_names_winner"},  # it names the baseline; its own numbers say the proposed won
}
PASSES_OPTIONAL = {"best_val_selection"}


@pytest.mark.parametrize("name", sorted(set(EXPECTED_FAILURES) | PASSES_OPTIONAL))
def test_example_submission(name, rubric):
    report = check_notebook(SUBMISSIONS / f"{name}.ipynb", rubric=rubric)
    failed = {c.id for c in report.checks if c.scored and not c.passed}
    expected = EXPECTED_FAILURES.get(name, set()) | (set() if name in PASSES_OPTIONAL else OPTIONAL)
    assert failed == expected
    assert {c.id for c in report.failing} == failed - OPTIONAL  # every other check of the default rubric is required
    for c in (c for c in report.checks if c.scored):
        assert bool(c.hint) == (not c.passed)  # every failure says how to fix it


def test_every_example_is_covered():
    assert {p.stem for p in SUBMISSIONS.glob("*.ipynb")} == set(EXPECTED_FAILURES) | PASSES_OPTIONAL


def test_every_static_check_has_one_judge():
    assert tuple(JUDGES) == ids("static")


def test_complete_example_values(rubric):
    report = check_notebook(SUBMISSIONS / "complete.ipynb", rubric=rubric)
    assert (report.baseline, report.proposed) == ("LeNet5", "ResDropNet")
    assert [m.name for m in report.models if m.kind == "helper"] == ["ResidualBlock"]
    lenet = report.reported["LeNet5"]
    assert (lenet.train_loss, lenet.val_loss, lenet.val_acc, lenet.test_acc, lenet.epochs) == (0.98, 1.17, 0.596, 0.6012, 10)
    assert lenet.evidence["test_acc"] == "cell 14: Baseline test accuracy: 60.12%"  # where it was read, for the student
    assert report.reported["ResDropNet"].test_acc == pytest.approx(0.7654)
    assert report.score == report.max_score == 70


def test_checks_point_at_the_cell_they_are_about(rubric):
    analysis = analyze(load_notebook(SUBMISSIONS / "complete.ipynb"))
    cells = {c.id: c.cell for c in check_notebook(SUBMISSIONS / "complete.ipynb", rubric=rubric).checks}
    assert cells["proposed_named"] == analysis.model("ResDropNet").model.cell
    assert cells["discussion"] == analysis.discussion.cell
    assert cells["accuracies_reported"] == cells["same_config"] == 12  # the cell that trains ResDropNet


def test_partial_credit_and_messages(rubric):
    report = check_notebook(SUBMISSIONS / "missing_validation.ipynb", rubric=rubric)
    losses = next(c for c in report.checks if c.id == "losses_reported")
    assert losses.points == 5 and losses.max_points == 10
    assert losses.message == "LeNet5 has no validation loss; ResDropNet has no validation loss"

    config = next(c for c in check_notebook(SUBMISSIONS / "different_config.ipynb", rubric=rubric).checks if c.id == "same_config")
    assert config.message == "settings differ (LeNet5 vs ResDropNet): epochs: 10 vs 20; lr: 0.01 vs 0.001"

    two = next(c for c in check_notebook(SUBMISSIONS / "one_cnn_class.ipynb", rubric=rubric).checks if c.id == "two_cnn_classes")
    assert "proposed_net is built as nn.Sequential variable, not as a class" in two.message


def test_a_missing_value_says_which_line_was_not_read_and_why(tmp_path, rubric):
    from nbfactory import LENET, WIDENET, code, write

    log = "Epoch 1/2 | train 2.2071 | val 1.9157 | val acc 26.32%\nEpoch 2/2 | train 1.7865 | val 1.5839 | val acc 41.36%\n"
    nb = write(tmp_path / "nb.ipynb", code(LENET + WIDENET), code("a = LeNet()\ntrain(a)", log), code("b = WideNet()\ntrain(b)", log))
    losses = next(c for c in check_notebook(nb, rubric=rubric).checks if c.id == "losses_reported")
    assert losses.points == 0
    assert ("cell 1 prints 'Epoch 1/2 | train 2.2071 | val 1.9157 | val acc 26.32%', not read: 'train' is followed by a "
            "number with no metric name: print 'train loss: ...' or 'train acc: ...' (and 7 more such lines)") in losses.message


def test_values_left_out_say_why_in_the_check(tmp_path, rubric):
    from nbfactory import LENET, WIDENET, code, write

    out = "Epoch 1 | train loss 2.1 | val loss 2.0\n"
    nb = write(tmp_path / "nb.ipynb", code(LENET + WIDENET), code("a = LeNet()\ntrain(a)", out),
               code("class LeNetDropout(nn.Module):\n    pass"), code("a = LeNet()\ntrain(a)", out),
               code("b = WideNet()\ntrain(b)", out))
    losses = next(c for c in check_notebook(nb, rubric=rubric).checks if c.id == "losses_reported")
    assert losses.message.startswith("LeNet has no training loss; LeNet has no validation loss;")
    assert ("; cell 3 trains LeNet again right after cell 2 defines LeNetDropout, which the notebook never builds: "
            "did you mean LeNetDropout()?") in losses.message


def test_a_rubric_can_leave_checks_out(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[assignment]\nname = "x"\n[checks.discussion]\npoints = 7\n')
    report = check_notebook(SUBMISSIONS / "missing_discussion.ipynb", rubric=load_rubric(path))
    assert [(c.id, c.points, c.max_points) for c in report.checks] == [("discussion", 0, 7)]
    assert report.max_score == 7 and len(report.failing) == 1
