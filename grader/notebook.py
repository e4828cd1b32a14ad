"""Load a Jupyter notebook and validate it, without running anything.

Stage 1 of the pipeline: a path in, a `Notebook` out. Every way a file can fail to be a usable
notebook becomes a `NotebookError` whose one-line message says what is wrong.

The JSON is a student's, parsed in the grader's own process: before `json.loads` builds anything,
one linear pass counts its values and its nesting (`_check_shape`), so that a file of a million
tiny values (each a Python object of 50-100 bytes: memory 20-80 times the file's size) or one
nested thousands deep is refused in a fraction of a second. A saved notebook is mostly long
strings: its count is small, and the pass costs a few milliseconds a megabyte.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import NotebookError
from grader.untrusted import UnsafeFile, read_untrusted

# nbformat.validate is slow on notebooks with many outputs and adds nothing we rely on: we read
# cells defensively. The size cap keeps a hostile 2 GB "notebook" from exhausting memory.
MAX_NOTEBOOK_BYTES = 512 * 1024 * 1024
# JSON values (strings, numbers, lists, objects, keys): about 100 MB of Python objects at most. A
# notebook of 200 cells holds a few thousand; a 200,000-line log saved as a list of lines, 200,000.
MAX_JSON_VALUES = 1_000_000
# A notebook nests 6-10 levels (cells, outputs, data, widget state); json.loads recurses per level.
MAX_JSON_DEPTH = 100
# A JSON string, matched in one pass (possessive: no backtracking), and what is not a bracket.
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")


@dataclass(frozen=True)
class Output:
    """One saved output of a code cell, reduced to text."""

    kind: str
    """'stream', 'execute_result', 'display_data' or 'error'."""
    text: str
    """stream text, text/plain, or the traceback's last line for errors."""
    html: str = ""
    """text/html, when the output has it (pandas tables)."""


@dataclass(frozen=True)
class Cell:
    """One notebook cell."""

    index: int
    """Position in the notebook, from 0 (what reports call 'cell N')."""
    kind: str
    """'code', 'markdown' or 'raw'."""
    source: str
    outputs: tuple[Output, ...] = ()
    execution_count: int | None = None


@dataclass(frozen=True)
class Notebook:
    """A notebook as the analysis sees it."""

    path: str
    cells: tuple[Cell, ...]
    nbformat: int
    """The format version after upgrading (always 4)."""
    upgraded_from: int | None = None
    """The original major version when the file was older than v4."""

    @property
    def code_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.kind == "code")

    @property
    def markdown_cells(self) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.kind == "markdown")


def load_notebook(path: str | Path, *, below: Path | None = None) -> Notebook:
    """Read `path` as a notebook; raise NotebookError saying what to fix when it is not one.

    `below`: the trusted folder `path` lies in (a class's submissions), under which no link is followed."""
    return notebook_from_bytes(read_notebook_bytes(path, below=below), str(path))


def read_notebook_bytes(path: str | Path, *, below: Path | None = None) -> bytes:
    """The bytes of the notebook file `path`, read once (grader.untrusted: a regular file only, its size
    checked before a byte is read, no link followed under `below`); NotebookError saying what to fix."""
    p = Path(path)
    try:
        return read_untrusted(p, max_bytes=MAX_NOTEBOOK_BYTES, below=below)
    except FileNotFoundError:
        raise NotebookError(f"{p}: no such file; give the path of the .ipynb you want checked") from None
    except PermissionError:
        raise NotebookError(f"{p} cannot be read (permission denied)") from None
    except UnsafeFile as e:
        raise NotebookError(f"{p} {e}; {_FIX.get(e.refusal, _HAND_IN)}") from None
    except OSError as e:
        raise NotebookError(f"{p} cannot be read ({e.strerror}); {_HAND_IN}") from None


_HAND_IN = "hand in the .ipynb file itself, as Jupyter saved it"
_FIX = {"folder": "give the path of an .ipynb file inside it", "link": "hand in the notebook file itself, not a link to it",
        "size": "clear large outputs (Cell > All Output > Clear) and save again"}


def notebook_from_bytes(raw: bytes, path: str) -> Notebook:
    """The notebook in a file's bytes; NotebookError when it is not JSON, is JSON too many values
    or too deep to be a notebook, or is not a notebook."""
    return notebook_from_dict(notebook_json(raw, path), path)


