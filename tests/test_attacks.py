"""A hostile student against the sandbox, under every isolation this machine offers.

Each attack of the security review is here, numbered as in the issue that reported it: it must end
in a clear failure for that submission (or, for the label theft, in chance accuracy), leave no
trace that another run could meet, and never raise in the grader. The last test grades a class
holding the attackers beside an honest student: the honest one is graded as if alone and the
gradebook is written.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import attacks
from grader.grading.batch import grade_batch
from grader.grading.grade import grade_submission
from grader.report.console import print_result
from grader.report.feedback import feedback_markdown
from grader.report.page import markdown_page
from grader.child.config import TrainConfig
from grader.report.progress import progress_line
from grader.rubric import load_rubric
from grader.sandbox.extract import extract_models
from grader.sandbox.isolation import UID_SLOTS, Isolation, exclusive_uid
from grader.sandbox.model_child import Timeouts
from grader.sandbox.models_run import ModelCheck, check_model
from grader.sandbox.process import Limits, Phase, run_in_sandbox
from grader.sandbox.state import state_dir
from grader.training.context import matches
from grader.training.progress import ProgressEvent, child_epochs
from grader.training.retrain import audit, train_in_sandbox
from nbfactory import LENET, md, model_cells, model_notebook
from nbfactory import code as nbcode
from nbfactory import write as write_notebook
from support import REPO

pytestmark = pytest.mark.slow
MAX_PARAMS = load_rubric().assignment.max_params
FAST = Timeouts(import_s=120, instantiate_s=60, forward_s=20)


def attack(isolation, body: str, *constants: str, limits: Limits = Limits(memory_bytes=2**30)) -> ModelCheck:
    """The models_run child of a notebook whose second class is the attack."""
    nb = model_notebook(body, "Attack", *constants)
    return check_model(extract_models(nb, ["Attack"]), "Attack", MAX_PARAMS, isolation, timeouts=FAST, limits=limits)


# ---- 1. hidden labels -------------------------------------------------------------------------

def _thief(context, isolation, leak: bool):
    extraction = extract_models(model_notebook(attacks.THIEF, "Attack", "SIZES = (400, 500)"), ["Attack"])
    ctx = replace(context, isolation=isolation)
    if leak:  # the old layout: the labels next to the child's inputs, as files it can read
        folder = state_dir("test-leak")
        np.save(folder / "val_y.npy", ctx.labels["val"])
        np.save(folder / "test_y.npy", ctx.labels["test"])
        os.chmod(folder / "val_y.npy", 0o644)
        os.chmod(folder / "test_y.npy", 0o644)
        ctx = replace(ctx, files={**ctx.files, "val_y": str(folder / "val_y.npy"), "test_y": str(folder / "test_y.npy")})
    run, _ = train_in_sandbox(extraction, "Attack", load_rubric(), ctx)
    return run


def test_the_thief_wins_where_labels_can_be_reached(training_context, isolation):
    """The control: the attack is real. Given the labels as the old layout left them, it scores 100%."""
    run = _thief(training_context, isolation, leak=True)
    assert run.error is None and run.test_accuracy == 1.0 and run.val_accuracy == 1.0


def test_labels_cannot_be_stolen_the_thief_scores_at_chance(training_context, each_isolation):
    run = _thief(training_context, each_isolation, leak=False)
    assert run.error is None, run.error
    assert run.test_accuracy < 0.35 and run.val_accuracy < 0.35  # ten classes: chance is 10%
    assert not any(Path(p).name.startswith(("val_y", "test_y")) for p in training_context.files.values())


def test_host_unix_sockets_are_out_of_reach(each_isolation):
    import socket

    folder = Path(tempfile.mkdtemp(prefix="grader-socket-"))
    os.chmod(folder, 0o755)
    path = folder / "service.sock"
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX) as abstract:
        listener.bind(str(path))
        os.chmod(path, 0o777)  # open to every user: only the walls keep the child out
        abstract.bind("\0grader-test-service")
        for sock in (listener, abstract):
            sock.listen(5)
            sock.setblocking(False)
        body = (f"def __init__(self):\n    super().__init__()\n    import socket\n    self.reached = []\n"
                f"    for address in ({str(path)!r}, '\\0grader-test-service'):\n"
                f"        s = socket.socket(socket.AF_UNIX)\n"
                f"        try:\n            s.connect(address)\n            self.reached.append(address)\n"
                f"        except OSError:\n            pass\n"
                f"    assert not self.reached, self.reached\n    self.fc = nn.Linear(3 * 32 * 32, 10)\n"
                f"def forward(self, x):\n    return self.fc(torch.flatten(x, 1))")
        check = attack(each_isolation, body)
        for sock in (listener, abstract):
            with pytest.raises(BlockingIOError):
                sock.accept()  # nobody ever connected
    shutil.rmtree(folder)
    assert check.passed, check.message


# ---- 2. planted state ---------------------------------------------------------------------------

def test_what_a_child_plants_reaches_no_later_run(each_isolation, training_context, tmp_path):
    target = tmp_path / "created-by-the-grader"
    state = state_dir()
    before = sorted(p.name for p in state.iterdir())
    check = attack(each_isolation, attacks.POISONER, f"STATE = {str(state)!r}", f"TARGET = {str(target)!r}")
    assert check.passed, check.message  # planting fails quietly inside; the model itself is fine
    assert sorted(p.name for p in state.iterdir()) == before and not target.exists()
    for folder in ("/tmp", "/dev/shm", "/run", "/var/tmp", str(Path.home()), str(state)):
        assert not Path(folder, "grader-arrays-planted").exists(), folder
        assert not Path(folder, "grader-sandbox-uid-0.lock").is_symlink(), folder
    assert all(matches(Path(path), training_context.file_sha256[name]) for name, path in training_context.files.items())


def test_a_planted_or_foreign_state_folder_is_refused_with_what_to_do(tmp_path, monkeypatch):
    from grader.errors import SandboxError

    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    monkeypatch.setenv("GRADER_STATE_DIR", str(link))
    with pytest.raises(SandboxError, match="is not a folder .* remove it"):
        state_dir()
    if os.geteuid() == 0:
        foreign = tmp_path / "foreign"
        foreign.mkdir(mode=0o700)
        os.chown(foreign, 65534, 65534)
        monkeypatch.setenv("GRADER_STATE_DIR", str(foreign))
        with pytest.raises(SandboxError, match="belongs to uid 65534 .* remove it"):
            state_dir()


def test_arrays_found_on_disk_are_used_only_when_their_bytes_match(training_context, tmp_path):
    from grader.training.context import write_arrays

    folder = tmp_path / "arrays"
    folder.mkdir()
    labels = np.arange(10) % 10
    (folder / "train_y.npy").write_bytes(b"planted")
    written = write_arrays(folder, {"train_y": labels})
    assert np.array_equal(np.load(folder / "train_y.npy"), labels)
    assert matches(folder / "train_y.npy", written["train_y"][1])


# ---- 3. a grader that is not root ---------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("bwrap"), reason="needs root to become another user")
def test_a_grader_that_is_not_root_walls_its_child_off_or_refuses():
    home = Path(tempfile.mkdtemp(prefix="grader-not-root-"))  # pytest's folders are closed to other users
    try:
        _as_another_user(home)
    finally:
        shutil.rmtree(home)


def _as_another_user(home: Path) -> None:
    victim = home / "grades.csv"
    victim.write_text("student,score\n")
    for path in (home, victim):
        os.chown(path, 65534, 65534)
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
sys.path.insert(0, {str(REPO / "tests")!r})
from grader.errors import SandboxError
from grader.sandbox.detect import detect_isolation
from grader.sandbox.extract import extract_models
from grader.sandbox.models_run import check_model
from nbfactory import model_notebook
try:
    detect_isolation(prefer="namespace")
    print("namespace accepted")
except SandboxError as e:
    print("namespace refused:", e)
iso = detect_isolation()
print("kind", iso.kind, "uid", iso.uid)
body = "def __init__(self):\\n    super().__init__()\\n    open({str(victim)!r}, 'a').write('attacker,100\\\\n')"
check = check_model(extract_models(model_notebook(body, "Attack"), ["Attack"]), "Attack", 10**8, iso)
print("check", check.kind, check.message)
"""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "LANG": "C.UTF-8"}
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=300, env=env, cwd=home)
    assert done.returncode == 0, done.stderr
    assert "namespace refused: namespace: needs root" in done.stdout
    kind = re.search(r"kind (\w+) uid (\d+)", done.stdout)
    assert kind and kind.group(1) == "bubblewrap" and kind.group(2) == "65534"
    assert "check file Attack: the code tried to open" in done.stdout and victim.read_text() == "student,score\n"


