"""A hostile student against the sandbox, under every isolation this machine offers.

Each attack of the security review is here, numbered as in the issue that reported it: it must end
in a clear failure for that submission (or, for the label theft, in chance accuracy), leave no
trace that another run could meet, and never raise in the grader. The last test grades a class
holding the attackers beside an honest student: the honest one is graded as if alone and the
gradebook is written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import attacks
from grader.grading.batch import grade_batch
from grader.grading.grade import grade_submission
from grader.grading.result import load_result
from grader.report.console import print_result
from grader.report.differs import what_differs_markdown
from grader.report.feedback import feedback_markdown
from grader.report.github import annotations
from grader.report.gradescope import gradescope_results
from grader.report.page import markdown_html, markdown_page
from grader.child.config import TrainConfig
from grader.report.progress import progress_line
from grader.rubric import load_rubric
from grader.sandbox import confine
from grader.sandbox.extract import extract_models
from grader.sandbox.isolation import OWN_IPC, UID_SLOTS, Isolation, exclusive_uid
from grader.sandbox.model_child import Timeouts
from grader.sandbox.models_run import ModelCheck, check_model
from grader.sandbox.process import Limits, Phase, run_in_sandbox
from grader.sandbox.state import state_dir
from grader.training.context import matches
from grader.training.memorization import memorizing_flag
from grader.training.progress import ProgressEvent, child_epochs
from grader.training.retrain import audit, retrain_submission, shown_to_child, train_in_sandbox
from nbfactory import LENET, md, model_cells, model_notebook
from nbfactory import code as nbcode
from nbfactory import write as write_notebook
from support import REPO, autograder_env, build, run_autograder, unpack, workflow_commands

pytestmark = pytest.mark.slow
MAX_PARAMS = load_rubric().assignment.max_params
FAST = Timeouts(import_s=120, instantiate_s=60, forward_s=20)


def run_folders_left() -> list[Path]:
    """The children's folders still on disk: in the grader's state, and where the landlock kind's are."""
    from grader.sandbox.state import reachable_base

    return [*state_dir("runs").iterdir(), *(reachable_base().iterdir() if reachable_base() else ())]


def attack(isolation, body: str, *constants: str, limits: Limits = Limits(memory_bytes=2**30)) -> ModelCheck:
    """The models_run child of a notebook whose second class is the attack."""
    nb = model_notebook(body, "Attack", *constants)
    return check_model(extract_models(nb, ["Attack"]), "Attack", MAX_PARAMS, isolation, timeouts=FAST, limits=limits)


# ---- 1. hidden labels -------------------------------------------------------------------------

def _thief(context, isolation, leak: bool):
    extraction = extract_models(model_notebook(attacks.THIEF, "Attack", "SIZES = (400, 500)"), ["Attack"])
    # The thief tells the splits apart by the size of an inference batch: on the CPU that is the training
    # batch, so one that holds a whole split (512) lets it try.
    ctx = replace(context, isolation=isolation, config=replace(context.config, batch_size=512))
    if leak:  # the old layout: the labels next to the child's inputs (in the order it is shown them), as files it can read
        shown = shown_to_child(ctx, extraction)
        folder = state_dir("test-leak")
        np.save(folder / "val_y.npy", shown["val"].labels)
        np.save(folder / "test_y.npy", shown["test"].labels)
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
                f"        try:\n            s = socket.socket(socket.AF_UNIX)\n"  # landlock: no socket at all
                f"            s.connect(address)\n            self.reached.append(address)\n"
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
    ("folders", "exited|killed_disk", "exited with code 0 during the constructor|nested folders more than 64 deep"),
])
def test_output_that_crashed_the_grader_is_that_models_failure(each_isolation, bomb, kind, words):
    check = attack(each_isolation, attacks.OUTPUT_BOMB, f"BOMB = {bomb!r}")
    # 3,000 nested folders, then an exit: whether the watchdog sees them first is a race
    assert not check.passed and check.kind in kind.split("|") and any(w in check.message for w in words.split("|")), \
        check.message
    assert run_folders_left() == []  # even 3,000 nested folders are removed


def test_an_architecture_the_child_made_up_is_dropped_or_cleaned(isolation):
    """The architecture crosses the trust boundary: implausible -> dropped (the check still passes),
    names of its own -> 'other', wrong types -> the report is invalid, as for any other key."""
    forged = ("HOW = 'report'", attacks.ANATOMY_LIES)
    huge = attack(isolation, attacks.ANATOMY, "LIE = 'huge'", *forged)
    assert huge.passed and huge.architecture is None
    named = attack(isolation, attacks.ANATOMY, "LIE = 'names'", *forged)
    assert named.passed and (named.architecture.activations, named.architecture.pooling) == (("ReLU", "other"), ("other",))
    malformed = attack(isolation, attacks.ANATOMY, "LIE = 'malformed'", *forged)
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
    # The tmpfs fills at the cap; the watchdog stops it if it sees that and out/'s few bytes before it ends.
    (".", "disk|killed_disk", "filled its working folder (No space left on device)|wrote more than 256 MB of files"),
    ("out", "killed_disk", "wrote more than 256 MB of files during the constructor"),
])
def test_disk_is_capped(each_isolation, where, kind, words):
    check = attack(each_isolation, attacks.DISK, f"WHERE = {where!r}", limits=Limits(memory_bytes=2**30, disk_bytes=256 * 2**20))
    assert check.kind in kind.split("|") and any(w in check.message for w in words.split("|")), check.message


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


# ---- 8. the class folder and text sinks -----------------------------------------------------

PRIVATE = "PRIVATE-NOTES-OF-THE-INSTRUCTOR"
HANG = 300  # seconds: a hang detector, far above what any of these takes


