"""Build each model class in the sandbox and map a batch of images to logits: the facts behind
the `models_run` check (grader/checks/run.py judges them).

One child per model (a model that calls os._exit cannot take the other's result with it). The
parent checks the logits itself: shape (N, 10), floating point, finite, and not already
probabilities. The architecture the child measured is held against the class's code, which the
grader reads itself: what the code shows no trace of is not believed. torch is never imported
here: the parent needs only numpy.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from grader.analysis.architecture import Architecture, Traces, architecture_from_code, code_traces, reconcile
from grader.analysis.models import collect_definitions
from grader.analysis.source import ParsedCell
from grader.child.anatomy import KINDS
from grader.child.protocol import CHECK_BATCH, Anatomy, Report, Request
from grader.notebook import Cell, Notebook
from grader.sandbox.extract import Extraction, extract_models
from grader.sandbox.files import ArraySpec
from grader.sandbox.detect import detect_isolation
from grader.sandbox.isolation import Isolation, require
from grader.sandbox.model_child import ChildRun, Timeouts, model_spec, run_model_child
from grader.sandbox.process import ChildResult, Limits

BATCH_SIZE = 4
NUM_CLASSES = 10


@dataclass(frozen=True)
class ModelCheck:
    """How one model class fared: built, and mapped a batch to logits?"""

    name: str
    """The class name."""
    passed: bool
    """It was built and mapped (N, 3, 32, 32) to (N, 10) float logits."""
    kind: str
    """Why not, as an id: ok, missing, newer_syntax, needs_args, too_many_params, shape, not_tensor, network, file,
    processes, exit, timeout, killed_memory, killed_gpu_memory, killed_output, exited, crashed, invalid, ..."""
    message: str
    """What went wrong, in words a student can act on ('' when it passed)."""
    built_as: str
    """The call the grader made, e.g. 'LeNet5()' or 'WideResNetLite(10, width=48)'."""
    params: int | None = None
    """Parameters, counted by the child."""
    flops_per_image: int | None = None
    """Floating-point operations of one forward pass per image (conv and linear layers)."""
    architecture: Architecture | None = None
    """What the built model is made of, measured on its forward pass and held against its code
    (analysis.architecture.reconcile); None when unmeasured or implausible."""
    note: str = ""
    """A remark that does not fail the check (a tuple output, a softmax at the end)."""
    child: ChildResult | None = None
    """The sandbox's account of the run."""
    flag: str = ""
    """Where the child's account disagrees with the code, for the instructor ('' when it does not)."""


@dataclass(frozen=True)
class ModelsRun:
    """Every model class, run."""

    isolation: Isolation
    """The isolation every child ran under."""
    models: Mapping[str, ModelCheck]
    """Class name -> outcome, in request order."""
    extraction: Extraction
    """The module the children ran."""


def run_models(notebook: Notebook, class_names: Sequence[str], *, max_params: int, max_flops: int | None = None,
               require_isolation: bool = False, isolation: Isolation | None = None, timeouts: Timeouts = Timeouts(),
               limits: Limits = Limits(), seed: int = 0, on_check: Callable[[str], None] | None = None) -> ModelsRun:
    """Extract `class_names` from `notebook` and check each in its own child (`on_check(name)` first)."""
    iso = isolation or detect_isolation()
    if require_isolation:
        require(iso)
    extraction = extract_models(notebook, tuple(class_names))
    models = {}
    for name in class_names:
        if on_check:
            on_check(name)
        models[name] = check_model(extraction, name, max_params, iso, max_flops=max_flops, timeouts=timeouts,
                                   limits=limits, seed=seed)
    return ModelsRun(iso, models, extraction)


def check_model(extraction: Extraction, name: str, max_params: int, iso: Isolation, *, max_flops: int | None = None,
                timeouts: Timeouts = Timeouts(), limits: Limits = Limits(), seed: int = 0) -> ModelCheck:
    """Build `name` from the extracted module in a child and check its forward pass."""
    import numpy as np

    spec = model_spec(extraction, name)
    inst = extraction.instantiations.get(name)
    built_as = inst.source if inst else f"{name}()"
    if name in extraction.cannot_run:
        return ModelCheck(name, False, "newer_syntax", extraction.cannot_run[name], built_as)
    if name in extraction.missing or name not in extraction.classes:
        return ModelCheck(name, False, "missing", f"class {name} is not defined in the notebook", built_as)
    # A fixed batch of normalized-looking images: the same for every model and every run.
    batch = np.random.default_rng(seed).uniform(-1, 1, (BATCH_SIZE, 3, 32, 32)).astype(np.float32)
    run = run_model_child(Request("check", spec, seed=seed, max_params=max_params), extraction, isolation=iso,
                          inputs={f"{CHECK_BATCH}.npy": _npy_bytes(batch)},
                          arrays={"logits": ArraySpec(kinds="f", max_bytes=64 * 2**20)}, timeouts=timeouts, limits=limits)
    return judge(run, built_as, max_flops, code_reading(extraction, name))