def notebook_json(raw: bytes, path: str) -> Any:
    """A notebook file's JSON, parsed only once it is known to be of a notebook's width and depth
    (whoever parses a student's file parses it here: the analysis, and the feedback page's rendering)."""
    try:
        text = raw.decode(json.detect_encoding(raw))
        _check_shape(text, path)
        return json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" (line {e.lineno}, column {e.colno})" if isinstance(e, json.JSONDecodeError) else ""
        raise NotebookError(
            f"{path} is not valid JSON{where}; it is not a saved notebook: re-save it from Jupyter"
        ) from None
    except RecursionError:  # brackets that never close, which _check_shape leaves to json.loads
        raise NotebookError(f"{path} is not valid JSON (it opens more brackets than it can nest); it is not a saved "
                            "notebook: re-save it from Jupyter") from None


def _check_shape(text: str, path: str) -> None:
    """Refuse JSON with more than MAX_JSON_VALUES values or nested deeper than MAX_JSON_DEPTH, in
    C-speed passes: strings blanked, separators counted, then the innermost bracket pairs removed,
    one or two levels a pass, in at most MAX_JSON_DEPTH passes over the brackets alone."""
    bare = _JSON_STRING.sub('""', text)
    values = 1 + bare.count(",") + bare.count(":") + bare.count("[") + bare.count("{")
    if values > MAX_JSON_VALUES:
        raise NotebookError(
            f"{path} holds {values:,} JSON values, more than a notebook's {MAX_JSON_VALUES:,}; it is not a saved "
            "notebook, or its outputs are huge: clear them (Cell > All Output > Clear), save and hand it in again"
        )
    brackets = _NOT_BRACKET.sub("", bare)
    for _ in range(MAX_JSON_DEPTH):
        inner = brackets.replace("[]", "").replace("{}", "")
        if not inner or inner == brackets:
            return  # all matched, or unbalanced (json.loads names where)
        brackets = inner
    raise NotebookError(f"{path} nests its JSON more than {MAX_JSON_DEPTH} levels deep; it is not a saved "
                        "notebook: hand in the .ipynb file saved by Jupyter")


def notebook_from_dict(data: Any, path: str = "<notebook>") -> Notebook:
    if not isinstance(data, dict) or "nbformat" not in data or not isinstance(
        data.get("cells", data.get("worksheets")), list
    ):
        raise NotebookError(
            f"{path} is JSON but not a Jupyter notebook (no 'nbformat' and 'cells'); "
            "hand in the .ipynb file saved by Jupyter"
        )
    version = data.get("nbformat")
    if not isinstance(version, int) or version < 3 or version > 4:
        raise NotebookError(f"{path} has nbformat {version!r}; only notebook formats 3 and 4 are read")
    upgraded_from = None
    if version == 3:
        data = _upgrade_v3(data, path)
        upgraded_from = 3
    cells = tuple(_cell(i, c) for i, c in enumerate(data.get("cells", [])) if isinstance(c, dict))
    if not any(c.source.strip() for c in cells):
        raise NotebookError(f"{path} is an empty notebook (no cell has any content); save your work and hand it in again")
    return Notebook(path=path, cells=cells, nbformat=4, upgraded_from=upgraded_from)


def _upgrade_v3(data: dict, path: str) -> dict:
    # nbformat knows the v3 -> v4 mapping (worksheets, prompt_number, pyout...); use it.
    import nbformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            node = nbformat.from_dict(data)
            return nbformat.convert(node, 4)
    except Exception as e:  # nbformat raises many types on malformed v3 input
        raise NotebookError(f"{path} is an nbformat 3 notebook that cannot be upgraded ({e}); re-save it in Jupyter") from None


def _text(value: Any) -> str:
    """nbformat stores multi-line strings either as one string or a list of lines."""
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return value if isinstance(value, str) else ""


def _cell(index: int, cell: dict) -> Cell:
    kind = cell.get("cell_type") if cell.get("cell_type") in ("code", "markdown", "raw") else "raw"
    outputs = tuple(_output(o) for o in cell.get("outputs") or () if isinstance(o, dict)) if kind == "code" else ()
    count = cell.get("execution_count")
    return Cell(
        index=index,
        kind=kind,
        source=_text(cell.get("source", "")),
        outputs=outputs,
        execution_count=count if isinstance(count, int) else None,
    )


def _output(out: dict) -> Output:
    kind = str(out.get("output_type", ""))
    if kind == "stream":
        return Output(kind, _text(out.get("text", "")))
    if kind == "error":
        return Output(kind, f"{out.get('ename', 'Error')}: {out.get('evalue', '')}")
    data = out.get("data") or {}
    if not isinstance(data, dict):
        data = {}
    return Output(kind, _text(data.get("text/plain", "")), _text(data.get("text/html", "")))
