"""The feedback files: the student's page (feedback.md/html, curves.png) and the instructor's appendix."""

import stat
from dataclasses import replace

import pytest

from grader.child.config import TrainConfig
from grader.grading.batch import write_submission_files
from grader.grading.grade import grade_submission
from grader.report.curves import learning_curves_png
from grader.report.feedback import (INSTRUCTOR_FILES, STUDENT_FILES, feedback_markdown, instructor_markdown,
                                    student_page, write_feedback)
from grader.report.page import markdown_page
from grader.training.context import RunProvenance
import nbfactory
from support import (MATPLOTLIB_BLUE, run, with_runs, SUBMISSIONS, assert_page_shows_tables_and_curves, needs_chromium, pixels_of,
                     screenshot)

FAILED_RED = (207, 34, 46)  # .tone-failed in templates/page.html.j2


@pytest.fixture(scope="module")
def result(rubric):
    return with_runs(grade_submission(SUBMISSIONS / "complete.ipynb", student="alice", rubric=rubric))


@pytest.fixture(scope="module")
def failing(rubric):
    """A submission without a discussion, graded statically, with synthetic runs for the curves."""
    return with_runs(grade_submission(SUBMISSIONS / "missing_discussion.ipynb", student="bob", rubric=rubric))


def test_markdown_sections(result):
    text = feedback_markdown(result, curves="curves.png")
    assert text.startswith("# Feedback for alice\n\n*Notebook: complete.ipynb*  \n*Static checks only: the notebook "
                           "was read; nothing in it was run or trained.*  \n\n**Score: 70 / 70**")
    assert "| Passed | Two CNN classes: a baseline and a proposed model | 20 / 20 | 2 CNN classes: LeNet5, ResDropNet |" in text
    assert "| ResDropNet | 77.1% | 76.5% | 71.0% | 70.0% |" in text  # reported vs reproduced
    assert "| ResNet20 (reference) | 82.0% | 272,474 |" in text
    assert "- ResDropNet: forward returns a tuple; its first tensor (output\\[0\\]) is used as the logits" in text
    assert "## Learning curves" in text


def test_each_reported_value_says_where_it_was_read(result):
    text = feedback_markdown(result)
    assert "- LeNet5 test accuracy: read from cell 14: `Baseline test accuracy: 60.12%`" in text
    epoch_line = "`Epoch 10/10 | train loss 0.5000 | val loss 0.6800 | val acc 77.10%`"  # one line, three values
    assert f"- ResDropNet training loss, validation loss and validation accuracy: read from cell 12: {epoch_line}" in text


def test_evidence_with_backticks_stays_one_code_span(result):
    odd = replace(result.reported["LeNet5"], evidence={"test_acc": "cell 3: acc `x` = 0.5"})
    text = feedback_markdown(replace(result, reported={**result.reported, "LeNet5": odd}))
    assert "- LeNet5 test accuracy: read from cell 3: ``acc `x` = 0.5``" in text


def test_each_status_in_words_and_the_instructors_override(result):
    first = result.checks[0]
    checks = (replace(first, id="a", title="Failing", passed=False, points=0, max_points=10, hint="Do `this`."),
              replace(first, id="b", title="Half", passed=True, points=5, max_points=10),
              replace(first, id="c", title="Not now", passed=False, points=0, max_points=0, scored=False),
              replace(first, id="d", title="Just so you know", passed=True, points=0, max_points=0),
              replace(first, id="e", title="Overridden", passed=False, points=8, max_points=10, overridden_from=3,
                      instructor_comment="the <b>idea</b> is right"))
    odd = replace(result, checks=checks)
    text = feedback_markdown(odd)
    assert "| **Failed** | Failing | 0 / 10 |" in text and "- **Failing**: Do `this`." in text
    assert "| **Partial credit** | Half | 5 / 10 |" in text
    assert "| Not scored | Not now | not scored |" in text and "| Informational | Just so you know | 0 / 0 |" in text
    assert ("*Your instructor set this to 8 / 10 (the autograder gave 3): the &lt;b&gt;idea&lt;/b&gt; is right*"
            in text)
    page = student_page(odd)
    for tone, word in [("failed", "Failed"), ("partial", "Partial credit"), ("unscored", "Not scored"),
                       ("info", "Informational")]:
        assert f'<span class="badge tone-{tone}">{word}</span>' in page
    assert "Your instructor set this to 8 / 10 (the autograder gave 3): the &lt;b&gt;idea&lt;/b&gt; is right" in page


