"""What crosses the trust boundary between the grader (the parent) and its sandboxed child.

Both sides import this module, so the two can never disagree: the parent writes a `Request` and
reads the child's `Report`, validating it against these very dataclasses (grader.typed); the
child reads the request and writes the report. Nothing here imports torch or runs student code.

Files, as the child sees them (IN_DIR is read-only; the working folder is the child's own):

    IN_DIR/request.json       the Request
    IN_DIR/submission.py      the extracted model classes (grader.sandbox.extract)
    IN_DIR/grader/child/      this package, copied whole
    IN_DIR/NAME.npy           inputs: the check batch, or the training arrays without val/test labels
    out/progress.json         {"phase": NAME}, written as each phase starts (its deadline starts then);
                              {"phase": "train", "epoch": K} after each epoch K, for display only
    out/result.json           the Report
    out/NAME.npy              outputs: the check batch's logits, or every epoch's val/test logits

The parent trusts none of it: it validates the report, checks the logits itself and computes
every metric from labels the child never sees.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal, Mapping

from grader.child.config import TrainConfig

REQUEST, SUBMISSION, PROGRESS, RESULT = "request.json", "submission.py", "out/progress.json", "out/result.json"

Task = Literal["check", "train"]
PHASES: Mapping[str, tuple[str, ...]] = {
    "check": ("import", "instantiate", "forward"),
    "train": ("import", "instantiate", "train"),
}
"""The phases of each task, in the order the child announces them."""
PHASE_LABELS = {"import": "the import of the model code", "instantiate": "the constructor",
                "forward": "forward()", "train": "training"}
"""How messages name each phase."""

CHECK_BATCH = "batch"
"""Input of the check task: float32 (N, 3, 32, 32) images, already normalized."""
TRAIN_INPUTS = ("train_x", "train_y", "val_x", "test_x")
"""Inputs of the train task: training images and labels; validation and test images WITHOUT labels."""
OUTPUTS: Mapping[str, tuple[str, ...]] = {"check": ("logits",), "train": ("val_logits", "test_logits")}
"""Arrays each task writes: the batch's logits; one row of logits per epoch for each split."""


@dataclass(frozen=True)
class ModelSpec:
    """Which class to build, and how."""

    name: str
    arguments: str = ""
    """The constructor's arguments as the notebook writes them ('BasicBlock, [2, 2], num_classes=10'),
    evaluated in the extracted module; '' when the notebook never builds it with rebuildable arguments."""


@dataclass(frozen=True)
class Request:
    """What the parent asks of one child: one model, one task."""

    task: Task
    model: ModelSpec
    seed: int = 0
    max_params: int = 50_000_000
    """Models with more parameters are refused before anything is allocated."""
    config: TrainConfig | None = None
    """train: the fixed configuration (the parent has already cut the training subset)."""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    device: str = "cpu"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Request":
        d = json.loads(text)  # written by the parent: trusted
        config = TrainConfig(**d["config"]) if d.get("config") else None
        return cls(**{**d, "model": ModelSpec(**d["model"]), "config": config,
                      "mean": tuple(d["mean"]), "std": tuple(d["std"])})


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of training."""

    epoch: int
    """1-based epoch number."""
    train_loss: float | None
    """Mean training loss over the epoch's batches (augmented images)."""
    val_loss: float | None
    """Validation loss at the end of the epoch; None where the labels are not (the child)."""
    val_accuracy: float | None
    """Validation accuracy at the end of the epoch, 0..1; None where the labels are not."""
    seconds: float
    """Wall time of the epoch, validation included."""
    lr: float
    """Learning rate of the epoch's last step."""


