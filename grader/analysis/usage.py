"""How the notebook uses its models, cell by cell: which models each cell builds or trains,
the names the code gives them, and the optimization settings each model was trained with.

This is a static reading in notebook order: `model = LeNet().to(device)` binds `model` to
LeNet until it is rebound, and a value computed from it (`best = copy.deepcopy(model)`,
`acc = evaluate(model)`) holds LeNet too; `models = {"baseline": LeNet(), "v2": Net()}` binds
`models` to both, in order, and gives each a run key ("baseline") that outputs may name it by;
a function that builds models (builders.py) stands for them where it is called. `train(model,
lr=LR)` is a training call whose settings are the arguments with constants resolved as they
stood at that point. Classes inside `nn.Sequential(...)` are its layers, and a model that is not
one of the classes (an nn.Sequential, torchvision or hub model, a module imported under a
class's name) marks the cell as working with another model. A cell that does not parse is
read for the class names and model variables its text mentions. Nothing is executed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from grader.analysis.builders import find_builders, is_key
from grader.analysis.models import Definitions
from grader.analysis.source import ParsedCell, dotted_name, walk_top_level

# Arguments that say how to log or where to save, not how to optimize.
_NOT_OPTIMIZATION = re.compile(r"log|print|verbose|plot|interval|save|path|dir|device|desc|title|name|show|seed|pbar|freq", re.I)
_OPTIMIZER_POSITIONAL = {"SGD": ("lr", "momentum", "dampening", "weight_decay", "nesterov")}
_DEFAULT_POSITIONAL = ("lr", "betas", "eps", "weight_decay")
# Containers whose arguments are layers: a class inside nn.Sequential(...) is not a model used there.
_CONTAINERS = ("torch.nn.Sequential", "torch.nn.ModuleList", "torch.nn.ModuleDict")
# Models that are not notebook classes, by where their constructor comes from.
_OTHER_MODEL_SOURCES = re.compile(r"^(torch\.nn\.(Sequential|ModuleList)$|torchvision\.models\.|torch\.hub\.load$|timm\.create_model$)")
# Methods only a module has: a variable they are called on that is not bound to a class holds another model.
_MODULE_METHODS = {"eval", "parameters", "named_parameters", "modules", "children", "load_state_dict"}
# Keyword arguments that name a run: train(model, name="baseline").
# A positional string that names a file (torch.save(model, "net.pt")) is not a run key.
_FILE_NAME = re.compile(r"\.[A-Za-z]{2,5}$")
_NAMING_KEYWORD = re.compile(r"^(name|label|tag|key|run|run_name|model_name|experiment)$")


@dataclass(frozen=True)
class CellUsage:
    """The model classes one code cell builds, uses or trains."""

    cell: int
    models: tuple[str, ...]
    """Model classes in order of first appearance in the cell's top-level code."""
    trained: tuple[str, ...]
    """Model classes that a training statement of this cell takes (train(...), fit(...), a loop with backward())."""
    other_model: bool = False
    """The cell builds, trains or evaluates a model that is not one of the classes (an nn.Sequential
    variable, a torchvision, hub or imported model)."""
    built: tuple[str, ...] = ()
    """Model classes the cell constructs (a class's or a builder's call)."""
    builds_other: bool = False
    """The cell constructs a model that is not a class (a torchvision or hub model, an nn.Sequential)."""


@dataclass(frozen=True)
class Usage:
    cells: dict[int, CellUsage]
    training_order: tuple[str, ...]
    """Model classes in the order the notebook first trains them."""
    settings: dict[str, dict[str, str]]
    """Model class -> optimization setting -> value as written (constants resolved)."""
    training_function: dict[str, str]
    """Model class -> the function or loop that trains it ('train', 'inline loop')."""
    run_keys: dict[str, str] = field(default_factory=dict)
    """Run key -> model class: the names the code pairs with a model ({"baseline": BaselineCNN()},
    `if name == "baseline": return BaselineCNN()`, train(model, name="baseline")). A key paired
    with two different classes is left out."""


