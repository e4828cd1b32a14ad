"""A GPU for a sandboxed child: which nodes and libraries it is shown, its GPU memory watched, a hung
child stopped. Runs on a CPU machine against a fake /dev and fake driver libraries, and a stub
reader of GPU memory; the tests marked `gpu` run the real thing where CUDA is present."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from grader.errors import SandboxError
from grader.sandbox import proctree
from grader.sandbox.gpu import GpuAccess, GpuProcess, child_gpu_use, gpu_access, pinned_gpus
from grader.sandbox.isolation import Isolation, Layout, command
from grader.sandbox.model_child import ChildRun
from grader.sandbox.process import Limits, Phase, _scrubbed_env, run_in_sandbox

UUIDS = [f"GPU-0000000{n}-aaaa-bbbb-cccc-dddddddddddd" for n in range(4)]
GB = 2**30


def fake_machine(root: Path, gpus: int = 4, optional: bool = True) -> Path:
    """/dev nodes, the driver's description of each GPU and its libraries, under `root`."""
    dev = root / "dev"
    dev.mkdir()
    names = ["nvidiactl", "nvidia-modeset", *(f"nvidia{n}" for n in range(gpus))]
    names += ["nvidia-uvm", "nvidia-uvm-tools"] if optional else []
    for name in names:
        (dev / name).touch()
    if optional:
        (dev / "nvidia-caps").mkdir()
    for n in range(gpus):
        info = root / f"proc/driver/nvidia/gpus/0000:{0x18 + n:02x}:00.0/information"
        info.parent.mkdir(parents=True)
        info.write_text(f"Model: \t\t NVIDIA H200\nGPU UUID: \t {UUIDS[n]}\nDevice Minor: \t {n}\n")
    libs = root / "usr/lib/x86_64-linux-gnu"
    libs.mkdir(parents=True)
    for name in ("libcuda.so.550.54", "libnvidia-ml.so.550.54", "libnvidia-ptxjitcompiler.so.550.54", "libGL.so.1"):
        (libs / name).write_bytes(b"\x7fELF")
    (libs / "libcuda.so.1").symlink_to("libcuda.so.550.54")
    (libs / "libcuda.so").symlink_to("libcuda.so.404.gone")  # a dangling link is not a library
    opt = root / "opt/nvidia/lib64"
    opt.mkdir(parents=True)
    (opt / "libnvidia-nvvm.so.4").write_bytes(b"\x7fELF")
    return root


DIRS = ("/usr/lib/x86_64-linux-gnu", "/opt/nvidia/lib64", "/usr/local/nvidia/lib64")


def test_a_child_pinned_to_gpu_1_of_4_gets_that_gpu_and_the_control_nodes(tmp_path):
    root = fake_machine(tmp_path)
    access = gpu_access(root, pinned_gpus(root, "1"), DIRS)
    assert access.devices == ("/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-caps",
                              "/dev/nvidia1")
    assert access.visible == UUIDS[1]  # inside, the one GPU it has, named so no index can miss it
    assert access.libraries == ("/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54",
                                "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.550.54",
                                "/usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so.550.54",
                                "/opt/nvidia/lib64/libnvidia-nvvm.so.4")
    assert access.library_path == "/usr/lib/x86_64-linux-gnu:/opt/nvidia/lib64"


def test_the_parents_cuda_visible_devices_says_which_gpus(tmp_path):
    root = fake_machine(tmp_path)
    assert pinned_gpus(root, None) == (0, 1, 2, 3)  # unset: every GPU
    assert pinned_gpus(root, "2,0") == (2, 0)
    assert pinned_gpus(root, UUIDS[3]) == (3,)
    assert pinned_gpus(root, "") == () and pinned_gpus(root, "-1") == ()  # CUDA's ways of saying no GPU
    with pytest.raises(SandboxError, match="MIG instances"):
        pinned_gpus(root, "MIG-1234")


