"""The example submissions: each variant fails exactly the check it was built to miss."""

import pytest

from conftest import SUBMISSIONS
from grader.check import check_notebook

EXPECTED_FAILURES = {
    "complete": set(),
    "missing_discussion": {"discussion"},
    "generic_name": {"proposed_named"},
    "missing_validation": {"losses_reported", "accuracies_reported"},
    "missing_test_accuracy": {"accuracies_reported"},
    "different_config": {"same_config"},
    "one_cnn_class": {"two_cnn_classes", "proposed_named", "losses_reported", "accuracies_reported", "same_config"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_example_submission(name, rubric):
    report = check_notebook(SUBMISSIONS / f"{name}.ipynb", rubric=rubric)
    failed = {c.id for c in report.checks if not c.passed}
    assert failed == EXPECTED_FAILURES[name]
    assert report.exit_code == (0 if not failed else 1)
    for c in report.checks:
        assert bool(c.hint) == (not c.passed)  # every failure says how to fix it


def test_every_example_is_covered():
    assert {p.stem for p in SUBMISSIONS.glob("*.ipynb")} == set(EXPECTED_FAILURES)


def test_complete_example_values(rubric):
    report = check_notebook(SUBMISSIONS / "complete.ipynb", rubric=rubric)
    a = report.analysis
    assert (a.baseline, a.proposed) == ("LeNet5", "ResDropNet")
    assert [h.name for h in a.helpers] == ["ResidualBlock"]
    assert a.reported["LeNet5"].to_dict() == {"train_loss": 0.98, "val_loss": 1.17, "val_acc": 0.596, "test_acc": 0.6012, "epochs": 10}
    assert a.reported["ResDropNet"].test_acc == pytest.approx(0.7654)
    assert report.score == report.max_score == 70


def test_partial_credit_and_messages(rubric):
    report = check_notebook(SUBMISSIONS / "missing_validation.ipynb", rubric=rubric)
    losses = next(c for c in report.checks if c.id == "losses_reported")
    assert losses.points == 5 and losses.max_points == 10
    assert losses.message == "LeNet5 has no validation loss; ResDropNet has no validation loss"

    config = next(c for c in check_notebook(SUBMISSIONS / "different_config.ipynb", rubric=rubric).checks if c.id == "same_config")
    assert config.message == "settings differ (LeNet5 vs ResDropNet): epochs: 10 vs 20; lr: 0.01 vs 0.001"

    two = next(c for c in check_notebook(SUBMISSIONS / "one_cnn_class.ipynb", rubric=rubric).checks if c.id == "two_cnn_classes")
    assert "proposed_net is built as nn.Sequential variable, not as a class" in two.message


def test_a_rubric_can_leave_checks_out(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[assignment]\nname = "x"\n[checks.discussion]\npoints = 7\n')
    report = check_notebook(SUBMISSIONS / "missing_discussion.ipynb", rubric_path=path)
    assert [(c.id, c.points, c.max_points) for c in report.checks] == [("discussion", 0, 7)]
    assert report.exit_code == 1
