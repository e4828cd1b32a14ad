"""The Gradescope autograder: the zip `grader gradescope build` writes, run as Gradescope runs it
(unpacked into a root like /autograder, run_autograder copied beside source/), and every
results.json it produces checked against a JSON Schema written from Gradescope's specification."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from support import REPO, SMALL_RUBRIC, SUBMISSIONS, autograder_env, build, run_autograder, unpack, valid, with_runs

def grader_check_score(notebook: Path, *args: str) -> float:
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(notebook), "--json", *args],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(done.stdout)["score"]


@pytest.fixture(scope="module")
def static_zip(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("zip"), "--budget", "none")


def test_zip_holds_executable_scripts_the_rubric_and_the_budget(static_zip, tmp_path):
    with zipfile.ZipFile(static_zip) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        config = json.loads(archive.read("autograder.json"))
        rubric = archive.read("rubric.toml")
    assert static_zip.stat().st_mode & 0o777 == 0o644  # uploaded and shared: world-readable, as every file the grader writes
    assert {name: info.external_attr >> 16 & 0o777 for name, info in infos.items() if name in ("setup.sh", "run_autograder")} \
        == {"setup.sh": 0o755, "run_autograder": 0o755}
    assert {info.external_attr >> 16 & 0o777 for name, info in infos.items() if name not in ("setup.sh", "run_autograder")} == {0o644}
    assert config["budget"] == "none" and config["rubric"] == "rubric.toml" and config["data"] is None
    assert config["timeout_minutes"] == 10  # Gradescope's default: the grader is stopped at 510 s, killed by 520 s
    script = zipfile.ZipFile(static_zip).read("run_autograder").decode()
    assert "DEADLINE=510 " in script and "GRACE=10 " in script and "@" not in script  # every placeholder filled
    assert rubric == (REPO / "rubrics" / "cifar10.toml").read_bytes()
    assert {"cnn-grader/pyproject.toml", "cnn-grader/grader/cli.py", "cnn-grader/grader/child/train.py",
            "cnn-grader/rubrics/cifar10.toml", "cnn-grader/reference_models/__init__.py"} <= set(infos)
    assert not any("__pycache__" in name for name in infos)
    root = unpack(static_zip, tmp_path / "autograder")
    assert subprocess.run(["bash", "-n", str(root / "source" / "setup.sh")]).returncode == 0
    assert subprocess.run(["bash", "-n", str(root / "run_autograder")]).returncode == 0
    setup = (root / "source" / "setup.sh").read_text()
    assert "'torch>=2.2,<2.15' 'torchvision>=0.17,<0.30'" in setup and "@TORCH_REQUIREMENTS@" not in setup
    assert "bubblewrap" in setup and "gradescope prepare" in setup


def test_complete_notebook_scores_as_grader_check(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    (root / "submission_metadata.json").write_text(json.dumps({"users": [{"name": "Ann Lee", "email": "ann@example.edu", "id": 1}]}))
    results = run_autograder(root)
    assert results["score"] == grader_check_score(SUBMISSIONS / "complete.ipynb") == 70
    assert results["output_format"] == "md" and results["output"].startswith("# Feedback for Ann Lee (ann\\@example.edu)")
    assert results["extra_data"]["budget"] == "none" and len(results["extra_data"]["rubric_sha256"]) == 64
    assert results["extra_data"]["isolation"] == "not used"  # static checks only: no student code ran
    named = {t["name"]: t for t in results["tests"]}
    assert named["The proposed model has a name of its own"]["status"] == "passed"
    assert "leaderboard" not in results  # nothing was retrained: no value to rank


def test_informational_checks_are_not_failed(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "generic_name.ipynb", root / "submission")
    results = run_autograder(root)
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    readable = by_check["notebook_valid"]  # 0 points in the rubric
    assert "informational" in readable["tags"] and not {"status", "score", "max_score"} & set(readable)
    assert "carries no points" in readable["output"]
    named = by_check["proposed_named"]
    assert named["status"] == "failed" and named["score"] == 0 and named["max_score"] == 5 and "How to fix" in named["output"]
    assert results["score"] == grader_check_score(SUBMISSIONS / "generic_name.ipynb") == 65


@pytest.mark.parametrize("notebooks, expected", [((), "No notebook was found"),
                                                  (("a.ipynb", "extra/b.ipynb"), "holds 2 notebooks")])
def test_no_notebook_or_several_score_zero_and_say_what_to_hand_in(static_zip, tmp_path, notebooks, expected):
    root = unpack(static_zip, tmp_path / "autograder")
    (root / "submission" / "notes.txt").write_text("my answers")
    for name in notebooks:
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission" / name)
    results = run_autograder(root)
    assert results["score"] == 0 and results["tests"] == []
    assert expected in results["output"] and "Hand in exactly one Jupyter notebook" in results["output"]


def test_a_grader_that_cannot_start_still_leaves_a_valid_result(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    results = run_autograder(root, python="/bin/false")
    assert results["score"] == 0 and "tell your instructor" in results["output"]


def test_a_broken_config_is_the_instructors_problem_not_a_traceback(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    (root / "source" / "autograder.json").write_text('{"budget": "fast"}')
    results = run_autograder(root)
    assert results["score"] == 0 and "not a problem with your notebook" in results["output"]
    assert "Traceback" not in results["output"]


def test_build_refuses_data_without_a_training_budget(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--budget", "none",
                           "--data", str(tmp_path), "--out", str(tmp_path / "a.zip")],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and "--data is for a training budget" in done.stderr and not (tmp_path / "a.zip").exists()


def test_results_of_a_graded_result_validate(rubric):
    from grader.grading.grade import grade_submission
    from grader.report.gradescope import gradescope_results

    result = grade_submission(SUBMISSIONS / "missing_discussion.ipynb", student="bo", rubric=rubric)
    results = valid(gradescope_results(result, notice="**Heads up.**"))
    assert results["output"].startswith("**Heads up.**")
    assert {t["extra_data"]["check"]: t["status"] for t in results["tests"] if "status" in t}["discussion"] == "failed"


def _retrained(rubric, visibility: str):
    """The complete example as if both models and the references had been retrained, with the rubric's
    retraining checks scored and shown at `visibility`."""
    from grader.checks import Verdict, ids
    from grader.grading.grade import grade_submission
    from grader.training.effect import effect_of

    base = with_runs(grade_submission(SUBMISSIONS / "complete.ipynb", student="al", rubric=rubric))
    base = replace(base, effect=effect_of(base.runs["LeNet5"], base.runs["ResDropNet"], 0.01))
    verdicts = {"models_run": Verdict(True, "LeNet5, ResDropNet build and map (N, 3, 32, 32) to (N, 10) logits"),
                "baseline_works": Verdict(True, "LeNet5 reached 55.0% test accuracy, within 5% of the reference"),
                "proposed_beats_baseline": Verdict(True, "SECRET-VERDICT: ResDropNet (70.0%) beats LeNet5 (55.0%)"),
                "proposed_vs_references": Verdict(True, "ResDropNet (70.0%) lands 54% of the way", 0.54)}
    run = tuple(replace(rubric.score(check_id, verdict), visibility="visible" if check_id == "models_run" else visibility)
                for check_id, verdict in verdicts.items())
    assert {c.id for c in run} < set(ids("run"))
    return replace(base, checks=base.checks + run, max_score=base.max_score + sum(c.max_points for c in run))


def test_checks_held_back_keep_the_retraining_figures_out_of_the_always_visible_output(rubric):
    """The rubric holds the retraining comparisons until the due date: neither their verdicts nor the figures
    that give them away (the effect, the reproduced accuracies, the references, the leaderboard value) are in
    the top-level output, which Gradescope always shows; the held tests keep their own output for later."""
    from grader.report.gradescope import gradescope_results

    shown = valid(gradescope_results(_retrained(rubric, "visible")))  # the control: everything may be shown
    held = valid(gradescope_results(_retrained(rubric, "after_due_date")))
    for figure in ("SECRET-VERDICT", "larger than the seed-to-seed spread", "Seconds per epoch", "| 70.0% |",
                   "ResNet20 (reference)"):
        assert figure in shown["output"] and figure not in held["output"], figure
    assert shown["leaderboard"][0]["value"] == 70.0 and "leaderboard" not in held
    assert "this run did not retrain" not in held["output"]  # it did: the figures are held, not missing
    assert "(shown later, with the checks that use them)" in held["output"]
    assert "Shown later, as your instructor chose: The baseline trains like the reference LeNet-5" in held["output"]
    tests = {t["extra_data"]["check"]: t for t in held["tests"]}
    assert tests["proposed_beats_baseline"]["visibility"] == "after_due_date"  # Gradescope holds this box
    assert "SECRET-VERDICT" in tests["proposed_beats_baseline"]["output"]
    assert tests["models_run"]["visibility"] == "visible" and tests["models_run"]["status"] == "passed"
    visible = sum(t.get("score", 0) for t in held["tests"] if t["visibility"] == "visible")
    assert f"**Score: {visible:g} / " in held["output"]  # counts only what is shown now


def _run_logged(root: Path, env: dict[str, str] | None = None, python: str = sys.executable) -> tuple[dict, str, float]:
    """ROOT/run_autograder as Gradescope runs it: results.json, the stdout the instructor sees, and the wall time."""
    started = time.monotonic()
    done = subprocess.run([str(root / "run_autograder")], cwd=root, capture_output=True, text=True, timeout=900,
                          env={**autograder_env(root), "GRADER_PYTHON": python, **(env or {})})
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return valid(json.loads((root / "results" / "results.json").read_text())), done.stdout + done.stderr, wall


@pytest.fixture(scope="module")
def quick_zip(tmp_path_factory, synthetic_data, small_rubric) -> Path:
    folder = tmp_path_factory.mktemp("quick-zip")
    return build(folder, "--budget", "quick", "--rubric", str(small_rubric), "--data", str(synthetic_data))


def test_without_a_sandbox_the_student_reads_what_it_means_and_the_instructor_reads_why(tmp_path, quick_zip, small_rubric):
    root = unpack(quick_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    # GRADER_ISOLATION=none: the autograder requires walls, so this stands for a container that allows none
    results, stdout, wall = _run_logged(root, env={"GRADER_ISOLATION": "none"})
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    assert results["output"].startswith("**Your instructor's autograder could not run your models; only your notebook "
                                        "was graded.**")
    for check in ("models_run", "baseline_works", "proposed_beats_baseline", "proposed_vs_references"):
        assert "informational" in by_check[check]["tags"] and "status" not in by_check[check]
        assert "your instructor's autograder could not run your models" in by_check[check]["output"]
    student_sees = json.dumps({k: v for k, v in results.items() if k != "extra_data"})
    for detail in ("bubblewrap", "bwrap", "unshare", "GRADER_ISOLATION", "--require-isolation"):
        assert detail not in student_sees, detail
    assert "no sandbox works in this container" in stdout and "install bubblewrap" in stdout  # the instructor's
    assert results["extra_data"]["budget"] == "quick" and results["extra_data"]["isolation"] == "none works here"
    assert 1 <= results["execution_time"] <= math.ceil(wall)  # the run's own seconds, the interpreter's start included
    assert results["score"] == grader_check_score(SUBMISSIONS / "complete.ipynb", "--rubric", str(small_rubric)) == 20
    assert "leaderboard" not in results


def test_an_unreadable_notebook_is_a_failed_test_worth_the_whole_score(tmp_path, quick_zip, static_zip):
    """A text file renamed .ipynb: one failed test, 0 of every point the budget could give (not "0 / 0")."""
    for built, full in ((quick_zip, 50), (static_zip, 70)):  # the small rubric with its retraining; the default, static
        root = unpack(built, tmp_path / built.parent.name / "autograder")
        (root / "submission" / "hw3.ipynb").write_text("my answers are in the PDF")
        results, _, _ = _run_logged(root)
        (test,) = [t for t in results["tests"] if "status" in t]
        assert (test["name"], test["status"], test["score"], test["max_score"]) == ("The notebook can be read", "failed", 0, full)
        assert "hw3.ipynb is not valid JSON" in test["output"] and "re-save it from Jupyter" in test["output"]
        assert str(root) not in json.dumps(results)  # the file by its name, never the grading machine's path
        assert results["score"] == 0 and f"**Score: 0 / {full}**" in results["output"]
        assert results["execution_time"] >= 1


def test_a_grader_killed_before_its_deadline_leaves_a_result_that_says_so(static_zip, tmp_path):
    root = unpack(static_zip, tmp_path / "autograder")
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    killed = tmp_path / "killed-python"
    killed.write_text("#!/bin/sh\nkill -KILL $$\n")  # as the kernel's OOM killer ends it
    killed.chmod(0o755)
    results, stdout, _ = _run_logged(root, python=str(killed))
    assert results["score"] == 0 and results["output"].startswith("The autograder ran out of memory")
    assert "killed (SIGKILL)" in stdout and "memory limit" in stdout
    assert results["execution_time"] >= 1


STUB_PYTHON = """#!/bin/sh
# python3 as setup.sh uses it: `-m venv DIR` makes a venv whose pip and grader do nothing and whose
# python cannot import torchvision (as a torchvision built for another torch)
if [ "$1" = "-m" ] && [ "$2" = venv ]; then
    mkdir -p "$3/bin"
    printf '#!/bin/sh\\nexit 0\\n' > "$3/bin/pip"
    printf '#!/bin/sh\\necho PREPARED\\n' > "$3/bin/grader"
    printf '#!/bin/sh\\necho "ModuleNotFoundError: No module named torchvision" >&2\\nexit 1\\n' > "$3/bin/python"
    chmod +x "$3/bin/pip" "$3/bin/grader" "$3/bin/python"
