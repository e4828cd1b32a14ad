"""The feedback files of one result, for its two audiences (Otter's lesson).

The student's page, feedback.md and feedback.html: the checks with a status in words and colour,
how to fix what failed, reported vs reproduced, the references, the learning curves, and (in the
HTML) the student's own notebook with each check that lost points shown at its cell. Nothing in it
comes from the grading machine: no flags, configurations, provenance or paths.

The instructor's appendix, instructor.md and instructor.html: flags, warnings, overrides, both
training configurations, provenance, the grader's traceback.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from grader.grading.result import GradeResult, write_atomic
from grader.report.budget import budget_lines
from grader.report.curves import learning_curves_png
from grader.report.differs import what_differs_markdown
from grader.report.notebook_html import MAX_RENDERED_BYTES, notebook_html
from grader.report.page import Page, markdown_page, render_page
from grader.report.status import CheckView, check_view
from grader.report.text import code_block, code_span, without_paths
from grader.report.text import markdown as md
from grader.typed import to_plain
from grader.untrusted import read_untrusted

CURVES = "curves.png"
STUDENT_FILES = ("feedback.md", "feedback.html")
INSTRUCTOR_FILES = ("instructor.md", "instructor.html")


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


_METRIC_WORDS = {"train_loss": "training loss", "val_loss": "validation loss", "val_acc": "validation accuracy",
                 "test_acc": "test accuracy"}


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


# ---- the student's page -------------------------------------------------------------------------

def machine_paths(result: GradeResult) -> tuple[str, ...]:
    """The grading machine's paths a result knows of: never shown to the student."""
    run = result.provenance.run
    notebook = Path(result.notebook)
    return (str(notebook), str(notebook.parent), result.provenance.rubric_source, run.data_source if run else "",
            str(Path.home()))


def check_views(result: GradeResult) -> tuple[CheckView, ...]:
    paths = machine_paths(result)
    return tuple(check_view(c, paths) for c in result.checks)


def _student_lines(result: GradeResult) -> list[str]:
    paths = machine_paths(result)
    return [f"Notebook: {Path(result.notebook).name}",
            *(without_paths(line, paths) for line in budget_lines(result, for_student=True))]


def _error(result: GradeResult) -> str:
    return without_paths(result.error, machine_paths(result)) if result.status == "error" and result.error else ""


def feedback_markdown(result: GradeResult, *, curves: str | None = None, figures_held: bool = False) -> str:
    """The student's page as Markdown (also Gradescope's output and the CI step summary). `figures_held`:
    the result was retrained, but its figures are left out until the checks that use them are shown."""
    lines = [f"# Feedback for {md(result.student)}", "", *[f"*{md(line)}*  " for line in _student_lines(result)], ""]
    if error := _error(result):
        lines += [f"**This submission could not be graded:** {md(error)}", ""]
    lines += [f"**Score: {result.score:g} / {result.max_score:g}**", "", "## Checks", ""]
    lines += _checks_markdown(check_views(result))
    lines += _details_markdown(result, figures_held)
    if curves:
        lines += ["", "## Learning curves", "", f"![Learning curves]({curves})"]
    return "\n".join(lines) + "\n"


def _checks_markdown(views: tuple[CheckView, ...]) -> list[str]:
    lines = ["| Result | Check | Points | What the grader found |", "|---|---|---|---|"]
    for v in views:
        status = f"**{v.status}**" if v.needs_work else v.status  # the word, not a colour: readable anywhere
        found = md(v.message) + (f" — *{md(v.override)}*" if v.override else "")
        lines.append(f"| {status} | {md(v.label)} | {v.points} | {found} |")
    fixes = [v for v in views if v.hint]
    if fixes:
        lines += ["", "### How to fix", ""] + [f"- **{md(v.label)}**: {v.hint}" for v in fixes]
    return lines


def _details_markdown(result: GradeResult, figures_held: bool = False) -> list[str]:
    """Everything on the student's page after the checks: models, figures, references, notes."""
    lines: list[str] = []
    classes = [m for m in result.models if m.kind == "model"]
    if classes:
        lines += ["", "## Your models", "", "| Class | Role | CNN |", "|---|---|---|"]
        for m in classes:
            role = m.role + (" (guessed)" if m.role_guessed else "")
            lines.append(f"| {md(m.name)} | {role} | {'yes' if m.is_cnn else 'no'} |")
    pair = [n for n in (result.baseline, result.proposed) if n]
    if pair:
        lines += _reported_vs_reproduced(result, pair, figures_held)
    lines += what_differs_markdown(result)
    if result.references or result.runs:
        lines += ["", "## Against the references (same data, same config)", "", "| Network | Test accuracy | Parameters |", "|---|---|---|"]
        rows = [(f"{n} (reference)", r) for n, r in result.references.items()] + [(f"{n} (yours)", r) for n, r in result.runs.items()]
        for label, r in sorted(rows, key=lambda row: row[1].test_accuracy or 0):
            params = f"{r.params:,}" if r.params is not None else "–"
            lines.append(f"| {md(label)} | {_pct(r.test_accuracy)} | {params} |")
    paths = machine_paths(result)
    notes = [f"- {md(name)}: {md(without_paths(note, paths))}" for name, run in result.runs.items() for note in run.notes]
    if notes:
        lines += ["", "Notes from the retraining:", "", *notes]
    return lines