# ---- 4. uid slots -------------------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="uids are only dropped when the grader runs as root")
def test_uid_locks_are_out_of_reach_and_a_full_house_waits(each_isolation):
    locks = state_dir("uid-locks")
    body = f"def __init__(self):\n    super().__init__()\n    import fcntl\n    fcntl.flock(open({str(locks / '1.lock')!r}, 'a'), fcntl.LOCK_EX)"
    check = attack(each_isolation, body)
    assert check.kind == "file" and f"tried to open {locks / '1.lock'}" in check.message
    iso = Isolation("bubblewrap", 65534, sys.executable)
    got: list[int] = []
    with ExitStack() as held:
        uids = [held.enter_context(exclusive_uid(iso)).uid for _ in range(UID_SLOTS)]
        assert len(set(uids)) == UID_SLOTS

        def late() -> None:
            with exclusive_uid(iso) as isolation:
                got.append(isolation.uid)

        waiting = threading.Thread(target=late)
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive() and got == []  # every slot taken: it waits, it does not share
    waiting.join(timeout=30)
    assert len(got) == 1 and got[0] in uids


# ---- 5. output that crashed the grader ----------------------------------------------------------

@pytest.mark.parametrize("bomb, kind, words", [
    ("result", "invalid", "nests too deeply"),
    ("npy", "invalid", "claims shape (4, 10, 1000000000000)"),
    ("folders", "exited", "exited with code 0 during the constructor"),
])
def test_output_that_crashed_the_grader_is_that_models_failure(each_isolation, bomb, kind, words):
    runs = state_dir("runs")
    check = attack(each_isolation, attacks.OUTPUT_BOMB, f"BOMB = {bomb!r}")
    assert not check.passed and check.kind == kind and words in check.message
    assert list(runs.iterdir()) == []  # even 3,000 nested folders are removed


