"""The static checks: what the assignment asks for, judged from the notebook alone.

Each judge is a small function of the notebook, its analysis and the rubric that returns a
`Verdict`, including the cell a student should look at; `JUDGES` maps each static check id of
the registry (grader.checks) to its judge, and `static_checks` applies those the rubric scores.
"""

from __future__ import annotations

from typing import Callable, Mapping

from grader.analysis import Analysis
from grader.analysis.architecture import Architecture, differences
from grader.analysis.discussion import Discussion, NamedFactor, claimed_direction
from grader.checks import CheckResult, Scored, Verdict, ids
from grader.notebook import Notebook
from grader.rubric import Rubric

Judge = Callable[[Notebook, Analysis, Rubric], Verdict]


def static_checks(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Scored:
    """Every static check the rubric scores, in registry order (a rubric may leave one out), and
    their flags after those of the roles the grader guessed."""
    verdicts = {check_id: JUDGES[check_id](notebook, analysis, rubric) for check_id in ids("static") if check_id in rubric.checks}
    return Scored(tuple(rubric.score(check_id, v) for check_id, v in verdicts.items()),
                  tuple(guessed_role_flags(analysis)) + tuple(v.flag for v in verdicts.values() if v.flag))


def rejudge(checks: tuple[CheckResult, ...], rubric: Rubric, verdicts: Mapping[str, Verdict]) -> Scored:
    """`checks` with the static checks in `verdicts` judged again from what the retraining found (the
    grader's own accuracies, the architectures measured in the sandbox), and those verdicts' flags."""
    again = {check_id: rubric.score(check_id, v) for check_id, v in verdicts.items() if check_id in rubric.checks}
    flags = tuple(v.flag for check_id, v in verdicts.items() if check_id in again and v.flag)
    return Scored(tuple(again.get(c.id, c) for c in checks), flags)


def unreadable(error: str, rubric: Rubric) -> tuple[CheckResult, ...]:
    """The checks of a file that is not a usable notebook: notebook_valid fails, nothing else is judged."""
    if "notebook_valid" not in rubric.checks:
        return ()
    return (rubric.score("notebook_valid", Verdict(False, error)),)


def notebook_valid(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    skipped = sum(1 for c in analysis.cells if c.tree is None)
    note = f"; {skipped} cell(s) are not valid Python and were skipped" if skipped else ""
    statements = sum(len(c.skipped) for c in analysis.cells)
    if statements:
        cells = sum(1 for c in analysis.cells if c.skipped)
        note += f"; {statements} statement(s) in {cells} cell(s) are not valid Python and were skipped"
    upgraded = f" (upgraded from nbformat {notebook.upgraded_from})" if notebook.upgraded_from else ""
    return Verdict(True, f"a readable notebook with {len(notebook.code_cells)} code cells{upgraded}{note}")


def two_cnn_classes(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    cnns = [m.name for m in analysis.models if m.model.is_cnn]
    cell = analysis.models[0].model.cell if analysis.models else None
    if len(cnns) >= 2:
        return Verdict(True, f"{len(cnns)} CNN classes: {', '.join(cnns)}", cell=cell)
    reasons = []
    not_cnn = [m.name for m in analysis.models if not m.model.is_cnn]
    if not_cnn:
        reasons.append(f"{', '.join(not_cnn)} use no convolution (nn.Conv2d)")
    keras = [o.name for o in analysis.other_models if o.kind == "Keras model"]
    if keras:
        reasons.append(f"the notebook builds Keras models ({', '.join(keras)}); the assignment needs PyTorch nn.Module classes")
    variables = [o for o in analysis.other_models if o.kind != "Keras model"]
    if variables:
        names, kinds = ", ".join(o.name for o in variables), " / ".join(sorted({o.kind for o in variables}))
        reasons.append(f"{names} {'is' if len(variables) == 1 else 'are'} built as {kinds}, not as a class")
    found = f"found {len(cnns)} CNN class{'es' if len(cnns) != 1 else ''}" + (f" ({', '.join(cnns)})" if cnns else "")
    return Verdict(False, "; ".join([found + ", the assignment needs two", *reasons]), len(cnns) / 2, cell)


def proposed_named(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    proposed = analysis.model(analysis.proposed)
    if proposed is None:
        return Verdict(False, "no proposed model was found")
    cell, name = proposed.model.cell, proposed.name
    if rubric.is_generic_name(name):
        return Verdict(False, f"the proposed model is called '{name}', a generic name", cell=cell)
    pattern = rubric.assignment.proposed_name_pattern
    if not rubric.matches_name_pattern(name):
        return Verdict(False, f"the proposed model is called '{name}', which does not match the name the assignment "
                              f"asks for (the pattern {pattern})", cell=cell)
    return Verdict(True, f"the proposed model is named '{name}'", cell=cell)


def _reported_check(metrics: tuple[str, str], words: tuple[str, str]) -> Judge:
    """One check for 'both models report these two metrics' (losses; accuracies)."""

    def check(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
        pair = [n for n in (analysis.baseline, analysis.proposed) if n]
        cell = _training_cell(analysis)
        if not pair:
            return Verdict(False, "no baseline or proposed model to report for", cell=cell)
        missing = []
        for name in pair:
            reported = analysis.reported.get(name)
            for metric, word in zip(metrics, words):
                if reported is None or getattr(reported, metric) is None:
                    missing.append(f"{name} has no {word}")
        if not missing and len(pair) == 2:
            values = "; ".join(_format_pair(analysis, n, metrics) for n in pair)
            return Verdict(True, f"reported for both models ({values})", cell=cell)
        found = 2 * len(pair) - len(missing)
        if len(pair) < 2:
            missing.append("only one of the two models was found")
        left_out = [why for name, why in analysis.reading.left_out.items() if name in pair]
        return Verdict(False, "; ".join(missing + left_out + _unread_lines(analysis, metrics)), found / 4, cell)  # two metrics for each of two models

    return check


def _unread_lines(analysis: Analysis, metrics: tuple[str, str]) -> list[str]:
    """What the grader saw but could not read as these metrics, in the student's words: the first
    such line, and where to see them all."""
    kind = "loss" if metrics[0].endswith("loss") else "accuracy"
    unread = [u for u in analysis.reading.unread if "no metric name" in u.reason or f"{kind} with no split" in u.reason
              or (kind == "loss" and "loss" in u.reason)]
    if not unread:
        return []
    first = unread[0]
    more = f" (and {sum(u.count for u in unread) - 1} more such lines)" if sum(u.count for u in unread) > 1 else ""
    return [f"cell {first.cell} prints '{first.line}', not read: {first.reason}{more}; "
            "`grader check NOTEBOOK --explain` shows how every line was read"]


def _format_pair(analysis: Analysis, name: str, metrics: tuple[str, str]) -> str:
    r = analysis.reported[name]
    parts = []
    for metric in metrics:
        value = getattr(r, metric)
        parts.append(f"{metric}={value:.1%}" if metric.endswith("acc") else f"{metric}={value:.3g}")
    return f"{name}: {', '.join(parts)}"


def _training_cell(analysis: Analysis) -> int | None:
    """The cell that trains the proposed model (else the baseline): where reports and settings are."""
    trained = {m: c for c, u in sorted(analysis.usage.cells.items(), reverse=True) for m in u.trained}
    return trained.get(analysis.proposed or "") or trained.get(analysis.baseline or "")


def discussion(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    d = analysis.discussion
    if d.present:
        return Verdict(True, f"cell {d.cell} discusses the results ({d.words} words)", cell=d.cell)
    last = notebook.cells[-1].index if notebook.cells else None
    return Verdict(False, "no markdown cell discusses the results after the models are trained", cell=last)


def discussion_names_winner(notebook: Notebook, analysis: Analysis, rubric: Rubric,
                            retrained: Mapping[str, float | None] | None = None) -> Verdict:
    """The winner the discussion names against the student's own reported accuracies (test, else
    validation). `retrained`: the grader's test accuracy per class, when it retrained them; a
    retraining that disagrees with the student's numbers is a flag, never a penalty."""
    d = analysis.discussion
    pair = {"baseline": analysis.baseline, "proposed": analysis.proposed}
    figures = _reported_figures(analysis)
    if figures is None:
        return Verdict(False, "the notebook reports no test or validation accuracy of both models to compare the "
                              "discussion with", cell=d.cell, scored=False)
    metric, values = figures
    numbers = f"your {metric}: {_pair_text(pair, values)}"
    if values["baseline"] == values["proposed"]:
        return Verdict(False, f"both models report the same {metric} ({numbers}): there is no better model to name",
                       cell=d.cell, scored=False)
    better = max(values, key=lambda side: values[side])
    note, flag = _retraining_note(pair, better, retrained)
    if not d.present or d.winner is None:
        said = "the discussion does not say" if d.present else "no discussion says"
        return Verdict(False, f"{said} which model performs better ({numbers}){note}", cell=d.cell, flag=flag)
    named = f"the discussion says {pair[d.winner]} performs better: \"{_quote(d.winner_evidence)}\""
    if d.winner == better:
        return Verdict(True, f"{named}; {numbers}{note}", cell=d.cell, flag=flag)
    return Verdict(False, f"{named}, but {numbers}{note}", cell=d.cell, flag=flag)


def _reported_figures(analysis: Analysis) -> tuple[str, dict[str, float]] | None:
    """('reported test accuracy', {side: value}) for the first metric both models report."""
    for metric, words in (("test_acc", "reported test accuracy"), ("val_acc", "reported validation accuracy")):
        values = {side: getattr(analysis.reported.get(name or ""), metric, None)
                  for side, name in (("baseline", analysis.baseline), ("proposed", analysis.proposed))}
        if all(v is not None for v in values.values()):
            return words, {side: float(v) for side, v in values.items() if v is not None}
    return None


def _pair_text(pair: Mapping[str, str | None], values: Mapping[str, float]) -> str:
    return ", ".join(f"{pair[side]} {values[side]:.1%}" for side in ("baseline", "proposed"))


def _retraining_note(pair: Mapping[str, str | None], better: str, retrained: Mapping[str, float | None] | None) -> tuple[str, str]:
    """A note (for the message) and a flag when the grader's retraining ranks the models the other way."""
    values = {side: (retrained or {}).get(name or "") for side, name in pair.items()}
    if any(v is None for v in values.values()) or values["baseline"] == values["proposed"]:
        return "", ""
    found = {side: float(v) for side, v in values.items() if v is not None}
    if max(found, key=lambda side: found[side]) == better:
        return "", ""
    text = (f"the grader's retraining under its fixed config ranks them the other way "
            f"({_pair_text(pair, found)} test accuracy)")
    return f"; note: {text}, for your instructor to review", f"discussion winner: your numbers and {text}"


def discussion_attributes(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    """The factors the discussion credits against the two models' architectures read from code."""
    return attributes_verdict(analysis.discussion, analysis.architecture(analysis.baseline),
                              analysis.architecture(analysis.proposed))


def attributes_verdict(d: Discussion, baseline: Architecture | None, proposed: Architecture | None) -> Verdict:
    """Passes when the discussion credits at least one factor the two architectures really differ in
    (run-measured architectures, where they exist, are the more exact input); a credited factor
    they do not differ in is a flag for the instructor, never a penalty."""
    if not d.present:
        return Verdict(False, "no discussion explains the difference between the models", cell=d.cell)
    if baseline is None or proposed is None:
        return Verdict(False, "the grader could not read both models' architectures to compare the discussion with",
                       cell=d.cell, scored=False)
    found = {diff.factor: diff.text for diff in differences(baseline, proposed)}
    if _size_unknown_but_follows(baseline, proposed, found):
        found["size"] = "more weight layers or channels, so more parameters"
    if not found:
        return Verdict(False, "the two models' code shows no architectural difference to credit", cell=d.cell, scored=False)
    real = [f for f in d.factors if f.factor in found and _same_direction(f, baseline, proposed)]
    claimed_wrongly = [f for f in d.factors if f not in real]
    differ = "; ".join(found.values())
    flag = "; ".join(_unfounded(f) for f in claimed_wrongly)
    note = f" (it also credits {_names(claimed_wrongly)}, in which the models do not differ)" if claimed_wrongly else ""
    if real:
        there = "; ".join(found[f.factor] for f in real)
        return Verdict(True, f"the discussion credits {_names(real)}, and the models do differ there ({there}){note}",
                       cell=d.cell, flag=flag)
    if claimed_wrongly:
        return Verdict(False, f"the discussion credits {_names(claimed_wrongly)}, but the models do not differ there; "
                              f"they differ in: {differ}", cell=d.cell, flag=flag)
    return Verdict(False, f"the discussion names no difference between the models to explain the result; "
                          f"they differ in: {differ}", cell=d.cell)


def _same_direction(f: NamedFactor, baseline: Architecture, proposed: Architecture) -> bool:
    """A claim of more (or less) depth, width or size agrees with the way the proposed model differs."""
    measure = {"depth": lambda a: a.depth, "width": lambda a: max(a.widths, default=0),
               "size": lambda a: a.params if a.params is not None else a.depth * max(a.widths, default=1)}.get(f.factor)
    claimed = claimed_direction(f)
    if measure is None or claimed == 0:
        return True
    change = measure(proposed) - measure(baseline)
    return change == 0 or (change > 0) == (claimed > 0)


def _size_unknown_but_follows(baseline: Architecture, proposed: Architecture, found: Mapping[str, str]) -> bool:
    """Code does not count parameters; a model with more layers or wider ones has more of them."""
    return (baseline.params is None or proposed.params is None) and ("depth" in found or "width" in found)


def _names(factors: list[NamedFactor]) -> str:
    return ", ".join(f"{f.factor} ('{f.words}')" for f in factors)


def _unfounded(f: NamedFactor) -> str:
    why = ("data augmentation is a training choice, the same for both models under one config"
           if f.factor == "augmentation" else f"the two models do not differ in {f.factor}"
           + (" in that direction" if claimed_direction(f) else ""))
    return f"the discussion credits '{_quote(f.words)}' but {why}: \"{_quote(f.sentence)}\""


def _quote(sentence: str, limit: int = 160) -> str:
    return sentence if len(sentence) <= limit else sentence[: limit - 3].rstrip() + "..."


def same_config(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    c = analysis.config
    return Verdict(bool(c.same), c.detail, cell=_training_cell(analysis))


_SPLIT_WORDS = {"validation": "the validation set", "test": "the test set", "unknown": "a metric whose split the grader cannot tell"}


def best_val_selection(notebook: Notebook, analysis: Analysis, rubric: Rubric) -> Verdict:
    """Optional: the final model is the epoch that did best on validation (a checkpoint restored, or early stopping)."""
    s = analysis.selection
    if s.kind == "none":
        return Verdict(False, "no best-validation checkpoint or early stopping was found: each model keeps its last "
                              "epoch's weights (optional)", cell=_training_cell(analysis))
    on = f"{_SPLIT_WORDS[s.split]} ({s.metric})" if s.metric else _SPLIT_WORDS[s.split]
    if s.split == "test":
        return Verdict(False, f"the final model is chosen on {on} at {s.where}: choosing on the test set leaks it "
                              "into training; choose on the validation set", cell=s.cell)
    if s.kind == "early_stopping":
        restores = " and restores the best weights" if s.restored else ""
        return Verdict(True, f"training stops early on {on}{restores} ({s.where})", cell=s.cell)
    if not s.restored:
        return Verdict(False, f"the best checkpoint on {on} is saved ({s.where}) but never loaded back: the model "
                              "evaluated is the last epoch's", 0.5, s.cell)
    pair = [m for m in (analysis.baseline, analysis.proposed) if m]
    missing = [m for m in pair if m not in s.restored_for] if s.restored_for else []
    if missing:
        return Verdict(False, f"the best checkpoint on {on} ({s.where}) is restored for {', '.join(s.restored_for)} "
                              f"but not for {', '.join(missing)}", 0.5, s.cell)
    return Verdict(True, f"the best checkpoint on {on} is saved ({s.where}) and restored (cell {s.restore_cell} "
                         f"line {s.restore_line})", cell=s.cell)


def selection_flags(analysis: Analysis) -> list[str]:
    """Choosing the final model on the test set: test-set leakage, for the instructor to see."""
    s = analysis.selection
    return [f"test-set leakage: the best epoch is chosen on the test set ({s.where})"] if s.split == "test" else []


def guessed_role_flags(analysis: Analysis) -> list[str]:
    """The baseline or proposed role the grader had to guess: worth an instructor's look."""
    return [
        f"role of {m.name} is a guess: {m.role.reason}"
        for m in analysis.models
        if m.role.guessed and m.name in (analysis.baseline, analysis.proposed)
    ]


JUDGES: dict[str, Judge] = {
    "notebook_valid": notebook_valid,
    "two_cnn_classes": two_cnn_classes,
    "proposed_named": proposed_named,
    "losses_reported": _reported_check(("train_loss", "val_loss"), ("training loss", "validation loss")),
    "accuracies_reported": _reported_check(("val_acc", "test_acc"), ("validation accuracy", "test accuracy")),
    "discussion": discussion,
    "discussion_names_winner": discussion_names_winner,
    "discussion_attributes": discussion_attributes,
    "same_config": same_config,
    "best_val_selection": best_val_selection,
}
"""The judge of every static check in the registry (tests/test_check.py holds the two in step)."""


__all__ = ["JUDGES", "attributes_verdict", "discussion_names_winner", "guessed_role_flags", "rejudge",
           "selection_flags", "static_checks", "unreadable"]