def test_the_appendix_is_the_instructors_alone(result, tmp_path):
    appendix = instructor_markdown(result)
    assert "- reported vs reproduced: example flag" in appendix
    assert "## Provenance" in appendix and result.provenance.rubric_sha256[:12] in appendix
    assert f"- Notebook: `{result.notebook}`" in appendix
    assert "- LeNet5 as the student trained it:" in appendix
    write_feedback(result, tmp_path)
    assert "example flag" in (tmp_path / "instructor.html").read_text()
    for name in STUDENT_FILES:
        student = (tmp_path / name).read_text()
        for secret in ("example flag", "Provenance", result.provenance.rubric_sha256[:12], "as the student trained it",
                       "instructor's appendix", "grader version"):
            assert secret.lower() not in student.lower(), (name, secret)


def test_no_path_of_the_grading_machine_reaches_the_student(result, tmp_path):
    home = "/home/fake-prof"
    notebook = f"{home}/course/submissions/alice/cifar.ipynb"
    config = TrainConfig()
    run_prov = RunProvenance(device="cpu", torch="2.5", isolation="none", isolation_note="", data_sha256="ab" * 32,
                             data_kind="official", data_source=f"{home}/.data/cifar10", data_note="", train_images=800,
                             train_config=config)
    checks = (replace(result.checks[0], passed=False, points=0, message=f"{notebook} is not valid JSON"),
              replace(result.checks[1], message=f"File \"{home}/venv/lib/torch/nn/conv.py\", line 3: bad shape"))
    runs = {**result.runs, "LeNet5": run("LeNet5", [0.3, 0.5], 62006, 0.5, [f"weights cached in {home}/.cache/x.pt"])}
    odd = replace(result, notebook=notebook, status="error", error=f"cannot read {notebook}", checks=checks, runs=runs,
                  provenance=replace(result.provenance, budget="quick", run=run_prov,
                                     rubric_source=f"{home}/course/rubric.toml"))
    write_feedback(odd, tmp_path)
    for name in STUDENT_FILES:
        text = (tmp_path / name).read_text()
        assert home not in text and "/home/" not in text, name
        assert "cifar.ipynb" in text and "a folder named cifar10" in text
    assert f"{home}/.data/cifar10" in (tmp_path / "instructor.md").read_text()


def test_curves_only_when_a_model_trained_two_epochs(result, tmp_path):
    import io

    import matplotlib.image as mpimg

    png = learning_curves_png(result)
    assert mpimg.imread(io.BytesIO(png)).std() > 0.05  # lines were drawn, not a blank canvas
    written = {p.name for p in write_feedback(result, tmp_path)}
    assert written == {"curves.png", *STUDENT_FILES, *INSTRUCTOR_FILES}
    assert 'src="data:image/png;base64,' in (tmp_path / "feedback.html").read_text()
    one_epoch = with_runs(result, epochs=1)
    assert learning_curves_png(one_epoch) is None
    written = {p.name for p in write_feedback(one_epoch, tmp_path)}
    assert written == {*STUDENT_FILES, *INSTRUCTOR_FILES} and not (tmp_path / "curves.png").exists()
    assert "Learning curves" not in (tmp_path / "feedback.md").read_text() + (tmp_path / "feedback.html").read_text()


def test_every_file_of_a_submission_is_world_readable(result, tmp_path):
    write_submission_files(result, tmp_path)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes) == {"curves.png", *STUDENT_FILES, *INSTRUCTOR_FILES, "results.json", "result.json"}
    assert set(modes.values()) == {0o644}, modes


