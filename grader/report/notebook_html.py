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
    fragment, `failed[i]` rendered after cell i.

    Raises ValueError when they are not a notebook."""
    import nbformat

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbformat warns about missing ids and old minor versions
        nb = nbformat.convert(nbformat.reader.reads(raw.decode("utf-8")), 4)
    nb = _prepared(nb, failed)
    body, _ = _exporter().from_notebook_node(nb)
    return body


def _prepared(nb, failed: Mapping[int, Sequence[CheckView]]):
    """A copy holding only what the template shows: the grader's own metadata replaces the student's."""
    nb = copy.deepcopy(nb)
    nb.metadata = {"language_info": {"name": "python"}}
    cells = []
    for index, cell in enumerate(nb.get("cells") or []):  # the index the checks count by (grader.notebook)
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            continue
        cell["metadata"] = {"grader_index": index, "grader_checks": [asdict(view) for view in failed.get(index, ())]}
        cell["id"] = f"c{index}"  # the student's id replaced too (nbconvert makes an anchor of it)
        if not isinstance(cell.get("source"), str):
            cell["source"] = "".join(s for s in cell.get("source") or [] if isinstance(s, str))
        if cell["cell_type"] == "code":
            cell["outputs"] = [_output(o) for o in cell.get("outputs") or [] if isinstance(o, dict)]
        cells.append(cell)
    nb.cells = cells
    return nb


def _output(output: dict):
    from nbformat import from_dict

    data = output.get("data")
    fields = {} if output.get("output_type") in ("stream", "error") else {"data": data if isinstance(data, dict) else {}}
    return from_dict({**output, **fields, "metadata": {}})


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
