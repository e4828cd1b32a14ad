"""The child's program, inside the sandbox: build one student model, then check it or train it.

Started by grader/child/__main__.py with this package copied into IN_DIR, it imports only the
standard library, numpy, torch and this package. It announces each phase (its deadline starts
then), and always ends by writing a Report (protocol.py), whatever the student's code did short of
killing the process. Everything it writes is advisory: the parent validates the report, checks the
logits itself and computes every metric from labels this process never sees.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
from dataclasses import dataclass, field, replace

from grader.child.explain import explain
from grader.child.protocol import CHECK_BATCH, PROGRESS, REQUEST, RESULT, SUBMISSION, TRAIN_INPUTS, Report, Request
from grader.child.seal import Seal, guarded, plain, write_json, write_npy

ATTEMPTS: list[str] = []  # what the student's code tried that the sandbox forbids (from audit events)


class _Refused(Exception):
    """The model cannot be run as handed in, for a reason the child states itself (not an error in it)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class _Progress:
    """How far the child got with one model: the report as it stands, and what forward is running."""

    report: Report
    layers: list = field(default_factory=list)
    """(name, module, input shape) of the modules running inside forward, innermost last."""

    def enter(self, phase: str) -> None:
        self.note(phase=phase)
        write_json(PROGRESS, {"phase": phase})

    def epoch(self, done: int) -> None:
        """Epochs completed, for the grader's display (same phase: its clock goes on)."""
        write_json(PROGRESS, {"phase": self.report.phase, "epoch": done})

    def note(self, **facts) -> None:
        self.report = replace(self.report, **facts)

    def final(self, **facts) -> Report:
        return replace(self.report, attempts=tuple(ATTEMPTS[:20]), **facts)


def main(in_dir: str) -> None:
    # The report's writer, held in this frame from before any student code runs: whatever that code
    # later does to module attributes (this module's, seal's, json's, os's) does not reach it.
    write, as_plain, _exit = write_json, plain, os._exit
    # As PID 1 of a namespace a process ignores SIGTERM unless it has a handler: install one,
    # so a well-behaved child stops when asked (student code that overrides it gets SIGKILL).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
    sys.addaudithook(_audit)
    with open(os.path.join(in_dir, REQUEST)) as f:
        request = Request.from_json(f.read())
    progress = _Progress(Report(request.model.name))
    try:
        report = run(request, in_dir, progress)
    except _Refused as e:
        report = progress.final(kind=e.kind, message=str(e))
    except BaseException as e:  # SystemExit and KeyboardInterrupt from student code included
        kind, message = explain(e, progress.report.phase, progress.layers, ATTEMPTS)
        report = progress.final(kind=kind, message=message)
    write(RESULT, as_plain(report))
    _exit(0)  # skip atexit handlers and finalizers the student may have registered (stdout is unbuffered: -u)


def run(request: Request, in_dir: str, progress: _Progress) -> Report:
    progress.enter("import")
    import numpy as np
    import torch

    from grader.child.runtime import ModelError, logits_of
    from grader.child.train import TrainingData, train  # the trainer is in place before any student code runs

    if request.task == "train":  # torch patches these itself the first time (profiling hooks, dynamo): let it, first
        for optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
            optimizer([torch.zeros(1, requires_grad=True)], lr=0.1)
    me = sys.modules[__name__]
    untouched = _refuse_if_changed(Seal(guarded(torch, request.task) + [(me, n) for n in (
        "_held", "_meta_held", "_forward", "_train", "_refuse_if_too_big", "_anatomy")]))
    torch.manual_seed(request.seed)
    module = _import_module(os.path.join(in_dir, SUBMISSION))
    cls = getattr(module, request.model.name, None)
    if not inspect.isclass(cls) or not issubclass(cls, torch.nn.Module):
        raise _Refused("missing", f"class {request.model.name} is not defined as an nn.Module by the extracted code")
    progress.enter("instantiate")
    model = _build(torch, module, cls, request, progress)
    untouched()
    if request.task == "train":
        progress.enter("train")
        report = _train(np, torch, TrainingData, train, model, request, in_dir, progress)
        untouched()
        return report
    progress.enter("forward")
    batch = torch.from_numpy(np.load(os.path.join(in_dir, f"{CHECK_BATCH}.npy"), allow_pickle=False))
    try:
        logits, note = logits_of(_forward(torch, model, batch, progress, module, request.max_params))
    except ModelError as e:
        raise _Refused("not_tensor", str(e)) from None
    untouched()
    anatomy = _anatomy(torch, model, batch)
    untouched()
    if logits.is_floating_point() or logits.dtype in (torch.int64, torch.int32, torch.bool):
        write_npy("out/logits.npy", logits.detach().float().cpu().numpy())
    return progress.final(ok=True, kind="ok", out_shape=tuple(logits.shape),
                          out_dtype=str(logits.dtype).replace("torch.", ""), logits_note=note, anatomy=anatomy)


