"""The Gradescope autograder in real Docker containers, started as Gradescope starts them.

The zip `grader gradescope build --budget quick` writes (synthetic data, the small rubric) is
unpacked into a container of a Debian bookworm image made here from Debian's packages
(debootstrap and `docker import`: no image registry is needed); setup.sh runs there with the
host's network and the host's pip and apt configuration, and the container is committed as the
autograder's image. Each submission then runs /autograder/run_autograder in a fresh container
with Gradescope's defaults: no network, half a CPU, Docker's default seccomp profile and
capabilities, no --privileged, so that no user namespace can be made (bwrap and unshare fail);
1,536 MB rather than 768 (MEMORY_MB says why).
What it proves: the autograder installs, retrains a student's models and contains hostile ones
where courses grade, and every submission ends in a results.json that scores what it should.

Needs root, debootstrap and a Docker daemon: skipped without them, a failure under GRADER_CI=1
(.ci/run installs docker.io and debootstrap and starts a daemon of its own). The base image is
kept by tag and the autograder's image by the zip's hash, so a rerun on the same daemon builds
neither again. The wall times go to the terminal (`docker: ...` lines).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import attacks
from nbfactory import model_cells, write
from support import SUBMISSIONS, build, unpack, valid

pytestmark = [pytest.mark.docker, pytest.mark.slow]

BASE = "cnn-grader-test/debian:bookworm"
AUTOGRADER = "cnn-grader-test/autograder"
MIRROR = "http://deb.debian.org/debian"
MEMORY_MB = 1536
"""The containers' memory: twice Gradescope's default 768 MB, because this machine can install only
torch's CUDA build (PyTorch's CPU index is out of its reach), whose import alone holds 280 MB of
anonymous memory in the grader and again in each child; Gradescope's setup.sh gets the CPU build.
The quick budget fitted to 0.5 CPU and 768 MB with the CPU build was measured in a cgroup instead
(README, Gradescope)."""
GRADESCOPE = ("--network", "none", "--cpus", "0.5", "--memory", f"{MEMORY_MB}m")
"""How Gradescope starts a submission's container (its defaults but the memory); Docker's own seccomp profile and capabilities."""
PIP_CONFIG = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/root/.pip/pip.conf", "/root/.config/pip/pip.conf")
"""The files pip reads its configuration from as root, besides $PIP_CONFIG_FILE and PIP_* variables."""
PROXIES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
"""The host's own certificate authorities (a proxy's, say): the container's ca-certificates package adds them."""
MADE_THERE = ("/etc/ssl/certs/",)
"""Paths the configuration names that the container makes itself (the CA bundle, from ca-certificates)."""
SETUP = 'bash /autograder/source/setup.sh 2>&1 | tee /autograder/setup.log; exit "${PIPESTATUS[0]}"'
HANG = 1800
"""Seconds after which a docker command is taken for hung (a hang detector, not a time limit)."""
RUN_CHECKS = ("models_run", "baseline_works", "proposed_beats_baseline", "proposed_vs_references")

# Models broken as honest students break them, each the proposed model alone (no baseline trains beside it).
RAISES = '''
def __init__(self):
    super().__init__()
    self.conv = nn.Conv2d(3, 16, 3)
    raise ValueError("this model is not finished yet")

def forward(self, x):
    return self.conv(x)
'''
SHAPE_ERROR = '''
def __init__(self):
    super().__init__()
    self.conv = nn.Conv2d(3, 16, 3, padding=1)
    self.fc = nn.Linear(16 * 8 * 8, 10)  # the pooled map is 16 x 16, not 8 x 8

def forward(self, x):
    return self.fc(F.max_pool2d(F.relu(self.conv(x)), 2).flatten(1))
'''
OVER_LIMITS = '''
def __init__(self):
    super().__init__()
    self.conv = nn.Conv2d(3, 3, 3, padding=1)
    self.hidden = nn.Linear(3 * 32 * 32, 70_000)  # 215 million parameters: 860 MB, more than the container has
    self.out = nn.Linear(70_000, 10)

def forward(self, x):
    return self.out(F.relu(self.hidden(self.conv(x).flatten(1))))
'''
ALONE = {"raises": (RAISES,), "shape-error": (SHAPE_ERROR,), "over-limits": (OVER_LIMITS,),
         "label-thief": (attacks.THIEF, "SIZES = (400, 500)")}
"""Submission -> the proposed model's body and the constants it needs (SIZES: the small rubric's validation and
the synthetic test set's sizes, which the thief looks for)."""


