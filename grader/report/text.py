"""Text a student controls, made safe for where it is shown.

Messages carry class names, exception text, lines of the notebook's output and the notebook's
words, all chosen by the student. On a terminal an escape sequence could rewrite what the
instructor sees; in Markdown and HTML a tag or a link could run or mislead. Every renderer passes
such text through one of these.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab and newline stay
_MARKDOWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "\\[", "]": "\\]", "`": "\\`", "|": "\\|"})


def clean(text: object) -> str:
    """`text` without control characters (escape sequences lose their ESC and show as text)."""
    return _CONTROL.sub("", str(text))


def markdown(text: object) -> str:
    """`text` as literal Markdown: no tags, links, code spans or table cells of its own; one line."""
    return clean(text).translate(_MARKDOWN).replace("\n", " ").replace("\t", " ")


def code_span(text: object) -> str:
    """`text` as one inline code span, whatever backticks it holds (Markdown shows it verbatim)."""
    text = clean(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") else f"{fence}{text}{fence}"


__all__ = ["clean", "code_span", "markdown"]
