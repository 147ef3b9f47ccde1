"""The Chinese edition is complete and in step with the English one.

The English prose is extracted into message templates (Sphinx's gettext builder, as `make
catalogs` does) and compared with the catalogs in book/locales/zh_CN/. A message fails when it is
missing from its catalog (the Chinese page is older than its English source: run `make catalogs`),
untranslated, fuzzy (its English changed since it was translated), or when its translation lost
a glued number, a cross-reference, a citation, inline code or math, or does not use the term
list's Chinese name for a term (book/terms.yml, `strict: true`). Each failure names the page and
the message. Docstrings that the API page pulls from the package are not the book's prose and may
stay English.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po

ROOT = Path(__file__).parents[1]
LOCALE = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES"
TERMS = ROOT / "book" / "terms.yml"
ROLE = re.compile(r"\{([\w:.-]+)\}`([^`]*)`")
CODE = re.compile(r"(?<![`}])`([^`]+)`")
MATH = re.compile(r"\$[^$]+\$")


@dataclass(frozen=True)
class Problem:
    """One message of one page that the Chinese edition gets wrong."""

    page: str
    message: str
    why: str

    def __str__(self) -> str:
        return f"{self.page}: {self.why}: {self.message[:100]!r}"


def load_terms() -> list[dict]:
    """The bilingual term list."""
    return yaml.safe_load(TERMS.read_text(encoding="utf-8"))


def role_target(role: str, text: str, zh_terms: dict[str, str]) -> tuple[str, str]:
    """A role's name and target; an English {term} target is mapped to its Chinese term."""
    target = re.search(r"<([^<>]+)>\s*$", text)
    target = (target.group(1) if target else text).strip()
    if role == "term":
        target = zh_terms.get(target.lower(), target)
    if role.startswith("glue"):
        target = target.split(":")[0]  # a translator may not change the key, nor need the format
    return role, target


def markup(text: str, zh_terms: dict[str, str]) -> Counter:
    """What must survive translation: roles with their targets, inline code, math."""
    found = Counter(role_target(r, t, zh_terms) for r, t in ROLE.findall(text))
    stripped = ROLE.sub(" ", text)
    found.update(("code", c) for c in CODE.findall(stripped))
    found.update(("math", m) for m in MATH.findall(stripped))
    return found


def is_prose(message) -> bool:
    """A message from a page of the book (not a docstring the API page pulls in)."""
    return any("book/" in path and not path.endswith(".py") for path, _ in message.locations)


def check_page(page: str, template, catalog, terms: list[dict]) -> list[Problem]:
    """Every problem of one page's catalog against the page's current English messages."""
    zh_terms = {t["en"].lower(): t["zh"] for t in terms}
    strict = [t for t in terms if t.get("strict")]
    problems = []
    for message in template:
        if not message.id or not is_prose(message):
            continue
        english = message.id
        entry = catalog.get(english) if catalog is not None else None
        if entry is None:
            problems.append(Problem(page, english, "not in the catalog (run `make catalogs`)"))
        elif not entry.string:
            problems.append(Problem(page, english, "untranslated"))
        elif entry.fuzzy:
            problems.append(Problem(page, english, "fuzzy: the English changed since"))
        else:
            lost = markup(english, zh_terms) - markup(entry.string, zh_terms)
            if lost:
                problems.append(Problem(page, english, f"the translation lost {sorted(lost)}"))
            plain = CODE.sub(" ", ROLE.sub(" ", english)).lower()
            for term in strict:
                if re.search(rf"\b{re.escape(term['en'].lower())}s?\b", plain) and \
                        term["zh"] not in entry.string:
                    problems.append(Problem(page, english, f"'{term['en']}' is not '{term['zh']}'"))
    return problems


def read_catalog(path: Path):
    """A .po file, or None when the page has no catalog yet."""
    if not path.exists():
        return None
    with path.open("rb") as f:
        return read_po(f, locale="zh_CN")


