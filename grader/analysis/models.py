"""Find the model classes a notebook defines, and which of them are CNNs.

A model class is any class whose bases lead to `torch.nn.Module` (directly, through another
torch.nn class, through a Lightning module, or through another class of the notebook). It is a
CNN when it uses a convolution itself, through its bases, or through the notebook's helper
classes and functions it builds layers from. A module class used only inside another model (a
residual block passed to `ResNet(BasicBlock, ...)`) is a helper, not a model of its own.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterable

from grader.analysis.source import Imports, ParsedCell, dotted_name, walk_top_level

_CONV = re.compile(r"^(Lazy)?Conv(Transpose)?[123]d$|^conv(_transpose)?[123]d$")
_TORCH_MODULE_BASES = ("torch.nn.", "lightning.", "pytorch_lightning.")


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
    return resolved.startswith(_TORCH_MODULE_BASES) and last[:1].isupper() and (
        resolved.startswith("torch.nn.") or last.endswith("Module")
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
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Attribute, ast.Name)):
            resolved = imports.resolve(sub)
            if not resolved:
                continue
            last = resolved.rsplit(".", 1)[-1]
            if _CONV.match(last) and (resolved.startswith("torch.") or "." not in resolved or resolved.startswith(("nn.", "F."))):
                return True
            if resolved.startswith("torchvision.models."):
                return True  # a torchvision architecture (resnet18, vgg...) is a CNN
    return False


def referenced_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def cnn_classes(defs: Definitions, module_classes: set[str]) -> set[str]:
    """Module classes that use a convolution themselves, via bases, or via notebook helpers: those
    from which a definition that uses one directly can be reached through the names they use."""
    definitions = {**defs.functions, **defs.classes}
    users: dict[str, list[str]] = {}  # a definition -> the definitions that use its name
    for name, d in definitions.items():
        for dep in (referenced_names(d.node) | {dotted_name(b) for b in getattr(d.node, "bases", [])}) - {name}:
            if dep in definitions:
                users.setdefault(dep, []).append(name)
    found = {name for name, d in definitions.items() if uses_convolution_directly(d.node, defs.imports)}
    todo = list(found)
    while todo:  # iteratively, not recursively: a chain of thousands of classes is no deeper a stack
        for user in users.get(todo.pop(), ()):
            if user not in found:
                found.add(user)
                todo.append(user)
    return found & module_classes


def find_model_classes(cells: tuple[ParsedCell, ...], defs: Definitions) -> tuple[ModelClass, ...]:
    module_classes = module_class_names(defs)
    cnns = cnn_classes(defs, module_classes)
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
                is_cnn=name in cnns,
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
    standalone: set[str] = set()
    for node in _code_outside_model_classes(cells):
        model_calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and dotted_name(n.func) in module_classes]
        nested: set[int] = set()
        for call in model_calls:
            # Classes handed to another model's constructor are its parts: ResNet(BasicBlock, ...)
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                for ref in referenced_names(arg) & module_classes:
                    part_of.setdefault(ref, handed_reason(dotted_name(call.func)))
                nested |= {id(n) for n in ast.walk(arg) if isinstance(n, ast.Call)}
        standalone |= {dotted_name(c.func) for c in model_calls if id(c) not in nested}
    helpers = {name: why for name, why in part_of.items() if name not in standalone}
    for name in sorted(module_classes - set(helpers)):
        node = defs.classes[name].node
        assert isinstance(node, ast.ClassDef)
        if name.endswith("Loss") and not uses_convolution_directly(node, defs.imports):
            helpers[name] = "a loss module"
        elif _is_lightning_wrapper(node, defs, module_classes):
            helpers[name] = "a Lightning wrapper around another model"
    return helpers


def handed_reason(model: str) -> str:
    """The helper reason of a class handed to `model`'s constructor (Analysis.architecture reads it back)."""
    return f"passed to {model}(...)"


def _is_lightning_wrapper(node: ast.ClassDef, defs: Definitions, module_classes: set[str]) -> bool:
    lightning = any(defs.imports.resolve(b).endswith("LightningModule") for b in node.bases)
    return lightning and not uses_convolution_directly(node, defs.imports) and bool(
        referenced_names(node) & (module_classes - {node.name})
    )


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
