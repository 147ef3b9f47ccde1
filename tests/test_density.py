"""Each page of the book teaches one idea at a readable length (issue 32: density).

A page holds at most 2,000 words of prose (markdown, without code, math, roles and inline code)
and at most 25 code cells the reader sees (cells tagged `remove-cell`/`remove-input` are hidden).
The test prints the table for every page, so a writer sees where each page stands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
MAX_WORDS, MAX_VISIBLE = 2000, 25
HIDDEN = {"remove-cell", "remove-input"}
NOT_PROSE = [re.compile(r"```.*?```", re.S), re.compile(r"\$\$.*?\$\$", re.S),
             re.compile(r"\$[^$\n]+\$"), re.compile(r"\{[\w:.-]+\}`[^`]*`"), re.compile(r"`[^`]*`")]
WORD = re.compile(r"[A-Za-zθ][\w'’-]*")


def prose_words(markdown: str) -> int:
    """Words of prose in a markdown cell, code blocks, math, roles and inline code removed."""
    for pattern in NOT_PROSE:
        markdown = pattern.sub(" ", markdown)
    return len(WORD.findall(markdown))


def measure(notebook: Path) -> tuple[int, int]:
    """(words of prose, visible code cells) of one notebook."""
    words = visible = 0
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            words += prose_words(source)
        elif cell["cell_type"] == "code" and not HIDDEN & set(cell["metadata"].get("tags", [])):
            visible += 1
    return words, visible


def test_the_word_count_ignores_code_math_and_roles():
    assert prose_words("Two words `not this` $x + y$ {ref}`ch-math`\n```python\nx = 1\n```") == 2


def test_every_page_is_short_enough_to_read():
    rows = {p.relative_to(ROOT).as_posix(): measure(p)
            for p in sorted((ROOT / "book").rglob("*.ipynb")) if "_build" not in p.parts}
    print(f"\n{'page':45s} {'words':>6s} {'visible cells':>14s}")
    for page, (words, visible) in rows.items():
        print(f"{page:45s} {words:6d} {visible:14d}")
    over = {page: row for page, row in rows.items()
            if row[0] > MAX_WORDS or row[1] > MAX_VISIBLE}
    assert not over, f"pages over {MAX_WORDS} words or {MAX_VISIBLE} visible code cells: {over}"


def test_no_package_source_is_printed_twice():
    """A function's source shows once in the book; other pages point to it."""
    printed: dict[str, list[str]] = {}
    for notebook in sorted((ROOT / "book").rglob("*.ipynb")):
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            for name in re.findall(r"print\(inspect\.getsource\(([\w.]+)\)\)", source):
                printed.setdefault(name.split(".")[-1], []).append(notebook.name)
    twice = {name: pages for name, pages in printed.items() if len(pages) > 1}
    assert not twice, f"printed more than once: {twice}"
