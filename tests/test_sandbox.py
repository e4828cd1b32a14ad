"""The child-process runner: protocol validation, limits, deadlines, capped output, cleanup."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dataclasses import dataclass

import attacks
from grader.errors import SandboxError
from grader.sandbox import confine
from grader.sandbox.files import ArraySpec
from grader.sandbox.detect import detect_isolation
from grader.sandbox.isolation import Isolation, _slot_uid, require
from grader.sandbox.process import Limits, Phase, run_in_sandbox
from grader.sandbox.proctree import MAX_DEPTH, folder_use
from grader.sandbox.state import remove_tree

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
    if ROOT:  # the first slot: nobody, or the first of the landlock kind's drawn uids
        assert r.payload.uid == r.isolation.uid == (_slot_uid(isolation, 0))
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
    assert len(uids) == 2 and _slot_uid(isolation, 0) in uids and all(u != 0 for u in uids)


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


# ---- the seccomp filter (grader/sandbox/confine.py) ---------------------------------------------

COLUMN = list(confine.AUDIT_ARCH).index(os.uname().machine) if os.uname().machine in confine.AUDIT_ARCH else 0


def _calls(tmp_path, *launcher: str) -> dict:
    """What keyctl, shmget, unshare, clone3 and an AF_INET socket answer in this process's user,
    run through `launcher` (confine.py and its options) or, with none, as they are."""
    n = {name: numbers[COLUMN] for name, numbers in {**confine.CHANNELS, **confine.SYSV_IPC, **confine.NEVER_NEEDED}.items()}
    calls = {"keyctl": [n["keyctl"], 0, -4, 0],  # KEYCTL_GET_KEYRING_ID of the user keyring: harmless
             "shmget": [n["shmget"], 0, 0, 0],  # IPC_PRIVATE of size 0: EINVAL, never a segment
             "unshare": [n["unshare"], 0], "clone3": [confine.CLONE3[COLUMN], 0, 0],
             "socket_inet": [confine.SOCKET[COLUMN], 2, 1, 0]}
    script = tmp_path / "calls.py"
    script.write_text(f"CALLS = {calls!r}\nCLONE = {confine.CLONE[COLUMN]}\n" + attacks.SYSCALLS)
    subprocess.run([*launcher, sys.executable, "-I", str(script)], cwd=tmp_path, check=True, timeout=60)
    return json.loads((tmp_path / "out" / "result.json").read_text())


@pytest.mark.skipif(os.uname().machine not in confine.AUDIT_ARCH, reason="the filter knows x86_64 and aarch64")
def test_the_filter_refuses_channels_where_nothing_else_walls_them_off(tmp_path):
    """The kind `none` has no namespaces: the filter alone refuses the keyring and SysV IPC there."""
    (tmp_path / "out").mkdir()
    assert _calls(tmp_path)["socket_inet"] == "ok"  # the control: unfiltered, the same call goes through
    launcher = [sys.executable, "-I", "-S", "-B", str(confine.__file__)]
    filtered = _calls(tmp_path, *launcher, "--")
    assert filtered == {"keyctl": "EPERM", "shmget": "EPERM", "unshare": "EPERM", "clone3": "ENOSYS",
                        "socket_inet": "EAFNOSUPPORT", "seccomp": ["2"]}
    assert _calls(tmp_path, *launcher, "--ipc-namespace", "--")["shmget"] == "EINVAL"  # let through to the kernel


def test_a_filter_that_cannot_be_installed_runs_nothing(monkeypatch):
    def refused(ipc_namespace: bool, landlock=None, max_abi=None) -> None:
        raise OSError(errno.EINVAL, "prctl(PR_SET_SECCOMP)")

    monkeypatch.setattr(confine, "confine", refused)
    monkeypatch.setattr(confine.os, "execvp", lambda *args: pytest.fail("the command ran unfiltered"))
    with pytest.raises(SystemExit, match="walls could not be raised .* student code is not run without them"):
        confine.main(["--", "python"])


def test_a_sandbox_whose_filter_does_not_hold_is_refused(tmp_path, monkeypatch):
    import grader.sandbox.isolation as isolation

    fake = tmp_path / "confine.py"  # runs the command without any filter
    fake.write_text("import os, sys\ncommand = sys.argv[sys.argv.index('--') + 1:]\nos.execvp(command[0], command)\n")
    monkeypatch.setattr(isolation, "CONFINE", fake)
    with pytest.raises(SandboxError, match="the seccomp filter is not in force inside"):
        detect_isolation(prefer="bubblewrap" if shutil.which("bwrap") else "none")


# ---- folders a child leaves: counted and removed with bounded descriptors ----------------------

def _nest(root: Path, levels: int, name: str = "d", payload: bytes = b"") -> None:
    """`levels` folders nested in `root`, made relative to the last (no path grows), a file in each."""
    fd = os.open(root, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir(name, dir_fd=fd)
        below = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as f:
            f.write(payload)
    os.close(fd)


def test_a_deep_tree_is_counted_past_path_max_and_refused_past_the_depth_bound(tmp_path):
    (tmp_path / "ok").mkdir()
    _nest(tmp_path / "ok", MAX_DEPTH, "d" * 200, b"x" * 8192)
    use = folder_use(tmp_path / "ok", 10_000)
    assert use.over == "" and use.bytes >= MAX_DEPTH * 8192  # paths of 12,800 bytes: all counted
    (tmp_path / "deep").mkdir()
    _nest(tmp_path / "deep", MAX_DEPTH + 1)
    assert folder_use(tmp_path / "deep", 10_000).over == "depth"
    assert folder_use(tmp_path / "deep", 100).over == "entries"


def test_thousands_of_nested_folders_are_removed_with_few_descriptors(tmp_path):
    (tmp_path / "tree").mkdir()
    _nest(tmp_path / "tree", 5_000)
    os.chmod(tmp_path / "tree" / "d", 0o500)  # a folder its child made unwritable
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))
    try:
        descriptors = len(os.listdir("/proc/self/fd"))
        remove_tree(tmp_path / "tree")
        assert len(os.listdir("/proc/self/fd")) == descriptors
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not (tmp_path / "tree").exists()


# ---- the landlock kind's walls (confine.py --landlock) --------------------------------------------

def _landlock_abi() -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return confine.landlock_abi(libc)


@pytest.mark.skipif(_landlock_abi() == 0, reason="this kernel has no Landlock")
@pytest.mark.parametrize("abi", [None, 4], ids=["this kernel's ABI", "ABI 4, no signal scoping (Linux 6.7-6.11)"])
def test_landlock_walls_hold_against_the_graders_own_uid(tmp_path, abi):
    """A grader that is not root runs the landlock kind's child as its own uid: the walls alone must keep
    the grader's files, its /proc (environment, memory) and its processes out of reach. Run here as
    the test's own uid (root, which no file mode stops), with this kernel's Landlock and as an older
    kernel's, whose signals the filter keeps to the child's own pid."""
    from grader.sandbox.detect import _python_paths
    from grader.sandbox.isolation import Layout, _landlock_rules

    secret, in_dir, work, hit = tmp_path / "labels.npy", tmp_path / "in", tmp_path / "work", tmp_path / "hit"
    secret.write_text("the test labels")
    in_dir.mkdir()
    (work / "out").mkdir(parents=True)
    grader = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                               "signal.signal(signal.SIGURG, lambda *a: open(sys.argv[1], 'w').write('hit'))\n"
                               "print('ready', flush=True); time.sleep(60)", str(hit)], stdout=subprocess.PIPE)
    try:
        assert grader.stdout.readline() == b"ready\n"
        script = in_dir / "reach.py"
        script.write_text(f"GRADER = {grader.pid}\nSECRET = {str(secret)!r}\n" + attacks.REACH_THE_GRADER)
        me = Isolation("landlock", os.getuid(), sys.executable, _python_paths(sys.executable))
        rules = _landlock_rules(me, Layout(in_dir, work)) + (["--abi", str(abi)] if abi else [])
        subprocess.run([sys.executable, "-I", "-S", "-B", confine.__file__, *rules, "--", sys.executable, "-I", str(script)],
                       cwd=work, check=True, timeout=60)
        time.sleep(0.5)  # a signal that got through has been handled by now
        assert grader.poll() is None and not hit.exists()
    finally:
        grader.kill()
    seen = json.loads((work / "out" / "result.json").read_text())
    assert seen == {"secret": "EACCES", "grader_environ": "EACCES", "grader_mem": "EACCES", "list_tmp": "EACCES",
                    "signal_grader": "EPERM", "signal_everyone": "ok" if abi is None else "EPERM", "signal_itself": "ok",
                    "unix_socket": "EAFNOSUPPORT", "socket_pair": "EAFNOSUPPORT", "tcp_socket": "EAFNOSUPPORT",
                    "write_own_folder": "ok"}
    assert (work / "out" / "mine.txt").read_text() == "mine"


@pytest.mark.skipif(_landlock_abi() == 0, reason="this kernel has no Landlock")
def test_where_namespaces_are_denied_the_landlock_kind_is_chosen_and_says_why(monkeypatch, tmp_path):
    """A container's default seccomp profile denies every namespace: bwrap and unshare fail there.
    The probe then settles on landlock, and the run is walled: the child cannot list /etc."""
    import grader.sandbox.detect as detect

    real_which = shutil.which
    monkeypatch.setattr(detect.shutil, "which", lambda name: None if name in ("bwrap", "unshare") else real_which(name))
    monkeypatch.delenv("GRADER_ISOLATION", raising=False)
    iso = detect_isolation()
    assert iso.kind == "landlock" and "bwrap is not installed" in iso.note
    if ROOT:
        assert "unshare is not installed" in iso.note and iso.uid == 65534
    r = run(tmp_path, iso, """
        try:
            listed = os.listdir("/etc")
        except PermissionError:
            listed = None
        json.dump({"n": -1 if listed is None else len(listed)}, open("out/result.json", "w"))
    """, report=Count)
    assert r.status == "ok" and r.payload.n == -1 and r.isolation.kind == "landlock"


@dataclass(frozen=True)
class Capability:
    cpu: str


def test_torch_sees_the_cpus_features_inside_every_kind(tmp_path, each_isolation):
    """torch picks its CPU kernels from what cpuinfo reads in /proc and /sys: a child that cannot
    read them falls back to the slowest kernels (DEFAULT instead of AVX2/AVX512), and trains slower."""
    import torch

    r = run(tmp_path, each_isolation, """
        import torch
        json.dump({"cpu": torch.backends.cpu.get_cpu_capability()}, open("out/result.json", "w"))
    """, report=Capability, phases=(Phase("main", 60),))
    assert r.status == "ok", r.detail + r.stderr
    assert r.payload.cpu == torch.backends.cpu.get_cpu_capability()
    assert "Error in cpuinfo" not in r.stderr


def test_landlock_children_take_uids_of_their_own_state_folder(tmp_path, monkeypatch):
    """Containers on one kernel share its uids: two graders (two state folders) must not hand out the
    same ones to the landlock kind, or one's fork bomb holds the other's process limit."""
    from grader.sandbox.isolation import SHARED_KERNEL_UIDS, exclusive_uid

    if not ROOT:
        pytest.skip("uids are handed out only when the grader runs as root")
    iso = Isolation("landlock", 65534, sys.executable)
    taken = []
    for name in ("one", "two", "one"):
        (tmp_path / name).mkdir(mode=0o700, exist_ok=True)
        monkeypatch.setenv("GRADER_STATE_DIR", str(tmp_path / name))
        with exclusive_uid(iso) as held:
            taken.append(held.uid)
    assert taken[0] == taken[2] != taken[1]  # one base per state folder, kept
    assert all(SHARED_KERNEL_UIDS[0] <= uid < SHARED_KERNEL_UIDS[1] for uid in taken)
    with exclusive_uid(Isolation("bubblewrap", 65534, sys.executable)) as held:
        assert held.uid == 65534  # the other kinds keep nobody and 65001-65063
