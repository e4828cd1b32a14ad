"""Exceptions raised by student code, in words a student can act on.

Runs inside the sandbox. The wording names the layer that failed and what to change where the
error says enough (a Linear layer sized for MNIST, a wrong channel count, a flatten size for
another image size), and what the code tried when the sandbox stopped it.
"""

from __future__ import annotations

import errno
import os
import re
import traceback

_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_CHANNELS = re.compile(r"expected input\[([\d, ]+)\] to have (\d+) channels, but got (\d+) channels")
_VIEW = re.compile(r"shape '\[([-\d, ]+)\]' is invalid for input of size (\d+)")
_TOO_SMALL = re.compile(r"Output size is too small|Kernel size can't be greater than actual input size")


def explain(e: BaseException, phase: str, layers: list, attempts: list[str]) -> tuple[str, str]:
    """(kind, message) for an exception raised by student code during `phase`.

    `layers` is the stack of modules running when forward failed, innermost last;
    `attempts` what the code tried that the sandbox forbids.
    """
    where = {"import": "while its module was imported", "instantiate": "in the constructor",
             "forward": "in forward()", "train": "during training"}.get(phase, f"during {phase}")
    text = f"{type(e).__name__}: {e}".strip().rstrip(":")
    layer = layers[-1] if layers else None  # the innermost module that was running
    if isinstance(e, SystemExit):
        return "exit", f"the code called sys.exit({e.code!r}) {where}; model code must not exit the program"
    if isinstance(e, KeyboardInterrupt):
        return "exit", f"the code raised KeyboardInterrupt {where}"
    net = [a for a in attempts if a.startswith("connect")]
    if net or _is_network_error(e):
        named = net or [a for a in attempts if a.startswith("resolve")]
        target = named[-1].split(" ", 1)[1] if named else "the network"
        return "network", (
            f"the code tried to connect to {target} {where} ({text}); the sandbox has no network: "
            "do not download data or pretrained weights inside the model classes")
    if isinstance(e, BlockingIOError) or (isinstance(e, OSError) and e.errno == errno.EAGAIN):
        return "processes", (
            f"the code tried to start more processes than the sandbox allows {where} ({text}); "
            "model classes must not spawn processes")
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "disk", (f"the code filled its working folder ({e.strerror}) {where}; the sandbox caps what a "
                        "model may write: do not write large files in the model classes")
    if isinstance(e, OSError) and e.filename:
        return "file", (
            f"the code tried to open {e.filename} {where} ({e.strerror}); the model code may only use "
            "its own working folder: do not read data files or write outside it in the model classes")
    if isinstance(e, MemoryError):
        return "memory", f"the code ran out of memory {where}"
    if isinstance(e, TypeError) and phase == "instantiate" and "argument" in str(e):
        return "needs_args", f"the constructor could not be called {where}: {text}"
    for explainer in (_explain_linear, _explain_channels, _explain_view, _explain_too_small):
        message = explainer(str(e), layer)
        if message:
            return "shape", message
    at = f" in layer {layer[0]} ({type(layer[1]).__name__})" if layer else ""
    last = traceback.extract_tb(e.__traceback__)[-1:] if e.__traceback__ else []
    line = f" at line {last[0].lineno} of {os.path.basename(last[0].filename)}" if last else ""
    return "exception", f"{text}{at} {where}{line}"


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

    # EAFNOSUPPORT: the sandbox's seccomp filter refuses every socket but a Unix one.
    return isinstance(e, (socket.gaierror, ConnectionError)) or (
        isinstance(e, OSError) and e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNREFUSED,
                                               errno.EAFNOSUPPORT))


__all__ = ["explain"]
