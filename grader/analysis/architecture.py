"""What a model is made of, and how the proposed model differs from the baseline.

An `Architecture` is read either from a class's code (statically, `source="code"`) or measured
in the sandbox by the models_run child (`source="run"`, the more exact: it sees the modules the
constructor really built and the additions the forward pass really made). Both are compared the
same way (`differences`), so the feedback's "What differs" table, the discussion checks and the
gradebook's columns all speak of the same factors.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace
from typing import Literal

from grader.analysis.models import Definitions
from grader.analysis.source import dotted_name

Factor = Literal["depth", "width", "normalization", "dropout", "residual", "pooling", "activation", "size"]
FACTORS: tuple[Factor, ...] = ("depth", "width", "normalization", "dropout", "residual", "pooling", "activation", "size")
"""The architectural factors the grader compares, in the order reports list them. `size` is the
parameter count and FLOPs: it differs whenever anything else does, so it never makes an ablation
unclean on its own."""


@dataclass(frozen=True)
class Architecture:
    """One model's architecture, as far as the grader compares models."""

    source: Literal["code", "run"]
    """'code': read from the class's source; 'run': measured on the built model in the sandbox."""
    conv_layers: int = 0
    linear_layers: int = 0
    widths: tuple[int, ...] = ()
    """Output channels of each convolution, in order."""
    norms: tuple[str, ...] = ()
    """Normalization layer kinds present (e.g. 'BatchNorm2d', 'GroupNorm', 'LayerNorm'), sorted."""
    norm_layers: int = 0
    dropout_layers: int = 0
    residual: int = 0
    """Residual (skip) connections: a block's input added to its output."""
    pooling: tuple[str, ...] = ()
    """Pooling kinds present (e.g. 'MaxPool2d', 'AdaptiveAvgPool2d'), sorted."""
    activations: tuple[str, ...] = ()
    """Activation kinds present (e.g. 'ReLU', 'GELU'), sorted."""
    params: int | None = None
    flops_per_image: int | None = None

    @property
    def depth(self) -> int:
        """Weight layers: convolutions and linear layers."""
        return self.conv_layers + self.linear_layers


@dataclass(frozen=True)
class Difference:
    """One way the proposed model differs from the baseline."""

    factor: Factor
    text: str
    """Short, for a table: '+ BatchNorm2d (5 layers)', 'width 6->64', 'params x14'."""


def differences(baseline: Architecture, proposed: Architecture) -> tuple[Difference, ...]:
    """How `proposed` differs from `baseline`, factor by factor, in FACTORS order."""
    found: list[Difference] = []
    if baseline.depth != proposed.depth:
        found.append(Difference("depth", f"depth {baseline.depth}->{proposed.depth} weight layers "
                                         f"({proposed.conv_layers} conv, {proposed.linear_layers} linear)"))
    if baseline.widths and proposed.widths and _widest(baseline) != _widest(proposed):  # code may not know them
        found.append(Difference("width", f"width {_widest(baseline)}->{_widest(proposed)} channels (widest conv)"))
    found += _kinds("normalization", baseline.norms, proposed.norms, proposed.norm_layers, baseline.norm_layers)
    if baseline.dropout_layers != proposed.dropout_layers:
        sign = "+" if proposed.dropout_layers > baseline.dropout_layers else "-"
        found.append(Difference("dropout", f"{sign} dropout ({baseline.dropout_layers}->{proposed.dropout_layers} layers)"))
    if baseline.residual != proposed.residual:
        sign = "+" if proposed.residual > baseline.residual else "-"
        found.append(Difference("residual", f"{sign} {abs(proposed.residual - baseline.residual)} residual connections"))
    found += _kinds("pooling", baseline.pooling, proposed.pooling)
    found += _kinds("activation", baseline.activations, proposed.activations)
    if baseline.params and proposed.params and baseline.params != proposed.params:
        found.append(Difference("size", f"params x{_ratio(proposed.params, baseline.params)}"))
    return tuple(found)


