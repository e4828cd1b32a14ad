"""The HTML pages: templates/page.html.j2 filled in, Markdown through nbconvert's own renderer.

A page is self-contained (the curves inline as a data: URL, the styles inline) so it can be opened
or mailed alone, and it runs nothing: no scripts, and a Content-Security-Policy refusing them and
anything fetched from elsewhere.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from grader.report.status import CheckView

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Page:
    """What one page shows, all plain text except `body_markdown` and `notebook_html`."""

    title: str
    lines: Sequence[str] = ()
    """Lines under the title (the notebook, the budget, the data)."""
    error: str = ""
    score: str = ""
    checks: Sequence[CheckView] = ()
    body_markdown: str = ""
    """The rest of the page as Markdown (escaped by its writer; raw HTML in it is shown as text)."""
    curves_png: bytes | None = None
    notebook_html: str = field(default="", repr=False)
    """The student's notebook, already made safe by grader.report.notebook_html."""


def markdown_html(text: str) -> str:
    """Markdown as HTML through nbconvert's renderer (tables, code), HTML in the text escaped, no
    javascript: links."""
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    renderer = IPythonRenderer(escape=True, allow_harmful_protocols=False, exclude_anchor_links=True)
    return MarkdownWithMath(renderer=renderer).render(text)


def render_page(page: Page) -> str:
    from markupsafe import Markup

    curves = f"data:image/png;base64,{base64.b64encode(page.curves_png).decode()}" if page.curves_png else ""
    return template("page.html.j2").render(
        title=page.title, lines=page.lines, error=page.error, score=page.score, checks=page.checks,
        body=Markup(markdown_html(page.body_markdown)), curves=curves, notebook=Markup(page.notebook_html),
        code_css=Markup(_code_css()))


def markdown_page(text: str, *, title: str) -> str:
    """A page of Markdown alone (the instructor's appendix); `title` replaces its '# ' heading."""
    first, _, rest = text.partition("\n")
    return render_page(Page(title=title, body_markdown=rest if first.startswith("# ") else text))


@functools.lru_cache(maxsize=None)
def template(name: str):
    """templates/NAME, autoescaped: every value is HTML-escaped unless it arrives as Markup."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(name)


@functools.lru_cache(maxsize=1)
def _code_css() -> str:
    """Colours for the notebook's highlighted code (the classes nbconvert's highlighter writes)."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".notebook .highlight")


__all__ = ["Page", "TEMPLATES", "markdown_html", "markdown_page", "render_page", "template"]
