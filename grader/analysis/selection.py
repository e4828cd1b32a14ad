"""Best-validation model selection, read from the code: does the notebook keep the epoch that did
best on the validation set as its final model?

Two ways count (the assignment's optional "choose the model that performs best on the validation
data"). A checkpoint: a comparison with a best-so-far value (`if val_acc > best_acc:`) whose branch
saves the weights (`torch.save(model.state_dict(), path)`, `best = copy.deepcopy(model.state_dict())`,
`self.save_checkpoint(...)`), restored later (`model.load_state_dict(...)`, `return best_model`,
`model = best_model`). Early stopping: a `break` under a patience counter, or a library callback
(`EarlyStopping(monitor="val_loss")`, `ModelCheckpoint(save_best_only=True)`).

What is compared says which split selects: its name (`val_acc`, `test_acc`), else what it was
assigned from in the same function (`acc = evaluate(model, valid_loader)`). Selecting on the test
set is test-set leakage, which the instructor should see. The models a selection applies to are
those trained where it happens: the cell's own models for top-level code, the models of the cells
that call the function (or construct the class) it sits in. Nothing is executed. A notebook's
first _MAX_FINDINGS checkpoints and early stops are read (each is weighed against all its code).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Literal

from grader.analysis.models import Definitions
from grader.analysis.source import ParsedCell, dotted_name
from grader.analysis.usage import Usage

Split = Literal["validation", "test", "unknown"]
Kind = Literal["none", "checkpoint", "early_stopping"]

_BEST = re.compile(r"best|highest|lowest|(^|_)(max|min)(_|$)", re.I)
_PATIENCE = re.compile(r"patien|counter|no_?improve|not_?improved|wait|bad_?epoch|early_?stop|stale|trigger|since_best|stop", re.I)
_SAVE_CALL = re.compile(r"save|checkpoint", re.I)
_COPY_CALL = re.compile(r"^(deepcopy|state_dict|clone|copy)$")
_RESTORE_CALL = ("load_state_dict", "load_weights", "load_from_checkpoint")
_CALLBACKS = ("EarlyStopping", "ModelCheckpoint")
_MAX_CODE = 100
_MAX_FINDINGS = 20  # of each kind: an honest notebook has one or two, a hostile one could hold thousands


@dataclass(frozen=True)
class Selection:
    """How the notebook chooses its final weights, as its code shows (the strongest finding)."""

    kind: Kind = "none"
    """'checkpoint' (the best weights are saved), 'early_stopping' (training stops when the monitored
    metric stops improving), or 'none' (the last epoch's weights are the model)."""
    split: Split = "unknown"
    """The data the choice is made on: 'test' is test-set leakage."""
    metric: str = ""
    """What is compared, as written (`val_acc`, `monitor='val_loss'`)."""
    restored: bool = False
    """The saved best weights are loaded back before the model is used (a checkpoint), or the callback
    restores them (`restore_best_weights=True`)."""
    early_stopping: bool = False
    """Training also stops early (with or without a checkpoint)."""
    saved_for: tuple[str, ...] = ()
    """The model classes trained where the selection happens."""
    restored_for: tuple[str, ...] = ()
    """The model classes whose best weights are restored."""
    cell: int | None = None
    line: int | None = None
    """1-based line in the cell of the comparison or callback."""
    code: str = ""
    """That line as written (shortened)."""
    restore_cell: int | None = None
    restore_line: int | None = None

    @property
    def where(self) -> str:
        return f"cell {self.cell} line {self.line}: {self.code}" if self.cell is not None else ""


@dataclass(frozen=True)
class _Site:
    """A node of the notebook's code, with where it is."""

    cell: int
    scope: str
    """'' for a cell's top-level code; else the function ('train', 'EarlyStopping.__call__')."""
    node: ast.AST

    @property
    def position(self) -> tuple[int, int]:
        return self.cell, getattr(self.node, "lineno", 0)


def find_selection(cells: tuple[ParsedCell, ...], defs: Definitions, usage: Usage) -> Selection:
    """The notebook's best-validation selection: a test-set choice first (the instructor must see
    it), then a restored checkpoint, early stopping, a checkpoint never restored."""
    sites = [site for parsed in cells if parsed.tree is not None for site in _walk(parsed.tree, parsed.cell.index, "")]
    reader = _Reader(cells, sites, defs, usage)
    found = reader.checkpoints() + reader.stoppings()
    return min(found, key=_rank, default=Selection())


def _rank(s: Selection) -> tuple[int, int, int]:
    if s.split == "test":
        return 0, s.cell or 0, s.line or 0
    order = 1 if s.kind == "checkpoint" and s.restored else 2 if s.kind == "early_stopping" else 3
    return order + (3 if s.split == "unknown" else 0), s.cell or 0, s.line or 0


def _walk(node: ast.AST, cell: int, scope: str) -> Iterator[_Site]:
    """Every node with the function (or class method) it is in."""
    for child in ast.iter_child_nodes(node):
        yield _Site(cell, scope, child)
        inner = scope
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            inner = f"{scope}.{child.name}" if scope else child.name
        yield from _walk(child, cell, inner)


class _Reader:
    def __init__(self, cells: tuple[ParsedCell, ...], sites: list[_Site], defs: Definitions, usage: Usage):
        self.lines = {p.cell.index: p.cell.source.splitlines() for p in cells}
        self.sites = sites
        self.defs = defs
        self.usage = usage
        self.stops = [site for site in sites if _stops(site.node)]

    # --- checkpoints -------------------------------------------------------------------------

    def checkpoints(self) -> list[Selection]:
        found = []
        for site in self.sites:
            if not isinstance(site.node, ast.If) or len(found) == _MAX_FINDINGS:
                continue
            compared = _best_comparison(site.node.test)
            saved = self._saved(site.node)
            if compared is None or saved is None:
                continue
            metric, best = compared
            restores = self._restores(site, saved)
            restore = restores[0] if restores else None
            models = self._models(site)
            restored_for = _union(models if r.scope == site.scope else self._models(r) for r in restores)
            found.append(Selection(
                kind="checkpoint", split=self._split(site, metric, best), metric=ast.unparse(metric)[:_MAX_CODE],
                restored=restore is not None, early_stopping=self._stops_in(site.scope), saved_for=models,
                restored_for=restored_for, cell=site.cell, line=site.node.lineno, code=self._code(site),
                restore_cell=restore.cell if restore else None,
                restore_line=getattr(restore.node, "lineno", None) if restore else None))
        return found + self._callbacks("ModelCheckpoint")

    def _saved(self, branch: ast.If) -> set[str] | None:
        """What the branches of a best-so-far comparison save the weights as: the variables that
        hold a copy, and '' for a file; None when they save nothing."""
        saved: set[str] = set()
        found = False
        for node in (n for stmt in branch.body + branch.orelse for n in ast.walk(stmt)):
            if isinstance(node, ast.Call) and _SAVE_CALL.search(_last_name(node.func)):
                found = True
                saved.add("")
            elif isinstance(node, ast.Assign) and any(
                    isinstance(c, ast.Call) and _COPY_CALL.match(_last_name(c.func)) for c in ast.walk(node.value)):
                found = True
                saved.update(ast.unparse(t) for t in node.targets)
        return saved if found else None

    def _restores(self, save: _Site, saved: set[str]) -> list[_Site]:
        """The statements after the save that put the saved weights back into a model."""
        return [site for site in self.sites if site.position > save.position and _restores(site.node, saved)
                and (site.scope == save.scope or not self._inside_model(site.scope))]

    # --- early stopping ----------------------------------------------------------------------

    def stoppings(self) -> list[Selection]:
        found = []
        for site in self.stops[:_MAX_FINDINGS]:
            split, metric = self._stopping_split(site.scope)
            found.append(Selection(kind="early_stopping", split=split, metric=metric, early_stopping=True,
                                   saved_for=self._models(site), cell=site.cell, line=site.node.lineno,  # type: ignore[attr-defined]
                                   code=self._code(site)))
        return found + self._callbacks("EarlyStopping")

    def _stops_in(self, scope: str) -> bool:
        return any(s.scope == scope for s in self.stops)

    def _stopping_split(self, scope: str) -> tuple[Split, str]:
        """The split a patience counter watches: a best-so-far comparison in the same function, else
        in a class of the notebook (an EarlyStopping helper), else the arguments it is called with."""
        comparisons = [(s, c) for s in self.sites if isinstance(s.node, ast.If) and (c := _best_comparison(s.node.test))]
        for same in (True, False):
            for site, (metric, best) in comparisons:
                if (site.scope == scope) == same and (same or "." in site.scope):
                    split = self._split(site, metric, best)
                    if split != "unknown":
                        return split, ast.unparse(metric)[:_MAX_CODE]
        for site in self.sites:
            if site.scope == scope and isinstance(site.node, ast.Call) and "stop" in _last_name(site.node.func).lower():
                split = _split_of(ast.unparse(site.node))
                if split != "unknown":
                    return split, ast.unparse(site.node)[:_MAX_CODE]
        return "unknown", ""

    def _callbacks(self, kind: str) -> list[Selection]:
        """Library callbacks: EarlyStopping(monitor=...) and ModelCheckpoint(monitor=..., save_best_only=True)."""
        found = []
        for site in self.sites:
            node = site.node
            if not (isinstance(node, ast.Call) and _last_name(node.func) == kind) or kind in self.defs.classes:
                continue
            options = {k.arg: k.value for k in node.keywords if k.arg}
            monitor = options.get("monitor")
            keras = self.defs.imports.resolve(node.func).startswith(("keras", "tensorflow", "tf."))
            if isinstance(monitor, ast.Constant) and isinstance(monitor.value, str):
                split = _split_of(monitor.value)
            else:
                split = "validation" if keras and monitor is None else "unknown"  # Keras watches val_loss by default
            restore = _true(options.get("restore_best_weights")) or (kind == "ModelCheckpoint" and self._loads_after(site))
            found.append(Selection(
                kind="checkpoint" if kind == "ModelCheckpoint" else "early_stopping", split=split,
                metric=ast.unparse(monitor) if monitor is not None else "", restored=restore,
                early_stopping=kind == "EarlyStopping", saved_for=self._models(site),
                restored_for=self._models(site) if restore else (), cell=site.cell,
                line=getattr(node, "lineno", None), code=self._code(site)))
        return found

    def _loads_after(self, site: _Site) -> bool:
        return any(s.position > site.position and _restores(s.node, set()) for s in self.sites) or any(
            isinstance(s.node, ast.keyword) and s.node.arg == "ckpt_path" for s in self.sites)

    # --- what a site is about ----------------------------------------------------------------

    def _split(self, site: _Site, metric: ast.AST, best: ast.AST) -> Split:
        """The split of the compared metric: its name, what it was assigned from in the same
        function, or the name of the best-so-far value."""
        split = _split_of(ast.unparse(metric))
        if split != "unknown":
            return split
        name = ast.unparse(metric).lstrip("-")
        sources = [ast.unparse(s.node.value) for s in self.sites if s.scope == site.scope and s.cell == site.cell
                   and isinstance(s.node, (ast.Assign, ast.AnnAssign)) and s.node.value is not None
                   and name in _target_names(s.node)]
        for source in sources:
            split = _split_of(source)
            if split != "unknown":
                return split
        return _split_of(ast.unparse(best))

    def _models(self, site: _Site, visiting: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The model classes trained where `site` runs: its cell's, or those of the cells that call
        the function (or construct the class) it is in."""
        if not site.scope:
            used = self.usage.cells.get(site.cell)
            return tuple(used.trained or used.models) if used else ()
        owner = site.scope.split(".")[0]
        if owner in visiting:
            return ()
        return _union(self._models(caller, visiting | {owner}) for caller in self.sites
                      if isinstance(caller.node, ast.Call) and dotted_name(caller.node.func) == owner
                      and caller.scope.split(".")[0] != owner)

    def _inside_model(self, scope: str) -> bool:
        """Code of a model class (it may load pretrained weights of its own)."""
        owner = scope.split(".")[0]
        return owner in self.usage.training_function or any(owner in u.models for u in self.usage.cells.values())

    def _code(self, site: _Site) -> str:
        lines = self.lines.get(site.cell, [])
        line = getattr(site.node, "lineno", 0)
        text = lines[line - 1].strip() if 0 < line <= len(lines) else ast.unparse(site.node).splitlines()[0]
        return text if len(text) <= _MAX_CODE else text[: _MAX_CODE - 3] + "..."


def _stops(node: ast.AST) -> bool:
    """`if patience_counter >= patience: break`: a break under a patience counter."""
    return (isinstance(node, ast.If) and any(isinstance(s, ast.Break) for s in node.body)
            and bool(_PATIENCE.search(ast.unparse(node.test))))


def _best_comparison(test: ast.AST) -> tuple[ast.AST, ast.AST] | None:
    """(metric, best-so-far) of a comparison such as `val_acc > best_acc` inside an if's test."""
    for node in ast.walk(test):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1
                and isinstance(node.ops[0], (ast.Lt, ast.Gt, ast.LtE, ast.GtE))):
            continue
        left, right = node.left, node.comparators[0]
        left_best, right_best = (bool(_BEST.search(ast.unparse(side))) for side in (left, right))
        if left_best != right_best:
            return (right, left) if left_best else (left, right)
    return None


def _restores(node: ast.AST, saved: set[str]) -> bool:
    """`model.load_state_dict(...)`, `model.load_weights(...)`, `return best_model`, `model = best_model`."""
    if isinstance(node, ast.Call) and _last_name(node.func) in _RESTORE_CALL:
        return True
    held = {s for s in saved if s}
    if isinstance(node, ast.Return) and node.value is not None:
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        return any(ast.unparse(v) in held for v in values)
    if isinstance(node, ast.Assign):
        return ast.unparse(node.value) in held and not any(ast.unparse(t) in held for t in node.targets)
    return False


def _split_of(text: str) -> Split:
    """'validation' or 'test' by the words of a name or an expression (val_loader, testloader)."""
    words = [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])", text)]
    val = any(w in ("val", "valid", "validation", "dev", "vali") or (w.startswith("val") and not w.startswith("valu"))
              for w in words)
    test = any(w.startswith("test") for w in words)
    if val == test:
        return "unknown"
    return "validation" if val else "test"


def _target_names(stmt: ast.Assign | ast.AnnAssign) -> set[str]:
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
    return {ast.unparse(n) for t in targets for n in ast.walk(t) if isinstance(n, (ast.Name, ast.Attribute))}


def _union(groups: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    found: list[str] = []
    for group in groups:
        found.extend(m for m in group if m not in found)
    return tuple(found)


def _last_name(func: ast.AST) -> str:
    return dotted_name(func).rsplit(".", 1)[-1]


def _true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


__all__ = ["Selection", "Split", "find_selection"]