def test_an_architecture_the_child_made_up_is_dropped_or_cleaned(isolation):
    """The architecture crosses the trust boundary: implausible -> dropped (the check still passes),
    names of its own -> 'other', wrong types -> the report is invalid, as for any other key."""
    huge = attack(isolation, attacks.ANATOMY, "LIE = 'huge'")
    assert huge.passed and huge.architecture is None
    named = attack(isolation, attacks.ANATOMY, "LIE = 'names'")
    assert named.passed and (named.architecture.norms, named.architecture.pooling) == (("BatchNorm2d", "other"), ("other",))
    malformed = attack(isolation, attacks.ANATOMY, "LIE = 'malformed'")
    assert not malformed.passed and malformed.kind == "invalid" and "anatomy.conv_layers" in malformed.message


def test_a_progress_file_too_deep_to_read_does_not_stop_the_grader(each_isolation):
    check = attack(each_isolation, attacks.OUTPUT_BOMB, "BOMB = 'progress'")
    assert check.passed, check.message


def test_a_child_flooding_or_garbling_its_progress_shows_only_forward_bounded_epochs(each_isolation, tmp_path):
    """Progress is display only: a huge file, garbage, strange numbers and a flood of rewrites never
    crash or stop the run, and the parent shows at most the config's epochs, in order."""
    script = tmp_path / "script.py"
    script.write_text(
        "import json, os, time\n"
        "def put(data, raw=False):\n"
        "    with open('out/p.tmp', 'wb' if raw else 'w') as f:\n"
        "        f.write(data if raw else json.dumps(data))\n"
        "    os.replace('out/p.tmp', 'out/progress.json')\n"
        "put({'phase': 'train', 'epoch': 1}); time.sleep(0.3)\n"
        "for bad in [b'[' * 4000, b'x' * 10**7, b'\\x00\\xff{', b'{\"phase\": \"train\", \"epoch\": ' + b'9' * 5000 + b'}']:\n"
        "    put(bad, raw=True); time.sleep(0.2)\n"
        "for epoch in [True, -5, 1e300, '3', [4], {'k': 2}, None]:\n"
        "    put({'phase': 'train', 'epoch': epoch}); time.sleep(0.2)\n"
        "put({'phase': '\\x1b[2J' * 500, 'epoch': 2}); time.sleep(0.2)\n"
        "end, k = time.time() + 2, 2\n"
        "while time.time() < end:\n"
        "    put({'phase': 'train', 'epoch': k}); k += 1\n"
        "put({'phase': 'train', 'epoch': 2**31})\n"
        "json.dump({'done': True}, open('out/result.json', 'w'))\n")
    events: list[ProgressEvent] = []
    hook = child_epochs("Attack", TrainConfig(epochs=4), 60.0, events.append)
    r = run_in_sandbox(script, phases=[Phase("import", 30), Phase("train", 30)], isolation=each_isolation,
                       on_progress=hook)
    assert r.status == "ok" and r.phase == "train" and r.payload == {"done": True}, r.detail
    assert [e.epoch for e in events] == [0, 1, 2, 3, 4]  # forward only, within the config, each once
    assert all(e.model == "Attack" and e.epochs == 4 and 0 <= e.seconds < 60 for e in events)
    assert not any("\x1b" in progress_line(e) for e in events)