# ---- the daemon, the images, the runs -----------------------------------------------------------------

def docker(*args: str, timeout: float = HANG, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert not check or done.returncode == 0, f"docker {args[0]} failed: {done.stderr.strip()[-3000:]}"
    return done


def missing() -> str:
    """Why this machine cannot run the test; '' when it can."""
    if os.geteuid() != 0:
        return "debootstrap and the Docker daemon need root"
    for command in ("docker", "debootstrap"):
        if not shutil.which(command):
            return f"no {command} here (.ci/run installs docker.io and debootstrap)"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=60)
    if info.returncode != 0:
        said = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker daemon answers ({said}); .ci/run starts one"
    return ""


def has_image(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def host_configuration() -> tuple[list[str], list[str]]:
    """How this machine's apt and pip reach their packages, for setup.sh in a container: (`docker create`
    options that bind it read-only at the same paths, NAME=VALUE variables). apt: /etc/apt. pip: its
    configuration files, the PIP_* and proxy variables, and every local file or folder they name."""
    variables = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k.lower() in PROXIES}
    files = [f for f in (*PIP_CONFIG, os.environ.get("PIP_CONFIG_FILE", "")) if f and Path(f).is_file()]
    text = " ".join([*variables.values(), *(Path(f).read_text() for f in files)])
    named = {Path(p) for p in re.findall(r"(?:file://)?(/[^\s'\",;]+)", text)}
    named = {p.parent if p.name == "simple" else p for p in named  # a local index's pages link to ../../files
             if p.exists() and not str(p).startswith(MADE_THERE)}
    paths = [Path("/etc/apt"), *map(Path, files), *named] + ([LOCAL_CAS] if LOCAL_CAS.is_dir() else [])
    paths = [p for p in dict.fromkeys(paths) if not any(q in p.parents for q in paths)]
    return [o for p in paths for o in ("-v", f"{p}:{p}:ro")], [f"{k}={v}" for k, v in variables.items()]


@dataclass(frozen=True)
class Graded:
    """One run of run_autograder in a fresh container."""

    results: dict
    seconds: float
    log: str
    """The container's stdout and stderr (the instructor's)."""
    out_of_memory: bool
    """The kernel killed a process of the container for its memory: the grader did not keep within it."""

    def contained(self) -> dict:
        """results.json, where the grader kept within the container's memory."""
        assert not self.out_of_memory, f"the kernel killed a process for the container's memory:\n{self.log[-3000:]}"
        return self.results

    def checks(self) -> dict[str, dict]:
        return {t["extra_data"]["check"]: t for t in self.contained()["tests"]}


def run_autograder(image: str, submission: Path, *options: str) -> Graded:
    """/autograder/run_autograder on the files of `submission` (copied to /autograder/submission), in a fresh
    container started with Gradescope's defaults and `options`."""
    name = f"cnn-grader-test-{submission.name}-{os.getpid()}"
    docker("create", "--name", name, *GRADESCOPE, *options, image, "/autograder/run_autograder")
    try:
        docker("cp", f"{submission}/.", f"{name}:/autograder/submission")
        started = time.monotonic()
        done = docker("start", "--attach", name, check=False)
        seconds = time.monotonic() - started
        log = done.stdout + done.stderr
        assert done.returncode == 0, f"run_autograder exited {done.returncode}:\n{log[-4000:]}"
        results = submission.with_name(f"{submission.name}.results.json")
        docker("cp", f"{name}:/autograder/results/results.json", str(results))
        killed = docker("inspect", "--format", "{{.State.OOMKilled}}", name).stdout.strip() == "true"
    finally:
        docker("rm", "--force", name, check=False)
    return Graded(valid(json.loads(results.read_text())), seconds, log, killed)


