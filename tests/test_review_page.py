"""index.html, the class's review page: what it counts, that student text stays text, and (in headless
Chromium) that it loads from disk cleanly, sorts, filters and writes overrides grader grade accepts."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace

import pytest
from click.testing import CliRunner

from grader.analysis.similarity import similar_pairs
from grader.checks import CheckResult
from grader.cli import cli
from grader.grading.batch import grade_batch
from grader.grading.overrides import Override, load_overrides
from grader.grading.result import load_result
from grader.report.review import REVIEW, Reason, class_review, load_class, review_html, script_json, write_review
from support import class_folder, needs_chromium

CLASS = {"ann": "complete", "bob": "missing_discussion", "cy": "credits_missing_component", "dee": "generic_name",
         "eve": "wrong_winner"}
"""ann passes everything; bob has no discussion; cy's discussion credits what the models do not differ in (a flag);
dee's proposed model is called Net; eve's discussion names the wrong winner. zed hands in nothing (an error)."""

HOSTILE = '<img src=x onerror="window.pwned=1">"\\</script><script>window.pwned=2</script><!--\u2028\u2029&amp;'
"""Markup, a quote, a backslash, the end of a script block, a comment opener and JavaScript's line separators."""


@pytest.fixture(scope="module")
def graded(tmp_path_factory, rubric):
    """The class above graded once (static budget): (submissions, out)."""
    tmp = tmp_path_factory.mktemp("review")
    root = class_folder(tmp / "class", CLASS, without_notebook=("zed",))
    report = grade_batch(root, tmp / "out", rubric=rubric, budget="none")
    write_review(tmp / "out", report.results.values())
    return root, tmp / "out"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def data_block(page: str):
    """The JSON the page's script reads, as JSON.parse would read it."""
    block = re.search(r'<script type="application/json" id="review-data">(.*?)</script>', page, re.S)
    return json.loads(block.group(1))


def review_of(out):
    results, _ = load_class(out)
    return class_review(results, [], title="t")


# ---- what the page says ---------------------------------------------------------------------------

def test_grade_writes_the_page_and_review_rebuilds_it_from_the_results(graded, tmp_path, monkeypatch):
    root, _ = graded
    out = tmp_path / "out"
    done = invoke("grade", root, "--out", out, "--no-train")
    assert done.exit_code == 0, done.output
    page = (out / REVIEW).read_text()
    assert all(f'data-student="{s}"' in page for s in [*CLASS, "zed"])
    assert f"class review: {out / REVIEW}" in done.stderr

    (out / REVIEW).unlink()
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rebuilt = invoke("review", out)  # no graphical session: the path is printed, no browser started
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.stdout.strip() == f"wrote {out / REVIEW}: 6 students; open {(out / REVIEW).as_uri()} in a browser"
    assert (out / REVIEW).read_text() == page  # the same page: both are rendered from the result.json files alone


def test_review_of_a_folder_without_results_is_one_line(tmp_path):
    done = invoke("review", tmp_path)
    assert done.exit_code == 2 and done.output.count("\n") == 1 and "holds no graded results" in done.output


@pytest.mark.parametrize("failure", ["a folder in its place", "a bug in the page"])
def test_a_page_that_cannot_be_written_costs_no_grade(graded, tmp_path, monkeypatch, failure):
    root, _ = graded
    out = tmp_path / "out"
    if failure == "a folder in its place":  # the page cannot replace it
        (out / REVIEW / "keep").mkdir(parents=True)
    else:
        def broken(review):
            raise RuntimeError("boom\non two lines")
        monkeypatch.setattr("grader.report.review.review_html", broken)
    done = invoke("grade", root, "--out", out, "--no-train")
    assert done.exit_code == 0, done.output
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"could not write the class review page in {out} (" in warnings[0]
    assert f"run grader review {out}" in warnings[0] and "Traceback" not in done.stderr
    assert (out / "gradebook.csv").is_file()
    assert load_result(out / "bob" / "result.json").score == load_result(graded[1] / "bob" / "result.json").score


