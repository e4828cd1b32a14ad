"""A hostile student against the sandbox, under every isolation this machine offers.

Each attack of the security review is here, numbered as in the issue that reported it: it must end
in a clear failure for that submission (or, for the label theft, in chance accuracy), leave no
trace that another run could meet, and never raise in the grader. The last test grades a class
holding the attackers beside an honest student: the honest one is graded as if alone and the
gradebook is written.
"""

from __future__ import annotations

import io
import os
import re
import shutil
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
from grader.report.differs import what_differs_markdown
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
from grader.training.retrain import audit, retrain_submission, train_in_sandbox
from nbfactory import markdown, model_cells, model_notebook
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


# ---- 8. facts the child cannot forge: what the grade stands on --------------------------------------

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
    cells = model_cells(attacks.ANATOMY, "ProposedForger", "HOW = 'report'", *forged) + [markdown(DISCUSSION)]
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