fi
exit 0
"""


def test_setup_fails_and_says_why_when_torchvision_cannot_be_imported(static_zip, tmp_path):
    """pip installed a torchvision that does not import: setup.sh stops (the image is not built) with the reason."""
    root = unpack(static_zip, tmp_path / "autograder")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in {"apt-get": "#!/bin/sh\nexit 0\n", "python3": STUB_PYTHON}.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "GRADER_VENV": str(tmp_path / "venv"),
                               "GRADER_AUTOGRADER_ROOT": str(root)})
    assert done.returncode != 0 and "PREPARED" not in done.stdout  # stopped before the data and the references
    assert "torch and torchvision were installed but cannot be imported" in done.stderr
    assert "No module named torchvision" in done.stderr


RAISES = """
def __init__(self):
    super().__init__()
    raise RuntimeError("my layer sizes are wrong")

def forward(self, x):
    return x
"""


def _prepare(root: Path) -> str:
    """setup.sh's last step, as it runs there; what it printed (the build log)."""
    prepared = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "prepare"], env=autograder_env(root),
                              capture_output=True, text=True, timeout=900)
    assert prepared.returncode == 0, prepared.stderr
    return prepared.stdout


@pytest.mark.slow
def test_quick_budget_on_bundled_data_retrains_in_the_sandbox(tmp_path, synthetic_data, isolation):
    from nbfactory import model_cells, write

    rubric = tmp_path / "rubric.toml"
    text = SMALL_RUBRIC
    for check in ("baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"):
        text = text.replace(f"[checks.{check}]\n", f'[checks.{check}]\nvisibility = "after_due_date"\n')
    rubric.write_text(text)
    root = unpack(build(tmp_path, "--budget", "quick", "--rubric", str(rubric), "--data", str(synthetic_data)),
                  tmp_path / "autograder")
    log = _prepare(root)
    assert "sandbox: " + isolation.kind in log
    for reference in ("LeNet5", "ResNet20"):
        assert f"reference {reference}: test accuracy " in log and ", quick budget, kept in the image" in log
    assert len(list((root / "cache" / "cnn-grader" / "references").glob("*.json"))) == 2  # no submission retrains them
    fresh = Path(shutil.copytree(root, tmp_path / "second", symlinks=True))
    shutil.copy(SUBMISSIONS / "complete.ipynb", root / "submission")
    results, _, _ = _run_logged(root)
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    assert results["extra_data"]["isolation"] == isolation.kind and results["extra_data"]["budget"] == "quick"
    assert results["extra_data"]["machine"] == "0.5 CPU and 768 MB of memory"
    assert results["execution_time"] >= 1
    for check in ("baseline_works", "proposed_beats_baseline", "proposed_vs_references", "reported_matches"):
        assert by_check[check]["visibility"] == "after_due_date"
    assert by_check["models_run"]["visibility"] == "visible" and by_check["models_run"]["status"] == "passed"
    assert "informational" in by_check["reported_matches"]["tags"] and "status" not in by_check["reported_matches"]
    assert results["score"] == sum(t.get("score", 0) for t in results["tests"])
    assert "leaderboard" not in results  # the comparisons are held until the due date: so is their figure
    # A model that raises in __init__: its comparison is scored 0 and failed, and never says "not scored".
    write(fresh / "submission" / "hw3.ipynb", *model_cells(RAISES, "ProposedNet"))
    results, _, _ = _run_logged(fresh)
    by_check = {t["extra_data"]["check"]: t for t in results["tests"]}
    beats = by_check["proposed_beats_baseline"]
    assert (beats["status"], beats["score"], beats["max_score"]) == ("failed", 0, 10)
    assert "no retrained test accuracy for ProposedNet (it did not train)" in beats["output"]
    assert by_check["models_run"]["status"] == "failed" and "my layer sizes are wrong" in by_check["models_run"]["output"]
    assert [t["name"] for t in results["tests"] if "status" in t and "not scored" in t["output"].lower()] == []


