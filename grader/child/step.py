"""One training step, and how it runs: eager or replayed from a CUDA graph, in the mode timed fastest.

At the batch sizes students use, a small CNN's step on a GPU is bound by kernel launches, not by
the GPU (a bare LeNet-5 step is 1.6 ms on an H200). Two things cut that without touching what
is measured:

- `GraphStep` captures forward, loss, backward and optimizer step once and replays them for
  every full batch (static shapes); a ragged last batch runs eagerly, so every image and every
  optimizer step of the config is kept. A model that cannot be captured (a host sync such as
  `.item()` in its forward, an op that capture refuses) falls back to the eager step, and the
  History says why.
- `choose_mode` times a few steps of each mode the model survives (fp32 or bf16 autocast,
  channels_last or not) on the real model and keeps the fastest, instead of a rule: bf16 costs
  more in cast kernels than it saves on a small model, and saves on a large one.

Neither changes the data order, the config or the number of optimizer steps: the timing runs on
a copy of the weights and optimizer state that is thrown away, and the graph replays the very
steps the eager loop would run.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from grader.child.runtime import autocast, logits_of

WARMUP_STEPS = 3  # eager steps before capture: lazy optimizer state and cudnn's autotuning happen there
TIMED_STEPS = 5  # steps timed per mode, after one untimed step of the same mode

Precision = Literal["fp32", "bf16"]
StepFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""step(normalized images, labels) -> the batch's mean loss (on the device, not synced)."""


@dataclass(frozen=True)
class Mode:
    """How the model's step runs: compute precision and memory format."""

    precision: Precision
    channels_last: bool

    @property
    def label(self) -> str:
        return f"{'bf16 autocast' if self.precision == 'bf16' else 'fp32'}, {'channels_last' if self.channels_last else 'NCHW'}"


Timer = Callable[[Mode, Callable[[], None]], float]
"""timer(mode, run) -> seconds that run() took (run() runs TIMED_STEPS steps in `mode`)."""


# ---- the eager step -----------------------------------------------------------------------------

