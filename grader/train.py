"""The fixed-config trainer: any nn.Module, one TrainConfig, fast and model-agnostic.

We cannot tune a student's model, only the pipeline around it, so speed comes from the loop:
images stay on the device as uint8, a batch is an index-gather from a seeded randperm,
augmentation and normalization run on the device, and there is no DataLoader. On CUDA the model
runs channels_last under bf16 autocast with cudnn.benchmark and fused optimizers; on the CPU it
runs channels_last on every core. A choice a model cannot take (a .view that breaks under
channels_last, an op without bf16) falls back and is noted in the History.

The loop needs training images with labels and validation images, plus `evaluate`, a function
that scores logits. The default scores with the labels in TrainingData; the sandbox passes one
that asks the parent, so the child never sees validation or test labels. `predict_logits` is
the separate, public "images -> logits" step.

Sections in order: results, public functions, setup, data on the device, the loop.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import math
import os
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterator, Literal

import torch
import torch.nn.functional as F
from torch import nn

from grader.config import TrainConfig
from grader.data import TrainingData
from grader.errors import GraderError

EVAL_BATCH = 1_000  # images per inference batch: big batches, far fewer kernel launches
NAN_CHECK_EVERY = 50  # steps between divergence checks on CUDA (each check is a device sync)


# ---- results ------------------------------------------------------------------------------------

class ModelError(GraderError):
    """The model cannot be trained as given (wrong output shape, uninitialized parameters)."""


@dataclass(frozen=True)
class Score:
    """Loss and accuracy of a set of logits, computed by whoever holds the labels."""

    loss: float
    """Mean cross-entropy."""
    accuracy: float
    """Fraction of correct argmax predictions, 0..1."""


Evaluate = Callable[[Literal["val", "test"], torch.Tensor], Score]
"""evaluate(split, logits) -> Score; logits are float (N, classes) in the images' order."""


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training."""

    epoch: int
    """1-based epoch number."""
    train_loss: float
    """Mean training loss over the epoch's batches (augmented images)."""
    val_loss: float
    """Validation loss at the end of the epoch."""
    val_accuracy: float
    """Validation accuracy at the end of the epoch, 0..1."""
    seconds: float
    """Wall time of the epoch, validation included."""
    lr: float
    """Learning rate of the epoch's last step."""


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


@dataclass(frozen=True)
class History:
    """Everything one training run produced, JSON-safe through to_dict()."""

    status: Literal["ok", "diverged"]
    """'diverged' when the loss became NaN or infinite and the run stopped early."""
    message: str
    """One line on how the run ended."""
    epochs: tuple[EpochRecord, ...]
    """Completed epochs, in order."""
    selected_epoch: int | None
    """Epoch whose weights were kept (config.select); None when no epoch completed."""
    test_loss: float | None
    """Test loss of the selected weights; None without test images or a selected epoch."""
    test_accuracy: float | None
    """Test accuracy of the selected weights, 0..1; None as for test_loss."""
    params: int
    """Trainable parameters after lazy modules were initialized."""
    flops_per_image: int | None
    """Forward FLOPs for one 3x32x32 image (torch.utils.flop_counter); None if uncountable."""
    peak_memory_bytes: int
    """Peak CUDA memory allocated during the run, or the process's peak RSS on the CPU."""
    seconds: float
    """Wall time of the whole run, setup and test prediction included."""
    train_images_per_second: float
    """Training throughput over all training steps (validation excluded)."""
    device: str
    """torch device type the run used ('cpu', 'cuda')."""
    precision: Literal["fp32", "bf16"]
    """Compute precision of the forward pass."""
    channels_last: bool
    """Whether the model ran in channels_last memory format."""
    notes: tuple[str, ...] = ()
    """What the trainer had to adapt to (tuple output, fallbacks, dropped batch of one)."""
    config: dict = field(default_factory=dict)
    """The TrainConfig the run used, as a dict."""
    torch_version: str = torch.__version__
    """torch version that trained the model."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["epochs"] = [{k: _finite(v) if isinstance(v, float) else v for k, v in e.items()} for e in d["epochs"]]
        d["notes"] = list(self.notes)
        d["test_loss"], d["test_accuracy"] = _finite(self.test_loss), _finite(self.test_accuracy)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        nan = float("nan")
        epochs = tuple(EpochRecord(**{k: nan if v is None else v for k, v in e.items()}) for e in d["epochs"])
        return cls(**{**d, "epochs": epochs, "notes": tuple(d.get("notes", ()))})


# ---- public functions ---------------------------------------------------------------------------

def label_evaluator(data: TrainingData) -> Evaluate:
    """Score logits against the labels held in `data` (the in-process default)."""
    labels = {"val": data.val_labels, "test": data.test_labels}

    def evaluate(split: Literal["val", "test"], logits: torch.Tensor) -> Score:
        y = labels[split]
        if y is None:
            raise ValueError(f"no {split} labels here; pass train(..., evaluate=...) that scores elsewhere")
        y = y.to(logits.device)
        loss = F.cross_entropy(logits.float(), y).item()
        return Score(loss=loss, accuracy=(logits.argmax(1) == y).float().mean().item())

    return evaluate


def predict_logits(
    model: nn.Module, images: torch.Tensor, *, mean: tuple[float, ...], std: tuple[float, ...],
    device: torch.device | str | None = None, batch_size: int = EVAL_BATCH,
    channels_last: bool = False, precision: Literal["fp32", "bf16"] = "fp32",
) -> torch.Tensor:
    """Float32 logits (N, classes) for uint8 images (N,3,32,32), on `device`, in eval mode."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    norm = _Normalize(mean, std, device, channels_last)
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode(), _autocast(device, precision):
        for i in range(0, len(images), batch_size):
            x = norm(images[i:i + batch_size].to(device, non_blocking=True))
            out.append(_first(model(x)).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, device=device)


