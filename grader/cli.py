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
from grader.grading.executors.base import Executor
from grader.grading.grade import grade_submission
from grader.grading.result import GradeResult
from grader.report.text import clean, one_line
from grader.rubric import Budget, load_rubric

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
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (result.json, schema grader.result/2) and nothing else.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
@click.option("--train", "budget", type=click.Choice(["none", "quick", "full"]), default="none", show_default=True,
              help="Also run and retrain the two models in the sandbox: quick is the self-check budget.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="CIFAR-10 folder for --train.")
@click.option("--require-isolation", is_flag=True, help="Refuse to run the notebook's code without a sandbox.")
@click.option("--explain", is_flag=True, help="Also show how the outputs were read: each value's line and model, "
              "and each line that looked like a metric but was not used, with why.")
def check(notebook: Path, as_json: bool, rubric: Path | None, budget: Budget, data_dir: Path | None,
          require_isolation: bool, explain: bool) -> None:
    """Check NOTEBOOK against the assignment (without running it, unless --train)."""
    from grader.report.console import print_result
    from grader.report.progress import ProgressDisplay

    if explain and as_json:
        raise click.UsageError("--explain is for reading in a terminal; --json already holds each value's evidence")
    with ProgressDisplay() as show:
        result = grade_submission(notebook, student=notebook.stem, rubric=load_rubric(rubric), budget=budget,
                                  data_dir=data_dir, require_isolation=require_isolation, on_progress=show)
    if as_json:
        click.echo(result.to_json())
    if result.status == "error":  # with --json too: stdout holds the JSON alone, stderr says why in one line
        click.echo(f"error: {clean(result.error)}", err=True)
    elif not as_json:
        print_result(result)
        if explain:
            _explain(notebook)
    sys.exit(_exit_code(result))


def _explain(notebook: Path) -> None:
    from grader.analysis import analyze
    from grader.notebook import load_notebook
    from grader.report.explain import print_explanation

    click.echo()
    print_explanation(analyze(load_notebook(notebook)))  # read once more: the static reading takes a fraction of a second


def _exit_code(result: GradeResult) -> int:
    if result.status == "error":
        return EXIT_UNUSABLE
    return EXIT_FAILED if result.failing else EXIT_OK


@cli.command()
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (one subfolder per student).")
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="CIFAR-10 folder for retraining.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Submissions graded in parallel by the local executor (default 1).")
@click.option("--quick", is_flag=True, help="Retrain with the rubric's quick budget instead of the full grading config.")
@click.option("--no-train", is_flag=True, help="Static checks only: no retraining, no references.")
@click.option("--allow-unisolated", is_flag=True,
              help="Run student code even where no sandbox works (as your own user, with your files in reach).")
@click.option("--require-isolation", is_flag=True, hidden=True, help="The default; kept for earlier scripts.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: a process pool here (--workers); ray: one Ray task per submission on a Ray cluster.")
@click.option("--ray-address", default=None, help="The Ray cluster (default: $RAY_ADDRESS, a `ray start` cluster here, else a new local one).")
@click.option("--cpus-per-task", type=click.FloatRange(min=0, min_open=True), default=None,
              help="CPUs each submission's Ray task reserves (default 1).")
@click.option("--gpus-per-task", type=click.FloatRange(min=0), default=None,
              help="GPUs each Ray task reserves; 0.25 lets four trainings share a GPU (default 0).")
@click.option("--overrides", type=click.Path(path_type=Path), default=None,
              help="The instructor's overrides.toml: points and comments per student and check (nobody is graded again).")
@click.option("--gpu-slots", default=None, metavar="N|auto",
              help="Local executor: N trainings at once on each GPU (auto: from free memory and recorded peaks); "
                   "--workers defaults to the slots. No effect without a GPU.")
def grade(submissions: Path, out: Path, rubric: Path | None, data_dir: Path | None, workers: int | None, quick: bool,
          no_train: bool, allow_unisolated: bool, require_isolation: bool, executor: str, ray_address: str | None,
          cpus_per_task: float | None, gpus_per_task: float | None, overrides: Path | None,
          gpu_slots: str | None) -> None:
    """Grade every notebook in SUBMISSIONS (a folder of notebooks or of student folders)."""
    from grader.grading.batch import grade_batch
    from grader.grading.overrides import load_overrides
    from grader.report.batchview import BatchView
    from grader.training.gpus import parse_gpu_slots

    slots = parse_gpu_slots(gpu_slots) if gpu_slots is not None else None
    if slots is not None and executor != "local":
        raise GraderError("--gpu-slots applies to the local executor only; with Ray, --gpus-per-task 0.25 shares each GPU four ways")
    loaded = load_rubric(rubric)
    overridden = load_overrides(overrides, loaded) if overrides else ()
    budget = "none" if no_train else ("quick" if quick else "full")
    runner = _executor(executor, workers=workers, ray_address=ray_address, cpus_per_task=cpus_per_task,
                       gpus_per_task=gpus_per_task)
    with BatchView() as view:
        report = grade_batch(submissions, out, rubric=loaded, budget=budget, executor=runner, data_dir=data_dir,
                             require_isolation=not allow_unisolated, overrides=overridden, gpu_slots=slots,
                             on_note=lambda line: click.echo(f"note: {line}", err=True), on_start=view.start,
                             on_done=view.done, on_progress=view.step)
    view.summary(report, out)
    if report.results:
        _write_review(out, report.results.values(), report.similar)
    sys.exit(130 if report.interrupted else EXIT_OK)