def hand_ins(root: Path) -> dict[str, Path]:
    """Each submission's folder, as a student hands it in."""
    folders = {name: root / name for name in ("complete", *ALONE, "fork-bomb", "no-notebook", "two-notebooks")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    shutil.copy(SUBMISSIONS / "complete.ipynb", folders["complete"])
    for name, (body, *constants) in ALONE.items():
        imports, _lenet, *cells = model_cells(body, "ProposedModel", *constants)
        write(folders[name] / "hw3.ipynb", imports, *cells)
    write(folders["fork-bomb"] / "hw3.ipynb", *model_cells(attacks.FORK_BOMB, "ProposedBomb"))
    (folders["no-notebook"] / "answers.txt").write_text("my answers")
    for copy in ("hw3.ipynb", "old/hw3-draft.ipynb"):
        (folders["two-notebooks"] / copy).parent.mkdir(exist_ok=True)
        shutil.copy(SUBMISSIONS / "complete.ipynb", folders["two-notebooks"] / copy)
    return folders


def scored(test: dict) -> bool:
    return "status" in test and "informational" not in test["tags"] and "not scored" not in test["output"]


# ---- fixtures --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def say(request):
    """A line on the terminal, captured or not (the wall times)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    return lambda text: reporter.write_line(f"docker: {text}") if reporter else print(f"docker: {text}")


@pytest.fixture(scope="module")
def daemon():
    reason = missing()
    if reason and os.environ.get("GRADER_CI"):
        pytest.fail(f"the Docker test cannot run: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module", autouse=True)
def whole_test(daemon, say):
    started = time.monotonic()
    yield
    say(f"the whole Docker test: {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="module")
def base_image(daemon, tmp_path_factory, say) -> str:
    """Debian bookworm from Debian's own packages, as an image; built once per daemon."""
    if has_image(BASE):
        return BASE
    started = time.monotonic()
    root = tmp_path_factory.mktemp("debootstrap") / "rootfs"
    made = subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR],
                          capture_output=True, text=True, timeout=HANG)
    assert made.returncode == 0, (made.stdout + made.stderr)[-4000:]
    imported = subprocess.run(["bash", "-o", "pipefail", "-c", 'tar -C "$1" -c . | docker import - "$2"', "import",
                               str(root), BASE], capture_output=True, text=True, timeout=HANG)
    assert imported.returncode == 0, imported.stderr
    shutil.rmtree(root)
    say(f"the base image (debootstrap, docker import): {time.monotonic() - started:.0f} s")
    return BASE


@dataclass(frozen=True)
class Autograder:
    image: str
    setup_log: str


@pytest.fixture(scope="module")
def autograder(base_image, tmp_path_factory, synthetic_data, small_rubric, say) -> Autograder:
    """The zip unpacked as Gradescope unpacks it, setup.sh run in a container of the base image with the host's
    network and package configuration, the container committed; kept by the zip's hash."""
    work = tmp_path_factory.mktemp("docker-autograder")
    zipped = build(work, "--budget", "quick", "--rubric", str(small_rubric), "--data", str(synthetic_data),
                   "--memory", str(MEMORY_MB))
    image = f"{AUTOGRADER}:{hashlib.sha256(zipped.read_bytes()).hexdigest()[:16]}"
    if not has_image(image):
        started = time.monotonic()
        root = unpack(zipped, work / "autograder")
        mounts, variables = host_configuration()
        name = f"cnn-grader-test-setup-{os.getpid()}"
        # PyTorch's own index is out of this machine's reach: its pip configuration alone (GRADER_TORCH_INDEX="").
        docker("create", "--name", name, "--network", "host", *mounts, "-w", "/autograder/source", base_image,
               "env", *variables, "GRADER_TORCH_INDEX=", "bash", "-c", SETUP)
        try:
            docker("cp", f"{root}/.", f"{name}:/autograder")
            done = docker("start", "--attach", name, check=False)
            assert done.returncode == 0, f"setup.sh failed:\n{(done.stdout + done.stderr)[-6000:]}"
            docker("commit", "--change", "WORKDIR /autograder", "--change", 'CMD ["/autograder/run_autograder"]',
                   name, image)
        finally:
            docker("rm", "--force", name, check=False)
        say(f"setup.sh and the autograder's image: {time.monotonic() - started:.0f} s")
    return Autograder(image, docker("run", "--rm", "--network", "none", image, "cat", "/autograder/setup.log").stdout)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> dict[str, Path]:
    return hand_ins(tmp_path_factory.mktemp("hand-ins"))


@pytest.fixture(scope="module")
def complete(autograder, submissions, say) -> Graded:
    """The complete example, alone on the machine: its wall time is Gradescope's for one submission."""
    graded = run_autograder(autograder.image, submissions["complete"])
    say(f"one run_autograder of the complete example (--cpus 0.5 --memory {MEMORY_MB}m): {graded.seconds:.0f} s")
    return graded