# ---- 6. memory and disk -------------------------------------------------------------------------

@pytest.mark.parametrize("cgroup", [True, False], ids=["cgroup", "watchdog"])
def test_a_memfd_counts_against_the_memory_cap(each_isolation, cgroup, monkeypatch):
    if not cgroup:
        import grader.sandbox.process as process

        monkeypatch.setattr(process, "memory_cgroup", lambda limit: None)
    check = attack(each_isolation, attacks.MEMFD, limits=Limits(memory_bytes=512 * 2**20))
    assert check.kind == "killed_memory", check.message
    assert "used more than 512 MB of memory during the constructor" in check.message


@pytest.mark.parametrize("where, kind, words", [
    (".", "disk", "filled its working folder (No space left on device)"),
    ("out", "killed_disk", "wrote more than 256 MB of files during the constructor"),
])
def test_disk_is_capped(each_isolation, where, kind, words):
    check = attack(each_isolation, attacks.DISK, f"WHERE = {where!r}", limits=Limits(memory_bytes=2**30, disk_bytes=256 * 2**20))
    assert check.kind == kind and words in check.message, check.message


# ---- 7. facts the child cannot forge ------------------------------------------------------------

def test_a_phase_cannot_be_announced_again_to_restart_its_clock(each_isolation, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import json, time\n"
        "for _ in range(40):\n"
        "    for phase in ('slow', 'start', 'slow'):\n"
        "        json.dump({'phase': phase}, open('out/progress.json', 'w'))\n"
        "        time.sleep(0.1)\n")
    r = run_in_sandbox(script, phases=[Phase("start", 30), Phase("slow", 2, "the slow step")], isolation=each_isolation)
    assert r.status == "timeout" and r.phase == "slow" and "the slow step took longer than 2 s" in r.detail


@pytest.mark.parametrize("patch, replaced", [("optimizer", "torch.optim.SGD"), ("parameters", "Module.parameters"),
                                             ("trainer", "grader.child.train._optimizer")])
def test_patching_the_trainer_or_the_counting_is_refused(each_isolation, training_context, patch, replaced):
    check = attack(each_isolation, attacks.TAMPER, f"PATCH = {patch!r}")
    assert check.kind == "tamper" and f"the model code replaced {replaced}" in check.message, check.message
    extraction = extract_models(model_notebook(attacks.TAMPER, "Attack", f"PATCH = {patch!r}"), ["Attack"])
    run, _ = train_in_sandbox(extraction, "Attack", load_rubric(), replace(training_context, isolation=each_isolation))
    assert run.history is None and f"the model code replaced {replaced}" in run.error  # the training child too