def _write_review(out: Path, results, similar) -> None:
    """The class's page after grading: whatever fails (an import included) is one warning, the grades are all stored."""
    try:
        from grader.report.review import write_review

        click.echo(f"class review: {write_review(out, results, similar)}", err=True)
    except Exception as e:  # noqa: BLE001 (whatever failed, the grades stand; the page can be made again)
        click.echo(f"warning: could not write the class review page in {out} ({one_line(e)}); every grade is "
                   f"saved: run grader review {out} to try again", err=True)


def _executor(kind: str, *, workers: int | None, ray_address: str | None, cpus_per_task: float | None,
              gpus_per_task: float | None) -> Executor:
    """The executor the command line asked for; an option given must be that executor's."""
    if kind == "local":
        given = [flag for flag, value in (("--ray-address", ray_address), ("--cpus-per-task", cpus_per_task),
                                          ("--gpus-per-task", gpus_per_task)) if value is not None]
        if given:
            raise GraderError(f"{given[0]} applies to the Ray executor only; add --executor ray or drop {given[0]}")
        from grader.grading.executors.local import LocalExecutor

        return LocalExecutor(workers)  # None: one worker per GPU slot (--gpu-slots), else 1
    if workers is not None:
        raise GraderError("--workers applies to the local executor only; with Ray, --cpus-per-task and "
                          "--gpus-per-task decide how many submissions run at once")
    from grader.grading.executors.ray import RayExecutor, RaySettings, require_ray

    require_ray()
    return RayExecutor(RaySettings(address=ray_address, cpus_per_task=1.0 if cpus_per_task is None else cpus_per_task,
                                   gpus_per_task=0.0 if gpus_per_task is None else gpus_per_task))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path), default=".")
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="Rubric TOML (default: rubrics/cifar10.toml); its assignment.notebook picks the notebook.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="CIFAR-10 folder for the quick retrain.")
@click.option("--no-train", is_flag=True, help="Static checks only.")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Also write JUnit XML here.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("grader-results"), show_default=True,
              help="Folder for result.json and the feedback files.")
def ci(path: Path, rubric: Path | None, data_dir: Path | None, no_train: bool, junit: Path | None, out: Path) -> None:
    """Check the notebook of a student's repository in CI (annotations, log sections, step summary, JUnit).

    PATH is the repository (its one notebook, or the one matching the rubric's assignment.notebook)
    or the notebook itself."""
    import os
    import time

    from grader.grading.batch import write_submission_files
    from grader.grading.submissions import find_notebook, repository_path
    from grader.report.ci_log import ci_log, log_style, repository_root
    from grader.report.feedback import feedback_markdown
    from grader.report.github import step_summary
    from grader.report.junit import junit_xml
    from grader.report.progress import ProgressDisplay

    style = log_style(os.environ)
    loaded = load_rubric(rubric)
    try:
        notebook = find_notebook(path, loaded.assignment.notebook)
    except GraderError as e:  # it lists the repository's notebooks: names the student chose
        _echo_quoted(f"error: {e}", style)
        sys.exit(EXIT_UNUSABLE)
    file = repository_path(notebook, repository_root(path, os.environ))
    with ProgressDisplay() as show:
        result = grade_submission(notebook, student=notebook.stem, rubric=loaded, budget="none" if no_train else "quick",
                                  data_dir=data_dir, on_progress=show, below=path if path.is_dir() else None)
    write_submission_files(result, out)
    for line in ci_log(result, file, style, now=int(time.time())):
        click.echo(line, color=True)  # keeps GitLab's section markers; student text in them is cleaned
    step_summary(result, feedback_markdown(result))
    if junit:
        junit.write_text(junit_xml(result, file), encoding="utf-8")
    if result.status == "error":
        _echo_quoted(f"error: {result.error}", style)
    sys.exit(_exit_code(result))


