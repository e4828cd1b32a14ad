"""Several trainings on one GPU at once, with a fake GPU inventory: no GPU and no training needed.

The slot pool (grader.training.slots) is checked for its limits and spread, for giving a GPU back
however its child ends, and for what a training child is handed (its CUDA_VISIBLE_DEVICES), with
the sandbox's launch stubbed; `auto` slots from memory figures; the CPU fallback; the CLI's option.
"""

import subprocess
import sys
import threading
from contextlib import ExitStack
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from grader.child.protocol import History
from grader.cli import cli
from grader.grading.executors.base import GradeOptions
from grader.grading.executors.local import LocalExecutor, _slot_count
from grader.grading.executors.ray import task_gpus
from grader.notebook import load_notebook
from grader.sandbox import model_child
from grader.sandbox.extract import extract_models
from grader.sandbox.isolation import Isolation
from grader.sandbox.process import ChildResult, _scrubbed_env
from grader.training.context import TrainingContext, place_on_gpus
from grader.training.gpus import (CONTEXT_BYTES, DEFAULT_CHILD_BYTES, MAX_AUTO_SLOTS, Gpu, parse_gpu_slots, slots_per_gpu,
                                  visible_ids)
from grader.training.retrain import train_in_sandbox
from grader.training.runs import ModelRun
from grader.training.slots import SlotPool, lease
from support import REPO, SUBMISSIONS

GiB = 2**30


def gpus(*free_gib: float, total_gib: float = 141) -> tuple[Gpu, ...]:
    """A fake inventory: one GPU per figure, with that much memory free."""
    return tuple(Gpu(i, str(i), int(total_gib * GiB), int(free * GiB)) for i, free in enumerate(free_gib))


def pool(tmp_path, *slots: int) -> SlotPool:
    return SlotPool(gpus(*[100] * len(slots)), slots, str(tmp_path), poll_s=0.01)


def device_of(env: dict) -> str:
    return env["CUDA_VISIBLE_DEVICES"]


def history(peak_bytes: int, device: str = "cuda") -> History:
    return History(status="ok", message="", epochs=(), selected_epoch=None, test_loss=None, test_accuracy=None,
                   params=1, flops_per_image=None, peak_memory_bytes=peak_bytes, seconds=1.0,
                   train_images_per_second=1.0, device=device, precision="fp32", channels_last=False)


def context(rubric, device="cuda", references=()) -> TrainingContext:
    """A training context with nothing behind it: enough to place children and stub their launch."""
    return TrainingContext(
        budget="quick", config=rubric.train_config("quick"), device=device, files={}, train_size=0, file_sha256={},
        labels={"val": np.zeros(0, np.int64), "test": np.zeros(0, np.int64)}, mean=(0.5,) * 3, std=(0.5,) * 3,
        data_sha256="", data_kind="synthetic", data_source="", data_note="",
        references={f"Ref{i}": ModelRun.trained(f"Ref{i}", h) for i, h in enumerate(references)},
        isolation=Isolation("none", 0, sys.executable), train_timeout_s=60.0)


# --- the pool: limits, spread, release ---

def test_two_gpus_with_three_slots_run_six_children_spread_three_and_three(tmp_path):
    slots = pool(tmp_path, 3, 3)
    with ExitStack() as held:
        placed = [device_of(held.enter_context(slots.lease())) for _ in range(6)]
        assert placed == ["0", "1", "0", "1", "0", "1"]  # least-loaded first: the GPUs fill evenly
        assert slots.busy() == (3, 3)
        seventh: list[str] = []
        waiter = threading.Thread(target=lambda: seventh.append(device_of(slots.lease().__enter__())))
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive() and not seventh  # a seventh child waits: no GPU has a free slot
    waiter.join(timeout=30)
    assert seventh in (["0"], ["1"])  # it got a slot once the others gave theirs back


def test_a_waiting_child_gets_the_gpu_that_frees_a_slot(tmp_path):
    slots = pool(tmp_path, 1, 1)
    first, second = slots.lease(), slots.lease()
    assert (device_of(first.__enter__()), device_of(second.__enter__())) == ("0", "1")
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(device_of(slots.lease().__enter__())))
    waiter.start()
    second.__exit__(None, None, None)
    waiter.join(timeout=30)
    assert got == ["1"]
    first.__exit__(None, None, None)


