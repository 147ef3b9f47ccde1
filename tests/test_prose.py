"""No number is typed into the book's prose: each one is glued from the cell that computes it.

A *typed number* is a decimal (0.83), a percentage (5 %), a number in scientific notation (3e-4),
a number with a thousands separator (1,000) or an integer of two or more digits (64), written in
a notebook's markdown cells or in a book/*.md page. What is not prose is removed first: code
blocks and inline code, math ($…$, $$…$$, amsmath environments, {math} roles and directives),
every role ({cite}, {ref}, {numref}, {doc}, {eq}, {term}, {glue:text}, {glue:} …), link targets
and URLs, MyST labels `(name)=`, directive options, HTML tags and comments. Digits that are part
of a name (CoNLL-2003, bf16, WMT16, SmolLM2-135M) do not count: a number counts only where no
letter, digit, point or `letter-` comes right before it.

Genuine exceptions go into ALLOWED, per chapter; every allowed string must appear in that
chapter's code cells, so a number the prose repeats is one the code sets. A .md page has no code
cells, so it has no exceptions.
"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BOOK = ROOT / "book"
SKIPPED_PAGES = {"bibliography.md", "api.md"}  # generated lists: references and docstrings
# {chapter path relative to the repository: {typed string allowed in its prose}}
ALLOWED: dict[str, set[str]] = {
    "book/04_code.ipynb": {"95 %"},  # the level of every CI (results.ci95), in a figure title
    # the label budgets of the decoder chapter's sweeps: LABELS = 64, POOL = 128, the 16 of
    # `for n in (16, 64, POOL)` (gluing them means re-running SmolLM2 for a label)
    "book/04b_decoder.ipynb": {"16", "64", "128", "95 %"},  # and the level of every CI
    "book/01_background.ipynb": {"95 %"},  # the level of every CI, in its tables' headers
    "book/05_applications/sentiment.ipynb": {"95 %"},  # the level of the matrix's CIs
    "book/07b_strategies.ipynb": {"95 %"},  # the level of results.ci95, in the table's header
    "book/08_faq.ipynb": {"95 %"},  # the level of results.ci95, in a comment of the code
    "book/appendix_measures.ipynb": {"95 %"},  # the level of every interval it explains
    "book/appendix_prompts.ipynb": {"95 %"},  # the level of the validation intervals it states
}

# Directives whose body is not prose (code, math, generated content); other directives
# (note, figure, tab-item, dropdown …) hold prose and are checked.
NOT_PROSE_DIRECTIVES = {
    "code", "code-block", "code-cell", "sourcecode", "literalinclude", "math", "eval-rst", "raw",
    "glue", "glue:any", "glue:figure", "glue:math", "bibliography", "toctree",
    "tableofcontents", "mermaid", "autofunction", "autoclass", "automodule",
}
FENCE = re.compile(r"^\s*(`{3,}|:{3,}|~{3,})\s*(.*)$")
NUMBER = re.compile(
    r"(?<![\w.])(?<!\w[-/])"  # not part of a name (bf16, CoNLL-2003) or of a version (v1.1)
    r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # 1,000 or 20,000.5
    r"|\d+(?:\.\d+)?[eE][-+−]?\d+"  # 3e-4, 1.5e3
    r"|\d+\.\d+"  # 0.83
    r"|\d+)"  # 64 (counted only with two or more digits, or a % after it)
    r"(?:\s?%)?"
)
STRIP = [  # (pattern, replacement), applied in order after the fenced blocks are gone
    (re.compile(r"<!--.*?-->", re.S), " "),  # HTML comments
    (re.compile(r"\{[\w:.-]+\}(`+)(.*?)\1", re.S), " "),  # roles: {cite}`…`, {glue:text}`…`
    (re.compile(r"(`+)(.+?)\1", re.S), " "),  # inline code
    (re.compile(r"\$\$.*?\$\$", re.S), " "),  # display math
    (re.compile(r"\\begin\{([\w*]+)\}.*?\\end\{\1\}", re.S), " "),  # amsmath environments
    (re.compile(r"\$[^$\n]+?\$"), " "),  # inline math
    (re.compile(r"^\s*\([\w:.-]+\)=\s*$", re.M), " "),  # MyST labels: (ch-code)=
    (re.compile(r"^\s*:[\w-]+:.*$", re.M), " "),  # directive options: :width: 80%
    (re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.M), " "),  # link definitions
    (re.compile(r"(!?\[[^\]]*\])\([^)]*\)"), r"\1"),  # link and image targets
    (re.compile(r"<[a-z]+://[^>]*>|\b[a-z]+://\S+"), " "),  # URLs
    (re.compile(r"\[\^[^\]]+\]"), " "),  # footnote references
    (re.compile(r"\{\{.*?\}\}", re.S), " "),  # substitutions
    (re.compile(r"</?[A-Za-z][^>]*>"), " "),  # HTML tags (their attributes)
]


def strip_fences(markdown: str) -> str:
    """Return markdown without fenced blocks that hold no prose (code, math, glue figures)."""
    kept, stack = [], []  # stack: (fence, whether its body is prose)
    for line in markdown.splitlines():
        found = FENCE.match(line)
        fence, info = found.groups() if found else ("", "")
        if found and stack and not info and fence[0] == stack[-1][0][0] \
                and len(fence) >= len(stack[-1][0]):
            stack.pop()
        elif found and all(keep for _, keep in stack) and (info or fence[0] in "`~"):
            directive = re.match(r"\{([\w:.-]+)\}", info)
            stack.append((fence, bool(directive) and directive.group(1) not in
                          NOT_PROSE_DIRECTIVES))
        elif all(keep for _, keep in stack):
            kept.append(line)
    return "\n".join(kept)


def prose(markdown: str) -> str:
    """Return the prose of a markdown text: code, math, roles, targets and labels removed."""
    text = strip_fences(markdown)
    for pattern, replacement in STRIP:
        text = pattern.sub(replacement, text)
    return text


def typed_matches(text: str) -> list[re.Match]:
    """Return the typed numbers of a prose text (see prose()) as regex matches."""
    return [m for m in NUMBER.finditer(text)
            if re.search(r"[.,%eE]", m.group(0)) or len(m.group(0)) >= 2]


def typed_numbers(markdown: str) -> list[str]:
    """Return the numbers typed into the prose of a markdown text, in order."""
    return [m.group(0).strip() for m in typed_matches(prose(markdown))]


def source(cell: dict) -> str:
    """Return a notebook cell's source as one string."""
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def chapter_markdown(path: Path) -> list[str]:
    """Return the markdown texts of a chapter: its markdown cells, or the whole .md page."""
    if path.suffix == ".md":
        return [path.read_text()]
    cells = json.loads(path.read_text())["cells"]
    return [source(c) for c in cells if c["cell_type"] == "markdown"]


