"""Which model is the baseline and which the proposed one.

First from the notebook's own words: the markdown just above the class and above the cell that
trains it, the comments in those cells, the class docstring, and words in the class name
("BaselineCNN"). Only words that name a role are a reading: "baseline" (a model, not a "baseline
score"), "base model", "reference model", "proposed". Said of another model ("compare it with
the baseline", "better than the proposed model"), such a word gives this one the other role.
Then, marked as a guess: hints in the same places ("original", "modified", "with dropout",
"model 2"), names (LeNet is a baseline) and the order in which the models are trained (the first
is the baseline, later ones are proposed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.analysis.limits import MAX_MARKDOWN_CHARS
from grader.analysis.models import ModelClass
from grader.analysis.usage import Usage
from grader.notebook import Notebook

BASELINE, PROPOSED, UNKNOWN = "baseline", "proposed", "unknown"

# A baseline model, not a baseline score ("a dumb baseline score", "Performance baseline", "Baselines").
_SCORES = ("score", "accuracy", "acc", "loss", "performance", "result", "value", "metric", "error")
_BASELINE = ("".join(rf"(?<!{score}[ \t])" for score in _SCORES) +
             rf"baseline(?!s\b)(?![ \t]++(?:{'|'.join(_SCORES)})\w*)|base[ \t]++(?:model|network|net|cnn)\b|reference model")
_NAMES = {BASELINE: _BASELINE, PROPOSED: r"proposed"}
"""Words that name a model's role."""
_HINTS = {
    BASELINE: r"original|vanilla|regular|standard model|plain|model\s*+(?:[#-]\s*+)?[01]\b|first model",
    PROPOSED: r"improved|improvement|modified|modification|enhanced|model\s*+(?:[#-]\s*+)?2\b|second model|new model|"
              r"our model|my model|variant|with dropout|with batch",
}
"""Words that hint at a role without naming it ("the original AlexNet", "Model 1", "with dropout"): a guess."""
_NAMING = {role: re.compile(rf"\b(?:{words})", re.I) for role, words in _NAMES.items()}
_HINTING = {role: re.compile(rf"\b(?:{words})", re.I) for role, words in _HINTS.items()}
# A role word after one of these names the model compared with ("over the baseline implementation").
_COMPARED_WITH = re.compile(r"\b(?:over|than|against|vs\.?|versus|compared[ \t]++(?:to|with)|relative[ \t]++to|"
                            r"extends?|extending|beyond|outperforms?|beats?)[ \t]++(?:[\w-]++[ \t]++){0,2}$", re.I)
_BEFORE = 60
"""Characters before a role word searched for what makes it the model compared with."""
_NAME_ROLE = {BASELINE: re.compile(r"baseline|^base", re.I), PROPOSED: re.compile(r"proposed|improved|better", re.I)}
_DATA_URI = re.compile(r"data:[\w/+.-]++;base64,[A-Za-z0-9+/=\s]++")
_OTHER = {BASELINE: PROPOSED, PROPOSED: BASELINE}


@dataclass(frozen=True)
class Role:
    """A model's role and why the grader believes it."""

    role: str
    """'baseline', 'proposed' or 'unknown'."""
    reason: str
    guessed: bool
    """True when no words of the notebook name it (a hint, the name or the training order decided)."""


def assign_roles(notebook: Notebook, models: list[ModelClass], usage: Usage) -> dict[str, Role]:
    roles: dict[str, Role] = {}
    texts = {m.name: _texts(notebook, m, usage) for m in models}
    for model in models:
        role = _role_from_name(model) or _role_from_words(texts[model.name], _NAMING, hint=False)
        if role:
            roles[model.name] = role
    if len(models) == 1 and models[0].name not in roles and _heading_says_baseline(notebook):
        roles[models[0].name] = Role(BASELINE, "the notebook's heading says 'baseline'", False)
    for model in models:
        if model.name not in roles and (role := _role_from_words(texts[model.name], _HINTING, hint=True)):
            roles[model.name] = role
    _guess_remaining(models, usage, roles)
    return roles


def _role_from_name(model: ModelClass) -> Role | None:
    name_match = [r for r, p in _NAME_ROLE.items() if p.search(model.name)]
    return Role(name_match[0], f"its class name '{model.name}'", False) if len(name_match) == 1 else None


def _texts(notebook: Notebook, model: ModelClass, usage: Usage) -> list[tuple[str, str]]:
    """(where, text) of the words about a model: above its class, then above the cell that trains it."""
    places = [(model.cell, "the text above its class")]
    trained_in = [c for c, u in sorted(usage.cells.items()) if model.name in u.trained]
    if trained_in:
        places.append((trained_in[0], "the text above the cell that trains it"))
    return [(where, _nearby_text(notebook, cell, model.docstring if cell == model.cell else "")) for cell, where in places]


def _role_from_words(texts: list[tuple[str, str]], patterns: dict[str, re.Pattern[str]], hint: bool) -> Role | None:
    """The role the first of `texts` to hold one of `patterns`' words gives: a guess when they are `hint`s."""
    for where, text in texts:
        found = _first_role_word(text, patterns)
        if found:
            role, word, compared = found
            if hint:
                return Role(role, f"{where} says '{word}' (a hint: it does not name the role)", True)
            if compared:
                return Role(_OTHER[role], f"{where} compares it with '{word}'", False)
            return Role(role, f"{where} says '{word}'", False)
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


def _first_role_word(text: str, patterns: dict[str, re.Pattern[str]]) -> tuple[str, str, bool] | None:
    """The role whose words appear first, headings before body text, and whether the words name
    the model compared with ("better than the baseline") rather than this one."""
    lines = text.splitlines()
    headings = [l for l in lines if l.lstrip().startswith("#") or l.lstrip().startswith("**")]
    for block in ("\n".join(headings), text):
        hits = [(m.start(), role, m.group(0)) for role, p in patterns.items() for m in p.finditer(block)]
        if hits:
            start, role, word = min(hits)
            return role, word, bool(_COMPARED_WITH.search(block[max(0, start - _BEFORE):start]))
    return None


def _heading_says_baseline(notebook: Notebook) -> bool:
    return any(
        line.lstrip().startswith("#") and _NAMING[BASELINE].search(line)
        for cell in notebook.markdown_cells
        for line in cell.source[:MAX_MARKDOWN_CHARS].splitlines()
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