def test_many_threads_never_exceed_the_slots(tmp_path):
    slots = pool(tmp_path, 3, 3)
    lock, running, most, per_gpu_most = threading.Lock(), {"0": 0, "1": 0}, [0], {"0": 0, "1": 0}
    release = threading.Event()

    def child():
        with slots.lease() as env:
            with lock:
                running[device_of(env)] += 1
                most[0] = max(most[0], sum(running.values()))
                per_gpu_most[device_of(env)] = max(per_gpu_most[device_of(env)], running[device_of(env)])
            release.wait(timeout=0.05)
            with lock:
                running[device_of(env)] -= 1

    threads = [threading.Thread(target=child) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert most[0] <= 6 and max(per_gpu_most.values()) <= 3
    assert slots.busy() == (0, 0)  # every slot given back


def test_a_child_that_raises_gives_its_gpu_back(tmp_path):
    slots = pool(tmp_path, 1)
    with pytest.raises(RuntimeError):
        with slots.lease():
            assert slots.busy() == (1,)
            raise RuntimeError("the child crashed")
    assert slots.busy() == (0,)


def test_a_killed_worker_process_gives_its_gpu_back(tmp_path):
    """Another process holds the one slot (as a pool worker does); SIGKILL frees it: the kernel drops its flock."""
    slots = pool(tmp_path, 1)
    code = ("import sys, time; from grader.training.gpus import Gpu; from grader.training.slots import SlotPool;"
            f"lease = SlotPool((Gpu(0, '0', 1, 1),), (1,), {str(tmp_path)!r}).lease(); env = lease.__enter__();"
            "print(env['CUDA_VISIBLE_DEVICES'], flush=True); time.sleep(600)")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout.readline().strip() == "0"
        assert slots.busy() == (1,)  # seen from this process: the slot is taken
    finally:
        worker.kill()
        worker.wait()
    assert slots.busy() == (0,)
    with slots.lease() as env:
        assert device_of(env) == "0"


# --- how many slots ---

def test_auto_slots_from_free_memory_and_the_largest_recorded_peak():
    assert slots_per_gpu(gpus(20, 10), "auto", [3 * GiB - CONTEXT_BYTES, GiB]) == (6, 3)  # 18 / 3 GB and 9 / 3 GB
    assert slots_per_gpu(gpus(120), "auto", [GiB]) == (MAX_AUTO_SLOTS,)  # a small CNN on an H200: capped
    assert slots_per_gpu(gpus(4), "auto", [8 * GiB]) == (1,)  # too big to share: one at a time, never none


def test_auto_slots_without_a_recorded_peak_plan_on_the_conservative_default():
    free = 5 * DEFAULT_CHILD_BYTES / GiB / 0.9
    assert slots_per_gpu(gpus(free + 0.01), "auto", []) == (5,)
    assert slots_per_gpu(gpus(40), 3, [100 * GiB]) == (3,)  # a number given is used as it is


def test_auto_counts_the_references_cuda_peaks_not_cpu_ones(tmp_path, rubric):
    ctx = context(rubric, references=[history(3 * GiB - CONTEXT_BYTES), history(50 * GiB, device="cpu")])
    placed, plan = place_on_gpus(ctx, "auto", [], inventory=lambda: gpus(20, 10), folder=tmp_path)
    assert placed.gpus == SlotPool(gpus(20, 10), (6, 3), str(tmp_path))
    assert plan == "GPU 0 (20 GB free): 6 trainings at once; GPU 1 (10 GB free): 3 trainings at once"


@pytest.mark.parametrize("text, slots", [("4", 4), ("1", 1), ("auto", "auto"), ("AUTO", "auto")])
def test_gpu_slots_option_values(text, slots):
    assert parse_gpu_slots(text) == slots


# --- the CPU fallback ---

@pytest.mark.parametrize("device, found", [("cuda", ()), ("cpu", gpus(80))])
def test_without_a_gpu_slots_change_nothing_and_say_so(tmp_path, rubric, device, found):
    ctx = context(rubric, device=device)
    placed, plan = place_on_gpus(ctx, 4, [], inventory=lambda: found, folder=tmp_path)
    assert placed is ctx and placed.gpus is None
    assert plan == "no GPU here: --gpu-slots has no effect; the models train on the CPU as without it"
    with lease(placed.gpus) as env:
        assert env == {}  # the child's environment is as it was


# --- what a child is given ---

def test_a_training_child_is_pinned_to_its_gpu_and_gives_it_back(tmp_path, rubric, monkeypatch):
    """The sandbox's launch is stubbed: the test sees the environment the child would get."""
    from grader.training.context import write_arrays

    slots = pool(tmp_path, 1, 1)
    arrays = write_arrays(tmp_path, {f"{split}_x": np.zeros((0, 3, 32, 32), np.uint8) for split in ("val", "test")})
    ctx = replace(context(rubric), gpus=slots, files={k: path for k, (path, _) in arrays.items()},
                  file_sha256={k: sha for k, (_, sha) in arrays.items()})  # the images each child is shown a draw of
    extraction = extract_models(load_notebook(SUBMISSIONS / "complete.ipynb"), ["LeNet5"])
    seen = []

    def launch(script, **kwargs):
        seen.append((dict(kwargs["env"]), slots.busy()))
        return ChildResult(status="crashed", phase="train", detail="crashed with SIGSEGV during training",
                           isolation=ctx.isolation, seconds=0.1, signal=11)

    monkeypatch.setattr(model_child, "run_in_sandbox", launch)
    with slots.lease() as other:  # GPU 0 is busy with another child: this one goes to GPU 1
        assert device_of(other) == "0"
        run, _ = train_in_sandbox(extraction, "LeNet5", rubric, ctx)
    assert seen == [({"CUDA_VISIBLE_DEVICES": "1"}, (1, 1))]
    assert run.error and "SIGSEGV" in run.error
    assert slots.busy() == (0, 0)  # the crashed child's slot is free again


def test_the_pin_overrides_the_graders_own_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    env = _scrubbed_env("/work", 1, {"CUDA_VISIBLE_DEVICES": "1"}, None)  # unwalled; walled: tests/test_gpu_sandbox.py
    assert env["CUDA_VISIBLE_DEVICES"] == "1"


@pytest.mark.parametrize("variable, count, ids", [
    (None, 2, ["0", "1"]), ("2,3", 2, ["2", "3"]), ("GPU-a1b2, GPU-c3d4", 2, ["GPU-a1b2", "GPU-c3d4"]), ("5", 1, ["5"]),
])
def test_a_child_names_its_gpu_as_the_machine_does(variable, count, ids):
    """torch's cuda:1 under CUDA_VISIBLE_DEVICES=2,3 is the machine's GPU 3: the child must be given 3."""
    assert visible_ids(variable, count) == ids


def test_rays_assigned_gpu_pins_the_child_the_same_way():
    with task_gpus([3]).lease() as env:
        assert env == {"CUDA_VISIBLE_DEVICES": "3"}
    with task_gpus([]).lease() as env:
        assert env == {}


def test_the_local_executor_runs_one_worker_per_slot_by_default(tmp_path, rubric):
    options = GradeOptions(rubric=rubric, budget="quick", context=replace(context(rubric), gpus=pool(tmp_path, 3, 3)))
    assert _slot_count(options) == 6
    assert _slot_count(replace(options, context=None)) == 1
    assert LocalExecutor(None).workers is None and LocalExecutor().workers == 1


# --- the command line ---

def run_cli(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


@pytest.mark.parametrize("value", ["0", "-2", "many"])
def test_an_impossible_slot_count_is_a_one_line_usage_error(tmp_path, value):
    result = run_cli("grade", SUBMISSIONS, "--out", tmp_path / "out", "--no-train", "--gpu-slots", value)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --gpu-slots takes a number of trainings per GPU (1 or more) or auto, not '{value}'"
    assert not (tmp_path / "out").exists()


def test_gpu_slots_belong_to_the_local_executor(tmp_path):
    result = run_cli("grade", SUBMISSIONS, "--out", tmp_path / "out", "--no-train", "--executor", "ray", "--gpu-slots", "2")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --gpu-slots applies to the local executor only; with Ray, "
                                     "--gpus-per-task 0.25 shares each GPU four ways")


def test_a_batch_plans_its_slots_on_the_peaks_its_earlier_results_recorded(tmp_path, rubric, monkeypatch):
    """grade_batch's wiring, with training stubbed: the earlier result's CUDA peak sizes 'auto', the
    plan is one note, and the executor gets the context with the pool."""
    from grader.grading import batch
    from grader.grading.executors.base import error_result
    from grader.grading.result import write_atomic
    from grader.grading.submissions import Submission
    from grader.training import context as context_module
    from grader.training.context import RunIdentity

    root = tmp_path / "class"
    root.mkdir()
    (root / "ann.ipynb").write_bytes((SUBMISSIONS / "complete.ipynb").read_bytes())
    earlier = error_result(Submission("ann", root / "ann.ipynb"), "earlier", GradeOptions(rubric, "quick", None))
    earlier = replace(earlier, runs={"Big": ModelRun.trained("Big", history(5 * GiB - CONTEXT_BYTES))})
    write_atomic(tmp_path / "out" / "ann" / "result.json", earlier.to_json())
    monkeypatch.setattr(batch, "run_identity", lambda data_dir: RunIdentity("", "cuda", ""))
    monkeypatch.setattr(batch, "prepare_training", lambda *a, **k: context(rubric))
    monkeypatch.setattr(context_module, "visible_gpus", lambda: gpus(30))
    given, notes = [], []

    class Recording:
        def grade(self, todo, options, on_progress=None):
            given.append(options.context.gpus)
            yield from ()

    batch.grade_batch(root, tmp_path / "out", rubric=rubric, budget="quick", executor=Recording(), gpu_slots="auto",
                      on_note=notes.append)
    assert given[0].slots == (5,)  # 27 GB usable / (4 GB peak + 1 GB context)
    assert notes == ["GPU 0 (30 GB free): 5 trainings at once"]
