"""The command line: a thin layer over the library.

Only this module knows about argv, exit codes and the terminal. Each command parses its options
and calls one library function; a `GraderError` becomes one line on stderr and exit code 2.

Exit codes: 0 every required check passed, 1 a required check failed, 2 unusable input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from grader import __version__
from grader.errors import GraderError

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


class _Group(click.Group):
    """Turns GraderError into a one-line message and exit 2, never a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GraderError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(EXIT_UNUSABLE)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="grader")
def cli() -> None:
    """Grade CIFAR-10 CNN notebooks: static checks, sandboxed retraining, rubric scores."""


@cli.command()
@click.argument("notebook", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (schema grader.check/1) and nothing else.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
def check(notebook: Path, as_json: bool, rubric: Path | None) -> None:
    """Check NOTEBOOK against the assignment without running it."""
    from grader.check import check_notebook
    from grader.report import console, jsonout

    result = check_notebook(notebook, rubric_path=rubric)
    if as_json:
        click.echo(jsonout.dumps(result.to_dict()))
    elif not result.valid:
        click.echo(f"error: {result.error}", err=True)
    else:
        console.print_check(result)
    sys.exit(result.exit_code)


@cli.command()
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (one subfolder per student).")
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="CIFAR-10 folder for retraining.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Submissions graded in parallel.")
@click.option("--quick", is_flag=True, help="Retrain with the rubric's quick budget instead of the full grading config.")
@click.option("--no-train", is_flag=True, help="Static checks only: no retraining, no references.")
@click.option("--require-isolation", is_flag=True, help="Refuse to run student code without a network namespace.")
def grade(submissions: Path, out: Path, rubric: Path | None, data_dir: Path | None, workers: int, quick: bool,
          no_train: bool, require_isolation: bool) -> None:
    """Grade every notebook in SUBMISSIONS (a folder of notebooks or of student folders)."""
    from grader.batch import grade_batch
    from grader.report.batchview import BatchView
    from grader.rubric import load_rubric

    loaded = load_rubric(rubric)
    budget = "none" if no_train else ("quick" if quick else "full")
    with BatchView() as view:
        report = grade_batch(submissions, out, rubric=loaded, budget=budget, workers=workers, data_dir=data_dir,
                             require_isolation=require_isolation, on_start=view.start, on_done=view.done)
    view.summary(report, out)
    sys.exit(130 if report.interrupted else EXIT_OK)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="CIFAR-10 folder for the quick retrain.")
@click.option("--no-train", is_flag=True, help="Static checks only.")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Also write JUnit XML here.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("grader-results"), show_default=True,
              help="Folder for result.json and the feedback files.")
def ci(path: Path, rubric: Path | None, data_dir: Path | None, no_train: bool, junit: Path | None, out: Path) -> None:
    """Check the notebook of a student's repository in CI (annotations, step summary, JUnit)."""
    from grader.batch import write_submission_files
    from grader.ci import annotations, find_notebook, step_summary
    from grader.grade import grade_submission
    from grader.report.feedback import feedback_markdown
    from grader.report.junit import junit_xml
    from grader.rubric import load_rubric

    notebook = find_notebook(path)
    result = grade_submission(notebook, student=notebook.stem, rubric=load_rubric(rubric),
                              budget="none" if no_train else "quick", data_dir=data_dir)
    write_submission_files(result, out)
    for line in annotations(result, notebook):
        click.echo(line)
    step_summary(result, feedback_markdown(result))
    if junit:
        junit.write_text(junit_xml(result), encoding="utf-8")
    failing = [c["id"] for c in result.checks if c.get("required", True) and not c["passed"]]
    if result.status == "error":
        click.echo(f"error: {result.error}", err=True)
        sys.exit(EXIT_UNUSABLE)
    click.echo(f"{notebook}: {result.score:g}/{result.max_score:g}" + (f"; failing: {', '.join(failing)}" if failing else "; every required check passes"))
    sys.exit(EXIT_FAILED if failing else EXIT_OK)


def main() -> None:
    cli(prog_name="grader")


if __name__ == "__main__":
    main()
