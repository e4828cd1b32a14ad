"""The fixed-config trainer: any nn.Module, one TrainConfig, fast and model-agnostic.

We cannot tune a student's model, only the pipeline around it, so speed comes from the loop:
images stay on the device as uint8, a batch is an index-gather from a seeded randperm,
augmentation and normalization run on the device, and there is no DataLoader. On CUDA the model
runs in the fastest of the modes it survives (fp32 or bf16 autocast, channels_last or not; timed
on the model, see grader.child.step) with cudnn.benchmark and fused optimizers, and each full
batch replays the step captured in a CUDA graph; on the CPU it runs channels_last on every core.
A choice a model cannot take (a .view that breaks under channels_last, an op without bf16, a host
sync that capture refuses) falls back and is noted in the History.

It runs in two places. In the grader, on TrainingData with every label, it scores each epoch,
keeps the best weights and evaluates them on the test set (the reference networks). In the
sandboxed child, on TrainingData without validation or test labels, it can score nothing: it
hands each epoch's validation and test logits to `on_logits`, and the parent, which alone holds
the labels, scores the epochs and selects one.

Sections in order: data, public functions, optimizer and schedule, data on the device, the loop.
"""

from __future__ import annotations

import copy
import math
import resource
import time
from dataclasses import dataclass, replace
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from grader.child.config import TrainConfig
from grader.child.plan import RunPlan, plan_run
from grader.child.protocol import EpochRecord, History
from grader.child.runtime import (ModelError, Normalize, Setup, autocast, logits_of, prepare_model, registered_parameters,
                                  rng_devices, run_context)
from grader.child.step import candidate_modes, choose_mode, make_step, sync, wall_timer

EVAL_BATCH = 1_000  # images per inference batch: big batches, far fewer kernel launches
NAN_CHECK_EVERY = 50  # steps between divergence checks on CUDA (each check is a device sync)


# ---- data ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingData:
    """What one training run sees: uint8 images, and labels where the trainer may see them."""

    train_images: torch.Tensor
    """Training images, uint8 (N,3,32,32)."""
    train_labels: torch.Tensor
    """Training labels, int64 (N,)."""
    val_images: torch.Tensor
    """Validation images, uint8; scored every epoch for model selection."""
    val_labels: torch.Tensor | None = None
    """Validation labels; None where the trainer must not see them (the sandboxed child)."""
    test_images: torch.Tensor | None = None
    """Test images, uint8; predicted with the selected weights."""
    test_labels: torch.Tensor | None = None
    """Test labels; None where the trainer must not see them."""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel mean after scaling pixels to [0, 1]."""
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel standard deviation after scaling pixels to [0, 1]."""
    num_classes: int = 10
    """Width of the logits a model must return."""
    data_sha256: str = ""
    """Content hash of the dataset the split came from ('' when unknown)."""
    note: str = ""
    """Anything unusual about the split (e.g. scaled down to a small dataset)."""

    def without_labels(self) -> "TrainingData":
        """The same data with validation and test labels removed, as the sandboxed child gets it."""
        return replace(self, val_labels=None, test_labels=None)

    def for_budget(self, config: TrainConfig) -> "TrainingData":
        """What a run under `config` sees: the first train_subset training images (the split is
        already shuffled) and a fixed random eval_subset of the validation and test images (an image
        folder's test set is in class order, so its first images would all be airplanes)."""
        if not config.train_subset and not config.eval_subset:
            return self
        t = config.train_subset or None

        def part(images: torch.Tensor | None, labels: torch.Tensor | None):
            if images is None or not config.eval_subset or config.eval_subset >= len(images):
                return images, labels
            keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:config.eval_subset]
            return images[keep], None if labels is None else labels[keep]

        val_images, val_labels = part(self.val_images, self.val_labels)
        test_images, test_labels = part(self.test_images, self.test_labels)
        return replace(self, train_images=self.train_images[:t], train_labels=self.train_labels[:t],
                       val_images=val_images, val_labels=val_labels, test_images=test_images, test_labels=test_labels)

    def for_plan(self, plan: RunPlan) -> "TrainingData":
        """The first images of each split that `plan` trains and scores (the splits are already shuffled)."""
        def first(tensor: torch.Tensor | None, n: int) -> torch.Tensor | None:
            return None if tensor is None else tensor[:n]

        t, e = plan.train_images, plan.eval_images
        return replace(self, train_images=self.train_images[:t], train_labels=self.train_labels[:t],
                       val_images=self.val_images[:e], val_labels=first(self.val_labels, e),
                       test_images=first(self.test_images, e), test_labels=first(self.test_labels, e))


