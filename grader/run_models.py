"""The `models_run` check: build each model class in the sandbox and map a batch to logits.

One child per model (a model that calls os._exit cannot take the other's result with it).
The child announces its phases (import, instantiate, forward), each with its own deadline; the
parent checks the logits itself: shape (N, 10), floating point, finite, and not already
probabilities. torch is never imported here: the parent needs only numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from grader.check import CheckResult, make_result
from grader.extract import Extraction, extract_models
from grader.isolation import Isolation, detect_isolation, require
from grader.notebook import Notebook
from grader.rubric import Rubric
from grader.sandbox import ChildResult, Limits, Phase, run_in_sandbox
from grader.sandbox_io import ArraySpec

CHILD_SCRIPT = Path(__file__).with_name("child.py")
BATCH_SIZE = 4
NUM_CLASSES = 10

# What the child's result.json may hold (anything else is dropped; wrong types are rejected).
MODEL_SCHEMA = {
    "name": str, "ok": bool, "phase": str, "kind": str, "message": str, "signature": str, "built_as": str,
    "params": (int, type(None)), "meta_params": (int, type(None)), "flops": (int, type(None)),
    "out_shape": ([int], type(None)), "out_dtype": str,
}
RESULT_SCHEMA = {"model": MODEL_SCHEMA, "attempts": [str]}


@dataclass(frozen=True)
class Timeouts:
    """Wall-clock seconds per phase of the models_run child."""

    import_s: float = 120.0
    """Importing torch and the extracted module."""
    instantiate_s: float = 60.0
    """Counting parameters on the meta device and building the model."""
    forward_s: float = 60.0
    """One forward pass on a small batch."""

    def phases(self) -> tuple[Phase, ...]:
        return (
            Phase("import", self.import_s, "the import of the model code"),
            Phase("instantiate", self.instantiate_s, "the constructor"),
            Phase("forward", self.forward_s, "forward()"),
        )


@dataclass(frozen=True)
class ModelRun:
    """How one model class fared."""

    name: str
    """The class name."""
    passed: bool
    """It was built and mapped (N, 3, 32, 32) to (N, 10) float logits."""
    kind: str
    """Why not, as an id: ok, needs_args, too_many_params, shape, not_tensor, network, file, processes, exit,
    timeout, killed_memory, killed_output, exited, crashed, invalid, ..."""
    message: str
    """What happened, in words a student can act on ('' when it passed without remarks)."""
    built_as: str
    """The call the grader made, e.g. 'LeNet5()' or 'WideResNetLite(10, width=48)'."""
    params: int | None = None
    """Trainable and frozen parameters, counted by the child."""
    flops: int | None = None
    """Floating-point operations of one forward pass per image (conv and linear layers)."""
    hint: str = ""
    """An extra remark that does not fail the check (softmax output)."""
    child: ChildResult | None = None
    """The sandbox's account of the run."""

    def to_dict(self) -> dict:
        return {
            "name": self.name, "passed": self.passed, "kind": self.kind, "message": self.message,
            "built_as": self.built_as, "params": self.params, "flops": self.flops, "hint": self.hint,
            "child": self.child.to_dict() if self.child else None,
        }


@dataclass(frozen=True)
class ModelsRun:
    """The outcome of running every model class."""

    isolation: Isolation
    """The isolation every child ran under."""
    models: Mapping[str, ModelRun]
    """Class name -> outcome, in request order."""
    check: CheckResult
    """The models_run check."""
    extraction: Extraction
    """The module the children ran."""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    """Extraction warnings, for the report."""

    def to_dict(self) -> dict:
        return {
            "isolation": self.isolation.to_dict(), "models": {k: v.to_dict() for k, v in self.models.items()},
            "check": self.check.to_dict(), "extraction": self.extraction.to_dict(), "warnings": list(self.warnings),
        }


