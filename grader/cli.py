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


def main() -> None:
    cli(prog_name="grader")


if __name__ == "__main__":
    main()
