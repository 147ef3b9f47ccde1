"""Write book/glossary.md from the bilingual term list book/terms.yml.

    python scripts/glossary.py          # rewrite the glossary page
    python scripts/glossary.py --check  # exit 1 when the page is out of date
    python scripts/glossary.py --catalog  # name the Chinese glossary's entries from the list

The list is the one place a term and its Chinese name live: the English glossary shows the
Chinese term beside each entry, and the Chinese edition names its entries with it
(tests/test_i18n.py checks the catalog against the list).
"""

import re
import sys
import textwrap
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
TERMS = ROOT / "book" / "terms.yml"
PAGE = ROOT / "book" / "glossary.md"
CATALOG = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES" / "book" / "glossary.po"
HEADER = """(ch-glossary)=
# Glossary

Each term of the book with the term the Chinese source text uses, a short definition, and the
chapter where the book measures it rather than only names it.

```{glossary}
:sorted:
"""
NBSP = "\u00a0"


def load_terms(path: Path = TERMS) -> list[dict]:
    """The term list: dicts with `en`, `zh`, a `definition` (glossary entries), `strict`, and
    `glossary: false` for conventions of the translation that are not glossary entries."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def wrap(text: str) -> str:
    """Wrap a definition at 100 columns, never inside a role like {term}`source task`."""
    protected = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", NBSP), text)
    lines = textwrap.wrap(protected, width=98, break_on_hyphens=False, break_long_words=False)
    return "\n".join("  " + line.replace(NBSP, " ") for line in lines)


def render(terms: list[dict]) -> str:
    """The glossary page: one entry per term, its Chinese name in bold before the definition."""
    entries = [f"{t['en']}\n{wrap('**' + t['zh'] + '**. ' + t['definition'])}" for t in terms
               if t.get("glossary", True)]
    return HEADER + "\n" + "\n\n".join(entries) + "\n```\n"


def name_entries(terms: list[dict], catalog_path: Path = CATALOG) -> None:
    """Translate each glossary term of the Chinese catalog to the list's Chinese term."""
    from babel.messages.pofile import read_po, write_po

    with catalog_path.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    for term in (t for t in terms if t.get("glossary", True)):
        entry = catalog.get(term["en"])
        if entry is not None:
            entry.string = term["zh"]
            entry.flags.discard("fuzzy")
    with catalog_path.open("wb") as f:
        write_po(f, catalog, width=0)


if __name__ == "__main__":
    page = render(load_terms())
    if "--catalog" in sys.argv[1:]:
        name_entries(load_terms())
        sys.exit(0)
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.read_text(encoding="utf-8") == page else 1)
    PAGE.write_text(page, encoding="utf-8")