@pytest.mark.slow
def test_a_reference_cut_by_its_time_limit_is_kept_in_the_image_and_said_to_be(tmp_path, quick_zip):
    """The image keeps every reference its build trained: one the budget's limit cut is kept as it is (every
    submission is compared with the same one) and the build log says so, and what that leaves unscored."""
    root = unpack(quick_zip, tmp_path / "autograder")
    config_file = root / "source" / "autograder.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "train": {**config["train"], "max_seconds": 0.05}}))
    log = _prepare(root)
    assert "stopped by the budget's 0.05 s safety net after" in log and "the comparisons that need it are not scored" in log
    assert len(list((root / "cache" / "cnn-grader" / "references").glob("*.json"))) == 2  # kept, cut or not
    again = _prepare(root)
    assert again.count("found in the cache") == 2 and "stopped by the budget's 0.05 s safety net" in again


# ---- the budget fitted to the machine

def _built(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """autograder.json of a zip built with `args`, and what the build printed."""
    out = tmp_path / "fitted.zip"
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--out", str(out), *args],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    return json.loads(zipfile.ZipFile(out).read("autograder.json")), done.stdout


def test_the_build_fits_the_quick_budget_to_the_machine_and_says_what_to_pick_on_gradescope(tmp_path, rubric):
    default, printed = _built(tmp_path)  # Gradescope's defaults: half a CPU, 768 MB, 10 minutes
    assert default["machine"] == {"cpus": 0.5, "memory_mb": 768} and default["timeout_minutes"] == 10
    assert "pick: CPU 0.5, memory 768 MB, timeout 10 minutes" in printed
    small = default["train"]
    assert small["train_subset"] < rubric.quick.train_subset  # half a CPU cannot train the laptop budget's images
    assert small["max_flops"] < rubric.quick.max_flops  # nor the laptop's allowance
    assert 2 * small["max_seconds"] < 510  # two models, each stopped by its safety net at worst, fit the 510 s deadline
    assert f"2 epochs on {small['train_subset']:,} training images" in printed
    assert f"at most {small['max_flops'] / 1e12:.3g} TFLOP per model (a model that costs more trains on fewer" in printed
    bigger, printed = _built(tmp_path, "--cpus", "2", "--memory", "4096", "--timeout-minutes", "20")
    assert "pick: CPU 2, memory 4096 MB, timeout 20 minutes" in printed
    assert small["train_subset"] < bigger["train"]["train_subset"] <= rubric.quick.train_subset  # more CPU, more images
    assert bigger["train"]["max_seconds"] > small["max_seconds"] and bigger["train"]["max_flops"] > small["max_flops"]
    static, printed = _built(tmp_path, "--budget", "none")
    assert static["train"] == {} and "static checks only" in printed


@pytest.mark.parametrize("args, words", [(("--memory", "512"), "less than the 700 MB a retraining needs"),
                                         (("--cpus", "0.1", "--timeout-minutes", "1"), "too little time to train")])
def test_the_build_refuses_a_machine_too_small_for_a_retraining_in_one_line(tmp_path, args, words):
    done = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "build", "--out", str(tmp_path / "a.zip"), *args],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "a.zip").exists()