def train(
    model: nn.Module | Callable[[], nn.Module], data: TrainingData, config: TrainConfig, *,
    device: torch.device | str = "cpu", evaluate: Evaluate | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> History:
    """Train `model` under `config` on `data`; the model ends with the selected weights.

    `model` may be a module or a zero-argument factory (a class); a factory is built under
    config.seed so that weight init is reproducible too. `evaluate` scores validation and test
    logits (default: the labels in `data`). `on_epoch` is called after every epoch.
    """
    device = torch.device(device)
    evaluate = evaluate or label_evaluator(data)
    start = time.perf_counter()
    with _runtime(device, config.deterministic), torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed)  # weight init, lazy init and dropout draw from the global RNG
        if not isinstance(model, nn.Module):
            model = model()
        setup = _prepare(model, data, device)
        history = _fit(setup, data, config, device, evaluate, on_epoch)
    return History(**{**history, "seconds": time.perf_counter() - start, "config": asdict(config)})


# ---- setup: runtime, model checks, fallbacks ----------------------------------------------------

def _rng_devices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


@contextlib.contextmanager
def _runtime(device: torch.device, deterministic: bool) -> Iterator[None]:
    """Threads, determinism and cudnn flags for one run, restored afterwards (no global state)."""
    saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
             torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if device.type == "cpu":
        # Every core this process may use; torch's default can count cores we are not given.
        torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        _keep_freed_memory()
    if deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    torch.use_deterministic_algorithms(deterministic, warn_only=True)  # warn: a student op may lack one
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2], saved[3]


def _keep_freed_memory() -> None:
    """Ask glibc to reuse freed activation buffers instead of returning them to the OS.

    Each CPU step allocates and frees the same few MB of activations; above glibc's mmap
    threshold every allocation is a fresh mmap whose pages fault in again (hundreds of faults a
    step for LeNet-5). A process-wide allocator setting with no effect on results.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: serve blocks up to 32 MiB from the heap
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MiB of freed heap
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to tune


def _first(out: object) -> torch.Tensor:
    """The logits of a forward's output: a tensor, or the first element of a tuple/list."""
    while isinstance(out, (tuple, list)) and out:
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"the model's forward returned {type(out).__name__}; it must return a logits tensor")
    return out


def _autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class _Setup:
    model: nn.Module
    params: int
    flops: int | None
    channels_last: bool
    precision: Literal["fp32", "bf16"]
    notes: list[str]