def clean_ablation(found: tuple[Difference, ...]) -> Factor | None:
    """The one factor the models differ in (size aside), when there is exactly one."""
    factors = {d.factor for d in found} - {"size"}
    if len(factors) == 1:
        return next(iter(factors))
    return None


def differing_factors(baseline: Architecture, proposed: Architecture) -> frozenset[Factor]:
    return frozenset(d.factor for d in differences(baseline, proposed))


def _widest(arch: Architecture) -> int:
    return max(arch.widths, default=0)


def _kinds(factor: Factor, before: tuple[str, ...], after: tuple[str, ...], count_after: int = 0,
           count_before: int = 0) -> list[Difference]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    parts = [f"+ {k}" for k in added] + [f"- {k}" for k in removed]
    if not parts and count_after != count_before:
        parts = [f"{count_before}->{count_after} layers"]
    elif added and count_after:
        parts[0] += f" ({count_after} layers)"
    return [Difference(factor, ", ".join(parts))] if parts else []


def _ratio(a: int, b: int) -> str:
    r = a / b
    return f"{r:.0f}" if r >= 10 else f"{r:.1f}" if r >= 1 else f"{r:.2f}"


# Reading an architecture from code. Layer kinds are named as torch.nn names them; a functional call
# (F.relu, F.max_pool2d, F.dropout) is read as the module it stands for.
_CONV = re.compile(r"^(Lazy)?Conv(Transpose)?[123]d$")
_LINEAR = re.compile(r"^(Lazy)?Linear$")
_NORM = re.compile(r"^(Lazy)?(BatchNorm[123]d|GroupNorm|LayerNorm|InstanceNorm[123]d|LocalResponseNorm|SyncBatchNorm)$")
_DROPOUT = re.compile(r"^(Dropout[123]?d?|AlphaDropout|FeatureAlphaDropout)$")
_POOL = re.compile(r"^(Adaptive)?(Max|Avg|LP)Pool[123]d$")
_ACTIVATION = re.compile(r"^(ReLU6?|LeakyReLU|PReLU|RReLU|ELU|SELU|CELU|GELU|SiLU|Mish|Sigmoid|Tanh|Softplus|"
                         r"Hardswish|Hardsigmoid|Hardtanh)$")
_FUNCTIONAL = {"relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "prelu": "PReLU", "elu": "ELU",
               "selu": "SELU", "celu": "CELU", "gelu": "GELU", "silu": "SiLU", "mish": "Mish", "sigmoid": "Sigmoid",
               "tanh": "Tanh", "softplus": "Softplus", "hardswish": "Hardswish", "max_pool1d": "MaxPool1d",
               "max_pool2d": "MaxPool2d", "max_pool3d": "MaxPool3d", "avg_pool1d": "AvgPool1d", "avg_pool2d": "AvgPool2d",
               "avg_pool3d": "AvgPool3d", "adaptive_avg_pool2d": "AdaptiveAvgPool2d",
               "adaptive_max_pool2d": "AdaptiveMaxPool2d", "dropout": "Dropout", "dropout2d": "Dropout2d",
               "batch_norm": "BatchNorm2d", "group_norm": "GroupNorm", "layer_norm": "LayerNorm"}
_FUNCTIONAL_MODULES = ("torch.nn.functional.", "torch.")


