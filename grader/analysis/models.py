"""Find the model classes a notebook defines, and which of them are CNNs.

A model class is any class whose bases lead to `torch.nn.Module` (directly, through another
torch.nn class, through a LightningModule, or through another class of the notebook). It is a
CNN when it uses a convolution itself, through its bases, or through the notebook's helper
classes and functions it builds layers from; a patch embedding (a convolution whose kernel is its
stride) does not make a model a CNN. A module class that is only a part of models is a helper,
not a model of its own: one used inside another model, handed to a model's constructor (a block
passed to `ResNet(BasicBlock, ...)`, even where the notebook also builds one alone to test it),
built only inside `nn.Sequential(...)`, a loss, or a Lightning wrapper around another model.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterable

from grader.analysis.source import Imports, ParsedCell, dotted_name, walk_top_level

_CONV = re.compile(r"^(Lazy)?Conv(Transpose)?[123]d$|^conv(_transpose)?[123]d$")
_TORCH_MODULE_BASES = ("torch.nn.", "lightning.", "pytorch_lightning.")
_MIN_PATCH = 4
"""The smallest patch a patch embedding cuts (pixels a side)."""
# Containers whose arguments are layers: a class built only inside one is a layer, not a model.
_CONTAINERS = ("torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict")


@dataclass(frozen=True)
class Definition:
    """The last top-level definition of a class or function in the notebook."""

    name: str
    node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    cell: int
    line: int
    """1-based line within the cell."""


@dataclass(frozen=True)
class ModelClass:
    """An nn.Module subclass defined in the notebook."""

    name: str
    cell: int
    line: int
    is_cnn: bool
    helper: bool
    """A building block or wrapper used inside another model, not a model of its own."""
    helper_reason: str
    bases: tuple[str, ...]
    """Base classes as written, resolved through the notebook's imports."""
    docstring: str = ""


@dataclass(frozen=True)
class Definitions:
    """Everything the notebook defines at top level, last definition winning, plus imports."""

    classes: dict[str, Definition]
    functions: dict[str, Definition]
    imports: Imports
    redefined: tuple[str, ...]
    """Names defined more than once (the later definition is the one that counts)."""


