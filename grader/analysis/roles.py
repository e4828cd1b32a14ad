"""Which model is the baseline and which the proposed one.

First from the notebook's own words: the markdown just above the class and above the cell that
trains it, the comments in those cells, the class docstring, and words in the class name
("BaselineCNN"). Then, marked as a guess: names (LeNet is a baseline) and the order in which
the models are trained (the first is the baseline, later ones are proposed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.analysis.limits import MAX_MARKDOWN_CHARS
from grader.analysis.models import ModelClass
from grader.analysis.usage import Usage
from grader.notebook import Notebook

BASELINE, PROPOSED, UNKNOWN = "baseline", "proposed", "unknown"

_WORDS = {
    BASELINE: r"baseline|base model|reference model|original|vanilla|regular|standard model|plain|model\s*+(?:[#-]\s*+)?[01]\b|first model",
    PROPOSED: r"proposed|improved|improvement|modified|modification|enhanced|model\s*+(?:[#-]\s*+)?2\b|second model|new model|our model|variant|with dropout|with batch",
}
_ROLE_PATTERN = {role: re.compile(rf"\b(?:{words})", re.I) for role, words in _WORDS.items()}
_NAME_ROLE = {BASELINE: re.compile(r"baseline|^base", re.I), PROPOSED: re.compile(r"proposed|improved|better", re.I)}
_DATA_URI = re.compile(r"data:[\w/+.-]++;base64,[A-Za-z0-9+/=\s]++")


@dataclass(frozen=True)
class Role:
    """A model's role and why the grader believes it."""

    role: str
    """'baseline', 'proposed' or 'unknown'."""
    reason: str
    guessed: bool
    """True when no words of the notebook say so (name or training order decided)."""


def assign_roles(notebook: Notebook, models: list[ModelClass], usage: Usage) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    for model in models:
        role = _role_from_words(notebook, model, usage)
        if role:
            roles[model.name] = role
    if len(models) == 1 and models[0].name not in roles and _heading_says_baseline(notebook):
        roles[models[0].name] = Role(BASELINE, "the notebook's heading says 'baseline'", False)
    _guess_remaining(models, usage, roles)
    return roles


def _role_from_words(notebook: Notebook, model: ModelClass, usage: Usage) -> Role | None:
    name_match = [r for r, p in _NAME_ROLE.items() if p.search(model.name)]
    if len(name_match) == 1:
        return Role(name_match[0], f"its class name '{model.name}'", False)
    places = [(model.cell, "the text above its class")]
    trained_in = [c for c, u in sorted(usage.cells.items()) if model.name in u.trained]
    if trained_in:
        places.append((trained_in[0], "the text above the cell that trains it"))
    for cell_index, where in places:
        text = _nearby_text(notebook, cell_index, include_docstring=model.docstring if cell_index == model.cell else "")
        role = _first_role_word(text)
        if role:
            return Role(role[0], f"{where} says '{role[1]}'", False)
    return None


def _nearby_text(notebook: Notebook, cell_index: int, include_docstring: str = "") -> str:
    """The markdown cells right above a code cell, then its comments and docstring."""
    cells = notebook.cells
    above: list[str] = []
    i = cell_index - 1
    while i >= 0 and cells[i].kind == "markdown" and len(above) < 3:
        above.insert(0, _DATA_URI.sub("", cells[i].source[:MAX_MARKDOWN_CHARS]))
        i -= 1
    comments = [line.split("#", 1)[1] for line in cells[cell_index].source.splitlines() if "#" in line]
    return "\n".join([*above, *comments, include_docstring])


def _first_role_word(text: str) -> tuple[str, str] | None:
    """The role whose words appear first, headings before body text."""
    lines = text.splitlines()
    headings = [l for l in lines if l.lstrip().startswith("#") or l.lstrip().startswith("**")]
    for block in ("\n".join(headings), text):
        hits = [(m.start(), role, m.group(0)) for role, p in _ROLE_PATTERN.items() for m in p.finditer(block)]
        if hits:
            _, role, word = min(hits)
            return role, word
    return None


def _heading_says_baseline(notebook: Notebook) -> bool:
    return any(
        line.lstrip().startswith("#") and "baseline" in line.lower()
        for cell in notebook.markdown_cells
        for line in cell.source.splitlines()
    )


def _guess_remaining(models: list[ModelClass], usage: Usage, roles: dict[str, Role]) -> None:
    unknown = [m.name for m in models if m.name not in roles]
    if not unknown:
        return
    for name in unknown:
        if re.match(r"lenet[-_]?5?$", name, re.I):
            roles[name] = Role(BASELINE, "LeNet is the usual baseline (a guess from its name)", True)
    if len(models) < 2:
        return
    order = [n for n in usage.training_order if n in {m.name for m in models}]
    order += [m.name for m in models if m.name not in order]  # untrained ones, in definition order
    has_baseline = any(r.role == BASELINE for r in roles.values())
    for position, name in enumerate(order):
        if name in roles:
            continue
        if not has_baseline and position == 0:
            roles[name] = Role(BASELINE, "trained first (a guess from the training order)", True)
            has_baseline = True
        else:
            roles[name] = Role(PROPOSED, "trained after the baseline (a guess from the training order)", True)


def pick_pair(models: list[ModelClass], roles: dict[str, Role], usage: Usage) -> tuple[str | None, str | None]:
    """The baseline and the proposed model the assignment's two models map to."""
    order = {name: i for i, name in enumerate(usage.training_order)}
    by_order = sorted((m.name for m in models), key=lambda n: order.get(n, len(order)))
    baselines = [n for n in by_order if roles.get(n) and roles[n].role == BASELINE]
    proposed = [n for n in by_order if roles.get(n) and roles[n].role == PROPOSED]
    baseline = baselines[0] if baselines else None
    # With several proposed variants, the last one trained is the student's final model.
    fallback = next((n for n in reversed(by_order) if n != baseline), None) if len(models) > 1 else None
    chosen = proposed[-1] if proposed else fallback
    return baseline, chosen