def architecture_from_code(defs: Definitions, class_name: str, handed: tuple[str, ...] = ()) -> Architecture | None:
    """The architecture of a notebook class, read from its source (`source="code"`); None when the
    notebook does not define it.

    The class's own body counts, and so do the notebook's classes and functions it uses (a residual
    block, a `conv_block` helper, a base class), as often as it calls them (`Block(32), Block(32)`:
    twice); a block built in a loop counts once, so counts are a lower bound. Widths are the literal
    output channels of convolutions; parameters and FLOPs are unknown without building the model
    (the run-measured record has them). `handed`: notebook classes the code hands to the class's
    constructor (`ResNet(BasicBlock, [2, 2])`), counted once each as parts of it.
    """
    if class_name not in defs.classes:
        return None
    kinds, widths, residual = _tally(defs, class_name, ())
    for part in (p for p in handed if p in defs.classes and p != class_name):
        part_kinds, part_widths, part_residual = _tally(defs, part, (class_name,))
        kinds, widths, residual = kinds + part_kinds, widths + part_widths, residual + part_residual

    def of(pattern: re.Pattern[str]) -> list[str]:
        return [k for k in kinds if pattern.match(k)]

    return Architecture(
        source="code", conv_layers=len(of(_CONV)), linear_layers=len(of(_LINEAR)), widths=widths,
        norms=tuple(sorted(set(of(_NORM)))), norm_layers=len(of(_NORM)), dropout_layers=len(of(_DROPOUT)),
        residual=residual, pooling=tuple(sorted(set(of(_POOL)))), activations=tuple(sorted(set(of(_ACTIVATION)))),
    )


