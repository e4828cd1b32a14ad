"""Static analysis of a student notebook: what it defines, trains, reports and discusses.

`analyze(notebook)` is the whole stage: no student code runs and torch is never imported. The
result, `Analysis`, is a frozen record the checks and reports read. It runs in the grader's own
process, so whatever the notebook holds its reading is bounded (grader/analysis/limits.py): linear
patterns, capped texts, and one deadline for the whole stage, past which what is left unread is
named in a warning.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace

from grader.analysis.architecture import Architecture, architecture_from_code
from grader.analysis.discussion import Discussion, find_discussion, read_claims
from grader.analysis.limits import Deadline
from grader.analysis.metrics import METRICS, Reading, Reported, Unread, extract_reported, first_metric_cell
from grader.analysis.models import Definition, Definitions, ModelClass, collect_definitions, find_model_classes, handed_reason
from grader.analysis.printing import read_printing
from grader.analysis.roles import Role, assign_roles, pick_pair
from grader.analysis.selection import Selection, find_selection
from grader.analysis.source import ParsedCell, dotted_name, parse_cells, walk_top_level
from grader.analysis.usage import Usage, analyze_usage
from grader.notebook import Notebook

__all__ = ["Analysis", "AnalyzedModel", "FoundModel", "OtherModel", "Reading", "SameConfig", "Selection", "Unread", "analyze",
           "METRICS", "Reported"]


@dataclass(frozen=True)
class AnalyzedModel:
    """A model class with its role."""

    model: ModelClass
    role: Role

    @property
    def name(self) -> str:
        return self.model.name


@dataclass(frozen=True)
class OtherModel:
    """A model the notebook builds without an nn.Module class (so it cannot be graded as one)."""

    name: str
    kind: str
    """'nn.Sequential variable', 'Keras model' or 'torchvision model'."""
    cell: int
    line: int


@dataclass(frozen=True)
class SameConfig:
    """Whether the baseline and the proposed model were trained the same way."""

    same: bool | None
    """None when the notebook does not show how both were trained."""
    detail: str
    differing: tuple[str, ...] = ()


@dataclass(frozen=True)
class FoundModel:
    """A model the notebook defines, as reports list it."""

    name: str
    kind: str
    """'model' (a stand-alone nn.Module class), 'helper' (a block used inside a model), or how a
    model is built without a class: 'nn.Sequential variable', 'Keras model', 'torchvision model'."""
    cell: int
    line: int
    is_cnn: bool | None = None
    """None when the grader cannot tell (a model that is not a class)."""
    role: str = "unknown"
    """'baseline', 'proposed' or 'unknown' (models only)."""
    role_guessed: bool = False
    """The role comes from hints ("modified"), names or training order, not from words that name it."""
    reason: str = ""
    """Why the model has its role; for a helper, why it is one."""


@dataclass(frozen=True)
class Analysis:
    """Everything the static checks need to know about one notebook."""

    models: tuple[AnalyzedModel, ...]
    """Stand-alone nn.Module classes (helper blocks excluded), in definition order."""
    helpers: tuple[ModelClass, ...]
    other_models: tuple[OtherModel, ...]
    baseline: str | None
    proposed: str | None
    reported: dict[str, Reported]
    config: SameConfig
    discussion: Discussion
    warnings: tuple[str, ...]
    uses_magics: bool
    definitions: Definitions
    cells: tuple[ParsedCell, ...]
    usage: Usage
    selection: Selection = Selection()
    """How the notebook chooses its final weights (a best-validation checkpoint, early stopping)."""
    reading: Reading = Reading()
    """How the outputs were read: the lines that looked like metrics but were not used, and why."""

    def model(self, name: str | None) -> AnalyzedModel | None:
        return next((m for m in self.models if m.name == name), None)

    def architecture(self, name: str | None) -> Architecture | None:
        """A model class's architecture read from its code, with the blocks the notebook hands to its
        constructor (`ResNet(BasicBlock, ...)`); None when the notebook does not define it."""
        handed = tuple(h.name for h in self.helpers if h.helper_reason == handed_reason(name or ""))
        return architecture_from_code(self.definitions, name or "", handed)

    def found(self) -> tuple[FoundModel, ...]:
        """Models, then helper blocks, then models that are not classes: what a report lists."""
        models = [FoundModel(m.name, "model", m.model.cell, m.model.line, m.model.is_cnn, m.role.role, m.role.guessed,
                             m.role.reason) for m in self.models]
        helpers = [FoundModel(h.name, "helper", h.cell, h.line, h.is_cnn, reason=h.helper_reason) for h in self.helpers]
        others = [FoundModel(o.name, o.kind, o.cell, o.line) for o in self.other_models]
        return tuple(models + helpers + others)


def analyze(notebook: Notebook, deadline: Deadline | None = None) -> Analysis:
    """The static reading of `notebook`, within `deadline` (default: limits.STATIC_DEADLINE_S from now)."""
    deadline = deadline or Deadline.after()
    cells, parse_warnings = parse_cells(notebook, deadline)
    defs = collect_definitions(cells)
    found = find_model_classes(cells, defs)
    models = [m for m in found if not m.helper]
    usage = analyze_usage(cells, defs, {m.name for m in models})
    roles = assign_roles(notebook, models, usage)
    baseline, proposed = pick_pair(models, roles, usage)
    unknown = Role("unknown", "the notebook does not say", False)
    analyzed = tuple(AnalyzedModel(m, roles.get(m.name, unknown)) for m in models)
    reported, reading, output_warnings = extract_reported(
        notebook, usage, {m.name: m.cell for m in models}, {n: r.role for n, r in roles.items()}, read_printing(cells), deadline)
    # Results can only be discussed after a model or a result appears, and the two models compared once
    # both are defined: the assignment's own instructions, and a tutorial's text above them, are not a discussion.
    starts = [m.cell for m in found] + [c for c in [first_metric_cell(notebook, deadline)] if c is not None]
    after = max([min(starts)] + [m.cell for m in models if m.name in (baseline, proposed)]) if starts else None
    discussion, discussion_warnings = find_discussion(notebook, after, deadline) if after is not None else (Discussion(False, None), ())
    warnings = list(parse_warnings) + list(output_warnings) + list(discussion_warnings)
    other_models = find_other_models(cells, defs)
    if any(o.kind == "Keras model" for o in other_models):
        reading = replace(reading, unattributed=None)  # not a PyTorch model: nothing the assignment asks about
    warnings += [f"'{name}' is defined more than once; the last definition counts" for name in defs.redefined if name in {m.name for m in found}]
    return Analysis(
        models=analyzed,
        helpers=tuple(m for m in found if m.helper),
        other_models=other_models,
        baseline=baseline,
        proposed=proposed,
        reported=reported,
        config=compare_config(usage, baseline, proposed),
        discussion=read_claims(discussion, notebook, baseline, proposed),
        warnings=tuple(warnings),
        uses_magics=any(c.has_magics for c in cells),
        definitions=defs,
        cells=cells,
        usage=usage,
        selection=find_selection(cells, defs, usage),
        reading=reading,
    )


def compare_config(usage: Usage, baseline: str | None, proposed: str | None) -> SameConfig:
    if not baseline or not proposed:
        return SameConfig(None, "needs a baseline and a proposed model to compare")
    missing = [m for m in (baseline, proposed) if m not in usage.training_function and not usage.settings.get(m)]
    if missing:
        return SameConfig(None, f"could not find where {' and '.join(missing)} is trained")
    a, b = usage.settings.get(baseline, {}), usage.settings.get(proposed, {})
    differing = tuple(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k) and k in a and k in b)
    fa, fb = usage.training_function.get(baseline), usage.training_function.get(proposed)
    if fa != fb:
        return SameConfig(False, f"{baseline} is trained by {fa}, {proposed} by {fb}", ("training function",) + differing)
    if differing:
        detail = "; ".join(f"{k}: {a[k]} vs {b[k]}" for k in differing)
        return SameConfig(False, f"settings differ ({baseline} vs {proposed}): {detail}", differing)
    return SameConfig(True, f"both trained by {fa} with the same settings")


def find_other_models(cells: tuple[ParsedCell, ...], defs: Definitions) -> tuple[OtherModel, ...]:
    """Models built as variables (nn.Sequential), with Keras, or taken from torchvision; and functions
    that build and return one (`def define_model(): model = Sequential(); ...; return model`) where
    the notebook assigns what they return (`model = define_model()`), named by the function."""
    found: dict[str, OtherModel] = {}
    factories: dict[str, OtherModel | None] = {}  # each function read once
    for parsed in cells:
        if parsed.tree is None:
            continue
        for stmt in walk_top_level(parsed.tree):
            inside = isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(stmt) if inside else (stmt,):
                if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
                    continue
                target, callee = node.targets[0], dotted_name(node.value.func)
                if callee in defs.functions:
                    if callee not in factories:
                        factories[callee] = _built_and_returned(defs.functions[callee], defs)
                    if factory := factories[callee]:
                        found.setdefault(factory.name, factory)
                elif isinstance(target, ast.Name) and not inside and (kind := _model_kind(defs.imports.resolve(node.value.func))):
                    found[target.id] = OtherModel(target.id, kind, parsed.cell.index, node.lineno)
    return tuple(found.values())


def _built_and_returned(function: Definition, defs: Definitions) -> OtherModel | None:
    """The model a function builds and returns (a call of a model kind, or a variable assigned one)."""
    built: dict[str, tuple[str, int]] = {}  # variable -> (kind, line)
    returned: list[ast.expr] = []
    for node in ast.walk(function.node):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            kind = _model_kind(defs.imports.resolve(node.value.func))
            built.update({t.id: (kind, node.lineno) for t in node.targets if kind and isinstance(t, ast.Name)})
        elif isinstance(node, ast.Return) and node.value is not None:
            returned.append(node.value)
    for value in returned:
        if isinstance(value, ast.Name) and value.id in built:
            kind, line = built[value.id]
        elif isinstance(value, ast.Call) and (kind := _model_kind(defs.imports.resolve(value.func))):
            line = value.lineno
        else:
            continue
        return OtherModel(f"{function.name}()", kind, function.cell, line)
    return None


def _model_kind(callee: str) -> str | None:
    if callee in ("torch.nn.Sequential",):
        return "nn.Sequential variable"
    if callee.startswith(("tensorflow.keras", "keras")) and callee.rsplit(".", 1)[-1] in ("Sequential", "Model"):
        return "Keras model"
    if callee.rsplit(".", 1)[-1] in ("Sequential",) and callee.startswith(("tensorflow", "keras", "tf.")):
        return "Keras model"
    if callee.startswith("torchvision.models."):
        return "torchvision model"
    return None