def test_counts_histogram_and_who_needs_a_look(graded):
    review = review_of(graded[1])
    tally = {c.id: c.counts for c in review.checks}  # zed's result holds no check: nothing of it could be judged
    assert tally["discussion"] == {"passed": 4, "partial": 0, "failed": 1, "unscored": 0}  # bob
    assert tally["discussion_names_winner"] == {"passed": 3, "partial": 0, "failed": 2, "unscored": 0}  # bob, eve
    assert tally["proposed_named"]["failed"] == 1  # dee's Net
    assert {c.id: c.points for c in review.checks}["discussion"] == 5
    assert review.histogram == (1, 0, 0, 0, 0, 0, 0, 1, 0, 4)  # zed 0%, bob 79%, the rest 93-100%
    looked = {row.student: row.attention for row in review.rows if row.attention}
    assert set(looked) == {"cy", "zed"}
    assert looked["zed"] == (Reason("could not be graded", "the folder holds no notebook; hand in exactly one .ipynb"),)
    assert looked["cy"][0].what == "flag"
    assert looked["cy"][0].detail.startswith("the discussion credits 'dropout' but the two models do not differ")


def test_near_identical_models_are_grouped_and_need_a_look(graded):
    results, _ = load_class(graded[1])
    review = class_review(results, similar_pairs({r.student: r.signature for r in results}), title="t")
    assert [group.students for group in review.groups] == [("ann", "bob", "dee", "eve")]  # the same ResDropNet code
    assert len(review.groups[0].pairs) == 6 and review.layers["ann"] == review.layers["dee"] != ()
    rows = {row.student: row for row in review.rows}
    assert rows["dee"].similar_to == ("ann", "bob", "eve") and rows["cy"].similar_to == ()
    assert rows["dee"].attention == (Reason("near-identical model", "the proposed model, Net, is near-identical to the "
                                            "proposed model of ann, bob, eve (Near-identical models, below)"),)
    page = review_html(review)
    assert page.count('<div class="pair">') == 3  # the first pairs side by side, the other three listed
    assert "3 more pairs in this group" in page


def test_a_retraining_check_unscored_for_one_student_but_scored_for_others_needs_a_look(graded):
    results, _ = load_class(graded[1])
    ran = CheckResult("models_run", True, 10, 10, "both models run")
    unscored = CheckResult("models_run", False, 0, 0, "not scored: the run was stopped by the safety net", scored=False)
    by = {r.student: r for r in results}
    results = [replace(by["ann"], checks=(*by["ann"].checks, ran)), replace(by["dee"], checks=(*by["dee"].checks, unscored))]
    rows = {row.student: row for row in class_review(results, [], title="t").rows}
    assert rows["dee"].attention == (Reason("not scored: Both models build and run",
                                            "not scored: the run was stopped by the safety net"),)
    assert rows["ann"].attention == ()
    everyone_unscored = class_review([results[1]], [], title="t").rows[0]  # the budget could judge it for nobody
    assert everyone_unscored.attention == ()


def test_the_scripts_data_cannot_end_its_block_and_reads_back_the_same():
    data = {"student": HOSTILE, "points": [1.5, None]}
    text = script_json(data)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == data


def test_student_text_is_escaped_in_the_html_and_the_scripts_data(graded):
    results, _ = load_class(graded[1])
    hostile = replace(results[0], student=HOSTILE, baseline=HOSTILE, proposed=HOSTILE, flags=(HOSTILE,),
                      checks=tuple(replace(c, title=HOSTILE, message=HOSTILE) for c in results[0].checks))
    review = class_review([hostile, *results[1:]], [], title=HOSTILE)
    page = review_html(review)
    assert "<img" not in page and "window.pwned=2</script>" not in page and "<!--\u2028" not in page
    assert page.count("</script>") == 2  # the data block's and the script's own ends, nothing of the student's
    assert "&lt;img src=x onerror=" in page
    assert data_block(page) == review.data and data_block(page)["students"][0] == HOSTILE


