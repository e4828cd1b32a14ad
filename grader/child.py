"""The script that runs INSIDE the sandbox: build the student's models, run them, report in JSON.

Copied into the sandbox's in/ folder and run as `python -I child.py IN_DIR` (under bubblewrap the
child cannot see the grader's files, so this file imports nothing from `grader`: only the
standard library, numpy and torch). Everything it writes is advisory: the parent validates
the JSON, checks the logits itself and computes every metric.

Request (IN_DIR/request.json):
  {"task": "check" | "train", "module": "submission.py", "seed": 0, "max_params": 50000000,
   "model": {"name": CLASS, "args": [...] | null, "kwargs": {...}},
   "batch": "batch.npy",                    # check: float32 (N, 3, 32, 32), already normalized
   "config": {...}, "data": {...}}          # train: see _train
Result (out/result.json): {"model": {...}, "attempts": [...]}; arrays in out/*.npy.
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import re
import signal
import sys
import traceback

ATTEMPTS: list[str] = []  # what the student's code tried that the sandbox forbids (from audit events)


def main(in_dir: str) -> None:
    # As PID 1 of a namespace a process ignores SIGTERM unless it has a handler: install one,
    # so a well-behaved child stops when asked (student code that overrides it gets SIGKILL).
    signal.signal(signal.SIGTERM, lambda *_: os._exit(128 + signal.SIGTERM))
    sys.addaudithook(_audit)
    request = json.load(open(os.path.join(in_dir, "request.json")))
    sys.path.insert(0, in_dir)  # the extracted module, and the trainer for the train task
    report = {"name": request["model"]["name"], "ok": False, "phase": "import", "kind": "", "message": "",
              "signature": "", "built_as": "", "params": None, "meta_params": None, "flops": None, "out_shape": None,
              "out_dtype": ""}
    try:
        run(request, in_dir, report)
    except BaseException as e:  # SystemExit and KeyboardInterrupt from student code included
        report.update(_explain(e, report["phase"], report.get("_stack") or []))
    report.pop("_stack", None)
    _write_json("out/result.json", {"model": report, "attempts": ATTEMPTS[:20]})
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers and finalizers the student may have registered


def run(request: dict, in_dir: str, report: dict) -> None:
    _progress("import")
    import numpy as np
    import torch

    torch.manual_seed(request.get("seed", 0))
    module = _import_module(os.path.join(in_dir, request["module"]))
    spec = request["model"]
    cls = getattr(module, spec["name"], None)
    if not inspect.isclass(cls) or not issubclass(cls, torch.nn.Module):
        report.update(kind="missing", message=f"class {spec['name']} is not defined as an nn.Module by the extracted code")
        return
    report["phase"] = "instantiate"
    _progress("instantiate")
    report["signature"] = f"{spec['name']}{_signature(cls)}"
    # Without arguments when the constructor allows it, else as the notebook itself builds it.
    missing = _required_params(cls)
    args, kwargs = (spec.get("args") or [], spec.get("kwargs") or {}) if missing else ([], {})
    if missing and spec.get("args") is None:
        report.update(kind="needs_args", message=(
            f"{report['signature']} needs arguments ({', '.join(missing)}) and the notebook never builds it "
            f"with literal values; give every parameter a default, e.g. def __init__(self, {missing[0]}=...)"))
        return
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    report["built_as"] = f"{spec['name']}({', '.join(shown)})"
    report["meta_params"] = _meta_params(torch, cls, args, kwargs)
    limit = request.get("max_params", 50_000_000)
    if report["meta_params"] is not None and report["meta_params"] > limit:
        report.update(kind="too_many_params", params=report["meta_params"], message=(
            f"{spec['name']} has {report['meta_params']:,} parameters, over the limit of {limit:,}; make it smaller"))
        return
    torch.manual_seed(request.get("seed", 0))
    model = cls(*args, **kwargs)
    report["params"] = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    if report["params"] > limit:
        report.update(kind="too_many_params", message=(
            f"{spec['name']} has {report['params']:,} parameters, over the limit of {limit:,}; make it smaller"))
        return
    if request.get("task", "check") == "train":
        report["phase"] = "train"
        _progress("train")
        _train(model, request, in_dir, report)
        return
    report["phase"] = "forward"
    _progress("forward")
    batch = torch.from_numpy(np.load(os.path.join(in_dir, request["batch"]), allow_pickle=False))
    out = _forward(torch, model, batch, report)
    if not isinstance(out, torch.Tensor):
        kind = type(out).__name__
        report.update(kind="not_tensor", message=(
            f"forward returned a {kind}, not a tensor; return only the logits tensor of shape (N, 10)"))
        return
    report["out_shape"], report["out_dtype"] = list(out.shape), str(out.dtype).replace("torch.", "")
    if out.is_floating_point() or out.dtype in (torch.int64, torch.int32, torch.bool):
        np.save("out/logits.npy", out.detach().float().cpu().numpy())
    report.update(ok=True, kind="ok")


def _import_module(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("submission", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["submission"] = module
    spec.loader.exec_module(module)
    return module


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


def _meta_params(torch, cls, args, kwargs) -> int | None:
    """Count parameters on the meta device: nothing is allocated, so a 10-billion model costs nothing."""
    try:
        with torch.device("meta"):
            model = cls(*args, **kwargs)
        return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    except Exception:  # some constructors call .item() or numpy on tensors; count after building instead
        return None


def _forward(torch, model, batch, report):
    """Run the batch through the model with hooks that know which layer is running and count MACs."""
    stack: list[tuple[str, object, tuple]] = []
    report["_stack"] = stack
    macs = [0]

    def pre(name):
        def hook(module, inputs):
            shape = tuple(inputs[0].shape) if inputs and isinstance(inputs[0], torch.Tensor) else ()
            stack.append((name, module, shape))
        return hook

    def post(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d) and isinstance(output, torch.Tensor):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs[0] += output[0].numel() * k
        elif isinstance(module, torch.nn.Linear):
            macs[0] += module.in_features * module.out_features
        if stack:
            stack.pop()

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(pre(name or type(module).__name__)))
        handles.append(module.register_forward_hook(post))
    model.eval()
    with torch.no_grad():
        out = model(batch)
    for h in handles:
        h.remove()
    report["flops"] = 2 * macs[0]  # one multiply-add is two floating-point operations, per image
    return out


def _train(model, request: dict, in_dir: str, report: dict) -> None:
    """Train under the fixed config with the grader's trainer, copied into IN_DIR/grader/.

    The data holds no validation or test labels: every epoch the trainer's `evaluate` callback
    only records the validation and test logits (out/val_logits.npy, out/test_logits.npy, one row
    per epoch), and the parent, which holds the labels, computes every metric and picks the epoch.
    """
    import numpy as np
    import torch

    # An editable install of the grader would shadow the copy in IN_DIR (and under bubblewrap
    # point at files the child cannot see): only the copy may provide `grader` here.
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__.lower() + repr(f).lower()]
    from grader.config import TrainConfig
    from grader.data.dataset import TrainingData
    from grader.train import Score, train

    arrays = {k: torch.from_numpy(np.load(os.path.join(in_dir, v), allow_pickle=False)) for k, v in request["data"].items()}
    data = TrainingData(
        train_images=arrays["train_x"], train_labels=arrays["train_y"], val_images=arrays["val_x"],
        test_images=arrays["test_x"], mean=tuple(request["mean"]), std=tuple(request["std"]),
    )
    config = TrainConfig(**{**request["config"], "select": "last", "train_subset": 0})  # the parent cut the subset
    logits: dict[str, list] = {"val": [], "test": []}

    def record(split: str, out: "torch.Tensor") -> "Score":
        logits[split].append(out.float().cpu().numpy())
        return Score(loss=0.0, accuracy=0.0)  # placeholders: the labels are not here

    history = train(model, data, config, device=request.get("device", "cpu"), evaluate=record, test_every_epoch=True)
    if logits["val"]:
        np.save("out/val_logits.npy", np.stack(logits["val"]))
        np.save("out/test_logits.npy", np.stack(logits["test"]))
    h = history.to_dict()
    report["history"] = {
        "status": h["status"], "message": h["message"], "params": h["params"], "flops_per_image": h["flops_per_image"],
        "peak_memory_bytes": h["peak_memory_bytes"], "seconds": h["seconds"], "device": h["device"],
        "precision": h["precision"], "channels_last": h["channels_last"], "notes": h["notes"],
        "train_images_per_second": h["train_images_per_second"],
        "epochs": [{"epoch": e["epoch"], "train_loss": e["train_loss"], "seconds": e["seconds"], "lr": e["lr"]} for e in h["epochs"]],
    }
    report.update(ok=True, kind="ok" if h["status"] == "ok" else h["status"], message=h["message"] if h["status"] != "ok" else "")


# ---- turning exceptions into words a student can act on ------------------------------------

_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_CHANNELS = re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+) channels")
_VIEW = re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)")
_TOO_SMALL = re.compile(r"Output size is too small|Kernel size can't be greater than actual input size")


def _explain(e: BaseException, phase: str, stack: list) -> dict:
    """kind + message for an exception raised by student code during `phase`."""
    where = {"import": "while its module was imported", "instantiate": "in the constructor",
             "forward": "in forward()", "train": "during training"}.get(phase, f"during {phase}")
    text = f"{type(e).__name__}: {e}".strip().rstrip(":")
    layer = _layer(stack)
    if isinstance(e, SystemExit):
        return {"kind": "exit", "message": f"the code called sys.exit({e.code!r}) {where}; model code must not exit the program"}
    if isinstance(e, KeyboardInterrupt):
        return {"kind": "exit", "message": f"the code raised KeyboardInterrupt {where}"}
    net = [a for a in ATTEMPTS if a.startswith("connect")]
    if net or _is_network_error(e):
        target = net[-1].split(" ", 1)[1] if net else "the network"
        return {"kind": "network", "message": (
            f"the code tried to connect to {target} {where} ({text}); the sandbox has no network: "
            "do not download data or pretrained weights inside the model classes")}
    if isinstance(e, BlockingIOError) or (isinstance(e, OSError) and e.errno == errno.EAGAIN):
        return {"kind": "processes", "message": (
            f"the code tried to start more processes than the sandbox allows {where} ({text}); "
            "model classes must not spawn processes")}
    if isinstance(e, OSError) and e.filename:
        return {"kind": "file", "message": (
            f"the code tried to open {e.filename} {where} ({e.strerror}); the model code may only use "
            "its own working folder: do not read data files or write outside it in the model classes")}
    if isinstance(e, MemoryError):
        return {"kind": "memory", "message": f"the code ran out of memory {where}"}
    if isinstance(e, TypeError) and phase == "instantiate" and "argument" in str(e):
        return {"kind": "needs_args", "message": f"the constructor could not be called {where}: {text}"}
    for explain in (_explain_linear, _explain_channels, _explain_view, _explain_too_small):
        message = explain(str(e), layer)
        if message:
            return {"kind": "shape", "message": message}
    at = f" in layer {layer[0]} ({type(layer[1]).__name__})" if layer else ""
    last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    line = f" at line {last[0].lineno} of {os.path.basename(last[0].filename)}" if last else ""
    return {"kind": "exception", "message": f"{text}{at} {where}{line}"}


def _layer(stack: list):
    """The innermost module that was running when forward failed (name, module, input shape)."""
    return stack[-1] if stack else None


def _explain_linear(msg: str, layer) -> str:
    m = _MATMUL.search(msg)
    if not m:
        return ""
    got, want, out = int(m.group(2)), int(m.group(3)), int(m.group(4))
    if layer is not None and type(layer[1]).__name__ == "Linear":
        name = layer[0]
        return (f"layer {name} = Linear(in_features={want}, out_features={out}) receives {got} features per image "
                f"(input shape {tuple(layer[2])}): it is sized for another image size; for CIFAR-10's 3x32x32 "
                f"images use nn.Linear({got}, {out})")
    return f"a matrix multiply gets {got} features per image but expects {want} ({msg}); a layer is sized for another image size"


def _explain_channels(msg: str, layer) -> str:
    m = _CHANNELS.search(msg)
    if not m:
        return ""
    want, got = int(m.group(2)), int(m.group(3))
    name = f"layer {layer[0]} = {layer[1]!r}" if layer is not None else "a convolution"
    hint = ("CIFAR-10 images have 3 (RGB) channels: the first convolution must be nn.Conv2d(3, ...)"
            if got == 3 else "its in_channels must equal the out_channels of the layer before it")
    return f"{name} expects {want} input channels but receives {got} (input shape ({m.group(1)})); {hint}"


def _explain_view(msg: str, layer) -> str:
    m = _VIEW.search(msg)
    if not m:
        return ""
    return (f"forward() reshapes to [{m.group(1)}] but the tensor has {m.group(2)} values: the flatten size in "
            "forward() assumes another image size; compute it for 3x32x32 inputs (or use nn.Flatten and a matching Linear)")


def _explain_too_small(msg: str, layer) -> str:
    if not _TOO_SMALL.search(msg):
        return ""
    name = f"layer {layer[0]} ({type(layer[1]).__name__}) with input {tuple(layer[2])}" if layer else "a layer"
    return (f"{name} gets a feature map smaller than its kernel: the network shrinks 32x32 images too much "
            "(it seems built for larger images such as 224x224); use fewer poolings or smaller strides")


def _is_network_error(e: BaseException) -> bool:
    import socket

    return isinstance(e, (socket.gaierror, ConnectionError)) or (
        isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED))


def _audit(event: str, args: tuple) -> None:
    # Audit hooks cannot be removed from Python code; they record, the sandbox enforces.
    if len(ATTEMPTS) >= 50:
        return
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and len(address) >= 2:
            address = f"{address[0]}:{address[1]}"
        ATTEMPTS.append(f"connect {address}"[:200])
    elif event in ("subprocess.Popen", "os.system", "os.fork", "os.posix_spawn"):
        ATTEMPTS.append(f"spawn {event}")


def _progress(phase: str) -> None:
    _write_json("out/progress.json", {"phase": phase})


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, default=str)
    os.replace(tmp, path)


if __name__ == "__main__":
    main(sys.argv[1])