@pytest.fixture(scope="module")
def graded(autograder, submissions, complete) -> dict[str, Graded]:
    """Every other submission, three containers at a time (1.5 CPUs), and the fork bomb last and alone: the
    process limit counts the uid's processes on the whole machine, other containers' included."""
    names = [name for name in submissions if name not in ("complete", "fork-bomb")]
    with ThreadPoolExecutor(3) as pool:
        runs = dict(zip(names, pool.map(lambda name: run_autograder(autograder.image, submissions[name]), names)))
    # a guard for this machine only, should the sandbox fail to hold the bomb: far above the sandbox's own limit
    runs["fork-bomb"] = run_autograder(autograder.image, submissions["fork-bomb"], "--pids-limit", "2048")
    return {"complete": complete, **runs}


# ---- the tests -------------------------------------------------------------------------------------------

def test_setup_installs_torch_and_finds_the_sandbox_for_containers(autograder):
    imported = docker("run", "--rm", *GRADESCOPE, autograder.image, "/opt/cnn-grader-venv/bin/python", "-c",
                      "import torch, torchvision; print(torch.__version__, torchvision.__version__)", check=False)
    assert imported.returncode == 0, imported.stderr[-3000:]
    kept = re.findall(r"reference (\w+): test accuracy [\d.]+% \(trained in \d+ s, quick budget, kept in the image\)",
                      autograder.setup_log)
    assert len(kept) == 2, autograder.setup_log[-3000:]  # both references, trained within their limit
    assert "sandbox: landlock" in autograder.setup_log, autograder.setup_log[-3000:]


@pytest.mark.parametrize("command, refusal", [
    (("bwrap", "--unshare-all", "--ro-bind", "/", "/", "true"), "namespace"),
    (("unshare", "--net", "true"), "Operation not permitted"),
])
def test_no_namespace_can_be_made_in_the_container(autograder, command, refusal):
    """The point of the test: here neither bubblewrap nor the namespace kind can work (they do on this host)."""
    done = docker("run", "--rm", *GRADESCOPE, autograder.image, *command, check=False)
    assert done.returncode != 0 and refusal in done.stderr, (done.returncode, done.stderr)


def test_the_complete_example_is_retrained(complete):
    results, checks = complete.results, complete.checks()
    assert results["score"] == sum(t.get("score", 0) for t in results["tests"])
    assert checks["two_cnn_classes"]["status"] == "passed"
    unscored = [c for c in RUN_CHECKS if not scored(checks[c])]
    assert not unscored, {c: checks[c]["output"] for c in unscored}
    assert checks["models_run"]["status"] == "passed" and checks["models_run"]["score"] == 10
    assert results["extra_data"]["isolation"] == "landlock"  # what ran the models, recorded
    (board,) = results["leaderboard"]
    assert 0 <= board["value"] <= 100


@pytest.mark.parametrize("name, words", [
    ("raises", "this model is not finished yet"),
    ("shape-error", "receives 4096 features per image"),
    ("over-limits", "over the limit"),
])
def test_a_broken_model_scores_nothing_on_models_run(graded, name, words):
    run = graded[name].checks()["models_run"]
    assert (run.get("status"), run.get("score")) == ("failed", 0), run["output"]
    assert words in run["output"]
    assert "leaderboard" not in graded[name].results


def test_the_label_thief_is_retrained_at_chance(graded):
    thief, checks = graded["label-thief"], graded["label-thief"].checks()
    assert checks["models_run"].get("status") == "passed", checks["models_run"]["output"]
    (board,) = thief.results["leaderboard"]  # retrained: its test accuracy is the grader's
    assert board["value"] < 35  # ten classes: chance is 10%; the stolen labels would give 100
    assert checks["proposed_vs_references"].get("score", 0) == 0


def test_a_fork_bomb_fails_alone_and_the_baseline_still_trains(graded):
    checks = graded["fork-bomb"].checks()
    run = checks["models_run"]
    assert (run.get("status"), run.get("score")) == ("failed", 5), run["output"]  # LeNet5 runs, the bomb does not
    assert "ProposedBomb" in run["output"]
    assert checks["baseline_works"].get("status") == "passed", checks["baseline_works"]["output"]


@pytest.mark.parametrize("name, words", [("no-notebook", "No notebook was found"), ("two-notebooks", "2 notebooks")])
def test_no_notebook_or_two_score_zero_and_say_what_to_hand_in(graded, name, words):
    results = graded[name].contained()
    assert results["score"] == 0 and words in results["output"] and "Hand in exactly one Jupyter notebook" in results[
        "output"]
    assert all(t.get("status") == "failed" and t.get("score") == 0 for t in results["tests"])
