"""Find the discussion: a markdown cell that talks about the results in the student's own words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from grader.notebook import Notebook

MIN_WORDS = 20
_PLACEHOLDER = re.compile(r"\(?\s*add (your )?(text|answer|discussion) here\s*\)?", re.I)
_COMPARISON = re.compile(
    r"\b(better|worse|best|outperform\w*|higher|lower|improv\w*|compar\w*|superior|overfit\w*|underfit\w*|"
    r"beats?|gain\w*|increase\w*|decrease\w*|reduc\w*|generaliz\w*|because|due to)\b",
    re.I,
)
_STRIP = [
    re.compile(r"<!--.*?-->", re.S),  # commented-out drafts do not count
    re.compile(r"```.*?```", re.S),
    re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+"),
    re.compile(r"!\[[^\]]*\]\([^)]*\)"),
    re.compile(r"<[^>]+>"),
    re.compile(r"^\s*#.*$", re.M),  # headings alone are not a discussion
]


@dataclass(frozen=True)
class Discussion:
    present: bool
    cell: int | None
    """The cell that holds the discussion (the longest qualifying one)."""
    words: int = 0


def find_discussion(notebook: Notebook, after_cell: int) -> Discussion:
    """The longest markdown cell after `after_cell` that compares results in prose."""
    best: Discussion = Discussion(False, None)
    for cell in notebook.markdown_cells:
        if cell.index <= after_cell:
            continue
        text = prose(cell.source)
        words = len(re.findall(r"[A-Za-z]{2,}", text))
        if words < MIN_WORDS or not _COMPARISON.search(text):
            continue
        if words > best.words:
            best = Discussion(True, cell.index, words)
    return best


def prose(markdown: str) -> str:
    text = markdown
    for pattern in _STRIP:
        text = pattern.sub(" ", text)
    return _PLACEHOLDER.sub(" ", text)