def _prepare(model: nn.Module, data: TrainingData, device: torch.device) -> _Setup:
    """Move the model, initialize lazy layers, check the output, pick memory format and precision."""
    notes: list[str] = []
    model.to(device)
    probe = _Normalize(data.mean, data.std, device, False)(data.train_images[:2].to(device))
    # A dry forward in eval mode initializes lazy modules before the optimizer sees the
    # parameters, without touching BatchNorm statistics or the dropout RNG stream.
    model.eval()
    with torch.no_grad():
        out = model(probe)
    if isinstance(out, (tuple, list)):
        notes.append(f"forward returns a {type(out).__name__}; its first element is used as the logits")
    logits = _first(out)
    if logits.shape != (2, data.num_classes):
        raise ModelError(
            f"the model maps (2, 3, 32, 32) images to {tuple(logits.shape)}; it must return ({2}, {data.num_classes}) logits"
        )
    if any(isinstance(p, nn.parameter.UninitializedParameter) for p in model.parameters()):
        raise ModelError("the model still has uninitialized lazy parameters after a forward pass")
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if params == 0:
        raise ModelError("the model has no trainable parameters")
    flops = _count_flops(model, probe[:1])
    channels_last = _try(model, probe, notes, channels_last=True, precision="fp32")
    precision: Literal["fp32", "bf16"] = "fp32"
    if device.type == "cuda" and _try(model, probe, notes, channels_last=channels_last, precision="bf16"):
        precision = "bf16"
    model.train()
    return _Setup(model, params, flops, channels_last, precision, notes)


def _try(model: nn.Module, probe: torch.Tensor, notes: list[str], *, channels_last: bool, precision: str) -> bool:
    """Can the model do forward+backward this way? (eval mode, gradients discarded)."""
    what = "channels_last" if precision == "fp32" else "bf16 autocast"
    try:
        if channels_last:
            model.to(memory_format=torch.channels_last)
            probe = probe.contiguous(memory_format=torch.channels_last)
        with _autocast(probe.device, precision):
            out = _first(model(probe)).float()
        out.sum().backward()
        ok = bool(torch.isfinite(out).all())
        reason = "non-finite outputs"
    except Exception as e:  # any failure of student code under this mode means: don't use it
        ok, reason = False, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
    model.zero_grad(set_to_none=True)
    if not ok:
        if channels_last:
            model.to(memory_format=torch.contiguous_format)
        notes.append(f"model fails under {what} ({reason}); ran without it")
    return ok


def _count_flops(model: nn.Module, image: torch.Tensor) -> int | None:
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(image)
        return int(counter.get_total_flops())
    except Exception:  # an exotic op the counter cannot trace: report no figure, train anyway
        return None


def _optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    # Fused kernels update every parameter in one launch on CUDA; the CPU keeps the default loop.
    fused = {"fused": True} if device.type == "cuda" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0,
                               weight_decay=config.weight_decay, **fused)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay, **fused)


def _schedule(opt: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule over the whole run."""
    if config.schedule == "onecycle":
        # Momentum stays as configured: the same optimizer settings for every model.
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=max(total_steps, 2),
                                                   cycle_momentum=False)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)


# ---- data on the device -------------------------------------------------------------------------

class _Normalize:
    """uint8 (N,3,32,32) -> normalized float, in one fused multiply-add on the device."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool):
        s = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.scale = 1 / (255 * s)  # ToTensor's /255 and Normalize's /std in one factor
        self.shift = -torch.tensor(mean, device=device).view(1, 3, 1, 1) / s
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(memory_format=self.memory_format)
        return torch.addcmul(self.shift, x.float(), self.scale)


def _crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding plus horizontal flip, per image, as one gather on uint8."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))  # zero = black, as torchvision's RandomCrop(padding=4)
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device, generator=g)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device, generator=g)
    flip = torch.rand(n, 1, device=x.device, generator=g) < 0.5
    ar_h, ar_w = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = dy + ar_h
    cols = dx + torch.where(flip, ar_w.flip(0), ar_w)
    idx = torch.arange(n, device=x.device)[:, None, None, None]
    ch = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[idx, ch, rows[:, None, :, None], cols[:, None, None, :]]


