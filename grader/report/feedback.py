"""feedback.md, feedback.html and the learning-curve image, rendered from a GradeResult.

Two audiences (Otter's lesson): the student's section first (checks with fixes, reported vs
reproduced, the references table, the curves), then an appendix for the instructor (flags,
both training configurations, provenance).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from grader.grading.result import GradeResult, write_atomic
from grader.report.budget import budget_lines
from grader.report.text import code_span
from grader.report.text import markdown as md
from grader.typed import to_plain

CURVES = "curves.png"


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


_METRIC_WORDS = {"train_loss": "training loss", "val_loss": "validation loss", "val_acc": "validation accuracy",
                 "test_acc": "test accuracy"}


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def feedback_markdown(result: GradeResult, *, curves: str | None = None) -> str:
    lines = [f"# Feedback for {md(result.student)}", "", *[f"*{md(line)}*  " for line in budget_lines(result)], ""]
    if result.status == "error":
        lines += [f"**This submission could not be graded:** {md(result.error)}", ""]
    lines += [f"**Score: {result.score:g} / {result.max_score:g}**", "", "## Checks", "",
              "| | Check | Points | What the grader found |", "|---|---|---|---|"]
    for c in result.checks:
        mark = "–" if not c.scored else "✓" if c.passed else ("✗" if c.required else "!")  # glyphs every font has
        points = f"{c.points:g} / {c.max_points:g}" if c.scored else "not scored"
        lines.append(f"| {mark} | {c.id} | {points} | {md(c.message)} |")
    fixes = [c for c in result.checks if not c.passed and c.hint]
    if fixes:
        lines += ["", "### How to fix", ""] + [f"- **{c.id}**: {c.hint}" for c in fixes]
    classes = [m for m in result.models if m.kind == "model"]
    if classes:
        lines += ["", "## Your models", "", "| Class | Role | CNN |", "|---|---|---|"]
        for m in classes:
            role = m.role + (" (guessed)" if m.role_guessed else "")
            lines.append(f"| {md(m.name)} | {role} | {'yes' if m.is_cnn else 'no'} |")
    pair = [n for n in (result.baseline, result.proposed) if n]
    if pair:
        lines += _reported_vs_reproduced(result, pair)
    if result.references or result.runs:
        lines += ["", "## Against the references (same data, same config)", "", "| Network | Test accuracy | Parameters |", "|---|---|---|"]
        rows = [(f"{n} (reference)", r) for n, r in result.references.items()] + [(f"{n} (yours)", r) for n, r in result.runs.items()]
        for label, r in sorted(rows, key=lambda row: row[1].test_accuracy or 0):
            params = f"{r.params:,}" if r.params is not None else "–"
            lines.append(f"| {md(label)} | {_pct(r.test_accuracy)} | {params} |")
    notes = [f"- {md(name)}: {md(note)}" for name, run in result.runs.items() for note in run.notes]
    if notes:
        lines += ["", "Notes from the retraining:", "", *notes]
    if curves:
        lines += ["", "## Learning curves", "", f"![Learning curves]({curves})"]
    lines += _instructor_appendix(result)
    return "\n".join(lines) + "\n"


def _reported_vs_reproduced(result: GradeResult, pair: list[str]) -> list[str]:
    """The notebook's figures beside the grader's, and the line each reported figure was read from."""
    lines = ["", "## Reported vs reproduced", "",
             "What your notebook printed, next to what the grader measured by retraining your classes under its fixed configuration"
             + ("." if result.runs else " (this run did not retrain: static checks only)."), "",
             "| Model | Reported val acc | Reported test acc | Reproduced val acc | Reproduced test acc |", "|---|---|---|---|---|"]
    for name in pair:
        rep, run = result.reported.get(name), result.runs.get(name)
        lines.append(f"| {md(name)} | {_pct(rep and rep.val_acc)} | {_pct(rep and rep.test_acc)} | "
                     f"{_pct(run and run.val_accuracy)} | {_pct(run and run.test_accuracy)} |")
    read: dict[tuple[str, str], list[str]] = {}  # (model, where) -> the metrics read there, in METRICS order
    for name in pair:
        for metric, where in (result.reported[name].evidence if name in result.reported else {}).items():
            read.setdefault((name, where), []).append(_METRIC_WORDS.get(metric, metric))
    if read:
        lines += ["", "Where the grader read your figures:", ""]
        for (name, where), metrics in read.items():
            cell, _, line = where.partition(": ")
            lines.append(f"- {md(name)} {_and(metrics)}: read from {cell}: {code_span(line)}")
    return lines


def _instructor_appendix(result: GradeResult) -> list[str]:
    lines = ["", "---", "", "## For the instructor", ""]
    lines += [f"- Flag: {md(f)}" for f in result.flags] or ["- No flags."]
    lines += [f"- Warning: {md(w)}" for w in result.warnings]
    prov, run = result.provenance, result.provenance.run
    if run:
        config = ", ".join(f"{k}={v}" for k, v in to_plain(run.train_config).items())
        lines += ["", f"Grader's training config ({prov.budget}): {config}"]
    for name, settings in result.student_settings.items():
        shown = ", ".join(f"{md(k)}={md(v)}" for k, v in settings.items()) or "not found in the notebook"
        lines.append(f"- {md(name)} as the student trained it: {shown}")
    facts = [("grader_version", prov.grader_version), ("budget", prov.budget)]
    if run:
        facts += [("torch", run.torch), ("device", run.device), ("isolation", run.isolation)]
    facts += [("graded_at", prov.graded_at), ("seconds", prov.seconds)]
    lines += ["", "Provenance: " + "; ".join(f"{k} {v}" for k, v in facts) + f"; rubric {prov.rubric_sha256[:12]}"]
    return lines


def feedback_html(markdown_text: str, *, title: str, images: dict[str, bytes] | None = None) -> str:
    """A self-contained page: images are inlined, so the file can be opened or mailed alone."""
    import mistune  # comes with nbconvert

    body = mistune.create_markdown(plugins=["table"], escape=True)(markdown_text)
    for name, data in (images or {}).items():
        body = body.replace(f'src="{name}"', f'src="data:image/png;base64,{base64.b64encode(data).decode()}"')
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #1b1f23; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; }}
th, td {{ border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }}
th {{ background: #f6f8fa; }}
img {{ max-width: 100%; border: 1px solid #d0d7de; }}
hr {{ margin: 2rem 0; }}
</style></head><body>
{body}
</body></html>
"""