def test_a_run_that_does_not_match_the_config_is_flagged():
    from grader.child.config import TrainConfig
    from grader.child.protocol import EpochRecord, History, Report

    config = TrainConfig(optimizer="sgd", lr=0.05, schedule="constant", epochs=1, batch_size=64)
    epochs = tuple(EpochRecord(i, 1.0, None, None, 1.0, 0.2) for i in (1, 2, 3))  # 3 epochs at lr 0.2
    history = History(status="ok", message="", epochs=epochs, selected_epoch=None, test_loss=None, test_accuracy=None,
                      params=10, flops_per_image=None, peak_memory_bytes=0, seconds=1.0, train_images_per_second=1.0,
                      device="cpu", precision="fp32", channels_last=False)
    flags = audit("Attack", Report("Attack", ok=True, params=52_000_000, history=history), 1_000, config, 800)
    assert flags == ["Attack: the training run does not match the fixed config (3 epochs reported where the config "
                     "has 1; epoch 1 ran at learning rate 0.2 where the config's schedule gives 0.05; 52,000,000 "
                     "parameters when trained, 1,000 when first built); the model code may have changed the grader's "
                     "trainer"]
    honest = replace(history, epochs=epochs[:1], params=10)
    assert audit("Honest", Report("Honest", ok=True, params=1_000, history=replace(honest, epochs=(replace(epochs[0], lr=0.05),))),
                 1_000, config, 800) == []


def test_text_a_student_controls_is_escaped_wherever_it_is_shown(each_isolation, rubric, tmp_path):
    check = attack(each_isolation, attacks.ESCAPES)
    assert "\x1b[2J" in check.message  # the child's words, as raised
    path = write_notebook(tmp_path / "nb.ipynb", *model_cells(attacks.ESCAPES, "Attack"))
    result = grade_submission(path, student="eve", rubric=rubric)
    result = replace(result, checks=result.checks + (replace(result.checks[0], id="models_run", passed=False,
                                                             message=check.message),))
    out = io.StringIO()
    print_result(result, Console(file=out, width=200, force_terminal=True))
    assert "\x1b[2J" not in out.getvalue() and "[2J" in out.getvalue()  # the sequence shows as text
    text = feedback_markdown(result)
    assert "<script>" not in text and "&lt;script&gt;" in text and "[click](javascript" not in text
    page = markdown_page(text, title="x")
    assert "<script>" not in page and 'href="javascript' not in page


@pytest.mark.skipif(os.geteuid() != 0, reason="uids are only dropped when the grader runs as root")
def test_each_run_records_the_uid_its_child_ran_as(training_context):
    extraction = extract_models(model_notebook(attacks.THIEF, "Attack", "SIZES = (400, 500)"), ["Attack"])
    with exclusive_uid(training_context.isolation) as held:  # slot 0 is taken: the child gets another uid
        run, _ = train_in_sandbox(extraction, "Attack", load_rubric(), training_context)
    assert run.uid not in (None, held.uid) and run.uid >= 65001


# ---- 8. the parent's reading -------------------------------------------------------------------
# The grader reads a notebook in its own process, unsandboxed, before anything runs: each attack of
# the review, rebuilt at its size, must end as a score or as that notebook's one-line error (exit 2).
# The subprocess's timeout is a hang detector (these took 145 s to over 300 s before), not a timing.

def _metric_spaces(tmp_path):  # the metrics reader's history pattern backtracked in N^3 on spaces
    out = "Epoch 1: val_acc:" + " " * 30_000 + "x\nTest accuracy: 61%\n"
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), nbcode("train(LeNet())", out))


def _long_output(tmp_path):  # the classification report's header pattern was quadratic in a line
    out = "Test accuracy: 61%\n" + "precision " * 99_000 + "\n"  # read whole: under 1,000,000 characters
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), nbcode("train(LeNet())", out))