# ---- the loop -----------------------------------------------------------------------------------

def _fit(s: _Setup, data: TrainingData, config: TrainConfig, device: torch.device,
         evaluate: Evaluate, on_epoch: Callable[[EpochRecord], None] | None) -> dict:
    model, notes = s.model, s.notes
    images, labels = data.train_images, data.train_labels
    if config.train_subset:
        images, labels = images[:config.train_subset], labels[:config.train_subset]  # the split is already shuffled
    images, labels = images.to(device), labels.to(device)  # resident for the whole run, as uint8
    n, bs = len(labels), config.batch_size
    # A last batch of one image breaks BatchNorm's training statistics: drop it.
    steps = n // bs + (1 if n % bs > 1 else 0)
    if n % bs == 1:
        notes.append("the last training batch of each epoch held 1 image and was dropped (BatchNorm needs 2)")
    if steps == 0:
        raise ModelError(f"{n} training image(s) are too few for a batch; use at least 2")
    seen = n - (1 if n % bs == 1 else 0)  # images per epoch
    g = torch.Generator(device=device).manual_seed(config.seed)
    norm = _Normalize(data.mean, data.std, device, s.channels_last)
    opt = _optimizer(model, config, device)
    sched = _schedule(opt, config, steps * config.epochs)
    predict = dict(mean=data.mean, std=data.std, device=device, channels_last=s.channels_last, precision=s.precision)
    check_every = 1 if device.type == "cpu" else NAN_CHECK_EVERY  # a CPU check costs no sync

    epochs: list[EpochRecord] = []
    best: tuple[float, int, dict] | None = None  # (val accuracy, epoch, weights) to keep
    status, message, train_time = "ok", f"trained {config.epochs} epochs", 0.0
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=device, generator=g)
        loss_sum = torch.zeros((), device=device)
        diverged = False
        for step in range(steps):
            idx = perm[step * bs:(step + 1) * bs]
            x = images[idx]
            if config.augment == "crop_flip":
                x = _crop_flip(x, g)
            x, y = norm(x), labels[idx]
            with _autocast(device, s.precision):
                out = _first(model(x))
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            lr = opt.param_groups[0]["lr"]  # the rate this step used (the scheduler moves on next)
            sched.step()
            loss_sum += loss.detach() * len(idx)
            if (step + 1) % check_every == 0 or step == steps - 1:
                if not torch.isfinite(loss_sum):
                    diverged = True
                    status, message = "diverged", f"training loss became NaN or infinite in epoch {epoch}, step {step + 1}; the run stopped"
                    break
        _sync(device)
        train_time += time.perf_counter() - t0
        if diverged:
            break
        val = evaluate("val", predict_logits(model, data.val_images, **predict))
        if not math.isfinite(val.loss):
            status, message = "diverged", f"validation loss became NaN or infinite in epoch {epoch}; the run stopped"
            break
        record = EpochRecord(epoch, (loss_sum / seen).item(), val.loss, val.accuracy,
                             time.perf_counter() - t0, lr)
        epochs.append(record)
        # Keep the weights to evaluate: the best validation epoch (earliest on ties) or the last.
        if best is None or config.select == "last" or val.accuracy > best[0]:
            best = (val.accuracy, epoch, copy.deepcopy(model.state_dict()))
        if on_epoch:
            on_epoch(record)

    test = None
    if best is not None:
        model.load_state_dict(best[2])
        if data.test_images is not None:
            test = evaluate("test", predict_logits(model, data.test_images, **predict))
    trained = seen * len(epochs)
    return dict(
        status=status, message=message, epochs=tuple(epochs), selected_epoch=best[1] if best else None,
        test_loss=test.loss if test else None, test_accuracy=test.accuracy if test else None,
        params=s.params, flops_per_image=s.flops, peak_memory_bytes=_peak_memory(device),
        train_images_per_second=trained / train_time if train_time else 0.0, device=device.type,
        precision=s.precision, channels_last=s.channels_last, notes=tuple(notes),
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


__all__ = ["EpochRecord", "Evaluate", "History", "ModelError", "Score", "label_evaluator", "predict_logits", "train"]