def learning_curves_png(result: GradeResult) -> bytes | None:
    """Validation accuracy and training loss per epoch for both models and the references."""
    series = {f"{n} (yours)": r.history for n, r in result.runs.items()}
    series.update({f"{n} (reference)": r.history for n, r in result.references.items()})
    series = {label: h for label, h in series.items() if h is not None and h.epochs}
    if not series:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display on grading machines
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for label, history in series.items():
        epochs = [e.epoch for e in history.epochs]
        style = "--" if "reference" in label else "-"
        loss_ax.plot(epochs, [e.train_loss for e in history.epochs], style, marker="o", label=label)
        acc_ax.plot(epochs, [e.val_accuracy for e in history.epochs], style, marker="o", label=label)
    from matplotlib.ticker import MaxNLocator

    for ax in (loss_ax, acc_ax):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    loss_ax.set(title="Training loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    acc_ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_feedback(result: GradeResult, folder: Path) -> list[Path]:
    """feedback.md, feedback.html and curves.png (when there are curves) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    png = learning_curves_png(result)
    written = []
    if png:
        (folder / CURVES).write_bytes(png)
        written.append(folder / CURVES)
    text = feedback_markdown(result, curves=CURVES if png else None)
    write_atomic(folder / "feedback.md", text)
    page = feedback_html(text, title=f"Feedback for {result.student}", images={CURVES: png} if png else None)
    write_atomic(folder / "feedback.html", page)
    return written + [folder / "feedback.md", folder / "feedback.html"]
