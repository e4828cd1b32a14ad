"""CSV for spreadsheets: the one writer of every CSV file the grader hands an instructor.

A spreadsheet runs a cell that starts with = + - @ (or a tab or carriage return) as a formula
(CSV injection); a class name, an error message or a roster name may start that way. Every text
cell gets a leading ' there, which spreadsheets show as text. Numbers are written by the grader
itself and pass as they are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

Cell = str | float | int | None

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """`text` as a spreadsheet shows it literally, never as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def number(value: float | None) -> str:
    """A score as people write it: 12, 12.5; empty for none."""
    return "" if value is None else f"{value:g}"


def csv_text(rows: Iterable[Iterable[Cell]]) -> str:
    """The rows as CSV text: text cells made safe, numbers as `number` writes them."""
    out = io.StringIO()
    writer = csv.writer(out)
    for row in rows:
        writer.writerow([safe_cell(c) if isinstance(c, str) else number(c) for c in row])
    return out.getvalue()


__all__ = ["Cell", "csv_text", "number", "safe_cell"]