def code_reading(extraction: Extraction, name: str) -> tuple[Architecture | None, Traces | None]:
    """The class as the grader reads it in the module the child ran (with the blocks the notebook's
    call hands to it): what the child's measured architecture is held against."""
    try:
        tree = ast.parse(extraction.source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None, None
    defs = collect_definitions([ParsedCell(Cell(0, "code", extraction.source), extraction.source, tree)])
    inst = extraction.instantiations.get(name)
    handed = tuple(n for n in (inst.needs if inst else ()) if n in defs.classes and n != name)
    return architecture_from_code(defs, name, handed), code_traces(defs, name, handed)


def judge(run: ChildRun, built_as: str, max_flops: int | None = None,
          code: tuple[Architecture | None, Traces | None] = (None, None)) -> ModelCheck:
    """Turn the child's account into a pass or a failure a student can act on; its measured
    architecture held against the code's reading (`code`)."""
    report = run.report or Report(run.name)
    measured = measured_architecture(report.anatomy, report.params, report.flops_per_image)
    architecture, untraced = reconcile(measured, *code) if measured else (None, ())
    flag = (f"{run.name}: its run reported {', '.join(untraced)}, which its code shows no trace of; What differs and "
            "the discussion check use the code's reading instead (the model code may have forged its child's "
            "report)") if untraced else ""
    common = dict(name=run.name, built_as=report.built_as or built_as, params=report.params,
                  flops_per_image=report.flops_per_image, child=run.child, architecture=architecture, flag=flag)
    if run.failure:
        kind = run.child.status if not run.child.ok else report.kind or "exception"
        return ModelCheck(passed=False, kind=kind, message=run.failure, **common)
    if max_flops is not None and (report.flops_per_image or 0) > max_flops:
        return ModelCheck(passed=False, kind="too_many_flops", message=(
            f"{run.name} takes {report.flops_per_image / 1e9:.1f} GFLOPs per 32x32 image, over the limit of "
            f"{max_flops / 1e9:g}: the grading budget cannot train it in time; make it smaller"), **common)
    problem, remark = _check_logits(run.child.arrays.get("logits"), report)
    notes = [f"{run.name}: {text}" for text in (report.logits_note, remark) if text]
    return ModelCheck(passed=not problem, kind="shape" if problem else "ok", message=f"{run.name}: {problem}" if problem else "",
                      note="; ".join(notes), **common)


# The most a real model of this assignment could have (max_params is 50 million at most): a report
# beyond these was written by the student's code, not measured, and is dropped whole.
MAX_LAYERS = 10_000
MAX_WIDTH = 1_000_000


def measured_architecture(anatomy: Anatomy | None, params: int | None, flops: int | None) -> Architecture | None:
    """The child's account of the model as an Architecture, or None when it is implausible.

    The child ran the student's code, so its report is untrusted: its types were checked on
    reading (grader.typed); here counts and widths must be in range, and kind names not in the
    torch.nn allow-list (KINDS) become 'other', so nothing a student wrote is ever shown.
    """
    if anatomy is None:
        return None
    counts = (anatomy.conv_layers, anatomy.linear_layers, anatomy.norm_layers, anatomy.dropout_layers, anatomy.residual)
    if not all(0 <= n <= MAX_LAYERS for n in counts) or len(anatomy.widths) > MAX_LAYERS \
            or not all(1 <= w <= MAX_WIDTH for w in anatomy.widths):
        return None
    return Architecture("run", conv_layers=anatomy.conv_layers, linear_layers=anatomy.linear_layers,
                        widths=anatomy.widths, norms=_kinds(anatomy.norms), norm_layers=anatomy.norm_layers,
                        dropout_layers=anatomy.dropout_layers, residual=anatomy.residual,
                        pooling=_kinds(anatomy.pooling), activations=_kinds(anatomy.activations),
                        params=params if params is None or params >= 0 else None,
                        flops_per_image=flops if flops is None or flops >= 0 else None)


def _kinds(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({name if name in KINDS else "other" for name in names}))


def _check_logits(logits: Any, report: Report) -> tuple[str, str]:
    """(problem, remark) for the forward output; the parent's own check, whatever the child claimed."""
    import numpy as np

    if logits is None:
        return f"forward returned {report.out_dtype or 'something'} values that are not numbers", ""
    if (report.out_dtype or "float32").startswith(("int", "uint", "bool")):
        return (f"forward returns {report.out_dtype} values (class ids?), not float logits; "
                "return the last layer's raw scores"), ""
    if logits.shape != (BATCH_SIZE, NUM_CLASSES):
        return (f"maps a batch of shape ({BATCH_SIZE}, 3, 32, 32) to {tuple(logits.shape)} instead of "
                f"({BATCH_SIZE}, {NUM_CLASSES}); the last layer must give 10 scores per image, e.g. nn.Linear(..., 10)"), ""
    if not np.isfinite(logits).all():
        return "forward returns NaN or infinite values on a batch of ordinary images", ""
    if (logits >= 0).all() and np.allclose(logits.sum(axis=1), 1.0, atol=1e-3):
        return "", ("forward returns probabilities (rows sum to 1): CrossEntropyLoss expects raw logits, "
                    "so remove the final softmax")
    return "", ""


def _npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


__all__ = ["NUM_CLASSES", "ModelCheck", "ModelsRun", "check_model", "code_reading", "judge", "measured_architecture",
           "run_models"]
