"""Functions that build model classes, and the run keys a factory chooses a class by.

A function builds a model class when it calls the class, or calls another function that builds
it (`def train_model(name): model = build_model(name)`): where it is called, it stands for those
classes. A factory that branches on a string (`if name == "baseline": return BaselineCNN()`)
gives each class a run key, the name the notebook's outputs may use for it; a function without
branches of its own chooses through the factories it calls.
"""

from __future__ import annotations

import ast
import re

from grader.analysis.models import Definitions
from grader.analysis.source import dotted_name

# A run key as code spells it: one short token ("baseline", "cnn_v2", "lenet-5"), never a sentence.
_KEY = re.compile(r"^[A-Za-z][\w.+-]{0,39}$")


def find_builders(defs: Definitions, models: set[str]) -> tuple[dict[str, tuple[str, ...]], dict[str, dict[str, str]]]:
    """Functions that build model classes, directly or through other functions: function -> the
    classes in source order; and the run keys a factory chooses by (`if name == "v2": return Net()`)."""
    calls = {name: _ordered_calls(d.node) for name, d in defs.functions.items()}
    memo: dict[str, tuple[str, ...]] = {}

    def built_by(name: str, visiting: frozenset[str]) -> tuple[str, ...]:
        if name in memo:
            return memo[name]
        found: list[str] = []
        for callee in calls[name]:
            if callee in models:
                inner: tuple[str, ...] = (callee,)
            elif callee in calls and callee not in visiting:
                inner = built_by(callee, visiting | {name})
            else:
                inner = ()
            found.extend(m for m in inner if m not in found)
        memo[name] = tuple(found)
        return memo[name]

    building = {name: built for name in calls if (built := built_by(name, frozenset()))}
    own = {name: _branch_keys(defs.functions[name].node, models, building) for name in building}
    keys: dict[str, dict[str, str]] = {}
    for name in building:
        # A function without branches of its own chooses through the factories it calls.
        inherited = [own[c] for c in calls[name] if own.get(c)] if not own[name] else [own[name]]
        merged: dict[str, str] = {}
        for mapping in inherited:
            merged.update(mapping)
        if merged:
            keys[name] = merged
    return building, keys


def _branch_keys(function: ast.AST, models: set[str], builders: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """`if name == "baseline": return BaselineCNN()` -> {"baseline": "BaselineCNN"}."""
    keys: dict[str, str] = {}
    for branch in (n for n in ast.walk(function) if isinstance(n, ast.If)):
        test = branch.test
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.In))):
            continue
        sides = [test.left, *test.comparators]
        constants = [e for side in sides for e in (side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]) if is_key(e)]
        built: list[str] = []
        for name in (c for stmt in branch.body for c in _ordered_calls(stmt)):
            for m in (name,) if name in models else builders.get(name, ()):
                if m not in built:
                    built.append(m)
        if constants and len(built) == 1:
            keys.update({c.value: built[0] for c in constants})
    return keys


def is_key(node: ast.AST) -> bool:
    """A string constant that can be a run key."""
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(_KEY.match(node.value))


def _ordered_calls(node: ast.AST) -> list[str]:
    """Names of the functions and classes `node` calls, in source order."""
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call) and dotted_name(n.func)]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    return [dotted_name(c.func) for c in calls]