def _tally(defs: Definitions, name: str, chain: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...], int]:
    """Layer kinds (in source order), literal conv widths and residual additions of one notebook class
    or function, with those of the notebook classes and functions it uses, each as often as it calls it."""
    node = (defs.classes.get(name) or defs.functions[name]).node
    kinds: list[str] = []
    widths: list[int] = []
    for call in sorted((n for n in ast.walk(node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset)):
        kind = _layer_kind(defs.imports.resolve(call.func))
        if kind:
            kinds.append(kind)
            width = _out_channels(call) if _CONV.match(kind) else None
            widths += [width] if width is not None else []
    residual = sum(_residual_additions(f) for f in ast.walk(node) if isinstance(f, ast.FunctionDef) and f.name != "__init__")
    calls = [c.func.id for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
    for part in _parts(defs, node, chain + (name,)):
        times = max(1, calls.count(part))  # a class handed over (ResNet(Block, ...)) is used at least once
        part_kinds, part_widths, part_residual = _tally(defs, part, chain + (name,))
        kinds += list(part_kinds) * times
        widths += list(part_widths) * times
        residual += part_residual * times
    return tuple(kinds), tuple(widths), residual


def _parts(defs: Definitions, node: ast.AST, chain: tuple[str, ...]) -> list[str]:
    """The notebook classes and functions `node` uses or derives from, but those in `chain` (itself
    and the classes that use it): what its code is made of beside its own body."""
    bases = [b.id for b in getattr(node, "bases", []) if isinstance(b, ast.Name)]
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | set(bases)
    return sorted(n for n in names if n not in chain and (n in defs.classes or n in defs.functions))


def _layer_kind(resolved: str) -> str:
    """'Conv2d' for torch.nn.Conv2d, 'ReLU' for F.relu / torch.relu; '' for anything else."""
    head, _, last = resolved.rpartition(".")
    if resolved.startswith("torch.nn.") and head == "torch.nn":
        return last
    if resolved.startswith(_FUNCTIONAL_MODULES) and head in ("torch.nn.functional", "torch"):
        return _FUNCTIONAL.get(last, "")
    return ""


def _out_channels(call: ast.Call) -> int | None:
    value = next((k.value for k in call.keywords if k.arg == "out_channels"), call.args[1] if len(call.args) > 1 else None)
    return value.value if isinstance(value, ast.Constant) and isinstance(value.value, int) else None


def _residual_additions(function: ast.FunctionDef) -> int:
    """Additions in `function` of a saved value (a parameter not yet overwritten, a copy `identity = x`
    or a shortcut call on one) to something computed: `out + x`, `out += identity`,
    `self.block(x) + self.shortcut(x)`."""
    saved = {a.arg for a in function.args.args[1:]}  # self aside
    found = 0
    for stmt in _statements(function.body):
        found += sum(1 for n in ast.walk(stmt) if _is_residual(n, saved))
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            found += isinstance(stmt.op, ast.Add) and _from_saved(stmt.value, saved) and stmt.target.id not in saved
            saved.discard(stmt.target.id)  # out += x: out is computed either way
        for target, value in _assignments(stmt):
            if isinstance(value, ast.Name) or (_from_saved(value, saved) and not _is_computed(value, saved)):
                saved.add(target)  # identity = x (whatever x holds by then); shortcut = self.downsample(x)
            else:
                saved.discard(target)  # x = self.conv(x): x is no longer the input
    return found


def _statements(body: list[ast.stmt]):
    """Statements in order, into if/for/with blocks (not nested functions)."""
    for stmt in body:
        yield stmt
        if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for name in ("body", "orelse", "finalbody"):
                yield from _statements(getattr(stmt, name, []) or [])


def _assignments(stmt: ast.stmt) -> list[tuple[str, ast.expr]]:
    if isinstance(stmt, ast.Assign):
        return [(t.id, stmt.value) for t in stmt.targets if isinstance(t, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        return [(stmt.target.id, stmt.value)]
    return []


def _is_residual(node: ast.AST, saved: set[str]) -> bool:
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)):
        return False
    left, right = node.left, node.right
    return (_from_saved(left, saved) and _is_computed(right, saved)) or (_from_saved(right, saved) and _is_computed(left, saved))


def _from_saved(node: ast.expr, saved: set[str]) -> bool:
    """A saved input itself, or a call on one (`self.shortcut(x)`, `x.clone()`)."""
    if isinstance(node, ast.Name):
        return node.id in saved
    if not isinstance(node, ast.Call):
        return False
    on_saved = isinstance(node.func, ast.Attribute) and _from_saved(node.func.value, saved)
    return on_saved or any(isinstance(a, ast.Name) and a.id in saved for a in node.args)


def _is_computed(node: ast.expr, saved: set[str]) -> bool:
    """Not a constant and not the saved input alone: a layer's output."""
    if isinstance(node, (ast.Constant, ast.Attribute)):
        return False  # x + 1, x + self.pos_embedding: no layer's output
    if isinstance(node, ast.Name):
        return node.id not in saved
    return not (isinstance(node, ast.Call) and _from_saved(node, saved) and _shortcut_like(node))


def _shortcut_like(call: ast.Call) -> bool:
    """`self.shortcut(x)`, `self.downsample(x)`, `x.clone()`: the input carried over, not a layer's output."""
    name = dotted_name(call.func).rsplit(".", 1)[-1].lower()
    return any(w in name for w in ("shortcut", "downsample", "skip", "identity", "residual", "proj", "clone"))


# Holding a measured architecture against the code. The child that measures runs the student's code,
# which can forge its account; the code is read by the grader. A layer kind, dropout or a residual
# connection the measurement claims where the class's code shows no trace of it is not believed.

@dataclass(frozen=True)
class Traces:
    """What a class's code (its body, the notebook classes and functions it uses, the blocks handed
    to it) shows, as far as a measured architecture can be held against it."""

    words: frozenset[str]
    """Every name it mentions (layers, functions, methods, attributes, strings), as `_word` spells
    them: 'batchnorm' for nn.BatchNorm2d, F.batch_norm and getattr(nn, "BatchNorm2d") alike."""
    adds: bool
    """Its methods other than __init__ add something (`+`, `+=`, torch.add, x.add_): where a residual
    connection could be."""
    opaque: bool
    """It builds layers with code the grader does not read (torchvision, timm, torch.hub, nn.Transformer):
    the measurement cannot be held against it."""


_READ_MODULES = ("torch", "math", "numpy", "functools", "collections", "typing", "itertools", "copy", "operator")
_OPAQUE_TORCH = ("torch.hub.", "torch.jit.", "torch.nn.Transformer", "torch.nn.MultiheadAttention", "torch.load")


def code_traces(defs: Definitions, class_name: str, handed: tuple[str, ...] = ()) -> Traces | None:
    """The traces of a notebook class's code (see Traces); None when the notebook does not define it."""
    if class_name not in defs.classes:
        return None
    names, todo = set(), [class_name, *(h for h in handed if h in defs.classes)]
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo += _parts(defs, (defs.classes.get(name) or defs.functions[name]).node, ())
    nodes = [(defs.classes.get(n) or defs.functions[n]).node for n in sorted(names)]
    words, adds, opaque = set(), False, False
    for node in nodes:
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                words.add(_word(n.id))
            elif isinstance(n, ast.Attribute):
                words.add(_word(n.attr))
            elif isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 100:
                words.add(_word(n.value))
            if isinstance(n, (ast.Call, ast.ClassDef)):
                opaque = opaque or any(_opaque(defs, f) for f in ([n.func] if isinstance(n, ast.Call) else n.bases))
        adds = adds or any(_adds(f) for f in ast.walk(node) if isinstance(f, ast.FunctionDef) and f.name != "__init__")
    return Traces(frozenset(words), adds, opaque)


def _word(name: str) -> str:
    """A name as traces compare it: lower case, no underscores, no Lazy/Sync prefix, no 1d/2d/3d suffix."""
    word = name.lower().replace("_", "")
    word = word.removeprefix("lazy").removeprefix("sync")
    return word[:-2] if len(word) > 2 and word[-2] in "123" and word[-1] == "d" else word


def _opaque(defs: Definitions, func: ast.expr) -> bool:
    """A call into (or a base class from) an imported library that builds layers the grader does not read."""
    dotted = dotted_name(func)
    if not dotted or dotted.partition(".")[0] not in defs.imports.names:
        return False
    resolved = defs.imports.resolve(func)
    return resolved.partition(".")[0] not in _READ_MODULES or resolved.startswith(_OPAQUE_TORCH)


def _adds(function: ast.FunctionDef) -> bool:
    for n in ast.walk(function):
        if isinstance(n, (ast.BinOp, ast.AugAssign)) and isinstance(n.op, ast.Add):
            return True
        if isinstance(n, ast.Call) and dotted_name(n.func).rsplit(".", 1)[-1] in ("add", "add_"):
            return True
    return False


def reconcile(measured: Architecture, code: Architecture | None, traces: Traces | None) -> tuple[Architecture, tuple[str, ...]]:
    """`measured` with each factor it claims that the code shows no trace of replaced by the code's
    reading, and what was replaced, in words ('BatchNorm2d', '2 residual connections').

    The code is a lower bound (a block built in a loop counts once, widths computed at run time are
    unknown), so counts and widths the measurement finds beyond it are believed; a kind of layer,
    dropout or a residual connection the code never mentions is not. Code that builds layers in a
    library the grader does not read leaves the measurement as it is."""
    if code is None or traces is None or traces.opaque:
        return measured, ()
    words = traces.words
    norms = [k for k in measured.norms if k != "other" and _word(k) not in words]
    pooling = [k for k in measured.pooling if k != "other" and _word(k) not in words]
    activations = [k for k in measured.activations if k != "other" and _word(k) not in words]
    dropout = measured.dropout_layers > 0 and not any("dropout" in w for w in words)
    residual = measured.residual > 0 and code.residual == 0 and not traces.adds
    untraced = [*norms, *pooling, *activations] + (["dropout"] if dropout else []) + (
        [f"{measured.residual} residual connection{'s' if measured.residual != 1 else ''}"] if residual else [])
    if not untraced:
        return measured, ()
    kept = replace(
        measured,
        norms=code.norms if norms else measured.norms, norm_layers=code.norm_layers if norms else measured.norm_layers,
        pooling=code.pooling if pooling else measured.pooling,
        activations=code.activations if activations else measured.activations,
        dropout_layers=code.dropout_layers if dropout else measured.dropout_layers,
        residual=code.residual if residual else measured.residual)
    return kept, tuple(untraced)


__all__ = ["Architecture", "Difference", "FACTORS", "Factor", "Traces", "architecture_from_code", "clean_ablation",
           "code_traces", "differences", "differing_factors", "reconcile"]
