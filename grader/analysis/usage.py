"""How the notebook uses its models, cell by cell: which models each cell builds or trains,
and the optimization settings each model was trained with.

This is a static reading in notebook order: `model = LeNet().to(device)` binds `model` to
LeNet until it is rebound; `train(model, lr=LR)` is a training call whose settings are the
arguments with constants resolved as they stood at that point. Nothing is executed.
"""

from __future__ import annotations

import ast
import copy
import re
from dataclasses import dataclass

from grader.analysis.models import Definitions
from grader.analysis.source import ParsedCell, dotted_name, walk_top_level

# Arguments that say how to log or where to save, not how to optimize.
_NOT_OPTIMIZATION = re.compile(r"log|print|verbose|plot|interval|save|path|dir|device|desc|title|name|show|seed|pbar|freq", re.I)
_OPTIMIZER_POSITIONAL = {"SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov")}
_DEFAULT_POSITIONAL = ("lr", "betas", "eps", "weight_decay")


@dataclass(frozen=True)
class CellUsage:
    """The model classes one code cell builds, uses or trains."""

    cell: int
    models: tuple[str, ...]
    """Model classes in order of first appearance in the cell's top-level code."""
    trained: tuple[str, ...]
    """Model classes that a training statement of this cell takes (train(...), fit(...), a loop with backward())."""
    trains_other: bool = False
    """The cell trains something that is not one of the model classes (an nn.Sequential variable...)."""


@dataclass(frozen=True)
class Usage:
    cells: dict[int, CellUsage]
    training_order: tuple[str, ...]
    """Model classes in the order the notebook first trains them."""
    settings: dict[str, dict[str, str]]
    """Model class -> optimization setting -> value as written (constants resolved)."""
    training_function: dict[str, str]
    """Model class -> the function or loop that trains it ('train', 'inline loop')."""


def analyze_usage(cells: tuple[ParsedCell, ...], defs: Definitions, models: set[str]) -> Usage:
    reader = _Reader(defs, models)
    for parsed in cells:
        if parsed.tree is not None:
            reader.read_cell(parsed)
    return Usage(
        cells=reader.cells,
        training_order=tuple(reader.training_order),
        settings=reader.settings,
        training_function=reader.training_function,
    )