def _echo_quoted(line: str, style) -> None:
    """One line of student text on stderr, which CI logs read commands from as they read stdout."""
    from grader.report.ci_log import quoted

    for shown in quoted([line], style):
        click.echo(shown, err=True)


@cli.command()
@click.argument("kind", type=click.Choice(["canvas", "csv"]))
@click.argument("graded", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The CSV file to write.")
@click.option("--rubric", type=click.Path(path_type=Path), default=None,
              help="The rubric the class was graded with (default: the one the results record).")
@click.option("--roster", type=click.Path(path_type=Path), default=None,
              help="canvas: the CSV Canvas exports from its gradebook, to map each student to Canvas's ids.")
@click.option("--assignment", default=None, help='canvas: the assignment column, "NAME" or "NAME (CANVAS ID)" '
              "(default: the rubric's assignment name).")
def export(kind: str, graded: Path, out: Path, rubric: Path | None, roster: Path | None, assignment: str | None) -> None:
    """Export the results in GRADED (the --out of grader grade) as a Canvas import file or a CSV per check."""
    from grader.grading.result import write_atomic
    from grader.report.export import export_canvas, export_csv, load_graded
    from grader.report.roster import load_roster

    if kind == "csv" and (roster or assignment):
        raise GraderError("--roster and --assignment apply to grader export canvas only; drop them for csv")
    results = load_graded(graded, rubric)
    written = (export_csv(results) if kind == "csv" else
               export_canvas(results, roster=load_roster(roster) if roster else None, assignment=assignment))
    write_atomic(out, written.text)
    for line in written.problems:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"wrote {out}: {len(results.results)} students, out of {results.maximum:g} points")


@cli.command()
@click.argument("graded", type=click.Path(path_type=Path))
@click.option("--no-open", is_flag=True, help="Only write the page; do not open it in a browser.")
def review(graded: Path, no_open: bool) -> None:
    """Rebuild GRADED/index.html (GRADED: the --out of grader grade) from its result.json files and open it."""
    from grader.report.review import load_class, write_review

    results, problems = load_class(graded)
    for line in problems:
        click.echo(f"warning: {line}", err=True)
    page = write_review(graded, results)
    opened = not no_open and _open_in_browser(page)
    click.echo(f"wrote {page}: {len(results)} students" + ("; opened in your browser" if opened else
                                                          f"; open {page.resolve().as_uri()} in a browser"))


def _open_in_browser(page: Path) -> bool:
    """Open `page` where a graphical browser can show it; never a text browser that would take the terminal."""
    import os
    import webbrowser

    if sys.platform not in ("darwin", "win32") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(page.resolve().as_uri(), new=2)
    except webbrowser.Error:
        return False


@cli.group()
def data() -> None:
    """Get, inspect or fake the CIFAR-10 data (default folder: $GRADER_DATA or the user cache)."""


@data.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
def download(directory: Path | None) -> None:
    """Download the official CIFAR-10 into DIRECTORY through torchvision."""
    from grader.config import default_data_dir
    from grader.data import download_cifar10, load_cifar10

    folder = download_cifar10(directory or default_data_dir())
    click.echo(f"CIFAR-10 in {folder} (sha256 {load_cifar10(folder).sha256})")


@data.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info(directory: Path | None, as_json: bool) -> None:
    """Print image counts per split and class, and the content hash, of DIRECTORY."""
    import json

    from grader.data import load_cifar10

    summary = load_cifar10(directory).info()
    click.echo(json.dumps(summary, indent=1) if as_json else _render_info(summary))


def _render_info(d: dict) -> str:
    kind = ("official release" if d["official"] else "image folder, not the official release files"
            if d["format"] == "image-folder" else "NOT the official release: md5 sums differ")
    lines = [f"{d['source']}  ({d['format']}, {kind})", f"sha256 {d['sha256']}",
             f"{'class':<12}{'train':>8}{'test':>8}"]
    lines += [f"{c:<12}{n:>8}{d['test']['per_class'][c]:>8}" for c, n in d["train"]["per_class"].items()]
    lines.append(f"{'total':<12}{d['train']['total']:>8}{d['test']['total']:>8}")
    return "\n".join(lines)


@data.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--train", "n_train", type=click.IntRange(min=5), default=10_000, show_default=True, help="Training images.")
@click.option("--test", "n_test", type=click.IntRange(min=1), default=2_000, show_default=True, help="Test images.")
@click.option("--seed", type=int, default=0, show_default=True)
def synthetic(directory: Path, n_train: int, n_test: int, seed: int) -> None:
    """Write a learnable synthetic CIFAR-10 (torchvision's file format) into DIRECTORY."""
    from grader.data import write_synthetic

    click.echo(f"wrote {write_synthetic(directory, train=n_train, test=n_test, seed=seed)}")


