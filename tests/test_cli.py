"""The command line as a user meets it: exit codes, JSON on stdout only, one-line errors."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from grader.cli import cli
from grader.grading.result import GradeResult
from nbfactory import LENET, WIDENET, code, write
from support import SUBMISSIONS

RESULT_KEYS = {"schema", "student", "notebook", "status", "error", "models", "reported", "config", "discussion", "selection", "architectures", "warnings",
               "checks", "score", "max_score", "runs", "references", "flags", "provenance"}


def run(*args):
    # A wide terminal, so that assertions on table text do not depend on wrapping.
    return CliRunner(env={"COLUMNS": "240"}).invoke(cli, list(map(str, args)))


def test_complete_example_passes_with_exit_0():
    result = run("check", SUBMISSIONS / "complete.ipynb")
    assert result.exit_code == 0, result.output
    assert "all required checks pass" in result.output
    assert "ResDropNet" in result.output and "LeNet5" in result.output


def test_failing_check_exits_1_and_shows_the_fix():
    result = run("check", SUBMISSIONS / "generic_name.ipynb")
    assert result.exit_code == 1
    assert "a generic name" in result.output
    assert "→ Give the proposed model a class name of its own" in result.output


def test_explain_shows_each_value_its_line_and_model_and_each_line_not_used(tmp_path):
    log = ("Epoch 1/2 | train 2.2071 | val 1.9157 | val acc 26.32%\nEpoch 2/2 | train 1.7865 | val 1.5839 | val acc 41.36%\n"
           "Accuracy: 0.73, Precision: 0.74\n")
    nb = write(tmp_path / "nb.ipynb", code(LENET + WIDENET), code("m = LeNet()\ntrain(m, train_loader, val_loader)\nevaluate(m, test_loader)", log))
    result = run("check", nb, "--explain")
    assert result.exit_code == 1, result.output
    explained = result.output.split("How the outputs were read", 1)[1]
    assert "41.36%" in explained and "cell 1: Epoch 2/2 | train 1.7865" in explained and "cell 1 uses LeNet" in explained
    assert "'train' is followed by a number with no metric name: print 'train loss: ...'" in explained
    assert "an accuracy with no split" in explained  # "Accuracy: 0.73" in a cell that reads val and test
    assert run("check", nb, "--explain", "--json").exit_code == 2  # one or the other


def test_json_is_the_result_json_of_a_static_grade():
    result = run("check", SUBMISSIONS / "complete.ipynb", "--json")
    data = json.loads(result.stdout)
    assert RESULT_KEYS <= set(data)
    assert data["schema"] == "grader.result/2" and data["status"] == "graded"
    assert GradeResult.from_dict(data).score == data["score"] == 70  # what `grader grade` would store
    models = {m["name"]: (m["kind"], m["role"]) for m in data["models"]}
    assert models == {"LeNet5": ("model", "baseline"), "ResDropNet": ("model", "proposed"), "ResidualBlock": ("helper", "unknown")}
    assert set(data["models"][0]) >= {"name", "role", "is_cnn", "cell", "line"}
    assert set(data["reported"]["LeNet5"]) == {"train_loss", "val_loss", "val_acc", "test_acc", "epochs", "evidence", "attribution"}
    assert [c["id"] for c in data["checks"]] == [
        "notebook_valid", "two_cnn_classes", "proposed_named", "losses_reported", "accuracies_reported", "discussion",
        "discussion_names_winner", "discussion_attributes", "same_config", "best_val_selection"]
    assert data["config"]["same"] is True and data["discussion"]["present"] is True


@pytest.mark.parametrize("content", [None, "{oops", '{"a": 1}'])
def test_unusable_notebook_exits_2_with_one_line(tmp_path, content):
    path = tmp_path / "x.ipynb"
    if content is not None:
        path.write_text(content)
    result = run("check", path)
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    as_json = run("check", path, "--json")
    assert as_json.exit_code == 2
    data = json.loads(as_json.stdout)
    assert data["status"] == "error" and data["error"] and data["checks"][0]["id"] == "notebook_valid"


def test_bad_rubric_exits_2_naming_the_key(tmp_path):
    rubric = tmp_path / "r.toml"
    rubric.write_text('[assignment]\nname = "x"\n[train]\nlr = "high"\n')
    result = run("check", SUBMISSIONS / "complete.ipynb", "--rubric", rubric)
    assert result.exit_code == 2
    assert "error: train.lr = 'high' in the rubric; expected a number" in result.output
    assert "Traceback" not in result.output


def test_fifty_megabytes_of_outputs(tmp_path):
    line = "Epoch {} | train loss 1.2345 | val loss 1.3456 | val acc 45.67% | {}\n"
    text = "".join(line.format(i % 50 + 1, "x" * 40) for i in range(550_000))
    assert len(text) > 50_000_000
    path = write(tmp_path / "big.ipynb", code(LENET + WIDENET), code("m = LeNet()\ntrain(m)", text))
    result = run("check", path, "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 1  # a valid notebook that misses requirements, not a crash
    assert data["reported"]["LeNet"]["val_acc"] == 0.4567
    assert any("MB of output; only its last 1 MB were read" in w for w in data["warnings"])


def test_check_never_imports_torch():
    code_ = (
        "import sys\nfrom grader.cli import main\nsys.argv = ['grader', 'check', sys.argv[1]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code_, str(SUBMISSIONS / "complete.ipynb")], capture_output=True, text=True)
    assert done.stderr.strip().endswith("False")
