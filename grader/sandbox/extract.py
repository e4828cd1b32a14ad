"""Slice the model classes and what they need out of a notebook into one standalone module.

Nothing here runs student code. The notebook's top-level statements become a table of
definitions (imports, constants, helper functions and classes), where the notebook's last
definition of a name wins. The module holds the dependency closure of the requested classes in
that table and nothing else: no data loading, training, plotting, shell lines or top-level calls,
except assignments whose right-hand side only builds values (literals, arithmetic, `len`,
`torch.device(...)`, `nn.ReLU()`, ...).

A model class is built as the notebook builds the object it trains: the arguments of that call
travel as source, to be evaluated in the extracted module, when every name they use is something
the module defines (a class, a function, a constant) and the rest is literals, containers and
arithmetic: `ResNet18(BasicBlockWithDropout, [2, 2, 2, 2], num_classes=10)` is rebuilt as written.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field
from typing import Mapping

from grader.analysis.source import Imports, dotted_name, parse_cells
from grader.notebook import Notebook

# Calls allowed on the right-hand side of an extracted assignment: they build a value and touch
# nothing (no files, no network, no data). Matched on the resolved dotted name's prefix.
SAFE_CALLS = (
    "len", "range", "int", "float", "str", "bool", "tuple", "list", "dict", "set", "frozenset", "min", "max",
    "sum", "abs", "round", "sorted", "zip", "enumerate", "math.", "torch.device", "torch.cuda.is_available",
    "torch.backends.mps.is_available", "torch.nn.", "torch.float", "torch.tensor", "torch.zeros", "torch.ones",
    "functools.partial", "collections.namedtuple", "collections.OrderedDict", "typing.", "enum.",
)
# Modules whose star imports are kept (a star import binds names we cannot see).
SAFE_STAR = ("torch", "numpy", "math", "functools", "collections", "typing", "torchvision.models")


# A call whose name says it trains what it is given: train(model), train_model(net, ...), trainer.fit(m).
_TRAINS = re.compile(r"train|fit", re.I)


@dataclass(frozen=True)
class Instantiation:
    """How the notebook builds one model class, when its arguments can be rebuilt in the module."""

    arguments: str = ""
    """The call's arguments as source ('BasicBlock, [2, 2, 2, 2], num_classes=10'), for the module to evaluate."""
    cell: int = -1
    """Index of the cell holding that call."""
    source: str = ""
    """The call as written, e.g. 'WideResNetLite(10, width=48)'."""
    trained: bool = False
    """The notebook passes the object this call builds to a training call."""
    needs: tuple[str, ...] = ()
    """The notebook's names the arguments use (a block class, a constant): the module must define them."""


@dataclass(frozen=True)
class Extraction:
    """The standalone module for a set of model classes."""

    source: str
    """Python source of the module: imports, then definitions in dependency order."""
    classes: tuple[str, ...]
    """The requested class names found in the notebook, in request order."""
    missing: tuple[str, ...]
    """Requested class names the notebook never defines."""
    instantiations: Mapping[str, Instantiation | None]
    """Class name -> the call that builds the object the notebook trains (else its last rebuildable
    call), or None when the notebook never builds it with arguments the module can rebuild."""
    names: tuple[str, ...]
    """Every top-level name the module defines, in order."""
    warnings: tuple[str, ...] = ()
    """What could not be carried over (names computed by code the grader does not run)."""
    cannot_run: Mapping[str, str] = field(default_factory=dict)
    """Requested class name -> why the grader cannot run it: it is written in syntax newer than the
    grader's Python that has no equivalent there, or read without statements that are not valid
    Python (see grader/analysis/recovery.py)."""


@dataclass(frozen=True)
class _Definition:
    name: str
    node: ast.stmt
    cell: int
    order: int
    is_import: bool


