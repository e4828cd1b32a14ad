"""What bounds the static reading: the parent reads a hostile notebook outside any sandbox.

Three things keep it to a fraction of a second for an honest notebook and a few seconds for any:

- every regular expression that runs on a student's text is linear: runs that could be matched
  two ways are possessive (`\\s*+`) or atomic (`(?>...)`), and a span between an opener and a
  closer (`<!-- -->`, a code fence) is cut by a scan that gives up once a closer cannot follow.
  bench/bench_patterns.py times each pattern on adversarial text (runs of spaces, of `<`, ...).
  Python's own `re` with these constructs, not google-re2: a dozen patterns need lookbehind or
  lookahead, which RE2 lacks, and RE2's ASCII `\\b` and `\\w` would read other words than today;
- each text is cut to a size no hand-written notebook comes near before any pattern runs (the
  caps below); a warning names what the code and output caps cut (a markdown cell, a sentence or
  a line that long is no one's prose or log);
- the reading as a whole has a `Deadline`: the stages check it between cells and outputs, and
  once it has passed they skip what is left, each with a warning that names what it skipped.
  The parsers (IPython's transformer, ast, parso, LibCST) get bounded input (source.py, recovery.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

STATIC_DEADLINE_S = 5.0
"""Wall seconds for the whole static reading of one notebook (under 0.1 s for the examples)."""

MAX_CODE_CHARS = 250_000
"""The code cells are read up to this many characters in all: ast's trees of dense code hold up to a
node a character (150 MB a million, at its peak), and the analysis's tree walks take 1-5 s a million
characters; the largest hand-written notebook seen holds 100,000. Code past it is not read (a
warning names the cells): a model that needs it fails to build."""
MAX_CODE_NODES = 200_000
"""...and up to this many syntax-tree nodes in all (the largest hand-written notebook seen holds
18,000): what the analysis walks, whatever the characters."""
MAX_OUTPUT_CHARS = 1_000_000
"""An output's text is read from its last 1,000,000 characters: the last values are at the end."""
MAX_HTML_CHARS = 200_000
"""An HTML output longer than this is not read as a table (pandas shows 60 rows by default)."""
MAX_LINE_CHARS = 20_000
"""A logical output line is read as its first and last 10,000 characters (a history list keeps its
name and its last values)."""
MAX_MARKDOWN_CHARS = 1_000_000
"""A markdown cell is read from its first 1,000,000 characters."""
MAX_SENTENCE_CHARS = 2_000
"""A sentence of the discussion is read from its first 2,000 characters."""
MAX_SENTENCES = 2_000
"""The discussion is read from its first 2,000 sentences."""


@dataclass(frozen=True)
class Deadline:
    """The moment (time.monotonic) after which the static reading skips what it has not read."""

    at: float
    seconds: float = STATIC_DEADLINE_S
    """The time it was given, for messages."""

    @classmethod
    def after(cls, seconds: float = STATIC_DEADLINE_S) -> Deadline:
        return cls(time.monotonic() + seconds, seconds)

    def left(self) -> float:
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def skipped(self, what: str) -> str:
        """The warning for what the reading left out once the deadline passed."""
        return f"the notebook took longer than {self.seconds:g} s to read; {what} not read"


def head_and_tail(text: str, limit: int) -> str:
    """`text` when it fits in `limit` characters, else its first and last limit/2 joined by ' ... '."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} ... {text[-half:]}"


def cells_named(indices: list[int]) -> str:
    """'cell 4' or 'cells 4, 7 and 9' (the first ten, then how many more)."""
    shown = [str(i) for i in indices[:10]]
    if len(indices) > 10:
        shown.append(f"{len(indices) - 10} more")
    if len(shown) == 1:
        return f"cell {shown[0]}"
    return f"cells {', '.join(shown[:-1])} and {shown[-1]}"


__all__ = ["Deadline", "MAX_CODE_CHARS", "MAX_CODE_NODES", "MAX_HTML_CHARS", "MAX_LINE_CHARS", "MAX_MARKDOWN_CHARS", "MAX_OUTPUT_CHARS",
           "MAX_SENTENCES", "MAX_SENTENCE_CHARS", "STATIC_DEADLINE_S", "cells_named", "head_and_tail"]
