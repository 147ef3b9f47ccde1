"""Glue numbers into translated paragraphs (the Chinese edition).

Sphinx translates a paragraph by parsing its msgstr as a small document of its own; that document
has no notebook behind it, so myst-nb's glue roles find no data and the number is lost. Here the
roles fall back on the glue outputs stored in the page's own notebook.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from myst_nb.core.variables import RetrievalError, VariableOutput
from myst_nb.ext.glue import roles, utils
from sphinx.application import Sphinx

_original = utils.retrieve_glue_data
PREFIX = "application/papermill.record/"  # how glue() stores its mime bundle


@functools.lru_cache(maxsize=64)
def stored_glue(notebook: Path, mtime: float) -> dict[str, dict]:
    """The glue outputs stored in a notebook: {name: {"data": …, "metadata": …}}."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                data = {mime.removeprefix(PREFIX): value for mime, value in output["data"].items()}
                found[name] = {"data": data, "metadata": output["metadata"]}
    return found


def retrieve_glue_data(document, key: str) -> VariableOutput:
    """Myst-nb's lookup, then the page's notebook when the document is a translated message."""
    try:
        return _original(document, key)
    except RetrievalError:
        env = getattr(document.settings, "env", None)
        if env is None or "nb_renderer" in document:
            raise
        notebook = Path(env.doc2path(env.docname))
        if notebook.suffix != ".ipynb":
            raise
        glue = stored_glue(notebook, notebook.stat().st_mtime)
        if key not in glue:
            raise
        return VariableOutput(data=glue[key]["data"], metadata=glue[key]["metadata"],
                              nb_renderer=None, vtype="glue")


def setup(app: Sphinx) -> dict:
    """Install the fallback for the roles that paste a glued value."""
    roles.retrieve_glue_data = retrieve_glue_data
    return {"parallel_read_safe": True, "parallel_write_safe": True}