def _anatomy(torch, model, batch):
    """The model's layers, from a second forward pass of the batch; None when that pass fails: the
    check passed on the first, and a description is not worth failing it."""
    from grader.child import anatomy

    try:
        return anatomy.measure(torch, model, batch)
    except Exception:
        return None


def _refuse_if_changed(seal: Seal):
    """A check bound now, so that a later replacement of this module's names cannot hide from it."""
    changed = seal.changed

    def untouched() -> None:
        names = changed()
        if names:
            raise _Refused("tamper", f"the model code replaced {', '.join(names[:4])}: model classes must not "
                                     "patch torch or the grader")

    return untouched


def _import_module(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("submission", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission"] = module
    spec.loader.exec_module(module)
    return module


def _build(torch, module, cls, request: Request, progress: _Progress):
    """The model, built without arguments when its constructor allows it, else as the notebook builds it."""
    spec = request.model
    signature = f"{spec.name}{_signature(cls)}"
    progress.note(signature=signature)
    missing = _required_params(cls)
    if missing and not spec.arguments:
        raise _Refused("needs_args", (
            f"{signature} needs arguments ({', '.join(missing)}) and the notebook never builds it with arguments "
            f"the grader can rebuild (literals, constants, classes and functions of the notebook); give every "
            f"parameter a default, e.g. def __init__(self, {missing[0]}=...)"))
    # The notebook's own call, evaluated where its names live: the extracted module.
    args, kwargs = eval(f"(lambda *a, **k: (a, k))({spec.arguments})", vars(module)) if spec.arguments else ((), {})
    meta = _meta_held(torch, module, cls, args, kwargs)
    progress.note(built_as=f"{spec.name}({spec.arguments})", meta_params=meta and meta.total)
    _refuse_if_too_big(meta, spec.name, request.max_params)
    torch.manual_seed(request.seed)
    model = cls(*args, **kwargs)
    _refuse_if_too_big(_held(model, module, progress), spec.name, request.max_params)
    return model


def _refuse_if_too_big(held, name: str, limit: int) -> None:
    """Refused when the model holds more numbers than the limit: its registered parameters, and
    the tensors it keeps elsewhere (a parameters() that lists fewer hides nothing from this)."""
    from grader.child.runtime import MAX_VISITED

    if held is not None and not held.complete:
        raise _Refused("too_many_params", f"{name} links more objects than the grader counts ({MAX_VISITED:,}) to find "
                                          "the tensors it holds; keep its weights in registered layers and parameters")
    if held is not None and held.total > limit:
        outside = (f" ({held.outside:,} of them in tensors outside its registered parameters)"
                   if held.outside > limit // 100 else "")
        raise _Refused("too_many_params", f"{name} has {held.total:,} parameters{outside}, over the limit of "
                                          f"{limit:,}; make it smaller")


def _held(model, module, progress: _Progress):
    """What the model holds (grader.child.runtime.held), noted in the report: `params` is its
    registered parameters, counted whatever its own parameters() says."""
    from grader.child.runtime import held

    found = held(model, vars(module))
    progress.note(params=found.registered)
    return found


def _signature(cls) -> str:
    try:
        return str(inspect.signature(cls))
    except (TypeError, ValueError):
        return "(...)"


def _required_params(cls) -> list[str]:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _meta_held(torch, module, cls, args, kwargs):
    """What the model holds, built on the meta device: nothing is allocated, so a 10-billion model costs nothing."""
    from grader.child.runtime import held

    try:
        with torch.device("meta"):
            return held(cls(*args, **kwargs), vars(module))
    except Exception:  # some constructors call .item() or numpy on tensors; count after building instead
        return None


def _forward(torch, model, batch, progress: _Progress, module, limit: int):
    """Run the batch through the model with hooks that know which layer is running, counting its
    FLOPs at the dispatch level (a functional convolution on a bare tensor counts too); count what it
    holds again (lazy layers exist only now) against `limit`."""
    from grader.child.runtime import count_flops

    stack = progress.layers

    def run():
        stack.clear()  # the counter may run the forward twice (count_flops): the stack is the last run's
        return model(batch)

    def pre(name):
        def hook(layer, inputs):
            shape = tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else ()
            stack.append((name, layer, shape))
        return hook

    def post(layer, inputs, output):
        if stack:
            stack.pop()

    handles = []
    for name, layer in model.named_modules():
        handles.append(layer.register_forward_pre_hook(pre(name or type(layer).__name__)))
        handles.append(layer.register_forward_hook(post))
    model.eval()
    with torch.no_grad():
        out, flops = count_flops(run)
    for h in handles:
        h.remove()
    progress.note(flops_per_image=None if flops is None else flops // len(batch))
    _refuse_if_too_big(_held(model, module, progress), type(model).__name__, limit)
    return out


def _train(np, torch, TrainingData, train, model, request: Request, in_dir: str, progress: _Progress) -> Report:
    """Train under the fixed config with the grader's trainer, on data without val/test labels.

    Every epoch's validation and test logits go to out/val_logits.npy and out/test_logits.npy (one
    row per epoch); the parent, which holds the labels, computes every metric and picks the epoch.
    """
    arrays = {k: torch.from_numpy(np.load(os.path.join(in_dir, f"{k}.npy"), allow_pickle=False)) for k in TRAIN_INPUTS}
    data = TrainingData(train_images=arrays["train_x"], train_labels=arrays["train_y"], val_images=arrays["val_x"],
                        test_images=arrays["test_x"], mean=request.mean, std=request.std)
    logits: dict[str, list] = {"val": [], "test": []}
    history = train(model, data, request.config, device=request.device,
                    on_logits=lambda split, out: logits[split].append(out.cpu().numpy()),
                    on_epoch=lambda record: progress.epoch(record.epoch))
    for split, rows in logits.items():
        if rows:
            write_npy(f"out/{split}_logits.npy", np.stack(rows))
    ok = history.status == "ok"
    return progress.final(ok=True, kind="ok" if ok else history.status, message="" if ok else history.message,
                          params=history.params, flops_per_image=history.flops_per_image, history=history)


def _audit(event: str, args: tuple) -> None:
    # Audit hooks cannot be removed from Python code; they record, the sandbox enforces.
    if len(ATTEMPTS) >= 50:
        return
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            address = f"{address[0]}:{address[1]}"
        ATTEMPTS.append(f"connect {address}"[:200])
    elif event == "socket.getaddrinfo":  # the seccomp filter refuses the socket itself: no connect follows
        ATTEMPTS.append(f"resolve {args[0]}:{args[1]}"[:200])
    elif event in ("subprocess.Popen", "os.system", "os.fork", "os.posix_spawn"):
        ATTEMPTS.append(f"spawn {event}")


__all__ = ["main", "run"]
