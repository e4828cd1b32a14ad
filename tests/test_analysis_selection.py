"""Best-validation model selection read from the code, the best_val_selection check, and the
rubric's proposed_name_pattern."""

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader.analysis import analyze
from grader.checks.static import JUDGES
from grader.cli import cli
from grader.errors import RubricError
from grader.grading.grade import grade_submission
from grader.rubric import load_rubric
from nbfactory import LENET, WIDENET, code, notebook, write
from support import REPO, SUBMISSIONS

EVALUATE = """
import copy
import torch

def evaluate(model, loader):
    return 0.5, 0.5
"""

TRAIN_BOTH = """
lenet = train(LeNet(), train_loader, val_loader, test_loader)
wide = train(WideNet(), train_loader, val_loader, test_loader)
"""


def selection_of(train_function: str, *after: str):
    nb = notebook(LENET, WIDENET, EVALUATE, train_function, TRAIN_BOTH, *after)
    analysis = analyze(nb)
    return analysis, JUDGES["best_val_selection"](nb, analysis, load_rubric())


def test_a_deep_copied_best_state_restored_after_the_loop():
    analysis, verdict = selection_of("""
        def train(model, train_loader, val_loader, test_loader, epochs=10):
            best_acc, best_state = 0.0, None
            for epoch in range(epochs):
                val_loss, val_acc = evaluate(model, val_loader)
                if val_acc > best_acc:
                    best_acc = val_acc
                    best_state = copy.deepcopy(model.state_dict())
            model.load_state_dict(best_state)
            return model
    """)
    s = analysis.selection
    assert (s.kind, s.split, s.metric, s.restored) == ("checkpoint", "validation", "val_acc", True)
    assert s.saved_for == s.restored_for == ("LeNet", "WideNet")
    assert (s.cell, s.line, s.code) == (3, 5, "if val_acc > best_acc:")
    assert verdict.passed and "cell 3 line 5: if val_acc > best_acc:" in verdict.message


def test_a_metric_named_by_what_it_was_computed_on():
    analysis, _ = selection_of("""
        def train(model, train_loader, val_loader, test_loader):
            best = 0
            for epoch in range(5):
                acc = evaluate(model, val_loader)[1]
                if acc > best:
                    best = acc
                    torch.save(model.state_dict(), "best.pt")
            model.load_state_dict(torch.load("best.pt"))
            return model
    """)
    assert (analysis.selection.split, analysis.selection.restored) == ("validation", True)


def test_saved_but_never_restored_earns_half_and_says_so():
    analysis, verdict = selection_of("""
        def train(model, train_loader, val_loader, test_loader):
            best_val_loss = float("inf")
            for epoch in range(5):
                val_loss, _ = evaluate(model, val_loader)
                if val_loss < best_val_loss:
                    best_val_loss = val_loss
                    torch.save(model.state_dict(), "best.pt")
            return model
    """)
    assert (analysis.selection.kind, analysis.selection.restored) == ("checkpoint", False)
    assert not verdict.passed and verdict.fraction == 0.5
    assert "never loaded back" in verdict.message


def test_choosing_on_the_test_set_fails_and_is_flagged_for_the_instructor(tmp_path):
    train = """
        def train(model, train_loader, val_loader, test_loader):
            best_acc = 0
            for epoch in range(5):
                test_loss, test_acc = evaluate(model, test_loader)
                if test_acc > best_acc:
                    best_acc = test_acc
                    best = copy.deepcopy(model)
            return best
    """
    analysis, verdict = selection_of(train)
    assert (analysis.selection.split, analysis.selection.restored) == ("test", True)
    assert not verdict.passed and "test set" in verdict.message
    path = write(tmp_path / "leak.ipynb", *(code(textwrap.dedent(c).strip()) for c in (LENET, WIDENET, EVALUATE, train, TRAIN_BOTH)))
    result = grade_submission(path, student="s", rubric=load_rubric())
    assert any(f.startswith("test-set leakage: the best epoch is chosen on the test set (cell 3 line 5: if test_acc > best_acc:)") for f in result.flags)
    check = next(c for c in result.checks if c.id == "best_val_selection")
    assert (check.points, check.max_points, check.required) == (0, 0, False)  # reported, not scored by default


def test_restored_for_one_model_only():
    analysis, verdict = selection_of("""
        def train(model, train_loader, val_loader, test_loader):
            best_acc = 0
            for epoch in range(5):
                val_loss, val_acc = evaluate(model, val_loader)
                if val_acc > best_acc:
                    best_acc = val_acc
                    torch.save(model.state_dict(), f"{type(model).__name__}.pt")
            return model
    """, "wide.load_state_dict(torch.load('WideNet.pt'))")
    s = analysis.selection
    assert (s.saved_for, s.restored_for) == (("LeNet", "WideNet"), ("WideNet",))
    assert not verdict.passed and verdict.fraction == 0.5
    assert "restored for WideNet but not for LeNet" in verdict.message


def test_early_stopping_on_a_patience_counter():
    analysis, verdict = selection_of("""
        def train(model, train_loader, val_loader, test_loader, patience=3):
            best_loss, wait = float("inf"), 0
            for epoch in range(100):
                val_loss, val_acc = evaluate(model, val_loader)
                if val_loss < best_loss:
                    best_loss, wait = val_loss, 0
                else:
                    wait += 1
                if wait >= patience:
                    break
            return model
    """)
    s = analysis.selection
    assert (s.kind, s.split, s.early_stopping, s.saved_for) == ("early_stopping", "validation", True, ("LeNet", "WideNet"))
    assert verdict.passed and verdict.message.startswith("training stops early on the validation set (val_loss)")


