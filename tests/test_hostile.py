"""Hostile submissions: each must end in a clear failure for that model while the grader goes on.

Every case is a notebook whose second model class misbehaves in its constructor. The message
must name what the code tried. Run `pytest -s tests/test_hostile.py` to see the messages.
Listeners are opened on 127.0.0.1 only; nothing here contacts any other address.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from grader.rubric import load_rubric
from grader.sandbox.extract import extract_models
from grader.sandbox.model_child import Timeouts
from grader.sandbox.models_run import ModelCheck, check_model, run_models
from grader.sandbox.process import Limits
from nbfactory import model_notebook

pytestmark = pytest.mark.slow
MAX_PARAMS = load_rubric().assignment.max_params
FAST = Timeouts(import_s=120, instantiate_s=5, forward_s=10)
SMALL = Limits(memory_bytes=1536 * 2**20, processes=64, output_bytes=16 * 2**20)


def hostile(isolation, constructor: str, *, extra: str = "") -> ModelCheck:
    body = f"""
def __init__(self):
    super().__init__()
{_indent(constructor)}
    self.fc = nn.Linear(3 * 32 * 32, 10)

def forward(self, x):
    return self.fc(torch.flatten(x, 1))
"""
    nb = model_notebook(body, "Hostile", extra) if extra else model_notebook(body, "Hostile")
    run = check_model(extract_models(nb, ["Hostile"]), "Hostile", MAX_PARAMS, isolation, timeouts=FAST, limits=SMALL)
    print(f"\n[{isolation.kind}] {run.kind}: {run.message}")
    assert not run.passed
    assert run.child is not None and run.child.isolation.kind == isolation.kind
    return run


def _indent(code: str) -> str:
    return "\n".join("    " + line for line in code.strip().splitlines())


def test_network_connection_is_impossible(each_isolation):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        run = hostile(each_isolation, f"""
import socket
socket.create_connection(("127.0.0.1", {port}), timeout=5).sendall(b"stolen")
""")
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
    assert run.kind == "network"
    assert f"tried to connect to 127.0.0.1:{port}" in run.message


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_files_outside_the_sandbox_cannot_be_read(each_isolation, tmp_path, mode):
    outside = tmp_path / "shared"
    outside.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(outside, 0o755)
    secret = outside / "test_labels.txt"
    secret.write_text("SECRET-LABELS")
    os.chmod(secret, mode)
    run = hostile(each_isolation, f"self.labels = open({str(secret)!r}).read()\nprint(self.labels)")
    assert run.kind == "file"
    assert f"tried to open {secret}" in run.message
    assert "SECRET-LABELS" not in run.child.stdout


def test_writes_outside_its_folder_fail(each_isolation, tmp_path):
    target = tmp_path / "grades"
    target.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(target, 0o755)
    forged = target / "gradebook.csv"
    run = hostile(each_isolation, f"open({str(forged)!r}, 'w').write('student,100')")
    assert run.kind == "file"
    assert f"tried to open {forged}" in run.message
    assert not forged.exists()


def test_process_spawning_is_stopped_by_the_limit(each_isolation):
    run = hostile(each_isolation, """
import subprocess
self.children = [subprocess.Popen(["sleep", "654"]) for _ in range(200)]
""")
    assert run.kind == "processes"
    assert "tried to start more processes than the sandbox allows" in run.message
    assert not _sleepers("654")


def test_endless_allocation_is_stopped(each_isolation):
    run = hostile(each_isolation, """
self.hoard = []
while True:
    self.hoard.append(b"x" * 2**26)  # touched memory: counts in RSS
""")
    assert run.kind == "killed_memory"
    assert "used more than 1536 MB of memory during the constructor" in run.message


def test_endless_loop_times_out(each_isolation):
    run = hostile(each_isolation, "while True:\n    pass")
    assert run.kind == "timeout"
    assert "timed out: the constructor took longer than 5 s" in run.message


def test_os_exit_in_the_constructor_is_a_failure(each_isolation):
    run = hostile(each_isolation, "import os\nos._exit(0)")
    assert run.kind == "exited"
    assert "exited with code 0 during the constructor before reporting a result" in run.message


def test_sys_exit_in_the_constructor_is_a_failure(each_isolation):
    run = hostile(each_isolation, "import sys\nsys.exit(0)")
    assert run.kind == "exit"
    assert "called sys.exit(0) in the constructor" in run.message


def test_printing_100_mb_is_capped(each_isolation):
    run = hostile(each_isolation, "for _ in range(100):\n    print('x' * 2**20)")
    assert run.kind == "killed_output"
    assert "printed more than 16 MB during the constructor" in run.message
    assert len(run.child.stdout) < 3 * SMALL.keep_bytes


def test_ignoring_sigterm_gets_sigkill(each_isolation):
    run = hostile(each_isolation, """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    time.sleep(0.1)
""")
    assert run.kind == "timeout"
    assert run.child.ignored_sigterm
    assert "ignored SIGTERM and was killed with SIGKILL" in run.message


def test_the_grader_goes_on_after_a_hostile_model(isolation):
    body = """
def __init__(self):
    super().__init__()
    import os
    os._exit(0)
"""
    result = run_models(model_notebook(body, "Hostile"), ["Hostile", "LeNet5"], max_params=MAX_PARAMS,
                        isolation=isolation, timeouts=FAST, limits=SMALL)
    assert not result.models["Hostile"].passed
    assert result.models["LeNet5"].passed
    assert result.isolation.kind == isolation.kind


def _sleepers(arg: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == f"sleep\0{arg}\0".encode():
                found.append(int(entry.name))
        except OSError:
            pass
    return found