# ---- in the browser -----------------------------------------------------------------------------

@pytest.fixture
def browser(tmp_path):
    from browser import Browser

    with Browser(tmp_path / "profile") as b:
        yield b


def shown(tab) -> list[str]:
    """The students of the visible rows, top to bottom."""
    return tab.evaluate("Array.from(document.querySelectorAll('#students tbody tr')).filter(r => !r.hidden)"
                        ".map(r => r.dataset.student)")


def click(tab, selector: str) -> None:
    tab.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def set_value(tab, selector: str, value: str, event: str = "change") -> None:
    tab.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};"
                 f" e.dispatchEvent(new Event({json.dumps(event)})); }})()")


@needs_chromium
def test_the_page_loads_from_disk_with_no_console_error_and_fetches_nothing(graded, browser):
    page = graded[1] / REVIEW
    tab = browser.open(page.as_uri())
    assert tab.problems == []
    assert [url for url in tab.requests if not url.startswith("data:")] == [page.as_uri()]  # data: the browser's own form controls
    assert tab.evaluate("document.getElementById('shown').textContent") == "6 of 6 students shown"
    assert tab.evaluate("performance.getEntriesByName('review-ready').length") == 1  # the script ran to its end


@needs_chromium
def test_sorting_and_filtering_the_students(graded, browser):
    results, _ = load_class(graded[1])
    review = class_review(results, similar_pairs({r.student: r.signature for r in results}), title="t")
    percent = {row.student: row.percent for row in review.rows}
    tab = browser.open((graded[1] / REVIEW).as_uri())

    click(tab, "th[data-key=score]")  # a number sorts highest first, then lowest first
    assert [percent[s] for s in shown(tab)] == sorted(percent.values(), reverse=True)
    assert shown(tab)[-1] == "zed"
    click(tab, "th[data-key=score]")
    assert shown(tab)[0] == "zed" and [percent[s] for s in shown(tab)] == sorted(percent.values())
    click(tab, "th[data-key=student]")
    assert shown(tab) == sorted(percent)

    set_value(tab, "#filter-text", "wrong_win", "input")  # the text of a row
    assert shown(tab) == []
    set_value(tab, "#filter-text", "bob", "input")
    assert shown(tab) == ["bob"]
    click(tab, "#filter-clear")
    for kind, students in (("flagged", ["cy"]), ("error", ["zed"]), ("similar", ["ann", "bob", "dee", "eve"]),
                           ("attention", [row.student for row in review.rows if row.attention])):
        set_value(tab, "#filter-kind", kind)
        assert shown(tab) == students, kind
    click(tab, "#filter-clear")
    click(tab, "button.count-link[data-check=discussion][data-outcome=failed]")  # a count in the checks table
    assert shown(tab) == ["bob"]
    assert tab.evaluate("document.getElementById('shown').textContent") == "1 of 6 students shown"
    click(tab, "#filter-clear")
    click(tab, ".bar[data-bucket='0']")  # the histogram's lowest bar
    assert shown(tab) == ["zed"]
    assert tab.problems == []


def add_override(tab, student: str, check: str, points: str, comment: str) -> str:
    """Type an override into the page; the overrides.toml it shows."""
    index = tab.evaluate(f"JSON.parse(document.getElementById('review-data').textContent).students.indexOf({json.dumps(student)})")
    check_index = tab.evaluate("JSON.parse(document.getElementById('review-data').textContent).checks"
                               f".findIndex(c => c.id === {json.dumps(check)})")
    set_value(tab, "#override-student", str(index))
    set_value(tab, "#override-check", str(check_index))
    set_value(tab, "#override-points", points, "input")
    set_value(tab, "#override-comment", comment, "input")
    click(tab, "#override-add")
    return tab.evaluate("document.getElementById('override-toml').value")