def analyze_usage(cells: tuple[ParsedCell, ...], defs: Definitions, models: set[str]) -> Usage:
    reader = _Reader(defs, models)
    for parsed in cells:
        if parsed.tree is not None:
            reader.read_cell(parsed)
        else:
            reader.read_unparsed(parsed)
    return Usage(
        cells=reader.cells,
        training_order=tuple(reader.training_order),
        settings=reader.settings,
        training_function=reader.training_function,
        run_keys={k: m for k, m in reader.keys.items() if m is not None},
    )


class _Reader:
    """Walks top-level statements in notebook order, keeping bindings and constants."""

    def __init__(self, defs: Definitions, models: set[str]):
        self.defs = defs
        self.models = models
        self.bindings: dict[str, tuple[str, ...]] = {}  # variable -> the model classes it holds
        self.registries: dict[str, dict[str, str]] = {}  # variable holding {key: model} -> that mapping
        self.others: set[str] = set()  # variables holding a model that is not one of the classes
        self.shadowed: set[str] = set()  # class names an import has since replaced
        self.constants: dict[str, str] = {}
        self.optimizers: dict[str, str] = {}  # optimizer variable -> its spec
        self.cells: dict[int, CellUsage] = {}
        self.training_order: list[str] = []
        self.settings: dict[str, dict[str, str]] = {}
        self.training_function: dict[str, str] = {}
        self.keys: dict[str, str | None] = {}  # run key -> model class (None: paired with several)
        self.builders, self.factory_keys = find_builders(defs, models)
        for keys in self.factory_keys.values():
            for key, model in keys.items():
                self._add_key(key, model)
        for d in defs.functions.values():
            for node in ast.walk(d.node):
                self._collect_keys(node)

    def read_cell(self, parsed: ParsedCell) -> None:
        seen: list[str] = []
        trained: list[str] = []
        other_model = False
        built: list[str] = []
        builds_other = False
        for top in parsed.tree.body:  # type: ignore[union-attr]
            # A compound statement (a training loop) is one unit for "what does it train",
            # but its inner statements bind names, and record settings, in order.
            used: list[str] = []
            trains = _is_training(top)
            for stmt in walk_top_level(ast.Module(body=[top], type_ignores=[])):
                if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.ClassDef)):
                    self._define(stmt)
                    continue
                if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                own = _own_code(stmt)
                calls = [n for root in own for n in ast.walk(root) if isinstance(n, ast.Call)]
                built.extend(m for c in calls for m in self._constructed(c) if m not in built)
                builds_other = builds_other or any(self._builds_other(c) for c in calls)
                here = self._models_in(own)
                used.extend(m for m in here if m not in used)
                other_model = other_model or self._uses_other_model(own)
                if trains:
                    for m in here:
                        self._record_calls(m, own)
                for node in own:
                    for sub in ast.walk(node):
                        self._collect_keys(sub)
                self._bind(stmt)
            seen.extend(m for m in used if m not in seen)
            other_model = other_model or (trains and not used)
            if trains:
                for m in used:
                    if m not in trained:
                        trained.append(m)
                    self._record_loop(m, top)
        self.cells[parsed.cell.index] = CellUsage(parsed.cell.index, tuple(seen), tuple(trained), other_model, tuple(built), builds_other)
        for m in trained:
            if m not in self.training_order:
                self.training_order.append(m)

    def read_unparsed(self, parsed: ParsedCell) -> None:
        """A cell that does not parse still names its models: the class names and the variables
        holding them that its code (comments aside) mentions, except names it imports."""
        code = "\n".join(line.split("#", 1)[0] for line in parsed.cell.source.splitlines())
        imported = {w for line in code.splitlines() if re.match(r"\s*(from|import)\b", line) for w in re.findall(r"\w+", line)}
        seen: list[str] = []
        for word in re.findall(r"[A-Za-z_]\w*", code):
            if word in self.bindings:
                held = self.bindings[word]
            elif word in self.models and word not in self.shadowed and word not in imported:
                held = (word,)
            else:
                continue
            seen.extend(m for m in held if m not in seen)
        self.cells[parsed.cell.index] = CellUsage(parsed.cell.index, tuple(seen), ())

    # --- which models an expression stands for ------------------------------------------------

    def _models_in(self, nodes: list[ast.AST]) -> list[str]:
        """Model classes the code refers to, in source order."""
        found: list[tuple[int, int, str]] = []
        stack = list(nodes)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Call) and self.defs.imports.resolve(node.func) in _CONTAINERS:
                continue  # the classes inside nn.Sequential(...) are its layers, not models used here
            here, inside = self._model_of(node)
            position = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
            found.extend((*position, m) for m in here)
            stack.extend(inside)
        ordered: list[str] = []
        for _, _, name in sorted(found):
            if name not in ordered:
                ordered.append(name)
        return ordered

    def _model_of(self, node: ast.AST) -> tuple[tuple[str, ...], list[ast.AST]]:
        """The models `node` itself stands for, and the sub-nodes still to look into."""
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                return (), []  # `model = WideNet()` rebinds `model`: what it held before is not used here
            if node.id in self.bindings:
                return self.bindings[node.id], []
            if node.id in self.models and node.id not in self.shadowed:
                return (node.id,), []
            return self.builders.get(node.id, ()), []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.builders:
            arguments = [*node.args, *(k.value for k in node.keywords)]
            if self._given_a_model(arguments):
                return (), arguments  # train_and_build(model): it is given the model it works on
            keys = self.factory_keys.get(node.func.id, {})
            chosen = [keys[a.value] for a in arguments if isinstance(a, ast.Constant) and a.value in keys]
            return (tuple(chosen[:1]) or self.builders[node.func.id]), arguments
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in self.registries:
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
            registry = self.registries[node.value.id]
            if key in registry:
                return (registry[key],), []
        return (), list(ast.iter_child_nodes(node))

    def _given_a_model(self, arguments: list[ast.AST]) -> bool:
        """Whether arguments hold a model: a class, a variable holding one, a builder's call.
        (A plain walk: asking _models_in here would redo each nested call at every level.)"""
        for node in (n for a in arguments for n in ast.walk(a)):
            if isinstance(node, ast.Name) and (node.id in self.bindings or (node.id in self.models and node.id not in self.shadowed)):
                return True
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in self.builders:
                return True
        return False

    def _constructed(self, value: ast.AST) -> tuple[str, ...]:
        """Models an assigned value builds or selects: LeNet().to(device), build("v2"), models["v2"],
        or a collection of models ({"a": LeNet(), "b": net_b}, [a, b])."""
        if isinstance(value, (ast.Dict, ast.List, ast.Tuple, ast.Set)):
            return tuple(self._models_in([value]))
        found: list[str] = []
        for node in _outside_containers(value, self.defs.imports):
            models: tuple[str, ...] = ()
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                if name in self.models and name not in self.shadowed:
                    models = (name,)
                elif name in self.builders:
                    models = self._model_of(node)[0]
            elif isinstance(node, ast.Subscript):
                models = self._model_of(node)[0]
            found.extend(m for m in models if m not in found)
        return tuple(found)

    def _uses_other_model(self, nodes: list[ast.AST]) -> bool:
        """A model that is not one of the classes: a variable holding one, or a module method
        called on a variable that holds no class (an imported or loaded model)."""
        for node in (n for root in nodes for n in ast.walk(root)):
            if isinstance(node, ast.Name) and node.id in self.others:
                return True
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MODULE_METHODS
                    and isinstance(node.func.value, ast.Name) and node.func.value.id not in self.bindings
                    and node.func.value.id not in self.optimizers and node.func.value.id not in ("self", *self.models)):
                return True
            if isinstance(node, ast.Call) and self._builds_other(node):
                return True
        return False

    # --- names: bindings, imports, run keys ------------------------------------------------------

    def _define(self, stmt: ast.Import | ast.ImportFrom | ast.ClassDef) -> None:
        """An import that reuses a model class's name replaces the class from here on; a class
        statement brings it back."""
        if isinstance(stmt, ast.ClassDef):
            self.shadowed.discard(stmt.name)
            return
        for alias in stmt.names:
            name = alias.asname or alias.name.split(".")[0]
            if name in self.models:
                self.shadowed.add(name)
            self.bindings.pop(name, None)

    def _bind(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            # for name, model in models.items(): the loop variables take each model in turn.
            held = tuple(self._models_in([stmt.iter]))
            for target in (n for n in ast.walk(stmt.target) if isinstance(n, ast.Name)):
                self._forget(target.id)
                if held:
                    self.bindings[target.id] = held
            return
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)) or stmt.value is None:
            return
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        value = stmt.value
        built = self._constructed(value)
        optimizer = self._optimizer_spec(value)
        refers_to_self = {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}
        registry = self._registry(value)
        for name in names:
            if name in self.bindings and name in refers_to_self and not built:
                continue  # model = model.to(device); model = train(model, ...): still that model
            if name in self.others and name in refers_to_self:
                continue
            self._forget(name)
            if built:
                self.bindings[name] = built
                if registry:
                    self.registries[name] = registry
            elif optimizer:
                self.optimizers[name] = optimizer[1]
            elif isinstance(value, ast.Constant) or (isinstance(value, (ast.Tuple, ast.UnaryOp)) and _is_literal(value)):
                self.constants[name] = ast.unparse(value)
            elif derived := self._derived(value):
                self.bindings[name] = derived
            elif isinstance(value, ast.Name) and value.id in self.others:
                self.others.add(name)
            elif isinstance(value, ast.Call) and self._builds_other(_innermost_call(value)):
                self.others.add(name)

    def _derived(self, value: ast.AST) -> tuple[str, ...]:
        """The models a value is computed from: `net`, `net.to(device)`, `copy.deepcopy(net)`,
        `evaluate(net, loader)` (a variable holding a model, called on or handed over directly)."""
        if isinstance(value, ast.Name):
            return self.bindings.get(value.id, ())
        if not isinstance(value, ast.Call):
            return ()
        receiver = value.func.value if isinstance(value.func, ast.Attribute) else value.func
        direct = [receiver, *value.args, *(k.value for k in value.keywords)]
        found: list[str] = []
        for node in direct:
            if isinstance(node, ast.Name):
                found.extend(m for m in self.bindings.get(node.id, ()) if m not in found)
        return tuple(found)

    def _builds_other(self, call: ast.Call) -> bool:
        """nn.Sequential(...), torchvision.models.resnet18(), torch.hub.load(...), or a module
        imported under a model class's name."""
        return bool(_OTHER_MODEL_SOURCES.match(self.defs.imports.resolve(call.func))) or dotted_name(call.func) in self.shadowed

    def _forget(self, name: str) -> None:
        for table in (self.bindings, self.registries, self.constants, self.optimizers):
            table.pop(name, None)  # type: ignore[attr-defined]
        self.others.discard(name)

    def _registry(self, value: ast.AST) -> dict[str, str]:
        """{"baseline": LeNet(), "v2": Net()} -> {"baseline": "LeNet", "v2": "Net"}."""
        return dict(self._pairs(value)) if isinstance(value, ast.Dict) else {}

    def _collect_keys(self, node: ast.AST) -> None:
        for key, model in self._pairs(node):
            self._add_key(key, model)

    def _pairs(self, node: ast.AST) -> list[tuple[str, str]]:
        """(run key, model class) pairs that `node` spells out: a registry of two models or more
        ({"baseline": BaselineCNN(), "v2": CNNv2()}, [("baseline", a), ("v2", b)]), or a call
        naming the one model it is given (train(model, name="baseline"), or with the one key as a
        positional argument: train_model(Net(dropout=0.3), "net_drop0.3"))."""
        if isinstance(node, ast.Call):
            named = [k.value for k in node.keywords if k.arg and _NAMING_KEYWORD.match(k.arg) and is_key(k.value)]
            named = named or [a for a in node.args if is_key(a) and not _FILE_NAME.search(a.value)]  # type: ignore[attr-defined]
            if len(named) != 1:
                return []
            given = {m for a in [*node.args, *(k.value for k in node.keywords)] if (m := self._single_model(a))}
            return [(named[0].value, given.pop())] if len(given) == 1 else []  # type: ignore[attr-defined]
        if isinstance(node, ast.Dict):
            entries = list(zip(node.keys, node.values))
        elif isinstance(node, (ast.List, ast.Tuple)) and node.elts and all(isinstance(e, ast.Tuple) and len(e.elts) == 2 for e in node.elts):
            entries = [tuple(e.elts) if is_key(e.elts[0]) else tuple(reversed(e.elts)) for e in node.elts]  # type: ignore[attr-defined]
        else:
            return []
        if not all(is_key(key) for key, _ in entries):
            return []
        pairs = [(key.value, self._single_model(value)) for key, value in entries]  # type: ignore[union-attr]
        # Only a registry: {"model": net, "optimizer": opt} or a checkpoint {"model": net} names no run.
        if all(model for _, model in pairs) and len({model for _, model in pairs}) >= 2:
            return pairs  # type: ignore[return-value]
        return []

    def _single_model(self, node: ast.AST) -> str | None:
        """The one model class an expression is: a class, its construction, a variable holding it."""
        if isinstance(node, ast.Lambda):
            node = node.body
        built = self._constructed(node) if isinstance(node, (ast.Call, ast.Subscript)) else self._model_of(node)[0] if isinstance(node, ast.Name) else ()
        return built[0] if len(built) == 1 else None

    def _add_key(self, key: str, model: str) -> None:
        if key in self.models:
            return  # a class name already names its class
        lowered = key.lower()
        self.keys[lowered] = model if self.keys.get(lowered, model) == model else None

    # --- settings ---------------------------------------------------------------------------

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
            if isinstance(node.ctx, ast.Store):
                return (), []  # `model = WideNet()` rebinds `model`: what it held before is not used here
            if node.id in self.bindings:
                return "<model>"
            if node.id in self.optimizers:
                return self.optimizers[node.id]
            return self.constants.get(node.id, node.id)
        # Constants written in place for the unparse, then put back (a deep copy of a deeply
        # nested argument would overflow the stack).
        renamed = [(n, n.id) for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in self.constants]
        for name, original in renamed:
            name.id = self.constants[original]
        try:
            return ast.unparse(node)
        finally:
            for name, original in renamed:
                name.id = original

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


def _outside_containers(node: ast.AST, imports) -> list[ast.AST]:
    """Every node under `node` except those inside nn.Sequential(...) and the like (layers)."""
    found: list[ast.AST] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, ast.Call) and imports.resolve(current.func) in _CONTAINERS:
            continue
        found.append(current)
        stack.extend(ast.iter_child_nodes(current))
    return found


def _innermost_call(call: ast.Call) -> ast.Call:
    """nn.Sequential(...).to(device) -> nn.Sequential(...)."""
    while isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Call):
        call = call.func.value
    return call


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


def _mentions_model(call: ast.Call, reader: "_Reader") -> bool:
    return bool(reader._models_in([*call.args, *(k.value for k in call.keywords)]))


def _parameter_names(node: ast.AST) -> list[str]:
    args = getattr(node, "args", None)
    if not isinstance(args, ast.arguments):
        return []
    return [a.arg for a in [*args.posonlyargs, *args.args]]


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, RecursionError):
        return False