Split = Literal["val", "test"]
OnLogits = Callable[[Split, torch.Tensor], None]
"""on_logits(split, logits): one epoch's float logits (N, classes) of a split, in the images' order."""


# ---- public functions ---------------------------------------------------------------------------

def predict_logits(
    model: nn.Module, images: torch.Tensor, *, mean: tuple[float, ...], std: tuple[float, ...],
    device: torch.device | str | None = None, batch_size: int = EVAL_BATCH,
    channels_last: bool = False, precision: Literal["fp32", "bf16"] = "fp32",
) -> torch.Tensor:
    """Float32 logits (N, classes) for uint8 images (N,3,32,32), on `device`, in eval mode."""
    device = torch.device(device) if device is not None else registered_parameters(model)[0].device
    norm = Normalize(mean, std, device, channels_last)
    was_training = model.training
    model.eval()
    out = []
    with torch.inference_mode(), autocast(device, precision):
        for i in range(0, len(images), batch_size):
            x = norm(images[i:i + batch_size].to(device, non_blocking=True))
            out.append(logits_of(model(x))[0].float())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, device=device)


def train(
    model: nn.Module | Callable[[], nn.Module], data: TrainingData, config: TrainConfig, *,
    device: torch.device | str = "cpu", on_epoch: Callable[[EpochRecord], None] | None = None,
    on_logits: OnLogits | None = None, capture: bool | None = None,
) -> History:
    """Train `model` under `config` on `data`; with labels, the model ends with the selected weights.

    `model` may be a module or a zero-argument factory (a class); a factory is built under
    config.seed so that weight init is reproducible too. `on_epoch` is called after every epoch.
    Without validation labels in `data`, `on_logits` receives every epoch's validation and test
    logits, the History has no validation or test metrics and no epoch is selected.
    `capture` replays the step from a CUDA graph (default: on CUDA); where capture fails the step
    runs eagerly and the History notes why. Under config.max_flops the model trains and is scored on
    the images its measured FLOPs buy (grader.child.plan); the History says when they are fewer.
    """
    if data.val_labels is None and on_logits is None:
        raise ValueError("no val labels here; pass train(..., on_logits=...) so that whoever holds them scores")
    device = torch.device(device)
    data = data.for_budget(config)
    start = time.perf_counter()
    with run_context(device, config.deterministic), torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(config.seed)  # weight init, lazy init and dropout draw from the global RNG
        if not isinstance(model, nn.Module):
            model = model()
        probe = Normalize(data.mean, data.std, device, False)(data.train_images[:2].to(device))
        setup = prepare_model(model, probe, data.num_classes, device)
        if data.note:
            setup.notes.append(data.note)
        scored = max(len(data.val_images), 0 if data.test_images is None else len(data.test_images))
        plan = plan_run(config, len(data.train_labels), scored, setup.flops)
        if plan.cut:
            data = data.for_plan(plan)
            setup.notes.append(f"planned by its cost: {plan.cut}")
        fitted = _fit(setup, data, config, device, on_epoch, on_logits, device.type == "cuda" if capture is None else capture)
    cut = "time" if fitted["stopped_early"] else "cost" if plan.cut else ""
    return History(**{**fitted, "stopped_early": bool(cut)}, budget_cut=cut, seconds=time.perf_counter() - start,
                   config=config, torch_version=torch.__version__)


