"""What differs between the baseline and the proposed model, and what it did: the feedback's
"What differs" section and the gradebook's factor columns, from one result.

The architectures are those the grader knows (grader.grading.result.architectures_of: measured on
the built models in the sandbox, else read from the code); the effect is the retraining's, proposed minus baseline, set
against the seed-to-seed spread (grader.training.effect).
"""

from __future__ import annotations

from grader.analysis.architecture import FACTORS, Architecture, Factor, clean_ablation, differences
from grader.grading.result import GradeResult, architectures_of
from grader.report.spreadsheet import Cell
from grader.report.text import markdown as md
from grader.training.runs import ModelRun

_FACTOR_NAMES: dict[Factor, str] = {"depth": "Depth (weight layers)", "width": "Width (conv channels)",
                                    "normalization": "Normalization", "dropout": "Dropout", "residual": "Residual connections",
                                    "pooling": "Pooling", "activation": "Activation", "size": "Size"}
_SHOWN_WIDTHS = 8
"""Convolution widths listed in full up to this many; longer lists are cut (the widest is always said)."""


def factor_values(arch: Architecture) -> dict[Factor, str]:
    """Each factor of one model, as a table cell."""
    return {
        "depth": f"{arch.depth} ({arch.conv_layers} conv, {arch.linear_layers} linear)",
        "width": _widths(arch),
        "normalization": f"{', '.join(arch.norms)} ({_layers(arch.norm_layers)})" if arch.norms else "none",
        "dropout": _layers(arch.dropout_layers) if arch.dropout_layers else "none",
        "residual": str(arch.residual) if arch.residual else "none",
        "pooling": ", ".join(arch.pooling) or "none",
        "activation": ", ".join(arch.activations) or "none",
        "size": _size(arch),
    }


def _layers(n: int) -> str:
    return f"{n} layer" + ("" if n == 1 else "s")


def _widths(arch: Architecture) -> str:
    widths = arch.widths
    if not widths:
        return "not written as numbers in the code" if arch.conv_layers else "no convolutions"
    shown = ", ".join(map(str, widths[:_SHOWN_WIDTHS])) + (", ..." if len(widths) > _SHOWN_WIDTHS else "")
    return f"{shown} (widest {max(widths)})"


def _size(arch: Architecture) -> str:
    params = (f"{arch.params:,} params" if arch.params is not None
              else "counted when the models are run" if arch.source == "code" else "params unknown")
    return params + (f", {arch.flops_per_image / 1e6:.2f} MFLOPs per image" if arch.flops_per_image else "")


def pair_architectures(result: GradeResult) -> tuple[Architecture, Architecture] | None:
    """(baseline, proposed) when both are known."""
    known = architectures_of(result)
    baseline, proposed = known.get(result.baseline or ""), known.get(result.proposed or "")
    return (baseline, proposed) if baseline and proposed else None


def what_differs_markdown(result: GradeResult) -> list[str]:
    """The 'What differs' section: the factor table, the differences, a clean ablation, and the effect."""
    pair = pair_architectures(result)
    if pair is None and result.effect is None:
        return []
    lines = ["", "## What differs", ""]
    if pair:
        lines += _factor_table(result, *pair)
    if result.effect is not None:
        lines += _effect_table(result)
    return lines


def _factor_table(result: GradeResult, baseline: Architecture, proposed: Architecture) -> list[str]:
    before, after = factor_values(baseline), factor_values(proposed)
    found = differences(baseline, proposed)
    differing = {d.factor for d in found}
    how = ("The two models as the grader built them and measured them on one forward pass."
           if baseline.source == proposed.source == "run" else
           "The two models as the grader read them from your code (a retraining measures them exactly: "
           "`grader check --train quick`).")
    lines = [how, "",
             f"| Factor | Baseline: {md(result.baseline or '')} | Proposed: {md(result.proposed or '')} |", "|---|---|---|"]
    for factor in FACTORS:
        mark = "**" if factor in differing else ""  # the factors that differ stand out
        lines.append(f"| {mark}{_FACTOR_NAMES[factor]}{mark} | {md(before[factor])} | {md(after[factor])} |")
    lines += ["", "How the proposed model differs:", "", *[f"- {_item(d.text)}" for d in found]] if found else [
        "", "The two models are built alike: no factor differs."]
    ablated = clean_ablation(found)
    if ablated:
        lines += ["", f"This is **a clean ablation of {ablated}**: the models differ in that one factor (size aside), "
                      "so the effect below can be attributed to it."]
    return lines


