"""What a built model is made of, measured in the child on one forward pass of the check batch.

One mechanism sees every layer, whether the model calls it as a module (nn.Conv2d, nn.ReLU) or as
a function (F.relu, torch.max_pool2d, x.relu()): a torch function mode records each torch call the
forward makes (modules end in the same calls), and follows which tensors were computed from the
input. A residual (skip) connection is an addition of two tensors of the same shape that were both
computed from the input, e.g. `out + x` or `out += self.shortcut(x)`; a bias or a broadcast
(different shapes), a constant and `x + x` are not. Unlike a torch.fx trace, this works on the real
forward, so data-dependent control flow (an `if` on a shape, a loop over blocks) needs no fallback;
each layer call counts (a layer run twice is two layers deep). Calls TorchScript or C extensions
make internally are not seen.

The names are torch.nn class names; the parent accepts only those in KINDS (anything else is
'other'). Imported by the child only after torch; this module imports nothing itself.
"""

from __future__ import annotations

from grader.child.protocol import Anatomy

_CONV = ("conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")
_NORM = {"batch_norm": "BatchNorm{}d", "instance_norm": "InstanceNorm{}d", "group_norm": "GroupNorm",
         "layer_norm": "LayerNorm", "local_response_norm": "LocalResponseNorm", "rms_norm": "RMSNorm"}
"""'{}' is the spatial dimensions of the input (BatchNorm2d for images)."""
_DROPOUT = ("dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout")
_POOLING = {f"{kind}_pool{d}d": f"{name}Pool{d}d" for d in (1, 2, 3) for kind, name in (
    ("max", "Max"), ("avg", "Avg"), ("adaptive_max", "AdaptiveMax"), ("adaptive_avg", "AdaptiveAvg"),
    ("lp", "LP"), ("fractional_max", "FractionalMax"))}
_ACTIVATION = {"relu": "ReLU", "relu6": "ReLU6", "gelu": "GELU", "silu": "SiLU", "leaky_relu": "LeakyReLU",
               "elu": "ELU", "selu": "SELU", "celu": "CELU", "prelu": "PReLU", "rrelu": "RReLU", "sigmoid": "Sigmoid",
               "tanh": "Tanh", "hardtanh": "Hardtanh", "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid",
               "mish": "Mish", "softplus": "Softplus", "softsign": "Softsign", "glu": "GLU", "logsigmoid": "LogSigmoid",
               "tanhshrink": "Tanhshrink", "threshold": "Threshold"}
_ADD = ("add", "iadd", "radd")

MAX_CALLS = 100_000
"""Layer calls recorded at most (a forward that loops a million times stays small)."""
KINDS = frozenset({n.format(d) for n in _NORM.values() for d in (1, 2, 3)} | set(_POOLING.values())
                  | set(_ACTIVATION.values()))
"""Every kind name the child can report: torch.nn class names (the parent's allow-list)."""


def _name(func) -> str:
    """'relu' for F.relu, torch.relu_, Tensor.relu and Tensor.__radd__'s 'radd'; pooling without '_with_indices'."""
    return getattr(func, "__name__", "").strip("_").removesuffix("_with_indices")


def measure(torch, model, batch) -> Anatomy:
    """The layers and skip connections of `model`'s forward on `batch` (eval mode, no gradients)."""
    from torch.overrides import TorchFunctionMode
    from torch.utils.weak import WeakTensorKeyDictionary

    calls: list[tuple[str, object, tuple]] = []  # (name, output, input tensors), in call order
    from_input = WeakTensorKeyDictionary()  # tensor -> True when computed from the batch (weak: no id reuse)
    from_input[batch] = True

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            tensors = [a for a in _flat(args, kwargs) if isinstance(a, torch.Tensor)]
            inputs = tuple((tuple(t.shape), from_input.get(t, False), id(t)) for t in tensors)  # before an in-place op
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and any(flag for _, flag, _ in inputs):
                from_input[out] = True
            name = _name(func)
            if name in _KNOWN and len(calls) < MAX_CALLS:
                calls.append((name, tuple(out.shape) if isinstance(out, torch.Tensor) else (), inputs))
            return out

    model.eval()
    with torch.no_grad(), Recorder():
        model(batch)
    return _anatomy(calls)


_KNOWN = frozenset((*_CONV, "linear", *_NORM, *_DROPOUT, *_POOLING, *_ACTIVATION, *_ADD))


def _flat(args, kwargs) -> list:
    """The arguments, with lists and tuples one level down (torch.cat's list of tensors)."""
    items = list(args) + list((kwargs or {}).values())
    return [x for item in items for x in (item if isinstance(item, (list, tuple)) else (item,))]


def _anatomy(calls: list[tuple[str, tuple, tuple]]) -> Anatomy:
    names = [name for name, _, _ in calls]
    norms = [_NORM[name].format(max(len(inputs[0][0]) - 2, 1) if inputs else 2)
             for name, _, inputs in calls if name in _NORM]
    return Anatomy(
        conv_layers=sum(n in _CONV for n in names), linear_layers=names.count("linear"),
        widths=tuple(out[1] for name, out, _ in calls if name in _CONV and len(out) > 1),
        norms=tuple(sorted(set(norms))), norm_layers=len(norms), dropout_layers=sum(n in _DROPOUT for n in names),
        residual=sum(_is_skip(inputs) for name, _, inputs in calls if name in _ADD),
        pooling=tuple(sorted({_POOLING[n] for n in names if n in _POOLING})),
        activations=tuple(sorted({_ACTIVATION[n] for n in names if n in _ACTIVATION})))


def _is_skip(inputs: tuple) -> bool:
    """Two different tensors of one shape, both computed from the input."""
    if len(inputs) != 2:
        return False
    (shape_a, a_from_input, id_a), (shape_b, b_from_input, id_b) = inputs
    return shape_a == shape_b and a_from_input and b_from_input and id_a != id_b


__all__ = ["KINDS", "measure"]