def extract_models(notebook: Notebook, class_names: tuple[str, ...] | list[str]) -> Extraction:
    """Build the standalone module for `class_names` from `notebook`."""
    cells, _ = parse_cells(notebook)
    table, imports, rejected, newer = _definitions(cells)
    warnings: list[str] = []
    wanted = [n for n in class_names if n in table and isinstance(table[n].node, ast.ClassDef)]
    cannot_run = {n: f"{n} is written in {newer[n][0]}, so the grader cannot run it; {newer[n][1]}"
                  for n in class_names if n in newer}
    missing = tuple(n for n in class_names if n not in wanted and n not in cannot_run)
    inst = {n: _instantiation(n, cells, table, imports) for n in wanted}
    chosen = _closure(wanted + [n for i in inst.values() if i for n in i.needs], table, rejected, warnings, newer)
    import_nodes = [d.node for d in sorted({id(d.node): d for d in chosen if d.is_import}.values(), key=lambda d: d.order)]
    star = [d.node for d in table.values() if d.name.startswith("*")]
    # __future__ imports change how the whole module compiles: keep them all, and first.
    future = [d.node for d in table.values() if isinstance(d.node, ast.ImportFrom) and d.node.module == "__future__"]
    import_nodes = future + [n for n in import_nodes if n not in future]
    body_defs = _dependency_order([d for d in chosen if not d.is_import], table)
    lines = ["# Extracted by the grader from the notebook: model classes and what they need.", ""]
    seen: set[str] = set()
    for node in import_nodes[: len(future)] + star + import_nodes[len(future):]:
        text = ast.unparse(node)
        if text not in seen:
            seen.add(text)
            lines.append(text)
    for d in body_defs:
        lines += ["", "", f"# cell {d.cell}", ast.unparse(d.node)]
    source = "\n".join(lines) + "\n"
    compile(source, "submission.py", "exec")  # unparse of parsed trees always compiles; fail loudly if not
    return Extraction(
        source=source, classes=tuple(wanted), missing=missing, instantiations=inst,
        names=tuple(d.name for d in body_defs), warnings=tuple(warnings), cannot_run=cannot_run,
    )


def _definitions(cells) -> tuple[dict[str, _Definition], Imports, dict[str, int], dict[str, tuple[str, str]]]:
    """name -> its last safe definition; also names last bound by code we do not extract, and
    names last bound by a statement the grader's Python cannot run as written (newer syntax, or a
    definition read without its broken statements): name -> where and why, and what to do."""
    table: dict[str, _Definition] = {}
    rejected: dict[str, int] = {}  # name -> cell of an unsafe binding (e.g. train_loader = DataLoader(...))
    newer: dict[str, tuple[str, str]] = {}  # name -> where and why, what to do
    imports = Imports()
    order = 0
    for pc in cells:
        if pc.tree is None:
            continue
        for stmt in pc.tree.body:
            order += 1
            blocked = pc.unrunnable(stmt)
            if blocked:  # its 3.11 code only approximates it: running that would grade something else
                for name, _ in _bound_names(stmt, imports):
                    table.pop(name, None)
                    rejected.pop(name, None)
                    why, fix = blocked.why
                    newer[name] = (f"cell {pc.cell.index} {why}", fix)
                continue
            for name, is_import in _bound_names(stmt, imports):
                if is_import or _safe_statement(stmt, imports, table):
                    table[name] = _Definition(name, stmt, pc.cell.index, order, is_import)
                    rejected.pop(name, None)
                    newer.pop(name, None)
                else:
                    table.pop(name, None)  # a later unsafe rebinding hides an earlier safe one
                    rejected[name] = pc.cell.index
                    newer.pop(name, None)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                imports.add(stmt)
    return table, imports, rejected, newer


