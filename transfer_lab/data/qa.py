"""The QA world: generated facts about people and places, SQuAD from the hub."""

from __future__ import annotations

import random

from datasets import Dataset

from transfer_lab.data import world
from transfer_lab.validate import InputError

COLUMNS = ["id", "context", "question", "answers"]

# relation: (fact template, question template, who it is about, what the answer is)
RELATIONS = {
    "lives": ("{s} lives in {o} .", "where does {s} live ?", "people", "place"),
    "born": ("{s} was born in {o} .", "where was {s} born ?", "people", "place"),
    "works": ("{s} works for {o} .", "who does {s} work for ?", "people", "org"),
    "bought": ("{s} bought a {o} .", "what did {s} buy ?", "people", "product"),
    "based": ("{s} is based in {o} .", "where is {s} based ?", "orgs", "place"),
    "founded": ("{s} was founded by {o} .", "who founded {s} ?", "orgs", "person"),
    "makes": ("{s} makes the {o} .", "what does {s} make ?", "orgs", "product"),
    "sponsors": ("{s} sponsors {o} .", "what does {s} sponsor ?", "orgs", "film"),
}


def _value(kind: str, rng: random.Random) -> str:
    """Return a random object of a kind: a place, organisation, person, product or film."""
    if kind == "product":
        return f"{rng.choice(world.BRANDS)} {rng.choice(world.DOMAINS['products']['items'])}"
    pools = {"place": world.PLACES, "org": world.ORGS, "person": world.PEOPLE,
             "film": world.FILMS}
    return rng.choice(pools[kind])


BY_SUBJECT = {who: [r for r, spec in RELATIONS.items() if spec[2] == who]
              for who in ("people", "orgs")}


def example(about: str, rng: random.Random, facts: tuple[int, int] = (3, 6)) -> dict:
    """Return one SQuAD-style row: a context of facts and a question about `about` (people/orgs).

    The context mixes one fact each about several people and organisations (at least one of
    each), so the answer is found by matching the question's subject in the context.
    """
    n = rng.randint(*facts)
    n_orgs = rng.randint(1, n - 1)
    chosen = [(rng.choice(BY_SUBJECT["people"]), s) for s in rng.sample(world.PEOPLE, n - n_orgs)]
    chosen += [(rng.choice(BY_SUBJECT["orgs"]), s) for s in rng.sample(world.ORGS, n_orgs)]
    rng.shuffle(chosen)
    relation, subject = rng.choice([c for c in chosen if RELATIONS[c[0]][2] == about])
    parts, answer, start = [], "", 0
    for rel, s in chosen:
        obj = _value(RELATIONS[rel][3], rng)
        fact = RELATIONS[rel][0].format(s=s, o=obj)
        if (rel, s) == (relation, subject):
            answer = obj
            start = sum(len(p) + 1 for p in parts) + fact.index(obj, len(s))
        parts.append(fact)
    return {"context": " ".join(parts), "question": RELATIONS[relation][1].format(s=subject),
            "answers": {"text": [answer], "answer_start": [start]}}


def questions(about: str, n: int, seed: int) -> Dataset:
    """Return n seeded SQuAD-style rows whose questions are about `about` ("people" or "orgs")."""
    if about not in ("people", "orgs"):
        raise InputError(f"unknown question subject {about!r}; choose 'people' or 'orgs'")
    rng = random.Random(f"qa/{about}/{seed}")
    rows = [example(about, rng) for _ in range(n)]
    return Dataset.from_dict({"id": [f"{about}-{seed}-{i}" for i in range(n)],
                              **{c: [r[c] for r in rows] for c in COLUMNS[1:]}})


# --- data: the world's questions, SQuAD on the hub (tasks.py registers the tasks) ----------

SQUAD_HUB = "rajpurkar/squad"


def from_squad(ds: Dataset) -> Dataset:
    """Return SQuAD v1.1 rows with the offline task's columns: id, context, question, answers."""
    missing = set(COLUMNS) - set(ds.column_names)
    if missing:
        raise InputError(f"a SQuAD split needs the columns {COLUMNS}; {sorted(missing)} missing")
    return ds.select_columns(COLUMNS)