def test_without_cuda_nothing_of_the_gpu_is_shown(tmp_path):
    root = fake_machine(tmp_path)
    assert gpu_access(root, (), DIRS) == GpuAccess()
    bwrap = " ".join(command(_iso("bubblewrap"), ["python"], _layout(tmp_path), {}))
    assert "nvidia" not in bwrap and "/sys" not in bwrap
    namespace = _script(command(_iso("namespace"), ["python"], _layout(tmp_path), {}))
    assert "nvidia" not in namespace and "mount -t tmpfs -o mode=755,size=1m tmpfs /sys" in namespace  # hidden


def test_missing_optional_nodes_are_skipped_and_a_missing_gpu_is_an_error(tmp_path):
    root = fake_machine(tmp_path, gpus=1, optional=False)
    assert gpu_access(root, (0,), DIRS).devices == ("/dev/nvidiactl", "/dev/nvidia0")
    with pytest.raises(SandboxError, match="/dev/nvidia3 is missing"):
        gpu_access(root, (3,), DIRS)


def test_both_kinds_bind_the_pinned_nodes_and_the_libraries_read_only(tmp_path):
    access = GpuAccess(("/dev/nvidiactl", "/dev/nvidia1"), ("/usr/lib/libcuda.so.1", "/opt/nvidia/libnvidia-nvvm.so.4"))
    layout = _layout(tmp_path, access)
    bwrap = command(_iso("bubblewrap"), ["python"], layout, {})
    pairs = {(bwrap[i], bwrap[i + 1]) for i in range(len(bwrap) - 1)}
    assert ("--dev-bind", "/dev/nvidia1") in pairs and ("--dev-bind", "/dev/nvidiactl") in pairs
    assert ("--ro-bind-try", "/opt/nvidia/libnvidia-nvvm.so.4") in pairs  # /usr is bound read-only whole already
    assert ("--ro-bind-try", "/sys") in pairs and ("--ro-bind-try", "/proc/driver/nvidia") in pairs
    assert not any(flag in ("--bind", "--dev-bind") and "lib" in path for flag, path in pairs)
    script = _script(command(_iso("namespace"), ["python"], layout, {}))
    assert "mount --bind /dev/nvidia1 " in script and "/dev/nvidia0" not in script
    lib = next(line for line in script.splitlines() if "mount --bind /opt/nvidia/libnvidia-nvvm.so.4" in line)
    keep = lib.split()[-1]
    assert f"mount -o remount,bind,ro {keep}" in script  # the library is read-only inside