def _bound_names(stmt: ast.stmt, imports: Imports) -> list[tuple[str, bool]]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [(stmt.name, False)]
    if isinstance(stmt, ast.Import):
        return [(a.asname or a.name.split(".")[0], True) for a in stmt.names]
    if isinstance(stmt, ast.ImportFrom):
        if any(a.name == "*" for a in stmt.names):
            keep = stmt.module and not stmt.level and stmt.module.split(".")[0] in {s.split(".")[0] for s in SAFE_STAR}
            return [(f"*{stmt.module}", True)] if keep else []
        return [(a.asname or a.name, True) for a in stmt.names] if not stmt.level else []
    if isinstance(stmt, ast.Assign):
        return [(n.id, False) for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
        return [(stmt.target.id, False)]
    if isinstance(stmt, (ast.AugAssign,)) and isinstance(stmt.target, ast.Name):
        return [(stmt.target.id, False)]  # `x += 1` at top level: treated as an unsafe rebinding
    return []


def _safe_statement(stmt: ast.stmt, imports: Imports, table: Mapping[str, _Definition]) -> bool:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    if isinstance(stmt, ast.Assign) and all(isinstance(t, (ast.Name, ast.Tuple, ast.List)) for t in stmt.targets):
        return _safe_value(stmt.value, imports, table)
    if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        return _safe_value(stmt.value, imports, table)
    return False


def _safe_value(node: ast.AST, imports: Imports, table: Mapping[str, _Definition]) -> bool:
    """A right-hand side that only builds a value from names we extract (`trainset.classes` is not one)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in table and not hasattr(builtins, sub.id):
            return False
        if isinstance(sub, ast.Call):
            name = imports.resolve(sub.func)
            if not name or not any(name == s or (s.endswith(".") and name.startswith(s)) for s in SAFE_CALLS):
                return False
        elif isinstance(sub, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        elif isinstance(sub, ast.Name) and sub.id in ("get_ipython", "open", "exec", "eval", "__import__"):
            return False
    return True


def _free_names(node: ast.AST) -> set[str]:
    """Names a definition reads (loads), including inside its functions; builtins excluded."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return {n for n in names if not hasattr(builtins, n)}


def _closure(wanted: list[str], table: dict[str, _Definition], rejected: dict[str, int],
             warnings: list[str], newer: Mapping[str, tuple[str, str]]) -> list[_Definition]:
    chosen: dict[str, _Definition] = {}
    stack = list(reversed(wanted))
    while stack:
        name = stack.pop()
        if name in chosen:
            continue
        d = table[name]
        chosen[name] = d
        if d.is_import:
            continue
        # Parameters and names assigned inside the definition are (approximately) its locals.
        own = {name, *(a.arg for a in ast.walk(d.node) if isinstance(a, ast.arg)),
               *(n.id for n in ast.walk(d.node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))}
        for used in sorted(_free_names(d.node) - own):
            if used in table and used not in chosen:
                stack.append(used)
            elif used in rejected:
                warnings.append(
                    f"{name} uses {used}, which cell {rejected[used]} computes with code the grader does not run "
                    f"(data loading, training or a call); define {used} as a constant or inside the class"
                )
            elif used in newer:
                warnings.append(f"{name} uses {used}, written in {newer[used][0]}: the grader cannot run it")
    return list(chosen.values())


def _dependency_order(defs: list[_Definition], table: dict[str, _Definition]) -> list[_Definition]:
    """Dependencies first (a base class before its subclass), otherwise notebook order."""
    by_name = {d.name: d for d in defs}
    done: list[_Definition] = []
    state: dict[int, str] = {}

    def visit(d: _Definition) -> None:
        if state.get(id(d.node)):
            return  # done, or on the stack (mutual recursion is fine at definition time)
        state[id(d.node)] = "visiting"
        for used in sorted(_free_names(d.node), key=lambda n: by_name[n].order if n in by_name else 0):
            if used in by_name and used != d.name:
                visit(by_name[used])
        state[id(d.node)] = "done"
        done.append(d)

    for d in sorted(defs, key=lambda d: d.order):
        visit(d)
    return done


def _instantiation(name: str, cells, table: Mapping[str, _Definition], imports: Imports) -> Instantiation | None:
    """The call that builds the object the notebook trains, else its last rebuildable call of `name`."""
    calls: list[tuple[int, ast.Call, int, str | None]] = []  # (statement order, call, cell, the variable it binds)
    trained_names: list[tuple[int, set[str]]] = []  # (statement order, names a training call is given)
    order = 0
    for pc in cells:
        if pc.tree is None:
            continue
        for stmt in pc.tree.body:
            order += 1
            for node in ast.walk(stmt):
                if not isinstance(node, ast.Call):
                    continue
                if isinstance(node.func, ast.Name) and node.func.id == name and _rebuildable(node, imports, table):
                    calls.append((order, node, pc.cell.index, _bound_by(stmt, node)))
                if _TRAINS.search(dotted_name(node.func).rsplit(".", 1)[-1] or ""):
                    trained_names.append((order, {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}))
    if not calls:
        return None
    trained = [c for c in calls if c[3] and any(at >= c[0] and c[3] in names for at, names in trained_names)]
    _, call, cell, _ = (trained or calls)[-1]
    values = [*call.args, *(k.value for k in call.keywords)]
    arguments = ", ".join([ast.unparse(a) for a in call.args] + [f"{k.arg}={ast.unparse(k.value)}" for k in call.keywords])
    needs = sorted({n for v in values for n in _free_names(v) if n in table})
    return Instantiation(arguments, cell, ast.unparse(call), bool(trained), tuple(needs))


def _rebuildable(call: ast.Call, imports: Imports, table: Mapping[str, _Definition]) -> bool:
    """Arguments built only from what the module defines, literals, containers and arithmetic."""
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        return False
    return all(_safe_value(value, imports, table) for value in [*call.args, *(k.value for k in call.keywords)])


def _bound_by(stmt: ast.stmt, call: ast.Call) -> str | None:
    """The variable `stmt` binds to the object `call` builds (`m = Net(...)`, `m = Net(...).to(dev)`)."""
    if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
        return None
    value = stmt.value
    while isinstance(value, ast.Call) and value is not call and isinstance(value.func, ast.Attribute):
        value = value.func.value  # .to(device), .cuda(), .double() return the same model
    return stmt.targets[0].id if value is call else None


__all__ = ["Extraction", "Instantiation", "extract_models"]