def _private_notebook(folder: Path) -> Path:
    """An instructor's file outside the class folder, shaped as a notebook that would grade if it were read."""
    folder.mkdir()
    cells = json.loads((REPO / "submissions" / "complete.ipynb").read_text())
    cells["cells"].append({"cell_type": "markdown", "metadata": {}, "source": f"{PRIVATE}: the answers"})
    path = folder / "answers.ipynb"
    path.write_text(json.dumps(cells))
    return path


def hostile_class(root: Path, private: Path) -> dict[str, str]:
    """The honest student beside a link out to the instructor's file, a link to /dev/zero, a FIFO, a
    sparse 2 TB notebook (never written: truncate), a student folder that is a link out and a link to
    the honest student's notebook; returns each hostile student with the words their error must hold."""
    root.mkdir()
    shutil.copy(REPO / "submissions" / "complete.ipynb", root / "honest.ipynb")
    (root / "mallory").mkdir()
    (root / "mallory" / "hw3.ipynb").symlink_to(private)
    (root / "zero.ipynb").symlink_to("/dev/zero")
    os.mkfifo(root / "fifo.ipynb")
    with open(root / "sparse.ipynb", "wb") as f:
        f.truncate(2 * 2**40)
    (root / "away").symlink_to(private.parent, target_is_directory=True)
    (root / "copycat").mkdir()  # a link that stays inside the class folder: another student's work
    (root / "copycat" / "hw3.ipynb").symlink_to("../honest.ipynb")
    return {"copycat": "hw3.ipynb is a symbolic link; hand in the notebook file itself","mallory": "hw3.ipynb is a symbolic link; hand in the notebook file itself, not a link to it",
            "zero": "zero.ipynb is a symbolic link; hand in the notebook file itself",
            "fifo": "fifo.ipynb is a named pipe (FIFO), not a file; hand in the .ipynb file itself",
            "sparse": "sparse.ipynb is 2,097,152 MB, over the 512 MB limit; clear large outputs",
            "away": "away is a symbolic link to a folder, which the grader does not follow"}