def test_the_notebook_is_shown_with_each_failed_check_at_its_cell(failing):
    page = student_page(failing)
    discussion = next(c for c in failing.checks if c.id == "discussion")
    assert not discussion.passed and discussion.cell is not None
    cell = page.index(f'<div class="nb-cell" id="cell-{discussion.cell}">')
    block = page.index('<aside aria-label="Failed: Discussion: which model is better and why"', cell)
    assert "3) Discuss the results and summarize the findings" in page[cell:block]
    assert '<div class="nb-cell"' not in page[cell + 1:block]  # right after that cell, not after a later one
    assert '<span class="nc">LeNet5</span>' in page  # the student's code, highlighted
    assert '<a href="#cell-{}">see cell {}</a>'.format(discussion.cell, discussion.cell) in page


def test_the_page_shows_a_long_cell_and_output_cut_with_a_note_and_an_honest_notebook_whole(result, rubric, tmp_path):
    from grader.report.notebook_html import MAX_SHOWN_CHARS

    assert "more characters not shown here" not in student_page(result)
    long_code, long_output = "x = 1\n" * MAX_SHOWN_CHARS, "loss 0.5\n" * MAX_SHOWN_CHARS
    path = nbfactory.write(tmp_path / "long.ipynb", nbfactory.code(long_code, long_output),
                           nbfactory.md("word " * MAX_SHOWN_CHARS))
    page = student_page(grade_submission(path, student="eve", rubric=rubric))
    shown = MAX_SHOWN_CHARS // len("x = 1\n")
    assert f"[{len(long_code) - MAX_SHOWN_CHARS:,} more characters not shown here]" in page  # the code, as a comment
    assert f"[{len(long_output) - MAX_SHOWN_CHARS:,} more characters not shown here]" in page
    assert f"[{len('word ' * MAX_SHOWN_CHARS) - MAX_SHOWN_CHARS:,} more characters not shown here]" in page
    assert page.count('<span class="n">x</span>') == shown + 1  # the cut part, and not a character more


def test_the_students_html_and_scripts_do_not_run_in_the_page(rubric, tmp_path):
    hostile = {"text/html": '<script>alert(1)</script><img src=x onerror="alert(2)"><b>bold</b>',
               "application/javascript": "alert(3)", "text/plain": "x"}
    path = nbfactory.write(
        tmp_path / "hostile.ipynb",
        nbfactory.md('# Title\n<script>alert(4)</script>\n\n[link](javascript:alert(5))\n\n'
                     '![t](https://tracker.example/t.png)\n\n```\na < b\n```'),
        nbfactory.code("print(1)", hostile))
    page = student_page(grade_submission(path, student="eve", rubric=rubric))
    assert "<b>bold</b>" in page and "<h1>Title</h1>" in page  # the student's harmless HTML still shows
    assert "a &lt; b" in page  # code in markdown is shown as written
    for attack in ("<script", "onerror", "alert(3)", "javascript:", "tracker.example", "<iframe"):
        assert attack not in page, attack


def test_html_escapes_markdown_text():
    page = markdown_page("# x\n\n| a |\n|---|\n| <script>alert(1)</script> |\n", title="<b>x</b>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "<title>&lt;b&gt;x&lt;/b&gt;</title>" in page


@needs_chromium
def test_feedback_page_in_headless_chromium(result, tmp_path):
    write_feedback(result, tmp_path)
    assert_page_shows_tables_and_curves(tmp_path / "feedback.html", tmp_path)


@needs_chromium
def test_a_failing_submissions_page_in_headless_chromium(failing, tmp_path):
    write_feedback(failing, tmp_path)
    page = tmp_path / "feedback.html"
    pixels = screenshot(page, tmp_path, height=6000)
    assert pixels_of(pixels, FAILED_RED) > 200  # the failed check's badge and its block at the cell
    assert pixels_of(pixels, MATPLOTLIB_BLUE) > 50  # the curves
    text = page.read_text()
    assert "Your notebook" in text and "example flag" not in text and "Provenance" not in text
