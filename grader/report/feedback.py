"""feedback.md, feedback.html and the learning-curve image, rendered from a GradeResult.

Two audiences (Otter's lesson): the student's section first (checks with fixes, reported vs
reproduced, the references table, the curves), then an appendix for the instructor (flags,
both training configurations, provenance).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from grader.result import GradeResult

CURVES = "curves.png"


def _pct(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def feedback_markdown(result: GradeResult, *, curves: str | None = None) -> str:
    lines = [f"# Feedback for {result.student}", ""]
    if result.status == "error":
        lines += [f"**This submission could not be graded:** {result.error}", ""]
    lines += [f"**Score: {result.score:g} / {result.max_score:g}**", "", "## Checks", "",
              "| | Check | Points | What the grader found |", "|---|---|---|---|"]
    for c in result.checks:
        mark = "✓" if c["passed"] else ("✗" if c.get("required", True) else "!")  # glyphs every font has
        lines.append(f"| {mark} | {c['id']} | {c['points']:g} / {c['max_points']:g} | {_cell(c['message'])} |")
    fixes = [c for c in result.checks if not c["passed"] and c.get("hint")]
    if fixes:
        lines += ["", "### How to fix", ""] + [f"- **{c['id']}**: {c['hint']}" for c in fixes]
    if result.models:
        lines += ["", "## Your models", "", "| Class | Role | CNN |", "|---|---|---|"]
        for m in result.models:
            role = m["role"] + (" (guessed)" if m.get("role_guessed") else "")
            lines.append(f"| {m['name']} | {role} | {'yes' if m['is_cnn'] else 'no'} |")
    pair = [n for n in (result.baseline, result.proposed) if n]
    if pair:
        lines += ["", "## Reported vs reproduced", "",
                  "What your notebook printed, next to what the grader measured by retraining your classes under its fixed configuration"
                  + ("." if result.retrain else " (this run did not retrain: static checks only)."), "",
                  "| Model | Reported val acc | Reported test acc | Reproduced val acc | Reproduced test acc |", "|---|---|---|---|---|"]
        for name in pair:
            rep, run = result.reported.get(name, {}), result.retrain.get(name, {})
            lines.append(f"| {name} | {_pct(rep.get('val_acc'))} | {_pct(rep.get('test_acc'))} | {_pct(run.get('val_acc'))} | {_pct(run.get('test_acc'))} |")
    if result.references or result.retrain:
        lines += ["", "## Against the references (same data, same config)", "", "| Network | Test accuracy | Parameters |", "|---|---|---|"]
        rows = [(f"{n} (reference)", r) for n, r in result.references.items()] + [(f"{n} (yours)", r) for n, r in result.retrain.items()]
        for label, r in sorted(rows, key=lambda row: row[1].get("test_acc") or 0):
            params = f"{r['params']:,}" if isinstance(r.get("params"), int) else "–"
            lines.append(f"| {label} | {_pct(r.get('test_acc'))} | {params} |")
    if curves:
        lines += ["", "## Learning curves", "", f"![Learning curves]({curves})"]
    lines += ["", "---", "", "## For the instructor", ""]
    lines += [f"- Flag: {f}" for f in result.flags] or ["- No flags."]
    lines += [f"- Warning: {w}" for w in result.warnings]
    prov = result.provenance
    if prov.get("train_config"):
        config = ", ".join(f"{k}={v}" for k, v in prov["train_config"].items())
        lines += ["", f"Grader's training config ({prov.get('budget')}): {config}"]
    for name, settings in result.student_settings.items():
        shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "not found in the notebook"
        lines.append(f"- {name} as the student trained it: {shown}")
    keys = ("grader_version", "budget", "torch", "device", "isolation", "graded_at", "seconds")
    lines += ["", "Provenance: " + "; ".join(f"{k} {prov[k]}" for k in keys if k in prov)
              + f"; rubric {prov.get('rubric', {}).get('sha256', '')[:12]}"]
    return "\n".join(lines) + "\n"


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
    series = {f"{n} (yours)": r.get("history") for n, r in result.retrain.items()}
    series.update({f"{n} (reference)": r.get("history") for n, r in result.references.items()})
    series = {label: h for label, h in series.items() if isinstance(h, dict) and h.get("epochs")}
    if not series:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display on grading machines
    import matplotlib.pyplot as plt

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for label, history in series.items():
        epochs = [e["epoch"] for e in history["epochs"]]
        style = "--" if "reference" in label else "-"
        loss_ax.plot(epochs, [e.get("train_loss") for e in history["epochs"]], style, marker="o", label=label)
        acc_ax.plot(epochs, [e.get("val_accuracy") for e in history["epochs"]], style, marker="o", label=label)
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
    from grader.result import write_atomic

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
