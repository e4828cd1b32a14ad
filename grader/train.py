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

import copy
import math
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from grader.config import TrainConfig
from grader.data import TrainingData
from grader.runtime import ModelError, Normalize, Setup, autocast, first_output, prepare_model, rng_devices, run_context

EVAL_BATCH = 1_000  # images per inference batch: big batches, far fewer kernel launches
NAN_CHECK_EVERY = 50  # steps between divergence checks on CUDA (each check is a device sync)


# ---- results ------------------------------------------------------------------------------------

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
    norm = Normalize(mean, std, device, channels_last)
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode(), autocast(device, precision):
        for i in range(0, len(images), batch_size):
            x = norm(images[i:i + batch_size].to(device, non_blocking=True))
            out.append(first_output(model(x)).float())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, device=device)


def train(
    model: nn.Module | Callable[[], nn.Module], data: TrainingData, config: TrainConfig, *,
    device: torch.device | str = "cpu", evaluate: Evaluate | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None, test_every_epoch: bool = False,
) -> History:
    """Train `model` under `config` on `data`; the model ends with the selected weights.

    `model` may be a module or a zero-argument factory (a class); a factory is built under
    config.seed so that weight init is reproducible too. `evaluate` scores validation and test
    logits (default: the labels in `data`). `on_epoch` is called after every epoch.
    `test_every_epoch` hands the test logits of every epoch to `evaluate` (and none at the end):
    the sandbox uses it so that the parent, which alone holds the labels, selects the epoch.
    """
    device = torch.device(device)
    evaluate = evaluate or label_evaluator(data)
    start = time.perf_counter()
    with run_context(device, config.deterministic), torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(config.seed)  # weight init, lazy init and dropout draw from the global RNG
        if not isinstance(model, nn.Module):
            model = model()
        setup = prepare_model(model, data, device)
        if data.note:
            setup.notes.append(data.note)
        history = _fit(setup, data, config, device, evaluate, on_epoch, test_every_epoch)
    return History(**{**history, "seconds": time.perf_counter() - start, "config": asdict(config)})


# ---- optimizer and schedule ----------------------------------------------------------------------

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

def _fit(s: Setup, data: TrainingData, config: TrainConfig, device: torch.device,
         evaluate: Evaluate, on_epoch: Callable[[EpochRecord], None] | None, test_every_epoch: bool = False) -> dict:
    model, notes = s.model, s.notes
    images, labels = data.train_images, data.train_labels
    if config.train_subset:
        images, labels = images[:config.train_subset], labels[:config.train_subset]  # the split is already shuffled
    images, labels = images.to(device), labels.to(device)  # resident for the whole run, as uint8
    val_images = data.val_images.to(device)
    n, bs = len(labels), config.batch_size
    # A last batch of one image breaks BatchNorm's training statistics: drop it.
    steps = n // bs + (1 if n % bs > 1 else 0)
    if n % bs == 1:
        notes.append("the last training batch of each epoch held 1 image and was dropped (BatchNorm needs 2)")
    if steps == 0:
        raise ModelError(f"{n} training image(s) are too few for a batch; use at least 2")
    seen = n - (1 if n % bs == 1 else 0)  # images per epoch
    g = torch.Generator(device=device).manual_seed(config.seed)
    norm = Normalize(data.mean, data.std, device, s.channels_last)
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
            with autocast(device, s.precision):
                out = first_output(model(x))
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
        val = evaluate("val", predict_logits(model, val_images, **predict))
        if not math.isfinite(val.loss):
            status, message = "diverged", f"validation loss became NaN or infinite in epoch {epoch}; the run stopped"
            break
        if test_every_epoch and data.test_images is not None:
            evaluate("test", predict_logits(model, data.test_images, **predict))
        record = EpochRecord(epoch, (loss_sum / seen).item(), val.loss, val.accuracy,
                             time.perf_counter() - t0, lr)
        epochs.append(record)
        # Keep the weights to evaluate: the best validation epoch (earliest on ties) or the last.
        if test_every_epoch:
            best = (val.accuracy, epoch, {})  # whoever holds the labels selects; no weights to keep
        elif best is None or config.select == "last" or val.accuracy > best[0]:
            best = (val.accuracy, epoch, copy.deepcopy(model.state_dict()))
        if on_epoch:
            on_epoch(record)

    test = None
    if best is not None and not test_every_epoch:
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