def run_models(
    notebook: Notebook,
    class_names: Sequence[str],
    rubric: Rubric,
    *,
    require_isolation: bool = False,
    isolation: Isolation | None = None,
    timeouts: Timeouts = Timeouts(),
    limits: Limits = Limits(),
    seed: int = 0,
) -> ModelsRun:
    """Extract `class_names` from `notebook` and run the models_run check on each in the sandbox."""
    iso = isolation or detect_isolation()
    if require_isolation:
        require(iso)
    extraction = extract_models(notebook, tuple(class_names))
    models = {name: check_model(extraction, name, rubric, iso, timeouts=timeouts, limits=limits, seed=seed)
              for name in class_names}
    return ModelsRun(iso, models, _score(models, rubric), extraction, extraction.warnings)


def check_model(extraction: Extraction, name: str, rubric: Rubric, iso: Isolation, *,
                timeouts: Timeouts = Timeouts(), limits: Limits = Limits(), seed: int = 0) -> ModelRun:
    """Build `name` from the extracted module in a child and check its forward pass."""
    import numpy as np

    inst = extraction.instantiations.get(name)
    built_as = inst.source if inst else f"{name}()"
    if name in extraction.missing or name not in extraction.classes:
        return ModelRun(name, False, "missing", f"class {name} is not defined in the notebook", built_as)
    # A fixed batch of normalized-looking images: the same for every model and every run.
    batch = np.random.default_rng(seed).uniform(-1, 1, (BATCH_SIZE, 3, 32, 32)).astype(np.float32)
    request = {
        "task": "check", "module": "submission.py", "seed": seed, "max_params": rubric.assignment.max_params,
        "batch": "batch.npy",
        "model": {"name": name, "args": list(inst.args) if inst else None, "kwargs": dict(inst.kwargs) if inst else {}},
    }
    child = run_in_sandbox(
        CHILD_SCRIPT, phases=timeouts.phases(), isolation=iso, request=request, schema=RESULT_SCHEMA,
        inputs={"submission.py": extraction.source.encode(), "batch.npy": _npy_bytes(batch)},
        arrays={"logits": ArraySpec(kinds="f", max_bytes=64 * 2**20)}, limits=limits,
    )
    return judge(name, child, built_as)


def judge(name: str, child: ChildResult, built_as: str) -> ModelRun:
    """Turn the child's account into a pass or a failure a student can act on."""
    report = (child.payload or {}).get("model") or {}
    built_as = report.get("built_as") or built_as
    common = dict(name=name, built_as=built_as, params=report.get("params"), flops=report.get("flops"), child=child)
    if not child.ok:
        tail = child.stderr_tail(3)
        extra = f"; last lines of its error output:\n{tail}" if child.status == "crashed" and tail else ""
        return ModelRun(passed=False, kind=child.status, message=f"{name} {child.detail}{extra}", **common)
    if not report.get("ok"):
        message = report.get("message") or "failed without saying why"
        return ModelRun(passed=False, kind=report.get("kind") or "exception", message=f"{name}: {message}", **common)
    logits = child.arrays.get("logits")
    problem, hint = _check_logits(logits, report)
    return ModelRun(passed=not problem, kind="shape" if problem else "ok", message=f"{name}: {problem}" if problem else "",
                    hint=f"{name}: {hint}" if hint else "", **common)


def _check_logits(logits: Any, report: Mapping[str, Any]) -> tuple[str, str]:
    """(problem, hint) for the forward output; the parent's own check, whatever the child claimed."""
    import numpy as np

    if logits is None:
        return f"forward returned {report.get('out_dtype') or 'something'} values that are not numbers", ""
    if report.get("out_dtype", "float32").startswith(("int", "uint", "bool")):
        return (f"forward returns {report['out_dtype']} values (class ids?), not float logits; "
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


def _score(models: Mapping[str, ModelRun], rubric: Rubric) -> CheckResult:
    """Points for the share of models that run; the messages say what each failure was."""
    passed = [m for m in models.values() if m.passed]
    ok = bool(models) and len(passed) == len(models)
    lines = [m.message for m in models.values() if m.message] + [m.hint for m in models.values() if m.hint]
    if ok and not lines:
        lines = [f"{', '.join(models)} build and map (N, 3, 32, 32) to (N, 10) logits"]
    fraction = len(passed) / len(models) if models else 0.0
    return make_result("models_run", rubric, ok, fraction, "\n".join(lines))


def _npy_bytes(array) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


__all__ = ["ModelRun", "ModelsRun", "Timeouts", "check_model", "judge", "run_models"]