@dataclass(frozen=True)
class History:
    """Everything one training run produced. The child's has no validation or test metrics: the
    parent, which holds the labels, fills them in from the logits."""

    status: Literal["ok", "diverged"]
    """'diverged' when the loss or the outputs became NaN or infinite and the run stopped early."""
    message: str
    """One line on how the run ended."""
    epochs: tuple[EpochRecord, ...]
    """Completed epochs, in order."""
    selected_epoch: int | None
    """Epoch whose weights were evaluated on the test set (config.select); None before selection."""
    test_loss: float | None
    """Test loss of the selected weights."""
    test_accuracy: float | None
    """Test accuracy of the selected weights, 0..1."""
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
    loss_start: float | None = None
    """Mean training loss over the first quarter of all the steps run (the child's account: shown, never judged)."""
    loss_end: float | None = None
    """Mean training loss over the last quarter of all the steps run (the child's account)."""
    stopped_early: bool = False
    """The run is shorter than the budget's (budget_cut says why), so it is compared with no other run.
    In the child's account a claim; in the grader's record of a student's run, the grader's decision
    (grader.training.retrain)."""
    budget_cut: Literal["", "cost", "time"] = ""
    """Why the run is shorter than the budget's: 'cost', the model's FLOPs bought fewer images than the
    budget's (grader.child.plan, the same on every machine); 'time', the safety net config.max_seconds
    stopped it; '' when it is not."""
    config: TrainConfig | None = None
    """The configuration the run used."""
    torch_version: str = ""
    """torch version that trained the model."""
    val_images: int = 0
    """Validation images each epoch was scored on, by whoever holds the labels (0 in the child's account)."""

    @property
    def selected(self) -> EpochRecord | None:
        return next((e for e in self.epochs if e.epoch == self.selected_epoch), None)


@dataclass(frozen=True)
class Anatomy:
    """What the built model is made of, as the child measured it on the check batch
    (grader/child/anatomy.py). Untrusted like the rest of the report: the parent bounds and cleans
    it (grader.sandbox.models_run.measured_architecture) into an analysis Architecture."""

    conv_layers: int = 0
    """Convolution calls in one forward pass."""
    linear_layers: int = 0
    widths: tuple[int, ...] = ()
    """Output channels of each convolution call, in order."""
    norms: tuple[str, ...] = ()
    """Normalization kinds, as torch.nn class names, sorted."""
    norm_layers: int = 0
    dropout_layers: int = 0
    residual: int = 0
    """Additions of two same-shape tensors both computed from the input: skip connections."""
    pooling: tuple[str, ...] = ()
    activations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Report:
    """What the child says happened to one model: how far it got and what it measured."""

    name: str
    """The class name."""
    ok: bool = False
    """The task completed (the parent still checks the logits itself)."""
    phase: str = "import"
    """The phase the child reached."""
    kind: str = ""
    """'ok', or why not as an id: missing, needs_args, too_many_params, not_tensor, shape, network,
    file, processes, exit, memory, exception."""
    message: str = ""
    """What went wrong, in words a student can act on."""
    signature: str = ""
    """The constructor's signature, e.g. 'WideResNet(num_classes, width=16)'."""
    built_as: str = ""
    """The call the child made, e.g. 'WideResNet(10, width=48)'."""
    params: int | None = None
    """Parameters of the built model (each shared parameter once)."""
    meta_params: int | None = None
    """Parameters counted on the meta device, before anything was allocated."""
    flops_per_image: int | None = None
    """Floating-point operations of one forward pass per image (conv and linear layers)."""
    out_shape: tuple[int, ...] | None = None
    """Shape of the logits the forward returned."""
    out_dtype: str = ""
    logits_note: str = ""
    """How the logits were found in a forward that returns a tuple or list ('' for a tensor)."""
    history: History | None = None
    """train: the run, without validation or test metrics."""
    anatomy: Anatomy | None = None
    """check: the layers and skip connections of the forward pass; None when they could not be measured."""
    attempts: tuple[str, ...] = ()
    """What the code tried that the sandbox forbids (connections, process spawns), from audit events."""


__all__ = ["Anatomy", "CHECK_BATCH", "EpochRecord", "History", "ModelSpec", "OUTPUTS", "PHASES", "PHASE_LABELS", "PROGRESS",
           "REQUEST", "RESULT", "Report", "Request", "SUBMISSION", "TRAIN_INPUTS", "Task"]