def _scores(data: TrainingData) -> Callable[[Split, torch.Tensor], tuple[float, float]]:
    """(loss, accuracy) of a split's logits against the labels in `data`."""
    labels = {"val": data.val_labels, "test": data.test_labels}

    def score(split: Split, logits: torch.Tensor) -> tuple[float, float]:
        y = labels[split].to(logits.device)  # type: ignore[index]
        return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()

    return score


# ---- optimizer and schedule ----------------------------------------------------------------------

def eval_batch_size(device: torch.device | str, config: TrainConfig) -> int:
    """Images per inference batch: EVAL_BATCH on a GPU, the training batch on the CPU, which gains nothing
    from more and would hold them all at once (a small ResNet's 1,000 take 500 MB more than 64 do)."""
    return EVAL_BATCH if torch.device(device).type == "cuda" else config.batch_size


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in an epoch of n images: a last batch of one image breaks BatchNorm's training
    statistics, so it is dropped."""
    return n // batch_size + (1 if n % batch_size > 1 else 0)


def scheduled_lrs(config: TrainConfig, n: int) -> list[float]:
    """The learning rate of each epoch's last step under `config` for n training images: what an
    honest run records in its History, computed here without a model."""
    steps = steps_per_epoch(n, config.batch_size)
    opt = _optimizer(nn.Linear(1, 1), config, torch.device("cpu"))
    sched = _schedule(opt, config, steps * config.epochs)
    lrs = []
    for step in range(steps * config.epochs):
        lr = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
        if (step + 1) % steps == 0:
            lrs.append(lr)
    return lrs


def _optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # What torch registers, not what the model's own parameters() says: the trainer trains what it counts.
    params = [p for p in registered_parameters(model) if p.requires_grad]
    # Fused kernels update every parameter in one launch on CUDA; the CPU keeps the default loop.
    # Capturable: its step count lives on the device, so the step can be captured in a CUDA graph.
    fused = {"fused": True} if device.type == "cuda" else {}
    capturable = {"capturable": True} if device.type == "cuda" else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov and config.momentum > 0,
                               weight_decay=config.weight_decay, **fused)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay, **fused, **capturable)


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
         on_epoch: Callable[[EpochRecord], None] | None, on_logits: OnLogits | None, capture: bool) -> dict:
    model, notes = s.model, s.notes
    images, labels = data.train_images.to(device), data.train_labels.to(device)  # resident for the whole run, as uint8
    val_images = data.val_images.to(device)
    n, bs = len(labels), config.batch_size
    steps = steps_per_epoch(n, bs)
    if n % bs == 1:
        notes.append("the last training batch of each epoch held 1 image and was dropped (BatchNorm needs 2)")
    if steps == 0:
        raise ModelError(f"{n} training image(s) are too few for a batch; use at least 2")
    g = torch.Generator(device=device).manual_seed(config.seed)
    first = Normalize(data.mean, data.std, device, False)(images[:bs]), labels[:bs]
    mode = choose_mode(model, lambda m: _optimizer(m, config, device), *first,
                       candidate_modes(device, s.channels_last, s.precision == "bf16"), wall_timer(device), notes)
    s = replace(s, precision=mode.precision, channels_last=mode.channels_last)
    norm = Normalize(data.mean, data.std, device, s.channels_last)
    opt = _optimizer(model, config, device)
    sched = _schedule(opt, config, steps * config.epochs)
    step_fn = make_step(model, opt, device, s.precision, bs, notes, capture=capture)
    predict = dict(mean=data.mean, std=data.std, device=device, channels_last=s.channels_last, precision=s.precision,
                   batch_size=eval_batch_size(device, config))
    check_every = 1 if device.type == "cpu" else NAN_CHECK_EVERY  # a CPU check costs no sync
    score = _scores(data) if data.val_labels is not None else None  # None: the labels are elsewhere

    epochs: list[EpochRecord] = []
    best: tuple[float, int, dict] | None = None  # (val accuracy, epoch, weights) to keep
    status, message, train_time = "ok", f"trained {config.epochs} epochs", 0.0
    step_losses = torch.zeros(steps * config.epochs, device=device)  # on the device: no sync per step
    done, trained, capped = 0, 0, False  # steps run, images trained on, stopped by the safety net
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, device=device, generator=g)
        loss_sum = torch.zeros((), device=device)
        diverged, epoch_images = False, 0
        for step in range(steps):
            idx = perm[step * bs:(step + 1) * bs]
            x = images[idx]
            if config.augment == "crop_flip":
                x = _crop_flip(x, g)
            loss = step_fn(norm(x), labels[idx])
            lr = opt.param_groups[0]["lr"]  # the rate this step used (the scheduler moves on next)
            sched.step()
            loss_sum += loss * len(idx)
            step_losses[done] = loss
            done, epoch_images = done + 1, epoch_images + len(idx)
            if (step + 1) % check_every == 0 or step == steps - 1:
                if not torch.isfinite(loss_sum):
                    diverged = True
                    status, message = "diverged", f"training loss became NaN or infinite in epoch {epoch}, step {step + 1}; the run stopped"
                    break
            if config.max_seconds and train_time + time.perf_counter() - t0 > config.max_seconds and step < steps - 1:
                capped = True
                message = (f"stopped by the budget's {config.max_seconds:g} s safety net in epoch {epoch}, after "
                           f"{step + 1} of its {steps} steps")
                break
        sync(device)
        trained += epoch_images
        train_time += time.perf_counter() - t0
        if diverged:
            break
        val_logits = predict_logits(model, val_images, **predict)
        if not bool(torch.isfinite(val_logits).all()):
            status, message = "diverged", f"the validation outputs became NaN or infinite in epoch {epoch}; the run stopped"
            break
        if score is None:
            on_logits("val", val_logits)  # type: ignore[misc]
            if data.test_images is not None:
                on_logits("test", predict_logits(model, data.test_images, **predict))  # type: ignore[misc]
            val_loss = val_accuracy = None
        else:
            val_loss, val_accuracy = score("val", val_logits)
            # Keep the weights to evaluate: the best validation epoch (earliest on ties) or the last.
            if best is None or config.select == "last" or val_accuracy > best[0]:
                best = (val_accuracy, epoch, copy.deepcopy(model.state_dict()))
        record = EpochRecord(epoch, (loss_sum / epoch_images).item(), val_loss, val_accuracy, time.perf_counter() - t0, lr)
        epochs.append(record)
        if on_epoch:
            on_epoch(record)
        if capped:
            break

    test = None
    if best is not None:
        model.load_state_dict(best[2])
        if data.test_images is not None and score is not None:
            test = score("test", predict_logits(model, data.test_images, **predict))
    quarter = max(1, done // 4)
    losses = step_losses[:done]
    start, end = (losses[:quarter].mean().item(), losses[-quarter:].mean().item()) if done else (None, None)
    return dict(
        status=status, message=message, epochs=tuple(epochs), selected_epoch=best[1] if best else None,
        loss_start=start if start is None or math.isfinite(start) else None,
        loss_end=end if end is None or math.isfinite(end) else None, stopped_early=capped,
        test_loss=test[0] if test else None, test_accuracy=test[1] if test else None,
        params=s.params, flops_per_image=s.flops, peak_memory_bytes=_peak_memory(device),
        train_images_per_second=trained / train_time if train_time else 0.0, device=device.type,
        precision=s.precision, channels_last=s.channels_last, notes=tuple(notes),
        val_images=len(val_images) if score is not None else 0,
    )


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


__all__ = ["OnLogits", "TrainingData", "predict_logits", "scheduled_lrs", "steps_per_epoch", "train"]
