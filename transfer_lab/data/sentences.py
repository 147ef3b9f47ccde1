"""Real review sentences, offline: the UCI "Sentiment Labelled Sentences" as three tasks.

1,000 English sentences each from product (amazon), film (imdb) and restaurant (yelp) reviews,
500 positive and 500 negative, shipped unchanged in `transfer_lab/assets/sentences/` (CC BY 4.0;
licence, source and citation in the README there: Kotzias et al., KDD 2015). `tasks` registers
them as `product_sentences`, `film_sentences` and `restaurant_sentences`, and their training
pools as the unlabeled corpora `*_sentences_text` (the `dapt` arm).

Each domain is split once, by a fixed seed, into 500 test sentences and a training pool of 500,
250 of each label on both sides. Why 500/500 rather than 400/600: the gaps between arms on
real text are a point or two (DESIGN.md §8), so the test set's size is what decides whether a
gap can be read, and a pool of 500 still covers every label budget the book runs (8 to 256);
only a budget of 512 would need more. Sentences that are the same up to case and spacing
("Great phone." and "Great Phone.", which an uncased tokenizer cannot tell apart) form one group
and go to the same side, so no test sentence is ever a training sentence. `load("train", n,
seed)` draws n rows of the pool, seeded, alternating negative and positive as the world's tasks
do (any even prefix is balanced, and a larger draw of the same seed contains the smaller one);
`load("test", n)` returns the first n of the fixed test split, alternating the same way.

The files are read splitting on "\\n" only, never `str.splitlines()`: a few imdb sentences hold
U+0085, which `splitlines` takes for a line break. Their SHA-256 sums are checked first; an
altered file is refused.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from functools import cache
from pathlib import Path

from datasets import Dataset

from transfer_lab.validate import InputError

FOLDER = Path(__file__).parents[1] / "assets" / "sentences"  # transfer_lab/assets/sentences
FILES = {  # domain → its file
    "product": "amazon_cells_labelled.txt",
    "film": "imdb_labelled.txt",
    "restaurant": "yelp_labelled.txt",
}
SHA256 = {  # the sums of the UCI files (the README beside them lists the same)
    "amazon_cells_labelled.txt":
        "49df8059de0eb9c2c13253f9d33a579bc56efc0f620dde2f6be1ec74c59893cb",
    "imdb_labelled.txt": "aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d",
    "yelp_labelled.txt": "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea",
}
TEST_SIZE = 500  # test sentences per domain (250 of each label)
POOL_SIZE = 1000 - TEST_SIZE  # the training pool: every file holds 1,000 (its SHA-256 says so)
SPLIT_SEED = 0  # the one seed of every domain's test/pool split


def read_sentences(path: str | Path) -> list[dict]:
    """Return the rows {"text", "label"} of one of the three files, after checking its SHA-256.

    Lines are split on "\\n" only (U+0085 stays inside its sentence); the text loses the spaces
    at its ends (the imdb lines end in two).
    """
    path = Path(path)
    if path.name not in SHA256:
        raise InputError(f"{path.name!r} is not one of the sentence files; choose one of: "
                         f"{', '.join(SHA256)}")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[path.name]:
        raise InputError(f"{path} was altered (SHA-256 {digest[:12]}…, expected "
                         f"{SHA256[path.name][:12]}…); restore the unchanged UCI file or "
                         "reinstall transfer-lab")
    rows = []
    for i, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line:
            continue
        text, _, label = line.rpartition("\t")
        if label not in ("0", "1") or not text.strip(" "):
            raise InputError(f"{path.name} line {i} is not 'sentence<TAB>0 or 1'")
        rows.append({"text": text.strip(" "), "label": int(label)})
    return rows


def _key(text: str) -> str:
    """Return what makes two sentences the same: their words, ignoring case and spacing."""
    return " ".join(text.casefold().split())


def _alternate(by_label: dict[int, list[dict]]) -> list[dict]:
    """Return the rows of each label interleaved (0, 1, 0, 1, …), each label's order kept."""
    out = []
    for i in range(max(len(rows) for rows in by_label.values())):
        out += [by_label[y][i] for y in sorted(by_label) if i < len(by_label[y])]
    return out


@cache
def split(domain: str) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    """Return (training pool, test) rows of a domain: fixed, disjoint, stratified by label.

    Identical sentences (up to case and spacing) are one group and land on the same side.
    """
    if domain not in FILES:
        raise InputError(f"unknown domain {domain!r}; choose one of: {', '.join(FILES)}")
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in read_sentences(FOLDER / FILES[domain]):
        groups[_key(row["text"])].append(row)
    rng = random.Random(f"sentences/{domain}/{SPLIT_SEED}")
    by_label: dict[int, list[list[dict]]] = defaultdict(list)
    for group in groups.values():
        by_label[group[0]["label"]].append(group)
    pool: dict[int, list[dict]] = {}
    test: dict[int, list[dict]] = {}
    for label, label_groups in sorted(by_label.items()):
        rng.shuffle(label_groups)
        quota = TEST_SIZE // len(by_label)
        pool[label], test[label] = [], []
        for group in label_groups:  # whole groups to the test side until its quota is full
            side = test if len(test[label]) + len(group) <= quota else pool
            side[label] += group
    return tuple(_alternate(pool)), tuple(_alternate(test))


def loader(domain: str):
    """Return a task loader of a domain: seeded draws of the pool, the first n of the test."""

    def load(split_name: str, n: int, seed: int) -> Dataset:
        pool, test = split(domain)
        if split_name == "train":
            rng = random.Random(f"sentences/{domain}/train/{seed}")
            by_label = defaultdict(list)
            for row in pool:
                by_label[row["label"]].append(row)
            for rows in by_label.values():
                rng.shuffle(rows)
            rows = _alternate(by_label)[:n]
        else:
            rows = list(test[:n])
        return Dataset.from_dict({"text": [r["text"] for r in rows],
                                  "label": [r["label"] for r in rows]})

    return load


def corpus(domain: str):
    """Return a corpus's `make(n, seed)`: n seeded sentences of a domain's training pool (never
    its test split), all of them when n is larger."""

    def make(n: int, seed: int) -> list[str]:
        texts = [row["text"] for row in split(domain)[0]]
        random.Random(f"sentences-text/{domain}/{seed}").shuffle(texts)
        return texts[:n]

    return make