def grade_cli(root: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """`grader grade ROOT --out OUT --no-train ARGS` in its own process, so that a hang or an OOM kill fails this test."""
    return subprocess.run([sys.executable, "-m", "grader.cli", "grade", str(root), "--out", str(out), "--no-train", *args],
                          capture_output=True, text=True, timeout=HANG, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def honest_static(rubric, tmp_path_factory):
    """The honest student's static grade alone."""
    root = tmp_path_factory.mktemp("alone-static")
    shutil.copy(REPO / "submissions" / "complete.ipynb", root / "honest.ipynb")
    return grade_batch(root, root / "out", rubric=rubric, budget="none").results["honest"]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_class_folder_is_read_only_inside_itself(tmp_path, workers, honest_static):
    private = _private_notebook(tmp_path / "instructor")
    hostile = hostile_class(tmp_path / "class", private)
    done = grade_cli(tmp_path / "class", tmp_path / "out", "--workers", workers)
    assert done.returncode == 0, done.stderr
    rows = (tmp_path / "out" / "gradebook.csv").read_text().splitlines()
    assert sorted(row.split(",")[0] for row in rows[1:]) == sorted([*hostile, "honest"])
    results = {s: load_result(tmp_path / "out" / s / "result.json") for s in [*hostile, "honest"]}
    for student, words in hostile.items():
        assert results[student].status == "error" and words in results[student].error, results[student].error
    honest = results["honest"]
    assert honest.status == "graded" and honest.score == honest_static.score == 70
    assert [(c.id, c.points) for c in honest.checks] == [(c.id, c.points) for c in honest_static.checks]
    leaked = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and PRIVATE.encode() in p.read_bytes()]
    assert leaked == []


def test_grader_check_refuses_a_fifo_a_device_and_a_sparse_file_with_one_line(tmp_path):
    os.mkfifo(tmp_path / "pipe.ipynb")
    with open(tmp_path / "huge.ipynb", "wb") as f:
        f.truncate(2 * 2**40)
    for path, words in ((tmp_path / "pipe.ipynb", "is a named pipe (FIFO), not a file"),
                        (Path("/dev/zero"), "is a character device, not a file"),
                        (tmp_path / "huge.ipynb", "over the 512 MB limit")):
        done = subprocess.run([sys.executable, "-m", "grader.cli", "check", str(path)], capture_output=True, text=True,
                              timeout=HANG, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 2 and words in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr


@pytest.mark.parametrize("hand_in", ["fifo", "link"])
def test_gradescope_refuses_a_fifo_or_a_link_out_of_the_submission(tmp_path, hand_in):
    root = unpack(build(tmp_path, "--budget", "none"), tmp_path / "autograder")
    private = _private_notebook(tmp_path / "instructor")
    if hand_in == "fifo":
        os.mkfifo(root / "submission" / "hw3.ipynb")
    else:
        (root / "submission" / "hw3.ipynb").symlink_to(private)
    results = run_autograder(root, timeout=HANG)
    assert results["score"] == 0 and PRIVATE not in json.dumps(results)
    assert ("is a named pipe (FIFO)" if hand_in == "fifo" else "is a symbolic link") in results["output"]


SLEEPER = """
def __init__(self):
    super().__init__()
    import time
    time.sleep(600)  # never done building: the deadline finds the grader waiting on this child
    self.conv = nn.Conv2d(3, 10, 3)

def forward(self, x):
    return self.conv(x).mean((2, 3))
"""


@pytest.fixture(scope="module")
def prepared_autograder(tmp_path_factory, synthetic_data, small_rubric) -> Path:
    """A quick-budget autograder for an assignment timeout of 0.3 minutes (the grader stopped after 15 s),
    unpacked and prepared as setup.sh leaves it (the references trained into ROOT/cache)."""
    from grader.gradescope.config import deadline

    folder = tmp_path_factory.mktemp("gradescope-deadline")
    root = unpack(build(folder, "--budget", "quick", "--rubric", str(small_rubric), "--data", str(synthetic_data)),
                  folder / "autograder")
    # The build refuses a timeout too short to retrain in; this one is, as an instructor's slip would be.
    config = root / "source" / "autograder.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "timeout_minutes": 0.3}))
    short = deadline(0.3)
    script = (root / "run_autograder").read_text()
    (root / "run_autograder").write_text(re.sub(r"DEADLINE=\d+ ", f"DEADLINE={short.seconds} ",
                                                re.sub(r"GRACE=\d+ ", f"GRACE={short.grace} ", script)))
    prepared = subprocess.run([sys.executable, "-m", "grader.cli", "gradescope", "prepare"], env=autograder_env(root),
                              capture_output=True, text=True, timeout=900)
    assert prepared.returncode == 0, prepared.stderr
    return root


def test_gradescope_keeps_the_static_checks_when_its_deadline_stops_the_retraining(each_isolation, tmp_path,
                                                                                     prepared_autograder):
    """The deadline falls while a model's child runs (its constructor sleeps): results.json holds the static
    checks and says the retraining did not finish, and no process of the run outlives the grader."""
    root = Path(shutil.copytree(prepared_autograder, tmp_path / "autograder", symlinks=True))
    assert "DEADLINE=15 " in (root / "run_autograder").read_text()
    write_notebook(root / "submission" / "hw3.ipynb", *model_cells(SLEEPER, "ProposedSleeper"))
    state = tmp_path / "state"
    results = run_autograder(root, env={"GRADER_ISOLATION": each_isolation.kind, "GRADER_STATE_DIR": str(state)},
                             timeout=HANG)
    assert results["output"].startswith("**The retraining of your models did not finish**")
    static = grade_submission(root / "submission" / "hw3.ipynb", student="x", rubric=load_rubric(root / "source" / "rubric.toml"))
    tests = {t["extra_data"]["check"]: t for t in results["tests"]}
    assert {c: t["score"] for c, t in tests.items() if "score" in t} == {c.id: c.points for c in static.checks}
    assert results["score"] == static.score and static.checks[0].passed  # two CNN classes: the retraining was due
    for check in ("models_run", "baseline_works", "proposed_beats_baseline", "proposed_vs_references"):
        assert "status" not in tests[check] and "did not finish within the autograder's 0.3 minutes" in tests[check]["output"]
    assert _processes_naming(state, wait=10) == []


def _processes_naming(path: Path, wait: float) -> list[str]:
    """The command lines that name `path`, after up to `wait` seconds for them to end."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in text:
                found.append(text)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_hanging_grader_is_stopped_and_the_student_still_gets_a_result(tmp_path):
    root = unpack(build(tmp_path, "--budget", "none", "--timeout-minutes", "0.1"), tmp_path / "autograder")
    shutil.copy(REPO / "submissions" / "complete.ipynb", root / "submission")
    stuck = tmp_path / "stuck-python"
    stuck.write_text("#!/bin/sh\ntrap '' TERM\nsleep 600\n")  # deaf to SIGTERM: only the SIGKILL after the grace ends it
    stuck.chmod(0o755)
    results = run_autograder(root, python=str(stuck), timeout=HANG)
    assert results["score"] == 0 and results["output"].startswith("The autograder ran out of time")


FORGED = "hw3\n::error title=Grader::All checks pass - score 100 of 100\n::add-mask::FAIL\n::stop-commands::x\nx.ipynb"


def test_a_notebook_name_cannot_forge_or_silence_workflow_commands(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(REPO / "submissions" / "missing_discussion.ipynb", repo / FORGED)
    env = {**os.environ, "PYTHONPATH": str(REPO), "GITHUB_ACTIONS": "true"}
    done = subprocess.run([sys.executable, "-m", "grader.cli", "ci", str(repo), "--no-train", "--out", str(tmp_path / "out")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=HANG, env=env, cwd=repo)
    assert done.returncode == 1, done.stdout
    commands = workflow_commands(done.stdout)  # as GitHub's runner reads the log
    assert {name for name, *_ in commands} == {"group", "endgroup", "error", "warning"}  # no add-mask, no stop-commands
    ours = annotations(grade_submission(repo / FORGED, student="x", rubric=load_rubric()), FORGED)
    assert len(ours) == 4 and [c for c in commands if c[0] in ("error", "warning")] == workflow_commands("\n".join(ours))
    assert "FAIL  Cell 15: Discussion" in done.stdout  # the grader's own FAIL lines show, unmasked
    assert not any(line.startswith(("::error title=Grader", "::add-mask", "::stop-commands::x")) for line in done.stdout.splitlines())


LINK = (r"The LeNet5 is better than ResDropNet, \[appeal your grade here\](https://evil.example/appeal) www.evil.example, "
        "because of its batch normalization.")


def _renderings(markdown: str) -> dict[str, str]:
    """`markdown` as HTML by a CommonMark renderer (markdown-it-py, tables on), by mistune with GitHub's bare-URL
    autolinks, and by the renderer of feedback.html."""
    import mistune
    from markdown_it import MarkdownIt

    return {"commonmark": MarkdownIt("commonmark").enable("table").render(markdown),
            "gfm-autolinks": mistune.create_markdown(escape=True, plugins=["url", "table", "strikethrough"])(markdown),
            "feedback.html": markdown_html(markdown)}


def test_a_link_in_student_text_is_text_in_every_markdown_sink(tmp_path, rubric):
    nb = json.loads((REPO / "submissions" / "complete.ipynb").read_text())
    nb["cells"][15]["source"] = f"## 3) Discussion\n\n{LINK}\n"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hw3.ipynb").write_text(json.dumps(nb))
    summary = tmp_path / "summary.md"
    env = {**os.environ, "PYTHONPATH": str(REPO), "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    subprocess.run([sys.executable, "-m", "grader.cli", "ci", str(repo), "--no-train", "--out", str(tmp_path / "out")],
                   capture_output=True, timeout=HANG, env=env, check=False)
    result = grade_submission(repo / "hw3.ipynb", student="eve", rubric=rubric)
    quoted = next(c for c in result.checks if c.id == "discussion_names_winner")
    assert "appeal your grade here" in quoted.message and "www.evil.example" in quoted.message  # the sentence is shown
    gradescope = gradescope_results(result)
    sinks = {"feedback.md": (tmp_path / "out" / "feedback.md").read_text(), "step summary": summary.read_text(),
             "results.json output": gradescope["output"],
             **{f"results.json test {t['name']}": t["output"] for t in gradescope["tests"]}}
    assert "appeal your grade here" in sinks["feedback.md"] and "appeal your grade here" in sinks["step summary"]
    for sink, text in sinks.items():
        for renderer, html in _renderings(text).items():
            assert "<a " not in html and "href" not in html, (sink, renderer, html)
        if "appeal your grade here" in text:
            assert "evil.example/appeal" in _renderings(text)["commonmark"]  # shown as text, not dropped


# ---- 9. channels between children --------------------------------------------------------------

COLUMN = list(confine.AUDIT_ARCH).index(os.uname().machine) if os.uname().machine in confine.AUDIT_ARCH else 0
NR = {name: numbers[COLUMN] for name, numbers in {**confine.CHANNELS, **confine.NEVER_NEEDED}.items()}
DISK_CAP = Limits(memory_bytes=2**30, disk_bytes=256 * 2**20)


def test_the_kernel_keyring_is_refused_so_no_key_reaches_the_next_child(each_isolation):
    planted = attack(each_isolation, attacks.KEYRING, f"NR = {NR!r}", "MODE = 'plant'")
    found = attack(each_isolation, attacks.KEYRING, f"NR = {NR!r}", "MODE = 'find'")
    for check in (planted, found):
        assert not check.passed and "[Errno 1] Operation not permitted in the constructor" in check.message, check.message
        assert "mallory" not in check.message


def test_a_sysv_segment_stays_in_the_childs_ipc_namespace(each_isolation):
    key = 0x67726472
    made = attack(each_isolation, attacks.SYSV_SHM, f"KEY = {key}", "MODE = 'make'")
    if each_isolation.kind in OWN_IPC:
        assert made.passed, made.message  # allowed: the segment lives and dies with the child's IPC namespace
    else:  # no IPC namespace of its own: the filter refuses SysV IPC
        assert not made.passed and "PermissionError: [Errno 1] shmget" in made.message, made.message
    looked = attack(each_isolation, attacks.SYSV_SHM, f"KEY = {key}", "MODE = 'find'")
    assert looked.passed, looked.message  # it raises with the secret when it finds the segment
    keys = [int(line.split()[0]) for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    assert key not in keys  # nothing outlived the run on the grader's side


def test_calls_a_child_never_needs_are_refused_with_an_errno(each_isolation, tmp_path):
    clone, socket_nr = confine.CLONE[COLUMN], confine.SOCKET[COLUMN]
    calls = {name: [number, 0, 0, 0, 0, 0, 0] for name, number in NR.items()}
    calls |= {"clone3": [confine.CLONE3[COLUMN], 0, 0], "clone_newuser": [clone, 0x10000000 | 17, 0, 0, 0, 0],
              "clone": [clone, 17, 0, 0, 0, 0], "socket_inet": [socket_nr, 2, 1, 0], "socket_unix": [socket_nr, 1, 1, 0]}
    script = tmp_path / "calls.py"
    script.write_text(f"CALLS = {calls!r}\nCLONE = {clone}\n" + attacks.SYSCALLS)
    r = run_in_sandbox(script, phases=[Phase("main", 30)], isolation=each_isolation)
    assert r.status == "ok", r.detail + r.stderr
    assert {name: r.payload[name] for name in NR} == {name: "EPERM" for name in NR}
    assert (r.payload["clone3"], r.payload["clone_newuser"], r.payload["socket_inet"]) == ("ENOSYS", "EPERM", "EAFNOSUPPORT")
    if each_isolation.kind == "landlock":  # no namespaces: no socket at all, and /proc out of reach
        assert (r.payload["clone"], r.payload["socket_unix"], r.payload["seccomp"]) == ("ok", "EAFNOSUPPORT", "EACCES")
    else:
        assert (r.payload["clone"], r.payload["socket_unix"], r.payload["seccomp"]) == ("ok", "ok", ["2"])


@pytest.mark.parametrize("levels, name, fill, words", [
    (30_000, "d", 0, "nested folders more than 64 deep during the constructor"),
    (2_100, "d", 400, "nested folders more than 64 deep during the constructor"),
    (60, "d" * 200, 400, "wrote more than 256 MB of files during the constructor"),  # 12,000-byte paths: counted
])
def test_nested_folders_are_stopped_and_removed_with_the_grader_unharmed(each_isolation, levels, name, fill, words):
    descriptors = len(os.listdir("/proc/self/fd"))
    check = attack(each_isolation, attacks.NESTER, f"LEVELS = {levels}", f"NAME = {name!r}", f"FILL = {fill}",
                   limits=DISK_CAP)
    assert check.kind == "killed_disk" and words in check.message, check.message
    assert run_folders_left() == [] and len(os.listdir("/proc/self/fd")) == descriptors


def test_the_working_folder_and_out_count_against_one_disk_cap(each_isolation):
    check = attack(each_isolation, attacks.SPLIT_DISK, "MB = 160", limits=DISK_CAP)  # 160 MB each: 320 in all
    assert check.kind == "killed_disk" and "wrote more than 256 MB of files during the constructor" in check.message, \
        check.message


def test_a_nest_of_folders_costs_the_next_students_nothing(each_isolation, synthetic_data, small_rubric, honest_alone,
                                                           tmp_path, monkeypatch):
    """30,000 nested folders once ran the grader out of descriptors: the next two students got
    'Too many open files'. With the common limit of 1,024 descriptors, they are graded as if alone."""
    monkeypatch.setenv("GRADER_ISOLATION", each_isolation.kind)
    root = tmp_path / "class"
    root.mkdir()
    cells = model_cells(attacks.NESTER, "ProposedAttack", "LEVELS = 30_000", "NAME = 'd'", "FILL = 0")
    write_notebook(root / "a-nest.ipynb", cells[0], *cells[2:])
    for student in ("b-honest", "c-honest"):
        shutil.copy(REPO / "submissions" / "complete.ipynb", root / f"{student}.ipynb")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    try:
        report = grade_batch(root, tmp_path / "out", rubric=load_rubric(small_rubric), budget="quick",
                             data_dir=synthetic_data)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    models_run = next(c for c in report.results["a-nest"].checks if c.id == "models_run")
    assert not models_run.passed and "nested folders more than 64 deep" in models_run.message, models_run.message
    for student in ("b-honest", "c-honest"):
        honest = report.results[student]
        assert honest.error is None, honest.error
        assert [(c.id, c.points) for c in honest.checks] == [(c.id, c.points) for c in honest_alone.checks]
        assert ({n: r.test_accuracy for n, r in honest.runs.items()}
                == {n: r.test_accuracy for n, r in honest_alone.runs.items()})
    assert run_folders_left() == []


# ---- 10. a memorized test set ------------------------------------------------------------------

def _memorizer(folder: Path, data_dir: Path, splits: tuple[str, ...] = ("train", "test")) -> Path:
    """The security review's notebook: LeNet5 beside MemoNet, which carries a table of the public
    images of `data_dir` (its hash -> its label) and answers from it."""
    from grader.data import load_cifar10

    data = load_cifar10(data_dir)
    images = {"train": (data.train_images, data.train_labels), "test": (data.test_images, data.test_labels)}
    table = attacks.memorized_table(np.concatenate([images[s][0].numpy() for s in splits]),
                                    np.concatenate([images[s][1].numpy() for s in splits]))
    return write_notebook(folder / "memorizer.ipynb", *model_cells(attacks.MEMORIZER, "MemoNet", table))


def _assert_memorizer_earns_nothing(result) -> None:
    memo = result.runs["MemoNet"]
    found = memo.memorization
    assert found.clean_accuracy == 1.0 and found.flagged  # the attack is real: every published test image is right
    assert memo.test_accuracy == found.perturbed_accuracy < 0.2  # scored on the perturbed images: class 0, chance
    checks = {c.id: c for c in result.checks}
    beats = checks["proposed_beats_baseline"]
    assert not beats.passed and beats.points == 0 and beats.scored, beats.message
    assert f"MemoNet ({memo.test_accuracy:.1%} on the perturbed test images) does not beat LeNet5" in beats.message
    assert checks["proposed_vs_references"].points == 0
    assert result.effect.test_accuracy < 0  # What differs weighs the perturbed accuracy too
    assert [f for f in result.flags if "memorized" in f] == [memorizing_flag("MemoNet", found)]


def test_a_memorized_test_set_is_flagged_and_scored_on_the_perturbed_images(each_isolation, training_context,
                                                                            synthetic_data, small_rubric, honest_alone,
                                                                            tmp_path):
    ctx, rubric = replace(training_context, isolation=each_isolation), load_rubric(small_rubric)
    _assert_memorizer_earns_nothing(grade_submission(_memorizer(tmp_path, synthetic_data), student="mallory",
                                                     rubric=rubric, budget="quick", context=ctx))
    honest = grade_submission(REPO / "submissions" / "complete.ipynb", student="ann", rubric=rubric, budget="quick",
                              context=ctx)
    assert all(run.memorization and not run.memorization.flagged for run in honest.runs.values())
    assert not any("memorized" in f for f in honest.flags)
    assert [(c.id, c.points) for c in honest.checks] == [(c.id, c.points) for c in honest_alone.checks]
    assert {n: r.test_accuracy for n, r in honest.runs.items()} == {n: r.test_accuracy for n, r in honest_alone.runs.items()}


@pytest.mark.realdata
def test_a_table_of_the_real_images_earns_nothing_on_the_real_images(real_cifar10, isolation, tmp_path):
    """The review's attack on the real images, under the rubric's quick budget. Its table of all 60,000 images (660,000 characters)
    lies past what the grader reads of a notebook's code: MemoNet cannot even be built. The 10,000
    test images' table (110,000 characters) is read, and answers every published test image."""
    from grader.training.context import prepare_training

    rubric = load_rubric(REPO / "rubrics" / "cifar10.toml")
    ctx = prepare_training(rubric, "quick", data_dir=real_cifar10, isolation=isolation)
    (tmp_path / "all").mkdir()
    whole = grade_submission(_memorizer(tmp_path / "all", real_cifar10), student="mallory", rubric=rubric,
                             budget="quick", context=ctx)
    assert "name 'TABLE' is not defined" in whole.runs["MemoNet"].error
    assert any("characters; code cell 3 not read" in w for w in whole.warnings), whole.warnings
    _assert_memorizer_earns_nothing(grade_submission(_memorizer(tmp_path, real_cifar10, ("test",)), student="mallory",
                                                     rubric=rubric, budget="quick", context=ctx))


# ---- 11. facts the child cannot forge: what the grade stands on -------------------------------------

def _graded(tmp_path, context, isolation, small_rubric, *cells, **config):
    """A notebook of `cells` graded under the quick budget, its training config changed by `config`."""
    path = write_notebook(tmp_path / "student.ipynb", *cells)
    ctx = replace(context, isolation=isolation, config=replace(context.config, **config))
    return grade_submission(path, student="mallory", rubric=load_rubric(small_rubric), budget="quick", context=ctx)


TIME_LIMIT = {"max_seconds": 60}
"""A real time limit, far above what the small runs take: a claimed stop is held against the clock."""


@pytest.mark.parametrize("how", ["json", "report"])
def test_a_forged_training_account_earns_nothing(each_isolation, training_context, small_rubric, tmp_path, how):
    """A chance-level model says its training loss fell 2.30 -> 0.05 and that the time limit stopped it
    (which would leave 'beats the baseline' unscored): through json.dump it is refused as tamper; in a
    report it writes itself it trains, at chance, and fails by the grader's own figures, with flags."""
    cells = model_cells(attacks.FORGER, "ProposedForger", f"HOW = {how!r}", f"LR = {training_context.config.lr}")
    result = _graded(tmp_path, training_context, each_isolation, small_rubric, *cells, **TIME_LIMIT)
    checks = {c.id: c for c in result.checks}
    learn, beats = checks["models_learn"], checks["proposed_beats_baseline"]
    assert checks["models_run"].passed and not learn.passed
    assert beats.scored and not beats.passed and beats.points == 0 and beats.max_points == 10
    run = result.runs["ProposedForger"]
    if how == "json":
        assert run.history is None and "the model code replaced json.dump" in run.error
        return
    assert run.error is None and not run.history.stopped_early and run.test_accuracy < 0.35
    assert "ProposedForger does not learn" in learn.message and "(as its child reported)" in learn.message
    flags = "\n".join(result.flags)
    assert "its child's account says the training loss fell from 2.3 to 0.05" in flags
    assert "its child says the time limit stopped it; it returned 1 of the config's 2 epochs, yet it trained for 0.0 s" in flags


def test_the_honest_control_is_graded_on_the_same_facts_as_before(each_isolation, training_context, small_rubric,
                                                                  honest_alone, tmp_path):
    path = tmp_path / "honest.ipynb"
    shutil.copy(REPO / "submissions" / "complete.ipynb", path)
    ctx = replace(training_context, isolation=each_isolation, config=replace(training_context.config, **TIME_LIMIT))
    honest = grade_submission(path, student="honest", rubric=load_rubric(small_rubric), budget="quick", context=ctx)
    checks = {c.id: c for c in honest.checks}
    assert checks["models_learn"].passed and "LeNet5 learns" in checks["models_learn"].message
    assert checks["proposed_beats_baseline"].scored and not any(r.history.stopped_early for r in honest.runs.values())
    assert [(c.id, c.points) for c in honest.checks] == [(c.id, c.points) for c in honest_alone.checks]
    assert not any("forged" in flag for flag in honest.flags), honest.flags


DISCUSSION = ("ProposedForger outperforms LeNet5. Its batch normalization layers and its residual connections make it "
              "train faster and generalize better than the plain LeNet5 baseline, which is why its test accuracy is higher.")


def _with_discussion_check(small_rubric, tmp_path):
    """The small rubric, scoring discussion_attributes as the default rubric does (5 points)."""
    path = tmp_path / "rubric.toml"
    path.write_text(small_rubric.read_text() + "[checks.discussion_attributes]\npoints = 5\n")
    return path


def test_a_forged_anatomy_is_held_against_the_code(each_isolation, training_context, small_rubric, tmp_path):
    """A child report invents batch normalization and residual connections: through json.dump it is
    refused as tamper; written by the model code itself, the claims the code shows no trace of are
    replaced by the code's reading: no credit for the discussion, a flag, What differs as the code is."""
    forged = ("LIE = 'invented'", attacks.ANATOMY_LIES)
    patched = check_model(extract_models(model_notebook(attacks.ANATOMY, "Attack", "HOW = 'json'", *forged), ["Attack"]),
                          "Attack", MAX_PARAMS, each_isolation, timeouts=FAST, limits=Limits(memory_bytes=2**30))
    assert patched.kind == "tamper" and "the model code replaced json.dump" in patched.message
    cells = model_cells(attacks.ANATOMY, "ProposedForger", "HOW = 'report'", *forged) + [md(DISCUSSION)]
    result = _graded(tmp_path, training_context, each_isolation, _with_discussion_check(small_rubric, tmp_path), *cells)
    attributes = {c.id: c for c in result.checks}["discussion_attributes"]
    assert not attributes.passed and attributes.points == 0 and attributes.max_points == 5
    assert any(f.startswith("ProposedForger: its run reported BatchNorm2d, 2 residual connections, which its code "
                            "shows no trace of") for f in result.flags), result.flags
    arch = result.runs["ProposedForger"].architecture
    assert (arch.source, arch.norms, arch.norm_layers, arch.residual, arch.widths) == ("run", (), 0, 0, (64, 64))
    differs = "\n".join(what_differs_markdown(result))
    assert "| Normalization | none | none |" in differs and "| Residual connections | none | none |" in differs
    assert "BatchNorm2d" not in differs


def test_an_honest_anatomy_is_believed(each_isolation, training_context, small_rubric, tmp_path):
    """The control: batch normalization and skip connections the code has are measured, credited and not flagged."""
    path = tmp_path / "honest.ipynb"
    shutil.copy(REPO / "submissions" / "residual_ablation.ipynb", path)
    ctx = replace(training_context, isolation=each_isolation)
    result = grade_submission(path, student="honest", rubric=load_rubric(_with_discussion_check(small_rubric, tmp_path)),
                              budget="quick", context=ctx)
    attributes = {c.id: c for c in result.checks}["discussion_attributes"]
    assert attributes.passed and attributes.points == 5, attributes.message
    assert result.runs[result.proposed].architecture.residual > 0
    assert not any("no trace" in flag for flag in result.flags), result.flags


@pytest.mark.parametrize("sizes, kind, words", [
    (("WIDTH = 256", "LAYERS = 12", "VAULT = 215_000_000"), "too_many_params",
     "ProposedHider has 222,087,370 parameters, over the limit of 200,000,000"),  # the review's model, at its sizes
    (("WIDTH = 256", "LAYERS = 12", "VAULT = 0"), "too_many_flops", "ProposedHider takes 14.5 GFLOPs per 32x32 image"),
    (("WIDTH = 8", "LAYERS = 2", "VAULT = 1_000"), "ok", ""),  # within the limits: counted and trained whole
])
def test_a_model_that_hides_its_size_is_counted_whole(each_isolation, training_context, small_rubric, sizes, kind, words):
    """parameters() lists the last layer only and the convolutions are functional ones on bare
    parameters: the counts do not ask the model, so the limits refuse it before it trains."""
    rubric = load_rubric(small_rubric)  # the default limits: 200 million parameters, 12 GFLOPs per image
    found = retrain_submission(model_notebook(attacks.HIDER, "ProposedHider", *sizes), ["ProposedHider"], rubric,
                               replace(training_context, isolation=each_isolation))
    check, run = found.checks["ProposedHider"], found.runs["ProposedHider"]
    assert check.kind == kind and words in check.message, check.message
    if kind != "ok":
        assert not check.passed and run.history is None  # refused: never trained
        return
    whole = 8 * 3 * 9 + 2 * 8 * 8 * 9 + 8 * 10 + 10 + 1_000  # what parameters() hides included
    assert check.params == whole and run.params == whole and run.history is not None and found.flags == ()
    assert check.flops_per_image == 2 * 32 * 32 * (8 * 27 + 2 * 8 * 72) + 2 * 8 * 10


# ---- 12. the parent's reading -------------------------------------------------------------------
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
                          md(READ_DISCUSSION + "<" * 1_000_000))


def _long_sentence(tmp_path):  # the claims reader was quadratic in a sentence's length
    return write_notebook(tmp_path / "nb.ipynb", nbcode(LENET), nbcode("train(LeNet())", "Test accuracy: 61%\n"),
                          md(READ_DISCUSSION + " The proposed model is " + "better " * 340_000))


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


READ_DISCUSSION = ("The proposed model outperforms the LeNet baseline on the test set: it reaches a higher test accuracy "
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


def test_the_feedback_pages_of_notebooks_built_to_stall_the_reading_are_cut_not_stalled(tmp_path):
    """The page shows the student's notebook, rendered in the grader's process: these four once took
    560 s to grade as a class, nearly all of it highlighting code and cleaning markdown on the page.
    The subprocess's timeout is the hang detector; what the page shows is asserted."""
    builders = {"angles": _angle_brackets, "fstrings": _newer_f_strings, "output": _long_output, "sentence": _long_sentence}
    for student, build in builders.items():
        (tmp_path / "class" / student).mkdir(parents=True)
        build(tmp_path / "class" / student)
    done = grade_cli(tmp_path / "class", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    for student in builders:
        page = (tmp_path / "out" / student / "feedback.html").read_text()
        assert "more characters not shown here" in page and "nb-cell" in page, student


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


# ---- 13. a fork bomb whose copies leave its session ---------------------------------------------

SMALL_MODEL = "def __init__(self):\n    super().__init__()\n    self.fc = nn.Linear(3 * 32 * 32, 10)\n" \
              "def forward(self, x):\n    return self.fc(torch.flatten(x, 1))"


def test_a_fork_bomb_fails_alone_and_leaves_its_uid_free(each_isolation):
    """Copies that call setsid and sleep hold the uid's process limit for as long as they live: none
    may outlive the child (a PID namespace, or landlock's reaper), or the next child of that uid
    could not start a thread."""
    started = time.clock_gettime(time.CLOCK_BOOTTIME)
    bomb = attack(each_isolation, attacks.FORK_BOMB)
    assert not bomb.passed and "Resource temporarily unavailable" in bomb.message, bomb.message
    uid = bomb.child.isolation.uid
    assert uid not in (0, os.getuid()) and _processes_of(uid, since=started) == []
    after = attack(each_isolation, SMALL_MODEL)
    assert after.passed, after.message


def _processes_of(uid: int, since: float) -> list[int]:
    """The processes of `uid` started after `since` (seconds since boot): another grader's children
    on this machine may have the same uid, but not the same start."""
    found, tick = [], os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                stat_line = (entry / "stat").read_text()
                if int(stat_line[stat_line.rfind(")") + 2:].split()[19]) / tick >= since:
                    found.append(int(entry.name))
        except OSError:
            pass
    return found


# ---- the batch goes on ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def honest_alone(synthetic_data, small_rubric, training_context, tmp_path_factory):
    """The honest student graded alone (training is deterministic: the same under every isolation)."""
    root = tmp_path_factory.mktemp("alone")
    shutil.copy(REPO / "submissions" / "complete.ipynb", root / "honest.ipynb")
    return grade_batch(root, root / "out", rubric=load_rubric(small_rubric), budget="quick",
                       data_dir=synthetic_data).results["honest"]


READING = {"read-spaces": _metric_spaces, "read-output": _long_output, "read-angles": _angle_brackets,
           "read-sentence": _long_sentence, "read-cell": _escaped_cell, "read-fstrings": _newer_f_strings,
           "read-wide": _wide_json, "read-deep": _deep_json}
"""The parent's-reading attacks of a class (section 12), by student."""


def _hostile_class(root: Path, private: Path, data_dir: Path, lr: float) -> None:
    """Every attack of the reviews as a student of one class, beside the honest student `honest`:
    the class folder's (section 8), the parent's reading (12), channels between children (9), forged
    facts (11), a memorized test set (10), text for other programs (8) and the first review's."""
    hostile_class(root, private)  # honest.ipynb, links out and in, /dev/zero, a FIFO, a sparse 2 TB file
    for student, build in READING.items():
        (root / student).mkdir()
        build(root / student)
    (root / "memo").mkdir()
    _memorizer(root / "memo", data_dir)
    (root / "ci-name").mkdir()
    shutil.copy(REPO / "submissions" / "missing_discussion.ipynb", root / "ci-name" / FORGED)
    linked = json.loads((REPO / "submissions" / "complete.ipynb").read_text())
    linked["cells"][15]["source"] = f"## 3) Discussion\n\n{LINK}\n"
    (root / "link.ipynb").write_text(json.dumps(linked))
    alone = {  # the attack alone, its name giving it the proposed role: no baseline to train beside it
        "key-1-plant": (attacks.KEYRING, f"NR = {NR!r}", "MODE = 'plant'"),
        "key-2-find": (attacks.KEYRING, f"NR = {NR!r}", "MODE = 'find'"),
        "shm-1-make": (attacks.SYSV_SHM, "KEY = 0x67726473", "MODE = 'make'"),
        "shm-2-find": (attacks.SYSV_SHM, "KEY = 0x67726473", "MODE = 'find'"),
        "nest": (attacks.NESTER, "LEVELS = 30_000", "NAME = 'd'", "FILL = 0"),
        "thief": (attacks.THIEF, "SIZES = (400, 500)"), "bomb": (attacks.OUTPUT_BOMB, "BOMB = 'result'"),
        "tamper": (attacks.TAMPER, "PATCH = 'trainer'"),
    }
    for student, (body, *constants) in alone.items():
        cells = model_cells(body, "ProposedAttack", *constants)
        write_notebook(root / f"{student}.ipynb", cells[0], *cells[2:])
    beside_lenet = {  # the attack beside a LeNet5 baseline, as the reviews handed them in
        "forger": model_cells(attacks.FORGER, "ProposedForger", "HOW = 'report'", f"LR = {lr}"),
        "forger-json": model_cells(attacks.FORGER, "ProposedForger", "HOW = 'json'", f"LR = {lr}"),
        "anatomy": model_cells(attacks.ANATOMY, "ProposedForger", "HOW = 'report'", "LIE = 'invented'",
                               attacks.ANATOMY_LIES) + [md(DISCUSSION)],
        "hider": model_cells(attacks.HIDER, "ProposedHider", "WIDTH = 256", "LAYERS = 12", "VAULT = 215_000_000"),
    }
    for student, cells in beside_lenet.items():
        write_notebook(root / f"{student}.ipynb", *cells)


def test_a_class_of_every_attack_grades_the_honest_student_as_if_alone(each_isolation, synthetic_data, small_rubric,
                                                                      training_context, honest_alone, tmp_path,
                                                                      monkeypatch):
    """The whole class at once, two workers: the gradebook is written with a row for everyone, the honest
    student's grade is exactly the one it gets alone, and no attacker gets the reward it was built for."""
    monkeypatch.setenv("GRADER_ISOLATION", each_isolation.kind)
    root, out = tmp_path / "class", tmp_path / "out"
    _hostile_class(root, _private_notebook(tmp_path / "instructor"), synthetic_data, training_context.config.lr)
    students = sorted(p.name.removesuffix(".ipynb") for p in root.iterdir())
    report = grade_batch(root, out, rubric=load_rubric(small_rubric), budget="quick", data_dir=synthetic_data, workers=2)
    with open(out / "gradebook.csv", newline="") as f:
        assert sorted(row["student"] for row in csv.DictReader(f)) == sorted(report.results) == students
    results = report.results

    honest = results["honest"]
    assert honest.provenance.run.isolation == each_isolation.kind and honest.error is None
    assert [(c.id, c.points) for c in honest.checks] == [(c.id, c.points) for c in honest_alone.checks]
    assert {n: r.test_accuracy for n, r in honest.runs.items()} == {n: r.test_accuracy for n, r in honest_alone.runs.items()}

    def check(student: str, check_id: str):
        return next(c for c in results[student].checks if c.id == check_id)

    for student in ("mallory", "zero", "fifo", "sparse", "away", "copycat", "read-wide", "read-deep"):
        assert results[student].status == "error" and results[student].score == 0, student
    assert not any(PRIVATE.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file())
    for student in ("read-spaces", "read-output", "read-angles", "read-sentence", "read-cell", "read-fstrings"):
        assert results[student].status == "graded" and results[student].models[0].name == "LeNet", student
    for student in ("key-1-plant", "key-2-find", "nest", "bomb", "tamper"):
        assert not check(student, "models_run").passed, (student, check(student, "models_run").message)
    assert "Operation not permitted" in check("key-2-find", "models_run").message
    assert check("shm-2-find", "models_run").passed  # it raises with the secret only if it finds the segment
    assert results["thief"].runs["ProposedAttack"].test_accuracy < 0.35
    for student in ("forger", "forger-json", "memo"):
        beats = check(student, "proposed_beats_baseline")
        assert beats.scored and beats.points == 0, (student, beats.message)
    assert not check("forger", "models_learn").passed and "the model code replaced json.dump" in results[
        "forger-json"].runs["ProposedForger"].error
    assert any("shows no trace of" in flag for flag in results["anatomy"].flags), results["anatomy"].flags
    assert check("hider", "models_run").points < check("hider", "models_run").max_points
    assert "222,087,370 parameters, over the limit" in check("hider", "models_run").message
    assert results["memo"].runs["MemoNet"].memorization.flagged
    assert "appeal your grade here" in results["link"].discussion.winner_evidence  # read, and rendered as text:
    for page in (out / "link").glob("*.md"):
        assert not re.search(r'href="[^"]*evil', _renderings(page.read_text())["commonmark"]), page.name
    assert results["ci-name"].status == "graded" and Path(results["ci-name"].notebook).name == FORGED
