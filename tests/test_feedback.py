"""feedback.md / feedback.html / curves.png from a result, and the page as a browser shows it."""

import shutil
import subprocess
from dataclasses import replace

import pytest

from conftest import SUBMISSIONS
from grader.grade import grade_submission
from grader.report.feedback import feedback_html, feedback_markdown, learning_curves_png, write_feedback


def history(accs):
    return {"epochs": [{"epoch": i + 1, "train_loss": 2.0 - a, "val_accuracy": a} for i, a in enumerate(accs)]}


@pytest.fixture(scope="module")
def result(rubric):
    base = grade_submission(SUBMISSIONS / "complete.ipynb", student="alice", rubric=rubric)
    return replace(
        base,
        retrain={"LeNet5": {"test_acc": 0.55, "val_acc": 0.56, "params": 62006, "history": history([0.3, 0.45, 0.55])},
                 "ResDropNet": {"test_acc": 0.70, "val_acc": 0.71, "params": 120000, "history": history([0.4, 0.6, 0.7])}},
        references={"LeNet5": {"test_acc": 0.56, "params": 62006, "history": history([0.3, 0.5, 0.56])},
                    "ResNet20": {"test_acc": 0.82, "params": 272474, "history": history([0.5, 0.7, 0.82])}},
        flags=["reported vs reproduced: example"],
    )


def test_markdown_sections(result):
    text = feedback_markdown(result, curves="curves.png")
    assert text.startswith("# Feedback for alice\n\n**Score: 70 / 70**")
    assert "| ✓ | two_cnn_classes | 20 / 20 | 2 CNN classes: LeNet5, ResDropNet |" in text
    assert "| ResDropNet | 77.1% | 76.5% | 71.0% | 70.0% |" in text  # reported vs reproduced
    assert "| ResNet20 (reference) | 82.0% | 272,474 |" in text
    assert text.index("## For the instructor") > text.index("## Learning curves")
    assert "- Flag: reported vs reproduced: example" in text


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


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (.ci/run installs it)")


def assert_page_shows_tables_and_curves(page, tmp_path):
    """Screenshot `page` in headless Chromium: not blank, and the curves image is drawn."""
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1100,2400", f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[0] >= 2000
    assert pixels.std() > 0.05, "the screenshot is blank"
    # The learning-curve image is drawn: matplotlib's default blue line colour appears.
    blue = (abs(pixels[..., 0] - 0.12) < 0.05) & (abs(pixels[..., 1] - 0.47) < 0.05) & (abs(pixels[..., 2] - 0.71) < 0.05)
    assert blue.sum() > 50  # a blank or missing image has none
    assert "<table>" in page.read_text()


@needs_chromium
def test_feedback_page_in_headless_chromium(result, tmp_path):
    write_feedback(result, tmp_path)
    assert_page_shows_tables_and_curves(tmp_path / "feedback.html", tmp_path)
