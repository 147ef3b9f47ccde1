"""Write the Chinese edition's Jupyter Book config and table of contents.

    python scripts/zh_config.py _build/zh/_config.yml   # and _build/zh/_toc.yml beside it

The config is _config.yml with the zh_CN settings; the table of contents is _toc.yml with its
part captions translated from the catalog (Sphinx does not translate the captions that
jupyter-book's table of contents adds).

`make book` builds the Chinese edition from the same notebooks with this config and the
catalogs in book/locales/zh_CN/ (see README, "The Chinese edition").
"""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
CAPTIONS = ROOT / "book" / "locales" / "zh_CN" / "LC_MESSAGES" / "book" / "intro.po"
ZH = {
    "language": "zh_CN",
    "html_search_language": "zh",  # Sphinx segments Chinese words with jieba
    "twin_edition_url": "../",
    "twin_edition_label": "English",
}


def zh_config(english: dict) -> dict:
    """The English config with the Chinese edition's title, language, search and footer."""
    config = dict(english, title="Transfer Lab 迁移学习实验室")
    config["html"] = dict(english["html"], extra_footer=(
        "本书中的每个数字都由旁边的代码计算得出。"
        "在本地运行一章（<code>pip install -e .</code>），或在 Colab 中运行（火箭按钮）。"))
    sphinx = dict(english["sphinx"])
    # jupyter-book finds local extensions relative to the config file, which lives in _build/
    sphinx["local_extensions"] = {
        name: str(ROOT / folder) for name, folder in english["sphinx"]["local_extensions"].items()}
    sphinx["config"] = dict(sphinx["config"], **ZH)
    sphinx["config"]["html_theme_options"] = dict(
        sphinx["config"]["html_theme_options"], search_bar_text="搜索本书…")
    config["sphinx"] = sphinx
    return config


def zh_toc(english: dict, catalog_path: Path = CAPTIONS) -> dict:
    """The English table of contents with each part's caption translated by the catalog."""
    from babel.messages.pofile import read_po

    with catalog_path.open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    parts = []
    for part in english["parts"]:
        entry = catalog.get(part["caption"])
        if entry is None or not entry.string:
            raise SystemExit(f"{catalog_path}: no translation of the caption {part['caption']!r}")
        parts.append(dict(part, caption=entry.string))
    return dict(english, parts=parts)


if __name__ == "__main__":
    english = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(zh_config(english), allow_unicode=True, sort_keys=False),
                   encoding="utf-8")
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    (out.parent / "_toc.yml").write_text(
        yaml.safe_dump(zh_toc(toc), allow_unicode=True, sort_keys=False), encoding="utf-8")
