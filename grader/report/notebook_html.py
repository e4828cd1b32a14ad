"""The student's own notebook as HTML for feedback.html, each failed check shown right after its cell.

nbgrader's feedback does this: the student reads what went wrong where it went wrong. nbconvert's
HTMLExporter renders the cells (templates/grader_notebook). Everything in a notebook is the
student's, and its outputs are HTML and JavaScript, so the rendering is safe by construction:
- the student's cell and output metadata is dropped (no `isolated` iframes, no file names for
  images, no tags or spoofed check blocks), and so is the notebook's (no widget state);
- nbconvert's SanitizeHTML removes JavaScript, widget and SVG outputs and cleans HTML outputs;
- every piece of HTML the student wrote (markdown cells, HTML and Markdown outputs) passes through
  `safe_html`: a short list of tags, no class/style/event attributes, images only as data: URLs;
- the page's Content-Security-Policy (templates/page.html.j2) refuses scripts and outside
  resources if anything slipped through.
"""

from __future__ import annotations

import copy
import functools
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Mapping, Sequence

from grader.report.status import CheckView

MAX_RENDERED_BYTES = 32 * 1024 * 1024
"""A notebook larger than this is not shown (its outputs would make the page unreadable anyway)."""
MAX_SHOWN_CHARS = 20_000
"""A cell's source, or an output's text, is shown up to this many characters (a note says how many
more there are): highlighting code takes about 30 microseconds a character, and the student's HTML
and Markdown renderers are not linear in what a hostile notebook can hold."""
MAX_PAGE_CHARS = {"code": 150_000, "text": 250_000}
"""The code cells' sources together (highlighted: at most about 5 s), and all the other texts together
(markdown, outputs): the page is rendered in the grader's process, in seconds whatever the notebook."""

SAFE_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "samp", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
})
"""What the student's HTML may contain: text structure, tables, images."""

_PLAIN_ATTRIBUTES = frozenset({"alt", "title", "colspan", "rowspan", "align", "start"})


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    if name in _PLAIN_ATTRIBUTES:
        return True
    if tag == "img" and name == "src":  # raster images inside the page only: no requests, no SVG scripts
        return value.startswith(("data:image/png;", "data:image/jpeg;", "data:image/gif;"))
    if tag == "a" and name == "href":
        return value.startswith(("https://", "http://", "#"))
    return False


def safe_html(html: str) -> str:
    """Student HTML cut down to SAFE_TAGS and harmless attributes; other tags show as text."""
    import bleach

    return bleach.clean(str(html), tags=SAFE_TAGS, attributes=_allowed_attribute,
                        protocols={"http", "https", "data"}, strip=False, strip_comments=True)


def notebook_html(raw: bytes, failed: Mapping[int, Sequence[CheckView]]) -> str:
    """The notebook file's bytes `raw` (the caller read them, at most MAX_RENDERED_BYTES) as an HTML
    fragment, `failed[i]` rendered after cell i; its texts cut to MAX_SHOWN_CHARS each and
    MAX_PAGE_CHARS in all.

    Raises ValueError (or NotebookError) when they are not a notebook."""
    import nbformat

    from grader.notebook import notebook_json

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbformat warns about missing ids and old minor versions
        nb = nbformat.convert(nbformat.from_dict(notebook_json(raw, "the notebook")), 4)
    nb = _prepared(nb, failed)
    body, _ = _exporter().from_notebook_node(nb)
    return body


class _Budget:
    """What is left of MAX_PAGE_CHARS as the cells are prepared, in order."""

    def __init__(self) -> None:
        self.left = dict(MAX_PAGE_CHARS)

    def cut(self, text: object, pool: str = "text") -> str:
        """`text` within MAX_SHOWN_CHARS and what is left of its pool, with a note of what was cut
        (a comment in code, so that the cut code still reads as code)."""
        text = text if isinstance(text, str) else "".join(s for s in text or [] if isinstance(s, str))
        keep = min(len(text), MAX_SHOWN_CHARS, self.left[pool])
        self.left[pool] -= keep
        if keep == len(text):
            return text
        note = f"[{len(text) - keep:,} more characters not shown here]"
        return f"{text[:keep]}\n{'# ' if pool == 'code' else ''}{note}\n"


def _prepared(nb, failed: Mapping[int, Sequence[CheckView]]):
    """A copy holding only what the template shows: the grader's own metadata replaces the student's,
    and every text is cut to what the page shows."""
    nb = copy.deepcopy(nb)
    nb.metadata = {"language_info": {"name": "python"}}
    budget = _Budget()
    cells = []
    for index, cell in enumerate(nb.get("cells") or []):  # the index the checks count by (grader.notebook)
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        cell["metadata"] = {"grader_index": index, "grader_checks": [asdict(view) for view in failed.get(index, ())]}
        cell["id"] = f"c{index}"  # the student's id replaced too (nbconvert makes an anchor of it)
        cell["source"] = budget.cut(cell.get("source"), "code" if cell["cell_type"] == "code" else "text")
        if cell["cell_type"] == "code":
            cell["outputs"] = [_output(o, budget) for o in cell.get("outputs") or [] if isinstance(o, dict)]
        cells.append(cell)
    nb.cells = cells
    return nb


_TEXTS = ("text/plain", "text/html", "text/markdown", "text/latex")
"""The outputs' texts the page renders (images are bounded by MAX_RENDERED_BYTES)."""


def _output(output: dict, budget: _Budget):
    from nbformat import from_dict

    kind = output.get("output_type")
    if kind == "stream":
        return from_dict({**output, "text": budget.cut(output.get("text")), "metadata": {}})
    if kind == "error":
        lines = output.get("traceback") if isinstance(output.get("traceback"), list) else []
        return from_dict({**output, "traceback": [budget.cut("\n".join(s for s in lines if isinstance(s, str)))],
                          "metadata": {}})
    data = output.get("data") if isinstance(output.get("data"), dict) else {}
    data = {mime: budget.cut(value) if mime in _TEXTS else value for mime, value in data.items()}
    return from_dict({**output, "data": data, "metadata": {}})


def _sanitizer():
    """nbconvert's SanitizeHTML for code outputs only: markdown is cleaned after it becomes HTML
    (cleaning its source would turn `a < b` in a code block into `a &lt; b`)."""
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    class SanitizeOutputs(SanitizeHTML):
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "code":
                cell.outputs = self.sanitize_code_outputs(cell.outputs)
            return cell, resources

    return SanitizeOutputs(tags=sorted(SAFE_TAGS), attributes=_allowed_attribute, strip=False)


@functools.lru_cache(maxsize=1)
def _exporter():
    """One configured exporter per process: building one loads templates and takes longer than a render."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="grader_notebook",
                            extra_template_basedirs=[str(Path(__file__).parent / "templates")],
                            sanitize_html=True, exclude_anchor_links=True, embed_images=False)
    exporter.register_filter("safe_html", safe_html)
    exporter.register_preprocessor(_sanitizer(), enabled=True)
    return exporter


__all__ = ["SAFE_TAGS", "notebook_html", "safe_html"]