def _angle_brackets(tmp_path):  # the discussion's tag pattern was quadratic on runs of `<`
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), nbcode("train(LeNet())", "Test accuracy: 61%\n"),
                          md(DISCUSSION + "<" * 1_000_000))


def _long_sentence(tmp_path):  # the claims reader was quadratic in a sentence's length
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), nbcode("train(LeNet())", "Test accuracy: 61%\n"),
                          md(DISCUSSION + " The proposed model is " + "better " * 340_000))


def _escaped_cell(tmp_path, repeats: int = 5_300):  # IPython re-tokenizes a cell after each of its escapes
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), nbcode(("!ls\n" + "x = 1\n" * 10) * repeats))  # 339 KB


def _escaped_cell_read(tmp_path):  # the same within the code the grader reads: 3,700 escapes in 237 KB
    return _escaped_cell(tmp_path, 3_700)


def _newer_f_strings(tmp_path):  # parso, ast and the LibCST child on cells of 3.12 f-strings
    cell = 'print(f"{x["a"]}")\n' * 9_500
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), *[nbcode(cell) for _ in range(40)])


def _wide_json(tmp_path):  # json.loads built 4.1 GB of objects from 50 MB
    path = tmp_path / "nb.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "metadata": {"x": [' + "0," * 25_000_000 + '0]}, "cells": []}')
    return path


def _deep_json(tmp_path):  # json.loads raised RecursionError: a traceback and exit 1
    path = tmp_path / "nb.ipynb"
    path.write_text('{"nbformat": 4, "cells": [], "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return path


DISCUSSION = ("The proposed model outperforms the LeNet baseline on the test set: it reaches a higher test accuracy "
              "because batch normalization and more filters let it learn faster and generalize better.")


def _check_cli(path: Path) -> tuple[int, dict, str]:
    done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(path), "--json"], capture_output=True,
                          text=True, timeout=10, cwd=REPO)
    return done.returncode, json.loads(done.stdout), done.stderr


@pytest.mark.parametrize("build, read", [
    (_metric_spaces, lambda r: r["reported"]["LeNet"]["test_acc"] == 0.61),
    (_long_output, lambda r: r["reported"]["LeNet"]["test_acc"] == 0.61),
    (_angle_brackets, lambda r: r["discussion"]["present"] and r["discussion"]["winner"] == "proposed"),
    (_long_sentence, lambda r: r["discussion"]["present"] and r["discussion"]["winner"] == "proposed"),
    (_escaped_cell, lambda r: "code cell 1 not read" in " ".join(r["warnings"])),
    (_escaped_cell_read, lambda r: r["warnings"] == []),
    (_newer_f_strings, lambda r: "the cell is too long to read statement by statement" in r["warnings"][0]
     and "code cells 2, 3, 4" in r["warnings"][-1]),
], ids=["spaces in a metric line", "a 1 MB output", "1 MB of < in markdown", "a 2.4 MB sentence", "a 339 KB cell",
        "a 237 KB cell", "40 cells of 180 KB of f-strings"])
def test_a_notebook_built_to_stall_the_reading_is_read_and_scored(tmp_path, build, read):
    code, result, stderr = _check_cli(build(tmp_path))
    assert code == 1 and result["status"] == "graded", stderr
    assert [m["name"] for m in result["models"]] == ["LeNet"] and result["score"] > 0
    assert read(result), result["warnings"]


@pytest.mark.parametrize("build, words", [
    (_wide_json, "JSON values, more than a notebook's 1,000,000"),
    (_deep_json, "nests its JSON more than 100 levels deep"),
], ids=["50 MB of one wide value", "deep nesting"])
def test_json_too_wide_or_too_deep_is_that_notebooks_one_line_error(tmp_path, build, words):
    path = build(tmp_path)
    code, result, stderr = _check_cli(path)
    assert code == 2 and result["status"] == "error" and words in result["error"]
    assert stderr.count("\n") == 1 and stderr.startswith("error: ") and words in stderr
    shutil.copy(REPO / "submissions" / "complete.ipynb", tmp_path / "complete.ipynb")  # grading a class
    report = grade_batch(tmp_path, tmp_path / "out", rubric=load_rubric(), budget="none")
    assert report.results["nb"].status == "error" and words in report.results["nb"].error
    assert report.results["complete"].score == 70 and (tmp_path / "out" / "gradebook.csv").exists()