def _item(text: str) -> str:
    """A difference as a list item: an arrow Markdown keeps, and a leading + or - that starts no list."""
    item = md(text.replace("->", "\u2192"))
    return "\\" + item if item.startswith(("+", "-")) else item


def _effect_table(result: GradeResult) -> list[str]:
    effect = result.effect
    assert effect is not None
    base, prop = result.runs.get(result.baseline or ""), result.runs.get(result.proposed or "")
    rows = [("Test accuracy", _acc(base), _acc(prop), _signed(effect.test_accuracy, 100, " points", 1)),
            ("Validation loss (selected epoch)", _val_loss(base), _val_loss(prop), _signed(effect.val_loss, 1, "", 3)),
            ("Seconds per epoch", _epoch_s(base), _epoch_s(prop), _signed(effect.seconds_per_epoch, 1, " s", 2))]
    return ["", "### The effect (same data, same config)", "",
            "| | Baseline | Proposed | Proposed minus baseline |", "|---|---|---|---|",
            *[f"| {name} | {b} | {p} | {d} |" for name, b, p, d in rows],
            "", f"Test accuracy: **{effect.verdict}**."]


def _acc(run: ModelRun | None) -> str:
    return f"{run.test_accuracy:.1%}" if run and run.test_accuracy is not None else "–"


def _val_loss(run: ModelRun | None) -> str:
    selected = run.history.selected if run and run.history else None
    return f"{selected.val_loss:.3f}" if selected and selected.val_loss is not None else "–"


def _epoch_s(run: ModelRun | None) -> str:
    epochs = run.history.epochs if run and run.history else ()
    return f"{sum(e.seconds for e in epochs) / len(epochs):.2f} s" if epochs else "–"


def _signed(value: float | None, scale: float, unit: str, digits: int) -> str:
    return "–" if value is None else f"{value * scale:+.{digits}f}{unit}"


# ---- the gradebook ------------------------------------------------------------------------------

FACTOR_COLUMNS = ("proposed_depth", "proposed_widest", "proposed_norm", "proposed_dropout", "proposed_residual",
                  "params_ratio", "differs_in", "clean_ablation", "effect_test_acc", "effect_beyond_noise")
"""The gradebook's columns an instructor sorts by: the proposed model's factors, what differs, the effect."""


def factor_cells(result: GradeResult) -> list[Cell]:
    """The FACTOR_COLUMNS cells of one result (empty where unknown)."""
    pair = pair_architectures(result)
    effect = result.effect
    effect_cells: list[Cell] = [round(effect.test_accuracy, 4) if effect and effect.test_accuracy is not None else None,
                                "" if effect is None or effect.beyond_noise is None else
                                ("yes" if effect.beyond_noise else "no")]
    if pair is None:
        return [None] * 6 + ["", ""] + effect_cells
    baseline, proposed = pair
    found = differences(baseline, proposed)
    ratio = round(proposed.params / baseline.params, 2) if proposed.params and baseline.params else None
    return [proposed.depth, max(proposed.widths, default=0), " ".join(proposed.norms) or "none", proposed.dropout_layers,
            proposed.residual, ratio, " ".join(dict.fromkeys(d.factor for d in found)), clean_ablation(found) or "",
            *effect_cells]


__all__ = ["FACTOR_COLUMNS", "factor_cells", "factor_values", "pair_architectures", "what_differs_markdown"]
