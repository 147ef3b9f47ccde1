"""A link at the top of every page to the same page in the other edition (English ↔ 中文).

The English book is built into _build/html/ and the Chinese one into _build/html/zh/ (see the
Makefile); `twin_edition_url` is the path from one edition's root to the other's.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx


def twin_href(docname: str, url: str) -> str:
    """The relative link from page `docname` to its twin, `url` being the other edition's root."""
    return "../" * docname.count("/") + url + docname + ".html"


def add_twin_link(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Insert the link below the page's title (HTML builds only)."""
    url, label = app.config.twin_edition_url, app.config.twin_edition_label
    if not url or app.builder.format != "html":
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    link = nodes.reference("", label, refuri=twin_href(docname, url), internal=False)
    para = nodes.paragraph("", "", link, classes=["twin-edition"])
    section.insert(1 if section.children and isinstance(section[0], nodes.title) else 0, para)


def setup(app: Sphinx) -> dict:
    """Register the two settings and the event."""
    app.add_config_value("twin_edition_url", "", "html")
    app.add_config_value("twin_edition_label", "", "html")
    app.connect("doctree-resolved", add_twin_link)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