class _Reader:
    """Walks top-level statements in notebook order, keeping bindings and constants."""

    def __init__(self, defs: Definitions, models: set[str]):
        self.defs = defs
        self.models = models
        self.bindings: dict[str, str] = {}
        self.constants: dict[str, str] = {}
        self.optimizers: dict[str, str] = {}  # optimizer variable -> its spec
        self.cells: dict[int, CellUsage] = {}
        self.training_order: list[str] = []
        self.settings: dict[str, dict[str, str]] = {}
        self.training_function: dict[str, str] = {}
        self.builders = {
            name: _called_names(d.node) & models for name, d in defs.functions.items()
        }

    def read_cell(self, parsed: ParsedCell) -> None:
        seen: list[str] = []
        trained: list[str] = []
        trains_other = False
        for top in parsed.tree.body:  # type: ignore[union-attr]
            # A compound statement (a training loop) is one unit for "what does it train",
            # but its inner statements bind names, and record settings, in order.
            used: list[str] = []
            trains = _is_training(top)
            for stmt in walk_top_level(ast.Module(body=[top], type_ignores=[])):
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                    continue
                here = self._models_in(_own_code(stmt))
                used.extend(m for m in here if m not in used)
                if trains:
                    for m in here:
                        self._record_calls(m, _own_code(stmt))
                self._bind(stmt)
            seen.extend(m for m in used if m not in seen)
            trains_other = trains_other or (trains and not used)
            if trains:
                for m in used:
                    if m not in trained:
                        trained.append(m)
                    self._record_loop(m, top)
        self.cells[parsed.cell.index] = CellUsage(parsed.cell.index, tuple(seen), tuple(trained), trains_other)
        for m in trained:
            if m not in self.training_order:
                self.training_order.append(m)

    def _models_in(self, nodes: list[ast.AST]) -> list[str]:
        found: list[tuple[int, int, str]] = []
        for root in nodes:
            for n in ast.walk(root):
                name = None
                if isinstance(n, ast.Name):
                    name = self.bindings.get(n.id) or (n.id if n.id in self.models else None)
                    if name is None and n.id in self.builders and self.builders[n.id]:
                        name = sorted(self.builders[n.id])[0]
                if name:
                    found.append((getattr(n, "lineno", 0), getattr(n, "col_offset", 0), name))
        ordered: list[str] = []
        for _, _, name in sorted(found):
            if name not in ordered:
                ordered.append(name)
        return ordered

    def _bind(self, stmt: ast.stmt) -> None:
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
            return
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        value = stmt.value
        built = [dotted_name(c.func) for c in ast.walk(value) if isinstance(c, ast.Call) and dotted_name(c.func) in self.models]
        optimizer = self._optimizer_spec(value)
        refers_to_self = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
        for name in names:
            if name in self.bindings and name in refers_to_self and not built:
                continue  # model = model.to(device); model = train(model, ...): still that model
            self.bindings.pop(name, None)
            self.constants.pop(name, None)
            self.optimizers.pop(name, None)
            if built:
                self.bindings[name] = built[0]
            elif optimizer:
                self.optimizers[name] = optimizer[1]
            elif isinstance(value, ast.Constant) or (isinstance(value, (ast.Tuple, ast.UnaryOp)) and _is_literal(value)):
                self.constants[name] = ast.unparse(value)
            elif isinstance(value, ast.Name) and value.id in self.bindings:
                self.bindings[name] = self.bindings[value.id]

    def _optimizer_spec(self, node: ast.AST) -> tuple[str, str] | None:
        """('SGD', 'SGD(lr=0.01, momentum=0.9)') for torch.optim constructor calls in node."""
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            resolved = self.defs.imports.resolve(call.func)
            if resolved.startswith("torch.optim.") and "lr_scheduler" not in resolved:
                kind = resolved.rsplit(".", 1)[-1]
                names = _OPTIMIZER_POSITIONAL.get(kind, _DEFAULT_POSITIONAL)
                args = {names[i]: self._value(a) for i, a in enumerate(call.args[1 : 1 + len(names)])}
                args.update({k.arg: self._value(k.value) for k in call.keywords if k.arg})
                inner = ", ".join(f"{k}={v}" for k, v in sorted(args.items()))
                return kind, f"{kind}({inner})"
        return None

    def _value(self, node: ast.AST) -> str:
        """An argument as text, with models, optimizers and known constants substituted."""
        if isinstance(node, ast.Call) and dotted_name(node.func) in self.models:
            return "<model>"
        if isinstance(node, ast.Name):
            if node.id in self.bindings:
                return "<model>"
            if node.id in self.optimizers:
                return self.optimizers[node.id]
            return self.constants.get(node.id, node.id)
        constants = self.constants

        class _Substitute(ast.NodeTransformer):
            def visit_Name(self, name: ast.Name) -> ast.AST:
                return ast.Name(id=constants[name.id]) if name.id in constants else name

        return ast.unparse(_Substitute().visit(copy.deepcopy(node)))

    def _record_calls(self, model: str, nodes: list[ast.AST]) -> None:
        """Settings from the calls that train `model`: optimizer constructors, train(...), fit(...)."""
        settings = self.settings.setdefault(model, {})
        for call in (n for root in nodes for n in ast.walk(root) if isinstance(n, ast.Call)):
            callee = dotted_name(call.func)
            spec = self._optimizer_spec(call)
            if spec and self.defs.imports.resolve(call.func).startswith("torch.optim."):
                settings["optimizer"] = spec[1]
                continue
            builds = bool(self.builders.get(callee))
            if callee in self.defs.functions and (builds or _mentions_model(call, self)):
                self.training_function.setdefault(model, callee)
                params = _parameter_names(self.defs.functions[callee].node)
                for i, arg in enumerate(call.args):
                    self._setting(settings, params[i] if i < len(params) else f"arg{i}", arg)
                for kw in call.keywords:
                    if kw.arg:
                        self._setting(settings, kw.arg, kw.value)
            elif callee.rsplit(".", 1)[-1] == "fit" and _mentions_model(call, self):
                self.training_function.setdefault(model, callee)
                for kw in call.keywords:
                    if kw.arg:
                        self._setting(settings, kw.arg, kw.value)
        names = {n.id for root in nodes for n in ast.walk(root) if isinstance(n, ast.Name)}
        for name in sorted(names & set(self.optimizers)):
            settings.setdefault("optimizer", self.optimizers[name])

    def _record_loop(self, model: str, top: ast.stmt) -> None:
        """A training loop written inline: its epoch range and the optimizer it steps."""
        settings = self.settings.setdefault(model, {})
        if isinstance(top, (ast.For, ast.AsyncFor)) and isinstance(top.iter, ast.Call) and dotted_name(top.iter.func) == "range":
            self.training_function.setdefault(model, "an inline training loop")
            settings["epochs"] = ", ".join(self._value(a) for a in top.iter.args)
        names = {n.id for n in ast.walk(top) if isinstance(n, ast.Name)}
        for name in sorted(names & set(self.optimizers)):
            settings.setdefault("optimizer", self.optimizers[name])

    def _setting(self, settings: dict[str, str], key: str, node: ast.AST) -> None:
        value = self._value(node)
        if value == "<model>" or _NOT_OPTIMIZATION.search(key):
            return
        settings[key] = value


def _own_code(stmt: ast.stmt) -> list[ast.AST]:
    """The parts of a statement that are not nested statements (those are visited on their own)."""
    if isinstance(stmt, (ast.If, ast.While)):
        return [stmt.test]
    if isinstance(stmt, (ast.For, ast.AsyncFor)):
        return [stmt.target, stmt.iter]
    if isinstance(stmt, (ast.With, ast.AsyncWith)):
        return [i.context_expr for i in stmt.items]
    if isinstance(stmt, ast.Try):
        return []
    return [stmt]


def _is_training(stmt: ast.stmt) -> bool:
    """train(...)/fit(...) calls, or a loop whose body calls backward()."""
    for call in (n for n in ast.walk(stmt) if isinstance(n, ast.Call)):
        name = dotted_name(call.func).rsplit(".", 1)[-1].lower()
        if name == "backward":
            return True
        if ("train" in name or name == "fit") and (call.args or call.keywords):
            return True
    return False


def _mentions_model(call: ast.Call, reader: _Reader) -> bool:
    return bool(reader._models_in([*call.args, *(k.value for k in call.keywords)]))


def _parameter_names(node: ast.AST) -> list[str]:
    args = getattr(node, "args", None)
    if not isinstance(args, ast.arguments):
        return []
    return [a.arg for a in [*args.posonlyargs, *args.args]]


def _called_names(node: ast.AST) -> set[str]:
    return {dotted_name(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False