def test_the_child_is_told_its_gpu_by_uuid_and_where_the_driver_libraries_are(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    access = GpuAccess(("/dev/nvidiactl", "/dev/nvidia1"), ("/opt/nvidia/libcuda.so.1",), UUIDS[1])
    env = _scrubbed_env("/w", 1, {}, access)
    assert env["CUDA_VISIBLE_DEVICES"] == UUIDS[1] and env["LD_LIBRARY_PATH"] == "/opt/nvidia"
    assert "CUDA_VISIBLE_DEVICES" not in _scrubbed_env("/w", 1, {}, GpuAccess())  # index "1" names nothing inside
    assert _scrubbed_env("/w", 1, {}, None)["CUDA_VISIBLE_DEVICES"] == "1"  # no walls: the grader's own view


def test_a_gpu_slots_pin_is_followed_outside_and_named_by_uuid_inside(monkeypatch):
    """The executor's slot pins a child to the machine's GPU 3; walled, the child is shown that GPU alone and
    told it by UUID (index 3 would name no device inside); unwalled it keeps the slot's index."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    slot = {"CUDA_VISIBLE_DEVICES": "3"}
    walled = _scrubbed_env("/w", 1, slot, GpuAccess(devices=("/dev/nvidia3",), visible="GPU-3333"))
    assert walled["CUDA_VISIBLE_DEVICES"] == "GPU-3333"
    assert _scrubbed_env("/w", 1, slot, None)["CUDA_VISIBLE_DEVICES"] == "3"


def test_gpu_use_counts_only_the_childs_processes():
    rows = [GpuProcess(10, 3 * GB, 141 * GB), GpuProcess(11, 2 * GB, 141 * GB), GpuProcess(99, 50 * GB, 141 * GB)]
    assert child_gpu_use(rows, [10, 11, 12]).used_bytes == 5 * GB
    assert child_gpu_use(rows, [12]).used_bytes == 0


# ---- the watchdog, with a stub reader of GPU memory --------------------------------------------------


def _python_pids_of(marker: str) -> list[int]:
    """The interpreter processes running a child script (not its wrappers, whose arguments name it too)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_text():
                pids.append(int(entry.name))
        except OSError:
            continue
    return [p for p in pids if proctree.comm(p).startswith("python")]


def _sleeper(tmp_path: Path, seconds: int = 30) -> Path:
    script = tmp_path / "hog.py"
    script.write_text(f"import json, time\ntime.sleep({seconds})\njson.dump({{}}, open('out/result.json', 'w'))\n")
    return script


def test_a_child_holding_100_gb_of_gpu_memory_is_stopped_and_named(tmp_path, isolation):
    def driver():  # what NVML would say of a model that allocated 100 GB on an H200
        return [GpuProcess(pid, 100 * GB, 141 * GB) for pid in _python_pids_of("child.py")]

    r = run_in_sandbox(_sleeper(tmp_path), phases=[Phase("train", 60, "the training")], isolation=isolation,
                       limits=Limits(gpu_memory_bytes=24_000 * 2**20), gpu_reader=driver)
    assert r.status == "killed_gpu_memory"
    assert ChildRun("HugeNet", r).failure == "HugeNet used more than 24000 MB of GPU memory during the training and was stopped"


def test_without_a_cap_a_child_may_hold_its_share_of_the_gpu(tmp_path, isolation):
    def driver():
        return [GpuProcess(pid, 40 * GB, 80 * GB) for pid in _python_pids_of("child.py")]

    shared = run_in_sandbox(_sleeper(tmp_path), phases=[Phase("train", 60)], isolation=isolation,
                            limits=Limits(gpu_slots=4), gpu_reader=driver)
    assert shared.status == "killed_gpu_memory" and "more than 20480 MB of GPU memory" in shared.detail
    alone = run_in_sandbox(_sleeper(tmp_path, 2), phases=[Phase("train", 60)], isolation=isolation, gpu_reader=driver)
    assert alone.status == "ok"  # 40 GB of an 80 GB GPU it does not share


def test_a_driver_that_cannot_be_read_is_noted_not_a_crash(tmp_path, isolation):
    def broken():
        raise RuntimeError("NVML_ERROR_DRIVER_NOT_LOADED")

    r = run_in_sandbox(_sleeper(tmp_path, 2), phases=[Phase("train", 60)], isolation=isolation, gpu_reader=broken)
    assert r.status == "ok"
    assert r.notes == ("GPU memory could not be read (RuntimeError: NVML_ERROR_DRIVER_NOT_LOADED); "
                       "it was not watched for the rest of the run",)


def test_a_child_stuck_in_native_code_is_killed_by_its_phase_timeout(tmp_path, isolation):
    """As a child waiting on a CUDA kernel that never ends: blocked in a system call, deaf to SIGTERM.
    (tests/test_sandbox.py::test_each_phase_has_its_own_deadline covers a child sleeping in Python.)"""
    script = tmp_path / "stuck.py"
    script.write_text(textwrap.dedent("""
        import json, os, signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        json.dump({"phase": "train"}, open("out/progress.json", "w"))
        r, w = os.pipe()
        os.read(r, 1)  # no one ever writes: blocked in the kernel, never back in Python
    """))
    r = run_in_sandbox(script, phases=[Phase("import", 30), Phase("train", 2, "the training")], isolation=isolation)
    assert r.status == "timeout" and r.phase == "train" and r.ignored_sigterm
    assert r.detail.startswith("timed out: the training took longer than 2 s")
    assert not _python_pids_of("stuck.py") and not _python_pids_of(str(script))


def _iso(kind: str) -> Isolation:
    return Isolation(kind, 65534, "/usr/bin/python3", ("/usr/lib/python3",))


def _script(argv: list[str]) -> str:
    """The namespace kind's setup script in its command line."""
    return argv[argv.index("-ec") + 1]


def _layout(tmp_path: Path, gpu: GpuAccess = GpuAccess()) -> Layout:
    return Layout(tmp_path / "in", tmp_path / "work", gpu=gpu)


# ---- on a GPU (the lent GPU machine: bench/gpu_bench.sh) ---------------------------------------------


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _out(name: str) -> Path:
    """Where a GPU test keeps its output: $GRADER_GPU_TEST_OUT (bench/gpu_bench.sh sets it), else a temp folder."""
    folder = Path(os.environ.get("GRADER_GPU_TEST_OUT") or "/tmp/grader-gpu-tests")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs CUDA")
def test_a_bubblewrapped_child_sees_only_its_gpu_and_is_stopped_over_its_gpu_memory(tmp_path):
    from grader.sandbox.detect import detect_isolation

    iso = detect_isolation(prefer="bubblewrap")
    script = tmp_path / "cuda.py"
    script.write_text(textwrap.dedent("""
        import json, os, time, torch
        seen = {"devices": torch.cuda.device_count(), "dev": sorted(os.listdir("/dev")),
                "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                "sum": float(torch.ones(2**20, device="cuda").sum().item())}
        json.dump(seen, open("out/result.json", "w"))
        if os.environ.get("HOG"):
            x = torch.empty(int(os.environ["HOG"]), dtype=torch.uint8, device="cuda")
            time.sleep(30)
    """))
    ok = run_in_sandbox(script, phases=[Phase("main", 240)], isolation=iso, cuda=True)
    hog = run_in_sandbox(script, phases=[Phase("main", 240)], isolation=iso, cuda=True, env={"HOG": str(30 * GB)},
                         limits=Limits(gpu_memory_bytes=8 * GB))
    _out("sandbox_gpu.json").write_text(json.dumps({"ok": [ok.status, ok.detail, ok.payload, ok.notes, ok.stderr_tail(8)],
                                                    "hog": [hog.status, hog.detail, hog.notes]}, indent=1))
    assert ok.status == "ok", ok.stderr_tail(8)
    assert ok.payload["devices"] == 1 and ok.payload["sum"] == 2**20
    assert [d for d in ok.payload["dev"] if d.startswith("nvidia") and d[6:].isdigit()] != []
    assert hog.status == "killed_gpu_memory", (hog.detail, hog.notes)


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _cuda(), reason="needs CUDA")
def test_the_complete_example_trains_under_bubblewrap_on_the_gpu(synthetic_data, small_rubric):
    from grader.grading.grade import grade_submission
    from grader.rubric import load_rubric
    from grader.sandbox.detect import detect_isolation
    from grader.training.context import prepare_training
    from support import SUBMISSIONS

    rubric = load_rubric(small_rubric)
    ctx = prepare_training(rubric, "quick", data_dir=synthetic_data, device="cuda",
                           isolation=detect_isolation(prefer="bubblewrap"))
    result = grade_submission(SUBMISSIONS / "complete.ipynb", student="ann", rubric=rubric, budget="quick", context=ctx)
    _out("complete_gpu_bubblewrap.json").write_text(result.to_json())
    assert result.provenance.run.isolation == "bubblewrap" and result.provenance.run.device == "cuda"
    assert set(result.runs) == {"LeNet5", "ResDropNet"}
    for run in result.runs.values():
        assert run.error is None, run.error
        assert run.history.device == "cuda" and run.history.loss_end < run.history.loss_start
