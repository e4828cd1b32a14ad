"""The child-process runner: protocol validation, limits, deadlines, capped output, cleanup."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from dataclasses import dataclass

from grader.errors import SandboxError
from grader.sandbox.files import ArraySpec
from grader.sandbox.detect import detect_isolation
from grader.sandbox.isolation import Isolation, require
from grader.sandbox.process import Limits, Phase, run_in_sandbox

ROOT = os.geteuid() == 0


def run(tmp_path, isolation, body: str, *, phases=(Phase("main", 20),), **kwargs):
    script = tmp_path / "script.py"
    script.write_text("import json, os, sys\n" + textwrap.dedent(body))
    return run_in_sandbox(script, phases=list(phases), isolation=isolation, **kwargs)


@dataclass(frozen=True)
class Seen:
    uid: int
    files: tuple[str, ...]
    env: tuple[str, ...]
    echo: str


@dataclass(frozen=True)
class Count:
    n: int


def test_result_is_read_as_a_record_and_child_runs_unprivileged_in_a_fresh_folder(tmp_path, isolation, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "s3cret")
    r = run(tmp_path, isolation, """
        req = json.load(open(os.path.join(sys.argv[1], "request.json")))
        json.dump({"uid": os.getuid(), "files": sorted(os.listdir(".")), "env": sorted(os.environ),
                   "echo": req["x"], "extra": 1}, open("out/result.json", "w"))
    """, request=json.dumps({"x": "hello"}), report=Seen)
    assert r.status == "ok", r.detail
    assert isinstance(r.payload, Seen) and r.payload.echo == "hello"  # "extra", undeclared, was dropped
    assert r.payload.files == ("out", "tmp")
    assert "GRADER_SECRET_TOKEN" not in r.payload.env
    if ROOT:
        assert r.payload.uid == 65534
    assert r.isolation.kind == isolation.kind


def test_wrong_types_in_the_result_are_rejected(tmp_path, isolation):
    r = run(tmp_path, isolation, 'json.dump({"n": "12"}, open("out/result.json", "w"))', report=Count)
    assert r.status == "invalid"
    assert "result.n = '12' in the child's report; expected a whole number" in r.detail


def test_a_deeply_nested_result_is_rejected_not_a_crash(tmp_path, isolation):
    r = run(tmp_path, isolation, 'open("out/result.json", "w").write("[" * 100_000 + "]" * 100_000)', report=Count)
    assert r.status == "invalid" and "nests too deeply" in r.detail


def test_a_result_that_links_elsewhere_is_not_followed(tmp_path, isolation):
    r = run(tmp_path, isolation, 'os.symlink("/etc/passwd", "out/result.json")', report=Count)
    assert r.status == "invalid"
    assert "cannot be opened safely" in r.detail


def test_arrays_are_loaded_without_pickle_and_shape_checked(tmp_path, isolation):
    body = """
        import numpy as np
        np.save("out/good.npy", np.zeros((4, 10), np.float32))
        np.save("out/obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
        json.dump({}, open("out/result.json", "w"))
    """
    ok = run(tmp_path, isolation, body, arrays={"good": ArraySpec("f", (None, 10))})
    assert ok.status == "ok" and ok.arrays["good"].shape == (4, 10)
    bad = run(tmp_path, isolation, body, arrays={"obj": ArraySpec("f")})
    assert bad.status == "invalid" and "obj.npy" in bad.detail
    wrong = run(tmp_path, isolation, body, arrays={"good": ArraySpec("f", (None, 3))})
    assert wrong.status == "invalid" and "expected (N, 3)" in wrong.detail


def test_each_phase_has_its_own_deadline(tmp_path, isolation):
    r = run(tmp_path, isolation, """
        import time
        json.dump({"phase": "slow"}, open("out/progress.json", "w"))
        time.sleep(60)
    """, phases=(Phase("start", 30), Phase("slow", 1, "the slow step")))
    assert r.status == "timeout" and r.phase == "slow"
    assert "the slow step took longer than 1 s" in r.detail


def test_exit_codes_and_signals_are_told_apart(tmp_path, isolation):
    exited = run(tmp_path, isolation, "sys.exit(3)")
    assert exited.status == "exited" and exited.exit_code == 3
    crashed = run(tmp_path, isolation, "import signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert crashed.status == "crashed" and "SIGSEGV" in crashed.detail


def test_output_keeps_head_and_tail(tmp_path, isolation):
    r = run(tmp_path, isolation, """
        print("FIRST")
        for i in range(20000):
            print("x" * 50)
        print("LAST")
        json.dump({}, open("out/result.json", "w"))
    """, limits=Limits(keep_bytes=1024))
    assert r.status == "ok"
    assert r.output_bytes > 1_000_000
    assert r.stdout.startswith("FIRST") and r.stdout.rstrip().endswith("LAST")
    assert "bytes omitted" in r.stdout and len(r.stdout) < 3000


def test_no_process_survives_the_child(tmp_path, isolation):
    # A daemonized grandchild in its own session: killpg alone would miss it.
    r = run(tmp_path, isolation, """
        import subprocess
        subprocess.Popen(["sleep", "987"], start_new_session=True)
        json.dump({}, open("out/result.json", "w"))
    """)
    assert r.status == "ok"
    assert not _processes_with_args("sleep\x00987")


def _processes_with_args(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "cmdline").read_text():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def test_require_isolation_refuses_without_a_network_namespace():
    with pytest.raises(SandboxError, match="--require-isolation"):
        require(Isolation("none", os.geteuid(), sys.executable))


@pytest.mark.skipif(not ROOT, reason="uid 65534 is only used when the grader runs as root")
def test_an_interpreter_uid_65534_cannot_run_is_reported_with_what_to_do(tmp_path):
    import venv

    private = tmp_path / "private"
    venv.EnvBuilder(symlinks=True, with_pip=False).create(private)
    os.chmod(private, 0o700)  # like a pyenv installation in a home folder only its owner may enter
    with pytest.raises(SandboxError) as e:
        detect_isolation(str(private / "bin" / "python"), prefer="namespace")
    assert "uid 65534 cannot run" in str(e.value)
    assert "-m venv" in str(e.value)


@pytest.mark.skipif(not ROOT, reason="uids are only dropped when the grader runs as root")
def test_concurrent_children_run_as_different_uids(tmp_path, isolation):
    """RLIMIT_NPROC counts per uid: parallel children must not share one, or one fork bomb starves both."""
    from concurrent.futures import ThreadPoolExecutor

    body = """
        import time
        time.sleep(2)
        json.dump({"uid": os.getuid()}, open("out/result.json", "w"))
    """
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda f: run(f, isolation, body), folders))
    assert all(r.status == "ok" for r in results), [r.detail for r in results]
    uids = {r.payload["uid"] for r in results}  # no record type: the JSON as it is
    assert len(uids) == 2 and 65534 in uids and all(u != 0 for u in uids)


def test_an_interrupted_grader_leaves_no_child_behind(tmp_path, isolation, monkeypatch):
    """Ctrl-C while a child runs: the child is killed before the interrupt propagates."""
    import grader.sandbox.process as sandbox

    calls = {"n": 0}
    real_sleep = sandbox.time.sleep

    def interrupt_soon(seconds):
        calls["n"] += 1
        if calls["n"] == 40:  # about two seconds into the run
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(sandbox.time, "sleep", interrupt_soon)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, isolation, """
            import subprocess
            subprocess.run(["sleep", "654"])
        """)
    monkeypatch.undo()
    assert not _processes_with_args("sleep\x00654")