def collect_definitions(cells: Iterable[ParsedCell]) -> Definitions:
    classes: dict[str, Definition] = {}
    functions: dict[str, Definition] = {}
    imports = Imports()
    seen: set[str] = set()
    redefined: list[str] = []
    for parsed in cells:
        if parsed.tree is None:
            continue
        for stmt in walk_top_level(parsed.tree):
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                imports.add(stmt)
            elif isinstance(stmt, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                target = classes if isinstance(stmt, ast.ClassDef) else functions
                if stmt.name in seen and stmt.name not in redefined:
                    redefined.append(stmt.name)
                seen.add(stmt.name)
                # A name is either a class or a function: the later definition replaces both.
                classes.pop(stmt.name, None)
                functions.pop(stmt.name, None)
                target[stmt.name] = Definition(stmt.name, stmt, parsed.cell.index, stmt.lineno)
    return Definitions(classes, functions, imports, tuple(redefined))


def is_torch_module_base(resolved: str) -> bool:
    """`torch.nn.Module`, `torch.nn.Sequential`, `pytorch_lightning.LightningModule`, ..."""
    last = resolved.rsplit(".", 1)[-1]
    if resolved in ("Module", "nn.Module", "LightningModule"):
        return True
    # Lightning's LightningDataModule and the like hold data, not layers: only LightningModule is a module.
    return resolved.startswith(_TORCH_MODULE_BASES) and last[:1].isupper() and (
        resolved.startswith("torch.nn.") or last == "LightningModule"
    )


def module_class_names(defs: Definitions) -> set[str]:
    """Classes whose bases lead to nn.Module, through other notebook classes too (each class is
    looked at once per base: a chain of thousands of subclasses is read in linear time)."""
    subclasses: dict[str, list[str]] = {}
    found: set[str] = set()
    for name, d in defs.classes.items():
        for base in d.node.bases:  # type: ignore[union-attr]
            if is_torch_module_base(defs.imports.resolve(base)):
                found.add(name)
            subclasses.setdefault(dotted_name(base), []).append(name)
    todo = list(found)
    while todo:
        for sub in subclasses.get(todo.pop(), ()):
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def uses_convolution_directly(node: ast.AST, imports: Imports) -> bool:
    return any(_convolutions(node, imports))


def _convolutions(node: ast.AST, imports: Imports) -> tuple[bool, bool]:
    """Whether `node` uses a patch embedding, and whether it uses any other convolution.

    A convolution whose kernel is its stride (`nn.Conv2d(3, 128, kernel_size=4, stride=4)`) cuts
    the image into patches, the tokens of a vision transformer or an MLP-Mixer: it extracts no
    features the way a CNN's overlapping convolutions do."""
    patches: set[int] = set()  # the callee nodes of patch embeddings: ast.walk visits a call before its callee
    patch = features = False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and _is_patch_embedding(sub):
            patches.add(id(sub.func))
        elif isinstance(sub, (ast.Attribute, ast.Name)):
            resolved = imports.resolve(sub)
            if not resolved:
                continue
            last = resolved.rsplit(".", 1)[-1]
            if _CONV.match(last) and (resolved.startswith("torch.") or "." not in resolved or resolved.startswith(("nn.", "F."))):
                if id(sub) in patches:
                    patch = True
                else:
                    features = True
            elif resolved.startswith("torchvision.models."):
                features = True  # a torchvision architecture (resnet18, vgg...) is a CNN
    return patch, features


def _is_patch_embedding(call: ast.Call) -> bool:
    """`Conv2d(c, d, kernel_size=p, stride=p)`: the same kernel and stride, a patch size (a name, or 4
    pixels or more: a 2x2 convolution with stride 2 downsamples a CNN's feature maps). The callee's
    name is checked here, where it comes from by `_convolutions`."""
    if not _CONV.match(dotted_name(call.func).rsplit(".", 1)[-1]):
        return False
    keywords = {k.arg: k.value for k in call.keywords}
    kernel = keywords.get("kernel_size", call.args[2] if len(call.args) > 2 else None)
    stride = keywords.get("stride", call.args[3] if len(call.args) > 3 else None)
    if kernel is None or stride is None or ast.dump(kernel) != ast.dump(stride):
        return False
    sizes = [e.value for e in (kernel.elts if isinstance(kernel, ast.Tuple) else [kernel]) if isinstance(e, ast.Constant)]
    return all(isinstance(size, int) and size >= _MIN_PATCH for size in sizes)


def referenced_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def cnn_classes(defs: Definitions, module_classes: set[str]) -> tuple[set[str], set[str]]:
    """Module classes that use a convolution themselves, via bases, or via notebook helpers: those
    from which a definition that uses one directly can be reached through the names they use. Two
    sets: through any convolution (what makes a block convolutional), and through one that is not
    a patch embedding (what makes a model a CNN)."""
    definitions = {**defs.functions, **defs.classes}
    users: dict[str, list[str]] = {}  # a definition -> the definitions that use its name
    for name, d in definitions.items():
        for dep in (referenced_names(d.node) | {dotted_name(b) for b in getattr(d.node, "bases", [])}) - {name}:
            if dep in definitions:
                users.setdefault(dep, []).append(name)
    uses = {name: _convolutions(d.node, defs.imports) for name, d in definitions.items()}
    convolutional = _reaching({name for name, kinds in uses.items() if any(kinds)}, users)
    features = _reaching({name for name, (_, other) in uses.items() if other}, users)
    return convolutional & module_classes, features & module_classes


def _reaching(found: set[str], users: dict[str, list[str]]) -> set[str]:
    """`found` and every definition that uses one of them, through any chain of uses."""
    found = set(found)
    todo = list(found)
    while todo:  # iteratively, not recursively: a chain of thousands of classes is no deeper a stack
        for user in users.get(todo.pop(), ()):
            if user not in found:
                found.add(user)
                todo.append(user)
    return found


def find_model_classes(cells: tuple[ParsedCell, ...], defs: Definitions) -> tuple[ModelClass, ...]:
    module_classes = module_class_names(defs)
    convolutional, cnns = cnn_classes(defs, module_classes)
    helpers = helper_classes(cells, defs, module_classes)
    found = []
    for name in module_classes:
        d = defs.classes[name]
        node = d.node
        assert isinstance(node, ast.ClassDef)
        found.append(
            ModelClass(
                name=name,
                cell=d.cell,
                line=d.line,
                is_cnn=name in (convolutional if name in helpers else cnns),
                helper=name in helpers,
                helper_reason=helpers.get(name, ""),
                bases=tuple(defs.imports.resolve(b) or ast.unparse(b) for b in node.bases),
                docstring=ast.get_docstring(node) or "",
            )
        )
    return tuple(sorted(found, key=lambda m: (m.cell, m.line)))


def helper_classes(cells: tuple[ParsedCell, ...], defs: Definitions, module_classes: set[str]) -> dict[str, str]:
    """Module classes that are only parts of other models: name -> why."""
    part_of: dict[str, str] = {}
    users: dict[str, list[str]] = {}  # each model class's body read once: linear in the classes, not quadratic
    for other in sorted(module_classes):
        body = defs.classes[other].node.body  # bases are not parts: class C(A) does not contain A
        for name in set().union(*map(referenced_names, body)) & (module_classes - {other}):
            users.setdefault(name, []).append(other)
    for name in sorted(users):
        part_of[name] = f"used inside {users[name][0]}"
    calls = list(_calls_outside_model_classes(cells, defs.imports, module_classes))
    wrappers = {name for name in module_classes if _is_lightning_wrapper(
        defs.classes[name].node, defs, module_classes, any(c.callee == name and c.holds for c in calls))}
    standalone: set[str] = set()
    block_types: set[str] = set()
    for call in calls:
        if call.callee in wrappers:
            standalone |= call.holds  # a Lightning wrapper is handed the model it trains
        else:
            # Classes handed to another model's constructor or to a container are its parts:
            # ResNet(BasicBlock, ...), nn.Sequential(..., Flatten(), ...)
            for ref in call.names:
                part_of.setdefault(ref, handed_reason(call.callee))
            if call.callee in module_classes:
                block_types |= call.types
        if not call.nested:
            standalone.add(call.callee)
    # A class a model is built from (ResNet(BasicBlock, ...)) is a block even where the notebook
    # builds one alone, to test it; a class only used inside others is a model where it is built alone.
    helpers = {name: why for name, why in part_of.items() if name not in standalone or name in block_types}
    for name in sorted(module_classes - set(helpers)):
        node = defs.classes[name].node
        assert isinstance(node, ast.ClassDef)
        if name.endswith("Loss") and not uses_convolution_directly(node, defs.imports):
            helpers[name] = "a loss module"
        elif name in wrappers:
            helpers[name] = "a Lightning wrapper around another model"
    return helpers


def handed_reason(model: str) -> str:
    """The helper reason of a class handed to `model`'s constructor (Analysis.architecture reads it back)."""
    return f"passed to {model}(...)"


@dataclass(frozen=True)
class _Call:
    """A call, outside model classes, of a model class or of a torch.nn container."""

    callee: str
    names: frozenset[str]
    """Model classes its arguments name (`ResNet(BasicBlock)`, `nn.Sequential(Flatten())`)."""
    types: frozenset[str]
    """Model classes its arguments are (`ResNet(BasicBlock, [2, 2])`): the types of its blocks."""
    holds: frozenset[str]
    """Model classes whose objects its arguments are, built there or held by a variable (`net = Net()`)."""
    nested: bool
    """It is itself inside the arguments of another such call."""


def _calls_outside_model_classes(cells: tuple[ParsedCell, ...], imports: Imports, module_classes: set[str]):
    """Each call of a model class or of an nn container in top-level code and functions, in notebook order."""
    instances: dict[str, str] = {}  # variable -> the model class it was last assigned an object of
    for node in _code_outside_model_classes(cells):
        found = [n for n in ast.walk(node) if isinstance(n, ast.Call)
                 and (dotted_name(n.func) in module_classes or imports.resolve(n.func) in _CONTAINERS)]
        nested = {id(inner) for call in found for arg in _arguments(call) for inner in ast.walk(arg)}
        for call in found:
            args = _arguments(call)
            names = set().union(*map(referenced_names, args)) & module_classes if args else set()
            types = {a.id for a in args if isinstance(a, ast.Name) and a.id in module_classes}
            held = {instances[a.id] for a in args if isinstance(a, ast.Name) and a.id in instances}
            held |= {dotted_name(a.func) for a in args if isinstance(a, ast.Call) and dotted_name(a.func) in module_classes}
            yield _Call(dotted_name(call.func), frozenset(names), frozenset(types), frozenset(held), id(call) in nested)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and dotted_name(node.value.func) in module_classes:
            instances.update((t.id, dotted_name(node.value.func)) for t in node.targets if isinstance(t, ast.Name))


def _arguments(call: ast.Call) -> list[ast.expr]:
    return [*call.args, *(k.value for k in call.keywords)]


def _is_lightning_wrapper(node: ast.ClassDef, defs: Definitions, module_classes: set[str], handed_a_model: bool) -> bool:
    """A LightningModule without a convolution of its own that trains another model: one it builds,
    or one the notebook hands to its constructor (`LightningModel(pytorch_model, lr)`)."""
    lightning = any(defs.imports.resolve(b).endswith("LightningModule") for b in node.bases)
    return lightning and not uses_convolution_directly(node, defs.imports) and (
        handed_a_model or bool(referenced_names(node) & (module_classes - {node.name})))


def _code_outside_model_classes(cells: tuple[ParsedCell, ...]):
    """Top-level code and functions (not model classes): where models are built to be used."""
    for parsed in cells:
        if parsed.tree is None:
            continue
        for stmt in walk_top_level(parsed.tree):
            if isinstance(stmt, ast.ClassDef):
                continue
            if isinstance(stmt, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.Try)):
                # walk_top_level yields the bodies; here only the headers, to count each call once.
                yield from _headers(stmt)
            else:
                yield stmt


def _headers(stmt: ast.stmt):
    for name in ("test", "iter", "target"):
        value = getattr(stmt, name, None)
        if value is not None:
            yield value
    for item in getattr(stmt, "items", []) or []:
        yield item.context_expr