def chapter_code(path: Path) -> str:
    """Return the code cells of a chapter joined (empty for a .md page)."""
    if path.suffix == ".md":
        return ""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join(source(c) for c in cells if c["cell_type"] == "code")


CHAPTERS = sorted(
    p for p in list(BOOK.rglob("*.ipynb")) + list(BOOK.rglob("*.md"))
    if not {"_build", ".ipynb_checkpoints"} & set(p.parts) and p.name not in SKIPPED_PAGES
)


def name(path: Path) -> str:
    """Return a chapter's path relative to the repository (the key of ALLOWED)."""
    return str(path.relative_to(ROOT))


def offending(path: Path) -> list[str]:
    """Return each typed number of a chapter that ALLOWED does not allow, with its context."""
    allowed = ALLOWED.get(name(path), set())
    bad = []
    for i, markdown in enumerate(chapter_markdown(path)):
        text = prose(markdown)
        for match in typed_matches(text):
            if match.group(0).strip() not in allowed:
                context = " ".join(text[max(0, match.start() - 40):match.end() + 30].split())
                bad.append(f"markdown cell {i}: {match.group(0)!r} in …{context}…")
    return bad


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("accuracy 0.83 after 64 labels, 5 % noise, lr 3e-4, 1,000 pairs", ["0.83", "64", "5 %",
                                                                            "3e-4", "1,000"]),
        ("three seeds, 2 layers and a 1.", []),
        ("the rate `lr=1e-3` and ``0.5``", []),
        ("math $0.5 + x_{12}$ and $$\n\\alpha = 0.25\n$$ done", []),
        ("{math}`0.5` {cite}`devlin2019bert` {ref}`section 4.1 <ch-code>` {eq}`eq-12`", []),
        ("glued {glue:text}`acc:.2f` and {glue:}`n_12`", []),
        ("a [link](https://example.org/2019/page_10.html) and <https://x.org/12>", []),
        ("(sec-10)=\n# Heading", []),
        ("<!-- typed 0.5 in a comment -->", []),
        ("CoNLL-2003, WMT16, bf16, SmolLM2-135M-Instruct, v1.1", []),
        ("```python\nx = 0.5\n```\nthen 0.7", ["0.7"]),
        ("```{math}\n0.5\n```\n:::{note}\nsaw 12 runs\n:::", ["12"]),
        ("```{figure} img_10.png\n:width: 80%\nCaption with 0.9\n```", ["0.9"]),
        ("it took 35 s and 20k examples", ["35", "20"]),
    ],
)
def test_the_detector(markdown, expected):
    assert typed_numbers(markdown) == expected


@pytest.mark.parametrize("path", CHAPTERS, ids=name)
def test_no_number_is_typed_into_prose(path):
    bad = offending(path)
    assert not bad, ("glue these from the cell that computes them "
                     "(glue(name, value, display=False); {glue:text}`name`):\n" + "\n".join(bad))


@pytest.mark.parametrize("chapter", sorted(ALLOWED))
def test_allowed_numbers_are_set_by_the_chapters_code(chapter):
    path = ROOT / chapter
    assert path in CHAPTERS, f"{chapter} is not a chapter of the book"
    assert path.suffix == ".ipynb", f"{chapter} is a page without code: it allows no number"
    code = chapter_code(path)
    missing = sorted(s for s in ALLOWED[chapter] if s not in code)
    assert not missing, f"{chapter} allows {missing}, which none of its code cells contains"


GLUE_ROLE = re.compile(r"\{glue(?::\w*)?\}`([^`:]+)")  # {glue}`x`, {glue:text}`x:.1f` → x


def glued_names(path: Path) -> set[str]:
    """Return the names a notebook's stored outputs glue (myst_nb's `glue` records)."""
    cells = json.loads(path.read_text())["cells"]
    return {o["metadata"]["scrapbook"]["name"] for c in cells for o in c.get("outputs", [])
            if "scrapbook" in o.get("metadata", {})}


def test_the_glue_reference_pattern():
    text = "{glue:text}`acc:.1f`, {glue:}`labels` and {glue}`n` but not {ref}`x`"
    assert GLUE_ROLE.findall(text) == ["acc", "labels", "n"]


@pytest.mark.parametrize("path", [p for p in CHAPTERS if p.suffix == ".ipynb"], ids=name)
def test_every_glued_name_in_prose_is_glued_by_the_chapter(path):
    referenced = {n.strip() for md in chapter_markdown(path) for n in GLUE_ROLE.findall(md)}
    missing = sorted(referenced - glued_names(path))
    assert not missing, (f"the prose shows {missing}, which no stored output glues: glue them "
                         "in a code cell and re-execute the notebook")
