"""pandas DataFrames as notebooks save them, read back into rows of cells.

A DataFrame shown as a cell's value is saved as text/html (a <table>) and text/plain; printed,
only as text. The text form is columns separated by spaces under a header of column names,
each row starting with its index label; a wide frame is printed in blocks side by side (each
header but the last ends with a backslash, blank lines between blocks). Both forms come back as
the same shape: a header row, then one row per index label, the first cell being the label.
Which columns or rows matter is for the caller to say.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_HEADER_TOKEN = re.compile(r"^[A-Za-z_][\w%()./-]*$")
_ALIGNED_NAME = re.compile(r"^[A-Za-z_][\w%()./ -]*+$")
# A printed DataFrame is a few hundred lines of a few hundred characters at most.
_MAX_ALIGNED_LINES, _MAX_ALIGNED_WIDTH = 500, 1000


def text_table(text: str) -> list[list[str]]:
    """The rows of a DataFrame printed as text ([] when the text is not one): the header first
    (its first entry, over the index, is ''), then [index label, cells...] per row. An index
    that was not printed reads as ''."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip("\n")) if b.strip()]
    parsed = [_text_block(b) for b in blocks]
    if not parsed or any(p is None for p in parsed):
        return []
    header, rows = parsed[0]  # type: ignore[misc]
    for more_header, more_rows in parsed[1:]:  # type: ignore[misc]
        if [r[0] for r in more_rows] != [r[0] for r in rows]:
            break  # not the same rows: keep what lines up
        header = header + more_header
        rows = [r + m[1:] for r, m in zip(rows, more_rows)]
    return [[""] + header] + rows


def _text_block(block: str) -> tuple[list[str], list[list[str]]] | None:
    """One block: its column names and its rows, or None when a line is not a row."""
    return _token_block(block) or _aligned_block(block)


def _aligned_block(block: str) -> tuple[list[str], list[list[str]]] | None:
    """A block whose column names hold spaces ("test acc (%)"), split at the gutters: the character
    positions that are blank on every line (pandas aligns every column under its name)."""
    lines = block.splitlines()
    if len(lines) < 2 or len(lines) > _MAX_ALIGNED_LINES or max(map(len, lines)) > _MAX_ALIGNED_WIDTH:
        return None
    width = max(map(len, lines))
    padded = [line.ljust(width) for line in lines]
    blank = [all(line[i] == " " for line in padded) for i in range(width)]
    spans, start = [], None
    for i, is_blank in enumerate([*blank, True]):
        if not is_blank and start is None:
            start = i
        elif is_blank and start is not None:
            spans.append((start, i))
            start = None
    # pandas right-aligns a column under its name: the words of a long name stand over blank rows.
    merged: list[tuple[int, int]] = []
    pending: int | None = None
    for a, b in spans:
        if all(not line[a:b].strip() for line in padded[1:]) and (a, b) != spans[-1]:
            pending = a if pending is None else pending
            continue
        merged.append((a if pending is None else pending, b))
        pending = None
    table = [[line[a:b].strip() for a, b in merged] for line in padded]
    header, rows = table[0], table[1:]
    if len(merged) < 2 or not all(_ALIGNED_NAME.match(name) for name in header) or not all(all(row) for row in rows):
        return None
    return header, [[""] + row for row in rows]


def _token_block(block: str) -> tuple[list[str], list[list[str]]] | None:
    lines = block.splitlines()
    header = lines[0].split()
    if header and header[-1] == "\\":
        header = header[:-1]
    if not header or not all(_HEADER_TOKEN.match(token) for token in header):
        return None  # "Epoch 1/10 | train loss 1.98" is a log line, not a header
    rows: list[list[str]] = []
    for line in lines[1:]:
        cells = line.split()
        if cells and cells[-1] == "\\":
            cells = cells[:-1]
        if len(cells) == len(header) + 1:
            rows.append(cells)
        elif len(cells) == len(header):
            rows.append([""] + cells)  # printed without its index
        elif len(cells) == 1 and not rows:
            continue  # the index's name ("model") on a line of its own
        else:
            return None  # a line that is not a row: this is not a table
    return (header, rows) if rows else None


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_table(html: str) -> list[list[str]]:
    """The rows of the table in `html`, the header first, each row as wide as the header (pandas'
    index cell included)."""
    parser = _TableParser()
    parser.feed(html)
    rows = [r for r in parser.rows if any(r)]
    if not rows:
        return [[]]
    header = rows[0]
    # pandas puts the index name on a second header row ("name", "", "", ...): drop it.
    body = [r for r in rows[1:] if any(c for c in r[1:])]
    width = len(header)
    return [header] + [r[-width:] if len(r) >= width else r for r in body]