@needs_chromium
def test_an_override_typed_in_the_page_is_one_grader_grade_accepts(graded, browser, tmp_path, rubric):
    root, first = graded
    out = tmp_path / "out"
    assert invoke("grade", root, "--out", out, "--no-train").exit_code == 0
    downloads = tmp_path / "downloads"
    tab = browser.open((out / REVIEW).as_uri(), downloads=downloads)
    comment = 'A "fair" point \\ well\tmade; see cell 15 — merci'  # a text field holds no line break

    refused = add_override(tab, "bob", "discussion", "6", comment)  # the rubric gives discussion 5 points
    assert "[[override]]" not in refused
    assert "from 0 to 5" in tab.evaluate("document.getElementById('override-problem').textContent")
    typed = add_override(tab, "bob", "discussion", "4", comment)
    click(tab, "#override-download")
    browser.wait_for("Browser.downloadProgress", state="completed")
    assert (downloads / "overrides.toml").read_text() == typed
    assert tab.problems == []

    saved = tmp_path / "overrides.toml"
    saved.write_text(typed)
    assert [(o.student, o.check, o.points, o.comment) for o in load_overrides(saved, rubric)] == [("bob", "discussion", 4.0, comment)]
    done = invoke("grade", root, "--out", out, "--no-train", "--overrides", saved)
    assert done.exit_code == 0, done.output
    discussion = next(c for c in load_result(out / "bob" / "result.json").checks if c.id == "discussion")
    assert (discussion.points, discussion.overridden_from, discussion.instructor_comment) == (4, 0, comment)

    # The page grade rewrote starts from the override in effect: one more keeps it, so the next run keeps both.
    tab = browser.open((out / REVIEW).as_uri())
    assert tab.evaluate("document.getElementById('override-list').textContent").startswith("bob, Discussion: which model is better and why: 4")
    add_override(tab, "bob", "discussion", "4", comment)  # the same override again replaces it: one entry each
    assert "now 4 / 5 (the autograder gave 0)" in tab.evaluate("document.getElementById('override-now').textContent")
    again = add_override(tab, "ann", "same_config", "7.5", "")
    saved.write_text(again)
    assert {(o.student, o.check, o.points) for o in load_overrides(saved, rubric)} == {("bob", "discussion", 4.0),
                                                                                         ("ann", "same_config", 7.5)}


@needs_chromium
def test_markup_in_student_and_class_names_shows_as_text(graded, browser, tmp_path, rubric):
    results, _ = load_class(graded[1])
    hostile = replace(results[1], student=HOSTILE, proposed=HOSTILE, baseline=HOSTILE, flags=(HOSTILE,),
                      error=HOSTILE, checks=tuple(replace(c, title=HOSTILE, message=HOSTILE) for c in results[1].checks))
    page = write_review(tmp_path, [results[0], hostile])
    tab = browser.open(page.as_uri())
    assert tab.problems == []  # an injected script would also be refused by the page's policy, which logs it
    untouched = "window.pwned === undefined && document.scripts.length === 2 && !document.querySelector('img')"
    assert tab.evaluate(untouched)
    cells = tab.evaluate("Array.from(Array.from(document.querySelectorAll('#students tbody tr'))"
                         f".find(r => r.dataset.student === {json.dumps(HOSTILE)}).cells).map(c => c.textContent)")
    assert cells[0].startswith(HOSTILE) and cells[3] == HOSTILE and cells[4] == HOSTILE
    options = tab.evaluate("Array.from(document.getElementById('override-student').options).map(o => o.text)")
    assert HOSTILE in options  # the editor's list shows the id as text (the browser keeps its characters)

    toml = add_override(tab, HOSTILE, "discussion", "3", HOSTILE)
    assert tab.evaluate(untouched) and tab.problems == []  # the list of overrides shows them as text too
    assert tomllib.loads(toml)["override"] == [{"student": HOSTILE, "check": "discussion", "points": 3, "comment": HOSTILE}]
    saved = tmp_path / "overrides.toml"
    saved.write_text(toml)
    assert load_overrides(saved, rubric) == (Override(HOSTILE, "discussion", 3.0, HOSTILE, f"{saved} line 4"),)
