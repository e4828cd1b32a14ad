"""feedback.md / feedback.html / curves.png from a result, and the page as a browser shows it."""

from dataclasses import replace

import pytest

from grader.child.protocol import EpochRecord, History
from grader.grading.grade import grade_submission
from grader.report.feedback import feedback_html, feedback_markdown, learning_curves_png, write_feedback
from grader.training.runs import ModelRun
from support import SUBMISSIONS, assert_page_shows_tables_and_curves, needs_chromium


def run(name, accuracies, params, test_accuracy, notes=()):
    epochs = tuple(EpochRecord(i + 1, 2.0 - a, 1.0, a, 1.0, 0.1) for i, a in enumerate(accuracies))
    history = History(status="ok", message="", epochs=epochs, selected_epoch=len(epochs), test_loss=1.0,
                      test_accuracy=test_accuracy, params=params, flops_per_image=None, peak_memory_bytes=0, seconds=2.0,
                      train_images_per_second=1.0, device="cpu", precision="fp32", channels_last=True, notes=tuple(notes))
    return ModelRun.trained(name, history)


@pytest.fixture(scope="module")
def result(rubric):
    base = grade_submission(SUBMISSIONS / "complete.ipynb", student="alice", rubric=rubric)
    return replace(
        base,
        runs={"LeNet5": run("LeNet5", [0.3, 0.45, 0.56], 62006, 0.55),
              "ResDropNet": run("ResDropNet", [0.4, 0.6, 0.71], 120000, 0.70,
                                ["forward returns a tuple; its first tensor (output[0]) is used as the logits"])},
        references={"LeNet5": run("LeNet5", [0.3, 0.5, 0.56], 62006, 0.56),
                    "ResNet20": run("ResNet20", [0.5, 0.7, 0.82], 272474, 0.82)},
        flags=("reported vs reproduced: example",),
    )


def test_markdown_sections(result):
    text = feedback_markdown(result, curves="curves.png")
    assert text.startswith("# Feedback for alice\n\n*Static checks only: the notebook was read; nothing in it was "
                           "run or trained.*  \n\n**Score: 70 / 70**")
    assert "| ✓ | two_cnn_classes | 20 / 20 | 2 CNN classes: LeNet5, ResDropNet |" in text
    assert "| ResDropNet | 77.1% | 76.5% | 71.0% | 70.0% |" in text  # reported vs reproduced
    assert "| ResNet20 (reference) | 82.0% | 272,474 |" in text
    assert "- ResDropNet: forward returns a tuple; its first tensor (output\\[0\\]) is used as the logits" in text
    assert text.index("## For the instructor") > text.index("## Learning curves")
    assert "- Flag: reported vs reproduced: example" in text


def test_each_reported_value_says_where_it_was_read(result):
    text = feedback_markdown(result)
    assert "- LeNet5 test accuracy: read from cell 14: `Baseline test accuracy: 60.12%`" in text
    epoch_line = "`Epoch 10/10 | train loss 0.5000 | val loss 0.6800 | val acc 77.10%`"  # one line, three values
    assert f"- ResDropNet training loss, validation loss and validation accuracy: read from cell 12: {epoch_line}" in text


def test_evidence_with_backticks_stays_one_code_span(result):
    odd = replace(result.reported["LeNet5"], evidence={"test_acc": "cell 3: acc `x` = 0.5"})
    text = feedback_markdown(replace(result, reported={**result.reported, "LeNet5": odd}))
    assert "- LeNet5 test accuracy: read from cell 3: ``acc `x` = 0.5``" in text


def test_curves_are_a_real_picture(result, tmp_path):
    import io

    import matplotlib.image as mpimg

    png = learning_curves_png(result)
    assert png.startswith(b"\x89PNG")
    pixels = mpimg.imread(io.BytesIO(png))
    assert pixels.std() > 0.05  # lines were drawn, not a blank canvas
    written = {p.name for p in write_feedback(result, tmp_path)}
    assert written == {"curves.png", "feedback.md", "feedback.html"}
    page = (tmp_path / "feedback.html").read_text()
    assert "<table>" in page and 'src="data:image/png;base64,' in page


def test_html_escapes_student_text():
    page = feedback_html("| a |\n|---|\n| <script>alert(1)</script> |\n", title="<b>x</b>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "<title>&lt;b&gt;x&lt;/b&gt;</title>" in page


@needs_chromium
def test_feedback_page_in_headless_chromium(result, tmp_path):
    write_feedback(result, tmp_path)
    assert_page_shows_tables_and_curves(tmp_path / "feedback.html", tmp_path)