def check_all(pot_dir: Path, po_dir: Path = LOCALE) -> list[Problem]:
    """The problems of every page: one .pot of the English per page, its .po beside it."""
    terms = load_terms()
    problems = []
    for pot in sorted(pot_dir.rglob("*.pot")):
        page = pot.relative_to(pot_dir).with_suffix("").as_posix()
        with pot.open("rb") as f:
            template = read_po(f)
        problems += check_page(page, template, read_catalog(po_dir / f"{page}.po"), terms)
    return problems


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    """The English book's messages now: Sphinx's gettext builder, as `make catalogs` runs it."""
    out = tmp_path_factory.mktemp("i18n")
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(ROOT),
                    "--builder", "custom", "--custom-builder", "gettext", "--path-output",
                    str(out)], check=True, capture_output=True)
    return out / "_build" / "gettext"


def test_every_message_is_translated_and_current(templates):
    problems = check_all(templates)
    pages = Counter(p.page for p in problems)
    assert not problems, (f"{len(problems)} messages need work on {len(pages)} pages "
                          f"({dict(pages)}):\n" + "\n".join(map(str, problems[:40])))


def test_the_check_names_an_untranslated_a_fuzzy_and_a_broken_message(templates, tmp_path):
    page = "book/07c_unlabeled"
    with (templates / f"{page}.pot").open("rb") as f:
        template = read_po(f)
    catalog = read_catalog(LOCALE / f"{page}.po")
    glued = next(m for m in catalog if m.id and "{glue:text}" in m.id and m.string)
    untranslated, fuzzy = [m for m in catalog if m.id and m.string and m is not glued][:2]
    untranslated.string = ""
    fuzzy.flags.add("fuzzy")
    glued.string = ROLE.sub("", glued.string)
    found = {p.message: p.why for p in check_page(page, template, catalog, load_terms())}
    assert found[untranslated.id] == "untranslated"
    assert found[fuzzy.id].startswith("fuzzy")
    assert "glue" in found[glued.id], found[glued.id]
    assert len(found) == 3, found


def test_glossary_page_is_written_from_the_term_list():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "glossary.py"), "--check"])
    assert result.returncode == 0, "book/glossary.md is stale: run `python scripts/glossary.py`"


def test_the_chinese_glossary_names_each_term_as_the_term_list_does():
    catalog = read_catalog(LOCALE / "book" / "glossary.po")
    for term in (t for t in load_terms() if t.get("glossary", True)):
        assert catalog.get(term["en"]) is not None, term["en"]
        assert catalog.get(term["en"]).string == term["zh"], term["en"]


def test_a_translated_paragraph_keeps_its_glued_number(tmp_path):
    """book/_ext/glue_i18n.py: the number of a glue role in translated text is pasted."""
    import nbformat
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    paragraph = "Accuracy reached {glue:text}`acc:.2f` with {glue:text}`n` labels."
    glued = [nbformat.v4.new_output("display_data", data={
        f"application/papermill.record/{mime}": value for mime, value in d.items()},
        metadata={"scrapbook": {"name": name, "mime_prefix": "application/papermill.record/"}})
        for name, d in (("acc", {"text/plain": "0.8123"}), ("n", {"text/plain": "64"}))]
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Page"), nbformat.v4.new_markdown_cell(paragraph),
        nbformat.v4.new_code_cell("glue(...)", outputs=glued)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, tmp_path / "page.ipynb")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump({
        "title": "t", "execute": {"execute_notebooks": "off"},
        "sphinx": {"local_extensions": {"glue_i18n": str(ROOT / "book" / "_ext")},
                   "config": {"language": "zh_CN", "locale_dirs": ["locales/"],
                              "gettext_compact": False}}}))
    catalog = Catalog(locale="zh_CN")
    catalog.add(paragraph, "准确率达到 {glue:text}`acc:.2f`，用了 {glue:text}`n` 个标签。")
    po = tmp_path / "locales" / "zh_CN" / "LC_MESSAGES" / "page.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as f:
        write_po(f, catalog)
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", str(tmp_path)],
                   check=True, capture_output=True)
    html = (tmp_path / "_build" / "html" / "page.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    assert "准确率达到 0.81，用了 64 个标签。" in text


def test_prose_pastes_numbers_with_the_text_role():
    """glue_i18n pastes {glue:text} into translated paragraphs; {glue:} would need a renderer."""
    pages = [p for p in (ROOT / "book").rglob("*.ipynb") if "_build" not in p.parts]
    found = [p.name for p in pages if re.search(r"\{glue(:any)?\}`", p.read_text(encoding="utf-8"))]
    assert not found, f"use {{glue:text}} instead of {{glue:}} in {found}"