def test_an_early_stopping_helper_class_with_its_checkpoint():
    """The popular pytorchtools EarlyStopping: the comparison and the save live in the helper class."""
    analysis, verdict = selection_of("""
        class EarlyStopping:
            def __init__(self, patience=7, path="checkpoint.pt"):
                self.patience, self.path, self.counter, self.best_score, self.early_stop = patience, path, 0, None, False

            def __call__(self, val_loss, model):
                score = -val_loss
                if self.best_score is None:
                    self.best_score = score
                elif score < self.best_score:
                    self.counter += 1
                    self.early_stop = self.counter >= self.patience
                else:
                    self.best_score = score
                    self.save_checkpoint(model)
                    self.counter = 0

            def save_checkpoint(self, model):
                torch.save(model.state_dict(), self.path)

        def train(model, train_loader, val_loader, test_loader):
            stopper = EarlyStopping(patience=5)
            for epoch in range(100):
                val_loss, _ = evaluate(model, val_loader)
                stopper(val_loss, model)
                if stopper.early_stop:
                    break
            model.load_state_dict(torch.load("checkpoint.pt"))
            return model
    """)
    s = analysis.selection
    assert (s.kind, s.split, s.restored) == ("checkpoint", "validation", True)
    assert s.restored_for == ("LeNet", "WideNet")
    assert verdict.passed


def test_a_keras_callback_watches_val_loss_by_default():
    nb = notebook("from tensorflow.keras.callbacks import EarlyStopping\n"
                  "stop = EarlyStopping(patience=3, restore_best_weights=True)")
    s = analyze(nb).selection
    assert (s.kind, s.split, s.restored) == ("early_stopping", "validation", True)


def test_no_selection_is_reported_not_failed_under_the_default_rubric():
    analysis, verdict = selection_of("""
        def train(model, train_loader, val_loader, test_loader):
            best_acc = 0
            for epoch in range(5):
                val_loss, val_acc = evaluate(model, val_loader)
                if val_acc > best_acc:
                    best_acc = val_acc  # tracked and printed, never saved: not a selection
            print(f"best val acc {best_acc}")
            return model
    """)
    assert analysis.selection.kind == "none"
    assert not verdict.passed and "keeps its last epoch's weights (optional)" in verdict.message


def _checked(name: str) -> dict:
    result = CliRunner().invoke(cli, ["check", str(SUBMISSIONS / f"{name}.ipynb"), "--json"])
    data = json.loads(result.stdout)
    failing = [c["id"] for c in data["checks"] if c["required"] and c["scored"] and not c["passed"]]
    assert "best_val_selection" not in failing  # the optional check never fails a notebook
    assert result.exit_code == (1 if failing else 0), result.output
    return data


@pytest.mark.parametrize("name", ["batchnorm_ablation", "residual_ablation", "credits_missing_component", "wrong_winner"])
def test_examples_without_selection(name):
    data = _checked(name)
    check = next(c for c in data["checks"] if c["id"] == "best_val_selection")
    assert (check["passed"], check["required"], data["selection"]["kind"]) == (False, False, "none")


def test_best_val_selection_example():
    data = _checked("best_val_selection")
    check = next(c for c in data["checks"] if c["id"] == "best_val_selection")
    assert check["passed"] and check["cell"] == 8
    assert {k: data["selection"][k] for k in ("kind", "split", "restored", "restored_for")} == {
        "kind": "checkpoint", "split": "validation", "restored": True, "restored_for": ["LeNet5", "ResDropNet"]}
    assert data["reported"]["ResDropNet"]["test_acc"] == pytest.approx(0.7571)


# --- the proposed model's name -----------------------------------------------------------------

def rubric_with_pattern(tmp_path: Path, pattern: str):
    text = (REPO / "rubrics" / "cifar10.toml").read_text().replace('proposed_name_pattern = ""', f"proposed_name_pattern = '{pattern}'")
    (tmp_path / "r.toml").write_text(text)
    return load_rubric(tmp_path / "r.toml")


@pytest.mark.parametrize("pattern, passed", [("[A-Z][A-Za-z]*Net", True), ("[A-Z][A-Za-z]*Model", False),
                                             ("resdropnet", False), ("(?i)resdropnet", True), ("Res", False)])
def test_the_name_pattern_is_a_full_case_sensitive_match(tmp_path, pattern, passed):
    rubric = rubric_with_pattern(tmp_path, pattern)
    result = grade_submission(SUBMISSIONS / "complete.ipynb", student="s", rubric=rubric)
    check = next(c for c in result.checks if c.id == "proposed_named")
    assert check.passed is passed
    if not passed:
        assert check.message == (f"the proposed model is called 'ResDropNet', which does not match the name the "
                                 f"assignment asks for (the pattern {pattern})")
        assert check.hint  # the instructor's words for what the name should be


def test_no_pattern_by_default(rubric):
    assert rubric.assignment.proposed_name_pattern == "" and rubric.matches_name_pattern("anything")


def test_an_invalid_pattern_names_the_key(tmp_path):
    with pytest.raises(RubricError, match=r"^assignment.proposed_name_pattern in rubric .* is not a valid regular expression"):
        rubric_with_pattern(tmp_path, "([A-Z]")
