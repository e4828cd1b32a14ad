"""Text a student controls, made safe for where it is shown.

Messages carry class names, exception text, lines of the notebook's output and the notebook's
words, all chosen by the student. On a terminal an escape sequence could rewrite what the
instructor sees; in Markdown and HTML a tag or a link could run or mislead. Every renderer passes
such text through one of these.
"""

from __future__ import annotations

import re
from pathlib import PurePath, PurePosixPath, PureWindowsPath
from typing import Iterable

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # tab and newline stay
# Markdown: the backslash first, so that no backslash of the student's can undo an escape of ours;
# the characters that open emphasis, code, links, images, tables, strikethrough and autolinked
# e-mails; &, < and > as entities (no tag, entity or <autolink>). Line starts: a heading or list marker.
_MARKDOWN = str.maketrans({**{c: "\\" + c for c in "\\`*_[]|~@"}, "&": "&amp;", "<": "&lt;", ">": "&gt;"})
_LINE_START = re.compile(r"^(\s*)(?:([#+=-])|(\d{1,9})(?=[.)]))")
# GitHub's bare-URL autolinks (GFM's extension): scheme:// and www. lose the character they are matched by.
_BARE_LINK = re.compile(r"(?i)(?<=[a-z0-9])(:)(?=//)|(?<![\w.])(www)(\.)")


def clean(text: object) -> str:
    """`text` without control characters (escape sequences lose their ESC and show as text)."""
    return _CONTROL.sub("", str(text))


def one_line(text: object) -> str:
    """`text` cleaned and on one line: a newline or carriage return shows as `\\n`, so that nothing the
    student wrote can start a line of its own in a log (CI systems read commands from line starts)."""
    return clean(str(text).replace("\r\n", "\n").replace("\r", "\n")).replace("\n", "\\n")


def markdown(text: object) -> str:
    """`text` as literal Markdown, one line: no tags, entities, emphasis, code spans, links, images, bare-URL
    autolinks, table cells or headings of its own, and no backslash of the text's that could undo an escape
    (CommonMark: every escape is a backslash before ASCII punctuation, and the text's own backslashes are escaped)."""
    text = clean(text).replace("\n", " ").replace("\t", " ").translate(_MARKDOWN)
    text = _BARE_LINK.sub(lambda m: "\\:" if m[1] else f"{m[2]}\\.", text)
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[2] else f"{m[1]}{m[3]}\\", text)


def code_span(text: object) -> str:
    """`text` as one inline code span, whatever backticks it holds (Markdown shows it verbatim)."""
    text = clean(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text.startswith("`") or text.endswith("`") else f"{fence}{text}{fence}"


# An absolute path the grader may have put in a message: /a/b or ~/a or C:\\a\\b, two parts or more,
# not inside a word or a URL (http://host/a/b keeps its path).
_ABSOLUTE = re.compile(r"(?<![\w.:/~\\])(?:~?/|[A-Za-z]:\\)(?:[\w.@+-]+[/\\])+[\w.@+-]*")


def code_block(text: object) -> str:
    """`text` as a fenced code block that no run of backticks inside it can close."""
    text = clean(text).rstrip("\n")
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence}\n{text}\n{fence}"


def without_paths(text: object, known: Iterable[str] = ()) -> str:
    """`text` with the grading machine's paths cut to their last part (a file's name), for a student.

    `known` paths (the notebook's, the data folder's) go first, whole; then any other absolute
    path the grader or a library wrote into a message (a traceback's file, a temporary folder)."""
    text = str(text)
    for path in sorted((p for p in known if p), key=len, reverse=True):
        text = text.replace(path, _last_part(path))
    return _ABSOLUTE.sub(lambda m: _last_part(m.group(0)), text)


def _last_part(path: str) -> str:
    kind: type[PurePath] = PureWindowsPath if "\\" in path else PurePosixPath
    return kind(path).name or path.strip("/\\") or "/"


__all__ = ["clean", "code_block", "code_span", "markdown", "one_line", "without_paths"]