_WALL_PROBE = """
import json, os, socket
seen = {"uid": os.getuid()}
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=2).close()
    seen["network"] = "connected"
except OSError as e:
    seen["network"] = type(e).__name__
try:
    seen["secret"] = open(SECRET).read()
except OSError as e:
    seen["secret"] = type(e).__name__
with open("out/result.json", "w") as out:  # what the newer-syntax reader answers, its observations as the error
    json.dump([{"python": None, "statements": [], "error": json.dumps(seen)}], out)
"""


def test_the_newer_syntax_reader_runs_walled_off(each_isolation, tmp_path, monkeypatch):
    """LibCST reads a student's text in native code; if a crafted cell ever took it over, it would hold
    what the reader's process holds: not the network, the grader's files or its uid."""
    from grader.analysis import recovery
    from grader.analysis.limits import Deadline

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's answers")
    secret.chmod(0o600)
    probe = tmp_path / "reader.py"
    probe.write_text(_WALL_PROBE.replace("PORT", str(listener.getsockname()[1])).replace("SECRET", repr(str(secret))))
    monkeypatch.setattr(recovery, "_DOWNLEVEL", probe)
    monkeypatch.setattr(recovery, "_reader_isolation", lambda: each_isolation)
    (answer,), notes = recovery._downlevel(['print(f"{d["k"]}")'], Deadline.after())
    seen = json.loads(answer["error"])
    assert seen["network"] != "connected" and seen["secret"] != "the instructor's answers" and notes == ()
    assert seen["uid"] != os.geteuid() or os.geteuid() != 0
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing reached the grader's loopback


# ---- the batch goes on ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def honest_alone(synthetic_data, small_rubric, training_context, tmp_path_factory):
    """The honest student graded alone (training is deterministic: the same under every isolation)."""
    root = tmp_path_factory.mktemp("alone")
    shutil.copy(REPO / "submissions" / "complete.ipynb", root / "honest.ipynb")
    return grade_batch(root, root / "out", rubric=load_rubric(small_rubric), budget="quick",
                       data_dir=synthetic_data).results["honest"]


def test_a_class_with_attackers_grades_the_honest_student_as_if_alone(each_isolation, synthetic_data, small_rubric,
                                                                     honest_alone, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_ISOLATION", each_isolation.kind)
    root = tmp_path / "class"
    root.mkdir()
    shutil.copy(REPO / "submissions" / "complete.ipynb", root / "honest.ipynb")
    attackers = {"thief": (attacks.THIEF, "SIZES = (400, 500)"), "bomb": (attacks.OUTPUT_BOMB, "BOMB = 'result'"),
                 "tamper": (attacks.TAMPER, "PATCH = 'trainer'")}
    for student, (body, *constants) in attackers.items():  # the attack alone: no baseline to train beside it
        cells = model_cells(body, "ProposedAttack", *constants)  # its name gives it the proposed role
        write_notebook(root / f"{student}.ipynb", cells[0], *cells[2:])
    report = grade_batch(root, tmp_path / "out", rubric=load_rubric(small_rubric), budget="quick", data_dir=synthetic_data)
    honest = report.results["honest"]
    assert honest.provenance.run.isolation == each_isolation.kind
    assert [(c.id, c.points) for c in honest.checks] == [(c.id, c.points) for c in honest_alone.checks]
    assert ({n: r.test_accuracy for n, r in honest.runs.items()}
            == {n: r.test_accuracy for n, r in honest_alone.runs.items()})
    thief = report.results["thief"].runs["ProposedAttack"]
    assert thief.test_accuracy is not None and thief.test_accuracy < 0.35
    for student in ("bomb", "tamper"):
        models_run = next(c for c in report.results[student].checks if c.id == "models_run")
        assert not models_run.passed and "Attack" in models_run.message, models_run.message
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["bomb", "honest", "tamper", "thief"]