def _reported_vs_reproduced(result: GradeResult, pair: list[str], figures_held: bool = False) -> list[str]:
    """The notebook's figures beside the grader's, and the line each reported figure was read from."""
    why = ("." if result.runs else " (shown later, with the checks that use them)." if figures_held
           else " (this run did not retrain: static checks only).")
    lines = ["", "## Reported vs reproduced", "",
             "What your notebook printed, next to what the grader measured by retraining your classes under its fixed "
             f"configuration{why}", "",
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


def student_page(result: GradeResult, curves_png: bytes | None = None) -> str:
    """feedback.html: the student's page, with the student's notebook when it is still the graded one."""
    views = check_views(result)
    body = "\n".join(_details_markdown(result))
    return render_page(Page(title=f"Feedback for {result.student}", lines=_student_lines(result), error=_error(result),
                            score=f"{result.score:g} / {result.max_score:g}", checks=views, body_markdown=body,
                            curves_png=curves_png, notebook_html=_notebook(result, views)))


def _notebook(result: GradeResult, views: tuple[CheckView, ...]) -> str:
    """The graded notebook rendered with the failed checks at their cells; empty when none was graded,
    or the file is gone, has changed since grading (the cells would not match) or cannot be rendered."""
    if not result.notebook_sha256:  # never read (a link, a FIFO...): it is not read now either
        return ""
    failed: dict[int, list[CheckView]] = {}
    for v in views:
        if v.needs_work and v.cell is not None:
            failed.setdefault(v.cell, []).append(v)
    path = Path(result.notebook)
    try:  # as it was graded: read through grader.untrusted, and only the bytes with the graded hash are shown
        raw = read_untrusted(path, max_bytes=MAX_RENDERED_BYTES, below=path.parent)
        if hashlib.sha256(raw).hexdigest() != result.notebook_sha256:
            return ""
        return notebook_html(raw, failed)
    except Exception:  # the student's file is arbitrary: the page without it beats no page at all
        return ""


# ---- the instructor's appendix ------------------------------------------------------------------

def instructor_markdown(result: GradeResult) -> str:
    """The instructor's appendix: what the student's page leaves out."""
    prov, run = result.provenance, result.provenance.run
    lines = [f"# Instructor's appendix: {md(result.student)}", "",
             "Not for the student: flags, warnings, overrides, the training configurations and where the result came from.", "",
             f"- Notebook: {code_span(result.notebook)}",
             f"- Status: {result.status}; score {result.score:g} / {result.max_score:g}", "", "## Flags", ""]
    lines += [f"- {md(f)}" for f in result.flags] or ["No flags."]
    if result.warnings:
        lines += ["", "## Warnings", "", *[f"- {md(w)}" for w in result.warnings]]
    overridden = [c for c in result.checks if c.overridden_from is not None or c.instructor_comment]
    if overridden:
        lines += ["", "## Overrides", ""]
        lines += [f"- {md(c.label)} (`{c.id}`): the autograder gave {c.overridden_from if c.overridden_from is not None else c.points:g},"
                  f" now {c.points:g} / {c.max_points:g}" + (f": {md(c.instructor_comment)}" if c.instructor_comment else "")
                  for c in overridden]
    lines += ["", "## Training configurations", ""]
    if run:
        config = ", ".join(f"{k}={v}" for k, v in to_plain(run.train_config).items())
        lines.append(f"- The grader's ({prov.budget}): {md(config)}")
    else:
        lines.append(f"- The grader's: none (budget {prov.budget}: nothing was trained)")
    for name, settings in result.student_settings.items():
        shown = ", ".join(f"{md(k)}={md(v)}" for k, v in settings.items()) or "not found in the notebook"
        lines.append(f"- {md(name)} as the student trained it: {shown}")
    if result.status == "error":
        lines += ["", "## The grader's error", "", md(result.error or "")]
        if result.traceback:
            lines += ["", code_block(result.traceback)]
    lines += ["", "## Provenance", "", *[f"- {key}: {md(value)}" for key, value in _provenance(result)]]
    return "\n".join(lines) + "\n"


def _provenance(result: GradeResult) -> list[tuple[str, object]]:
    prov, run = result.provenance, result.provenance.run
    facts: list[tuple[str, object]] = [("grader version", prov.grader_version), ("python", prov.python),
                                       ("rubric", f"{prov.rubric_source} (sha256 {prov.rubric_sha256[:12]})"),
                                       ("budget", prov.budget)]
    if run:
        facts += [("torch", run.torch), ("device", run.device),
                  ("isolation", run.isolation + (f" ({run.isolation_note})" if run.isolation_note else "")),
                  ("data", f"{run.data_kind} from {run.data_source} (sha256 {run.data_sha256[:12]})")]
    return facts + [("notebook sha256", result.notebook_sha256[:12]), ("graded at", prov.graded_at),
                    ("seconds", f"{prov.seconds:.1f}")]


# ---- the files ----------------------------------------------------------------------------------

def write_feedback(result: GradeResult, folder: Path) -> list[Path]:
    """The student's feedback.md and feedback.html, curves.png when there are curves, and the
    instructor's instructor.md and instructor.html, in `folder`."""
    png = learning_curves_png(result)
    files: dict[str, str | bytes] = {CURVES: png} if png else {}
    if not png:
        (folder / CURVES).unlink(missing_ok=True)  # from an earlier grade with more epochs
    files["feedback.md"] = feedback_markdown(result, curves=CURVES if png else None)
    files["feedback.html"] = student_page(result, png)
    files["instructor.md"] = appendix = instructor_markdown(result)
    files["instructor.html"] = markdown_page(appendix, title=f"Instructor's appendix: {result.student}")
    for name, content in files.items():
        write_atomic(folder / name, content)
    return [folder / name for name in files]


__all__ = ["CURVES", "INSTRUCTOR_FILES", "STUDENT_FILES", "check_views", "feedback_markdown", "instructor_markdown",
           "machine_paths", "student_page", "write_feedback"]