@cli.command()
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None, help="CIFAR-10 folder (default: $GRADER_DATA).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None, help="Default: cuda when available.")
@click.option("--train", "budget", type=click.Choice(["full", "quick"]), default="full", show_default=True,
              help="The rubric's [train] or its [train_quick] budget.")
@click.option("--force", is_flag=True, help="Retrain even when a cached result exists.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list and nothing else.")
def references(rubric: Path | None, data_dir: Path | None, device: str | None, budget: Budget, force: bool, as_json: bool) -> None:
    """Train the rubric's reference models under its fixed config (cached)."""
    import json

    from grader.report.progress import ProgressDisplay
    from grader.training.references import run_references
    from grader.typed import to_plain

    with ProgressDisplay() as show:
        runs = run_references(rubric=rubric, data_dir=data_dir, device=device, force=force, budget=budget,
                              on_progress=None if as_json else show)
    if as_json:
        click.echo(json.dumps(to_plain(runs), indent=1))
        return
    for r in runs:
        h = r.history
        acc = "n/a" if h.test_accuracy is None else f"{h.test_accuracy:.2%}"
        click.echo(f"{r.role:<9}{r.model:<10} test acc {acc:>7}  epoch {h.selected_epoch}/{len(h.epochs)}  "
                   f"{h.seconds:8.1f} s on {h.device}  {'cached' if r.cached else 'trained'}  {h.status}")


@cli.group()
def gradescope() -> None:
    """Build a Gradescope autograder (autograder.zip) and the steps it runs there."""


@gradescope.command("build")
@click.option("--rubric", type=click.Path(path_type=Path), default=None, help="Rubric TOML (default: rubrics/cifar10.toml).")
@click.option("--budget", type=click.Choice(["none", "quick", "full"]), default="quick", show_default=True,
              help="What each submission gets: static checks only, a retraining under the rubric's quick budget "
                   "fitted to --cpus/--memory and the timeout, or under its full one.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), default=None,
              help="CIFAR-10 folder to bundle (default: setup.sh downloads the official release).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("autograder.zip"), show_default=True)
@click.option("--timeout-minutes", type=click.FloatRange(min=0.1, max=40), default=10.0, show_default=True,
              help="The assignment's autograder timeout on Gradescope (its settings; 10 unless changed there, 40 at "
                   "most): each submission's grader is stopped before it, and what it graded by then is kept.")
@click.option("--cpus", type=click.FloatRange(min=0.1), default=0.5, show_default=True,
              help="The autograder's CPU on Gradescope (its settings): the budget is fitted to it.")
@click.option("--memory", "memory_mb", type=click.IntRange(min=1), default=768, show_default=True,
              help="The autograder's memory on Gradescope, in MB (its settings).")
def gradescope_build(rubric: Path | None, budget: Budget, data_dir: Path | None, out: Path, timeout_minutes: float,
                     cpus: float, memory_mb: int) -> None:
    """Write the zip to upload as the assignment's autograder."""
    from grader.gradescope.build import build_autograder
    from grader.gradescope.machine import Machine

    built = build_autograder(out, rubric=rubric, budget=budget, data_dir=data_dir, timeout_minutes=timeout_minutes,
                             machine=Machine(cpus, memory_mb))
    deadline = built.config.deadline
    click.echo(f"wrote {built.path} ({built.bytes / 2**20:.1f} MiB, {built.entries} files): budget {budget}, "
               f"rubric {built.rubric_sha256[:12]}, data {'bundled' if data_dir else 'downloaded by setup.sh' if budget != 'none' else 'none'}")
    click.echo(f"budget {budget}: {built.fitted.words}")
    click.echo(f"On Gradescope (the assignment's Configure Autograder page), pick: CPU {cpus:g}, memory {memory_mb} MB, "
               f"timeout {timeout_minutes:g} minutes; each submission's grader is stopped after {deadline.seconds} s")


@gradescope.command("prepare")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Default: $GRADER_AUTOGRADER_ROOT, else /autograder.")
def gradescope_prepare(root: Path | None) -> None:
    """setup.sh's last step: get the data, train the references, probe the sandbox."""
    from grader.gradescope.prepare import prepare_autograder

    prepare_autograder(root, say=click.echo)


@gradescope.command("run")
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Default: $GRADER_AUTOGRADER_ROOT, else /autograder.")
def gradescope_run(root: Path | None) -> None:
    """Grade ROOT/submission into ROOT/results/results.json (run_autograder calls this)."""
    from grader.gradescope.run import run_autograder

    payload = run_autograder(root)
    click.echo(f"score {payload['score']:g}; {len(payload['tests'])} checks")


def main() -> None:
    cli(prog_name="grader")


if __name__ == "__main__":
    main()
