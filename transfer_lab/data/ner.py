"""The NER world: sentences with entity tags (BIO), and CoNLL-2003 from the hub."""

from __future__ import annotations

import random

from datasets import Dataset

from transfer_lab.data import world
from transfer_lab.validate import InputError

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PROD", "I-PROD")
CONLL_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")

# {PER} {LOC} {ORG} are names; {PROD} is a brand and an item, {FILM} a film title (both PROD).
TEMPLATES = {
    "news": [
        "{PER} spoke in {LOC} on {weekday} .",
        "officials from {ORG} met {PER} in {LOC} .",
        "{ORG} published a report on the {PROD} last {when} .",
        "{PER} joined {ORG} in {LOC} last {when} .",
        "{ORG} will sell the {PROD} in {LOC} from {weekday} .",
        "{PER} , the head of {ORG} , visited {LOC} .",
        "the council of {LOC} invited {PER} and {PER} .",
        "{ORG} and {ORG} signed a treaty in {LOC} .",
        "{ORG} paid for {FILM} , which was shot in {LOC} .",
        "the {aspect} of the {PROD} worried {ORG} on {weekday} .",
    ],
    "reviews": [
        "i bought the {PROD} in {LOC} last {when} .",
        "my {relative} {PER} loves the {PROD} .",
        "we watched {FILM} with {PER} .",
        "{PER} directed {FILM} for {ORG} .",
        "the {PROD} from {ORG} was {adj} .",
        "{FILM} is set in {LOC} and the acting is {adj} .",
        "the {aspect} of my {PROD} is {adj} , says {PER} .",
        "{ORG} shipped my {PROD} to {LOC} .",
    ],
}
FILLERS = {
    "weekday": world.WEEKDAYS, "when": world.WHEN, "relative": world.RELATIVES,
    "aspect": world.DOMAINS["products"]["aspects"], "adj": world.POSITIVE + world.NEGATIVE,
}


def _entity(slot: str, rng: random.Random) -> tuple[str, list[str]]:
    """Return (entity type, its words) for an entity slot such as "{PER}"."""
    kind = slot[1:-1]
    if kind == "PER":
        return kind, [rng.choice(world.PEOPLE)]
    if kind == "LOC":
        return kind, [rng.choice(world.PLACES)]
    if kind == "ORG":
        return kind, [rng.choice(world.ORGS)]
    if kind == "PROD":
        return kind, [rng.choice(world.BRANDS), rng.choice(world.DOMAINS["products"]["items"])]
    if kind == "FILM":
        return "PROD", rng.choice(world.FILMS).split()
    raise InputError(f"unknown entity slot {slot!r}; use {{PER}}, {{LOC}}, {{ORG}}, {{PROD}} "
                     "or {FILM}")


def sentence(template: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """Return (words, IOB2 tags) of one template filled from the world's lexicon."""
    words, tags = [], []
    for slot in template.split():
        if slot.startswith("{") and slot[1:-1].isupper():
            kind, entity = _entity(slot, rng)
            words += entity
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
        else:
            words.append(rng.choice(FILLERS[slot[1:-1]]) if slot.startswith("{") else slot)
            tags.append("O")
    return words, tags


def sentences(domain: str, n: int, seed: int) -> Dataset:
    """Return n seeded tagged sentences of a domain ("news" or "reviews"): tokens, tags."""
    if domain not in TEMPLATES:
        raise InputError(f"unknown NER domain {domain!r}; choose one of: {', '.join(TEMPLATES)}")
    rng = random.Random(f"ner/{domain}/{seed}")
    rows = [sentence(rng.choice(TEMPLATES[domain]), rng) for _ in range(n)]
    return Dataset.from_dict({"tokens": [w for w, _ in rows], "tags": [t for _, t in rows]})


# --- data: the world's sentences, CoNLL-2003 on the hub (tasks.py registers the tasks) -----

CONLL_HUB = "eriktks/conll2003"  # the canonical "conll2003" moved here
CONLL_REVISION = "refs/convert/parquet"  # its loading script no longer runs in datasets >= 4


def from_conll(ds: Dataset) -> Dataset:
    """Return CoNLL-2003 rows mapped to the offline columns: tokens and tags (IOB2 names)."""
    feature = ds.features["ner_tags"].feature
    names = list(getattr(feature, "names", None) or CONLL_LABELS)
    return ds.map(lambda b: {"tags": [[names[i] for i in row] for row in b["ner_tags"]]},
                  batched=True, remove_columns=[c for c in ds.column_names if c != "tokens"])