class EagerStep:
    """The plain step: forward under the mode's autocast, cross-entropy in fp32, backward, step."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device, precision: str):
        self.model, self.opt, self.device, self.precision = model, opt, device, precision

    def __call__(self, x: torch.Tensor, y: torch.Tensor, *, cache: bool = True) -> torch.Tensor:
        with autocast(self.device, self.precision, cache=cache):
            out = logits_of(self.model(x))[0]
        loss = F.cross_entropy(out.float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()


# ---- the captured step --------------------------------------------------------------------------

class GraphStep:
    """Full batches replay one captured step; other batches, and everything after a failure, run eagerly.

    The first WARMUP_STEPS full batches are ordinary eager steps (on a side stream, as capture
    requires); the next one is captured and replayed, and so is every full batch after it. The
    learning rate lives in a device tensor that the replayed optimizer reads, refilled from the
    scheduler's value before each replay.
    """

    def __init__(self, eager: EagerStep, batch_size: int, notes: list[str]):
        self.eager, self.batch_size, self.notes = eager, batch_size, notes
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed, self.warmed = False, 0
        self.static: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # x, y, loss
        self.lrs: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.failed or len(x) != self.batch_size:
            return self.eager(x, y)
        if self.graph is None and self.warmed < WARMUP_STEPS:
            self.warmed += 1
            with _side_stream(x.device):
                return self.eager(x, y)
        try:
            if self.graph is None:
                self._capture(x, y)
            return self._replay(x, y)
        except Exception as e:  # any failure of capture or replay: this step and the rest run eagerly
            return self._fall_back(e, x, y)

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        opt = self.eager.opt
        self.lrs = [torch.tensor(float(g["lr"]), device=x.device) for g in opt.param_groups]
        floats = [g["lr"] for g in opt.param_groups]
        static_x, static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)  # backward allocates the gradients from the graph's pool
        for group, lr in zip(opt.param_groups, self.lrs):
            group["lr"] = lr  # the captured optimizer reads the rate from this tensor at every replay
        try:
            with torch.cuda.graph(graph):
                # autocast's weight cache would hold casts made during capture: off under a graph.
                static_loss = self.eager(static_x, static_y, cache=False)
        finally:
            for group, lr in zip(opt.param_groups, floats):
                group["lr"] = lr  # the scheduler keeps stepping plain floats
        self.graph, self.static = graph, (static_x, static_y, static_loss)

    def _replay(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        static_x, static_y, static_loss = self.static  # type: ignore[misc]
        for group, lr in zip(self.eager.opt.param_groups, self.lrs):
            lr.fill_(group["lr"])
        static_x.copy_(x)
        static_y.copy_(y)
        self.graph.replay()  # type: ignore[union-attr]
        return static_loss

    def _fall_back(self, error: Exception, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        stage = "replayed" if self.graph is not None else "captured"
        self.failed, self.graph, self.static = True, None, None
        self.eager.opt.zero_grad(set_to_none=True)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}" if str(error) else type(error).__name__
        self.notes.append(f"the training step could not be {stage} as a CUDA graph ({reason}); it ran eagerly")
        return self.eager(x, y)


@contextlib.contextmanager
def _side_stream(device: torch.device) -> Iterator[None]:
    if device.type != "cuda":
        yield
        return
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream(device).wait_stream(side)


def make_step(model: nn.Module, opt: torch.optim.Optimizer, device: torch.device, precision: str,
              batch_size: int, notes: list[str], *, capture: bool) -> StepFn:
    """The step the loop runs: captured when `capture` (on CUDA), eager otherwise."""
    eager = EagerStep(model, opt, device, precision)
    return GraphStep(eager, batch_size, notes) if capture else eager


# ---- choosing the mode by timing ----------------------------------------------------------------

def candidate_modes(device: torch.device, channels_last_ok: bool, bf16_ok: bool) -> list[Mode]:
    """The modes to time: on CUDA every mode the model survived in prepare_model; on the CPU only
    the rule's (fp32, channels_last where it survives: oneDNN's conv backward and max-pool are
    faster in it), as timing would cost a short CPU run more than it saves."""
    if device.type != "cuda":
        return [Mode("fp32", channels_last_ok)]
    return [Mode(p, cl) for p in ("fp32", "bf16") if p == "fp32" or bf16_ok
            for cl in (False, True) if not cl or channels_last_ok]


def wall_timer(device: torch.device) -> Timer:
    """Seconds a run takes on `device`, queued work included."""
    def timer(_mode: Mode, run: Callable[[], None]) -> float:
        sync(device)
        t = time.perf_counter()
        run()
        sync(device)
        return time.perf_counter() - t
    return timer


def choose_mode(model: nn.Module, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
                x: torch.Tensor, y: torch.Tensor, candidates: Sequence[Mode], timer: Timer,
                notes: list[str]) -> Mode:
    """The fastest of `candidates` for `model` on the batch (x, y) (normalized, NCHW); with one
    candidate, that one, untimed and unnoted (prepare_model left the model in its format).

    The model ends in the chosen memory format with the weights it had: the timed steps run on a
    throwaway optimizer and their updates, and the random numbers they draw, are undone. The
    choice and every mode's time go to `notes`."""
    if len(candidates) == 1:
        return candidates[0]
    weights = copy.deepcopy(model.state_dict())
    seconds: dict[Mode, float] = {}
    with torch.random.fork_rng(devices=[x.device.index or 0] if x.device.type == "cuda" else []):
        for mode in candidates:
            seconds[mode] = _time_mode(model, make_optimizer, x, y, mode, timer)
    model.load_state_dict(weights)
    model.zero_grad(set_to_none=True)
    best = min(candidates, key=lambda m: seconds[m])  # the first listed wins a tie: fp32, NCHW
    _set_format(model, best.channels_last)
    times = "; ".join(f"{m.label} {seconds[m] / TIMED_STEPS * 1e3:.2f} ms" for m in candidates)
    notes.append(f"ran {best.label}: the fastest of {len(candidates)} modes timed over {TIMED_STEPS} steps each "
                 f"on this model ({times} per step)")
    return best


def _time_mode(model: nn.Module, make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
               x: torch.Tensor, y: torch.Tensor, mode: Mode, timer: Timer) -> float:
    _set_format(model, mode.channels_last)
    step = EagerStep(model, make_optimizer(model), x.device, mode.precision)
    x = x.contiguous(memory_format=torch.channels_last if mode.channels_last else torch.contiguous_format)
    step(x, y)  # untimed: cudnn's autotuning and the optimizer's state

    def run() -> None:
        for _ in range(TIMED_STEPS):
            step(x, y)

    return timer(mode, run)


def _set_format(model: nn.Module, channels_last: bool) -> None:
    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


__all__ = ["EagerStep", "GraphStep", "Mode", "Timer", "candidate_modes", "choose_mode", "make_step", "sync", "wall_timer"]