def test_the_fitted_budget_is_the_rubrics_quick_budget_with_its_keys_replaced(rubric):
    from grader.gradescope.config import AutograderConfig, deadline
    from grader.gradescope.budget import fit_budget, strong_reference_flops
    from grader.gradescope.machine import GRADESCOPE

    assert 70e6 < strong_reference_flops(rubric) < 90e6  # a CIFAR ResNet-20's forward pass
    fitted = fit_budget(rubric, "quick", GRADESCOPE, deadline(10))
    config = AutograderConfig(budget="quick", rubric="rubric.toml", data=None, grader_version="x", train=fitted.train)
    quick = config.fitted(rubric).quick
    assert (quick.train_subset, quick.max_flops, quick.max_seconds) == (
        fitted.train["train_subset"], fitted.train["max_flops"], fitted.train["max_seconds"])
    from grader.child.plan import plan_run
    strong = plan_run(quick, quick.train_subset, quick.eval_subset, strong_reference_flops(rubric))
    assert strong.cut == "" and strong.flops > 0.9 * quick.max_flops  # the strong reference whole, and little room to spare
    assert (quick.epochs, quick.batch_size, quick.eval_subset, quick.lr) == (rubric.quick.epochs, rubric.quick.batch_size,
                                                                          rubric.quick.eval_subset, rubric.quick.lr)
    assert config.fitted(rubric).train == rubric.train  # the grading budget is never cut down
    from grader.errors import RubricError
    with pytest.raises(RubricError, match="autograder.json train.max_seconds"):
        replace(config, train={"max_seconds": "long"}).fitted(rubric)


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "50000 100000\n", "memory.max": "805306368\n"}, (0.5, 768)),  # cgroup v2, as Docker writes them
    ({"cpu/cpu.cfs_quota_us": "150000\n", "cpu/cpu.cfs_period_us": "100000\n",
      "memory/memory.limit_in_bytes": "1073741824\n"}, (1.5, 1024)),  # cgroup v1
])
def test_the_container_s_cpu_quota_and_memory_limit_are_read_from_its_cgroup(tmp_path, files, expected):
    from grader.gradescope.machine import this_container

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = this_container(cgroup_root=tmp_path)
    assert (found.cpus, found.memory_mb) == expected
    (tmp_path / "unlimited").mkdir()
    (tmp_path / "unlimited" / "cpu.max").write_text("max 100000\n")
    assert this_container(cgroup_root=tmp_path / "unlimited") is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one core: nothing to narrow")
def test_threads_are_fitted_to_the_quota_for_every_child(tmp_path):
    code = ("import os, subprocess, sys\nfrom grader.gradescope.machine import fit_threads\nprint(fit_threads(0.5))\n"
            "print(subprocess.run([sys.executable, '-c', 'import os; print(len(os.sched_getaffinity(0)))'], "
            "capture_output=True, text=True).stdout.strip())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    said, child = done.stdout.strip().splitlines()
    assert said.startswith("threads: 1 (a quota of 0.5 CPU") and child == "1"  # a child sees the one core too


def test_each_child_may_hold_what_the_grader_leaves_of_the_container_s_memory():
    from grader.gradescope.machine import CHILD_MARGIN_MB, Machine, left_for_a_child

    left, words = left_for_a_child(Machine(0.5, 4096))
    assert (4096 - CHILD_MARGIN_MB - 2048) * 2**20 < left < (4096 - CHILD_MARGIN_MB) * 2**20  # this process holds < 2 GB
    assert words.startswith(f"memory: each child of a model may hold {left / 2**20:.0f} MB (the container's 4096 MB")
    assert left_for_a_child(Machine(0.5, 100))[0] == 2**27  # a container too small still lets a child start
