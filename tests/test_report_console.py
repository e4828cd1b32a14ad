"""The terminal view, rendered to a string at a fixed width (rich's own testing style)."""

import io
import re

from rich.console import Console

from grader.grading.grade import grade_submission
from grader.report.console import print_result
from support import SUBMISSIONS


def render(name, rubric) -> str:
    out = io.StringIO()
    result = grade_submission(SUBMISSIONS / f"{name}.ipynb", student=name, rubric=rubric)
    print_result(result, Console(file=out, width=160, color_system=None))
    return out.getvalue()


def test_complete_example_view(rubric):
    text = render("complete", rubric)
    assert re.search(r"LeNet5\s+baseline\s+yes\s+cell 4:2", text)
    assert re.search(r"ResDropNet\s+proposed\s+yes", text)
    assert re.search(r"ResidualBlock\s+helper\s+yes\s+cell 6:4\s+used inside ResDropNet", text)
    assert "60.12%" in text and "76.54%" in text  # reported test accuracies
    assert "all required checks pass - score 70 / 70" in text


def test_failure_view_shows_hint_and_summary(rubric):
    text = render("one_cnn_class", rubric)
    assert "proposed_net" in text and "not a class" in text
    assert "→ Define two classes that subclass nn.Module" in text
    assert "5 required check(s) fail - score 25 / 60"  # with one class, no winner or difference to judge in text
