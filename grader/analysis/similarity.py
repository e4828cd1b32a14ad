"""Near-identical model code across a class: a flag for the instructor, never a verdict.

Two signatures per model class: its layer sequence (torch.nn constructor calls with their
arguments, in order) and its source normalized so that renaming variables, reordering comments
or reformatting changes nothing. Only the proposed models are compared: everyone's LeNet-5
baseline is expected to look alike.
"""

from __future__ import annotations

import ast
import copy
import difflib
from dataclasses import dataclass
from itertools import combinations
from typing import Mapping

from grader.analysis.models import Definitions
from grader.analysis.source import dotted_name

SOURCE_RATIO = 0.92
_CONTAINERS = {"Sequential", "ModuleList", "ModuleDict"}
MIN_LAYERS = 4


@dataclass(frozen=True)
class SimilarPair:
    a: str
    b: str
    ratio: float
    """Similarity of the normalized sources, 0..1."""
    reason: str


@dataclass(frozen=True)
class Signature:
    """What two model classes are compared by."""

    layers: tuple[str, ...] = ()
    """torch.nn constructor calls with their arguments, in order."""
    source: str = ""
    """The class's source with names, docstrings and formatting normalized away."""


def model_signature(defs: Definitions, class_name: str) -> Signature:
    """The signature of a notebook class (empty when the notebook does not define it)."""
    definition = defs.classes.get(class_name)
    if definition is None:
        return Signature()
    node = definition.node
    layers = []
    calls = sorted((n for n in ast.walk(node) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    for call in calls:  # in source order (ast.walk is breadth-first)
        resolved = defs.imports.resolve(call.func)
        last = resolved.rsplit(".", 1)[-1]
        if resolved.startswith("torch.nn.") and last[:1].isupper() and last not in _CONTAINERS:
            layers.append(ast.unparse(ast.Call(func=ast.Name(resolved.rsplit(".", 1)[-1]), args=call.args, keywords=call.keywords)))
    return Signature(tuple(layers), normalized_source(node))


def normalized_source(node: ast.AST) -> str:
    tree = copy.deepcopy(node)
    names: dict[str, str] = {}

    def rename(name: str) -> str:
        return names.setdefault(name, f"v{len(names)}")

    for sub in ast.walk(tree):
        body = getattr(sub, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            body.pop(0)  # docstrings
            if not body:
                body.append(ast.Pass())
        if isinstance(sub, (ast.ClassDef, ast.FunctionDef)):
            sub.name = rename(sub.name)
        elif isinstance(sub, ast.Name) and not dotted_name(sub).startswith(("nn", "torch", "F")):
            sub.id = rename(sub.id)
        elif isinstance(sub, ast.arg):
            sub.arg = rename(sub.arg)
        elif isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name) and sub.value.id in ("self", names.get("self", "")):
            sub.attr = rename(sub.attr)
    return ast.unparse(tree)


def similar_pairs(signatures: Mapping[str, Signature]) -> list[SimilarPair]:
    """Pairs of students whose proposed models are near-identical, most similar first."""
    pairs = []
    for (a, sa), (b, sb) in combinations(sorted(signatures.items()), 2):
        if not sa.source or not sb.source:
            continue
        ratio = difflib.SequenceMatcher(None, sa.source.split(), sb.source.split(), autojunk=False).ratio()
        same_layers = len(sa.layers) >= MIN_LAYERS and sa.layers == sb.layers
        if ratio >= SOURCE_RATIO or same_layers:
            reason = "identical layer sequence" if same_layers else "near-identical source"
            if same_layers and ratio >= SOURCE_RATIO:
                reason = "identical layer sequence and near-identical source"
            pairs.append(SimilarPair(a, b, round(ratio, 3), reason))
    return sorted(pairs, key=lambda p: -p.ratio)
