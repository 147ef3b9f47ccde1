"""The toy language: a lexicon and word-order rules; English-toy pairs."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from datasets import Dataset

from transfer_lab.data import world
from transfer_lab.validate import InputError

ARTICLES = frozenset({"a", "an", "the"})
PUNCTUATION = frozenset({".", ","})
BOUNDARIES = frozenset({"and", "but"})
VERBS = frozenset("is was saw watched bought ordered picked got".split())
ADJECTIVES = frozenset(world.POSITIVE + world.NEGATIVE + world.FOOD_POSITIVE + world.FOOD_NEGATIVE)
MODIFIERS = frozenset(world.INTENSIFIERS)
NOUNS = frozenset(w for d in world.DOMAINS.values() for w in d["items"] + d["aspects"])
DOMAIN = "films"  # sentences about films: a vocabulary of about a hundred words
SUBJECTS = ["i", "we", *world.PEOPLE[:6]]
PLACES = world.PLACES[:6]
OBJECT_VERBS = ("saw", "watched", "picked")
MAX_WORDS = 10


# --- the toy language -------------------------------------------------------------------

@lru_cache(maxsize=1)
def lexicon() -> dict[str, str]:
    """Return the toy language's word for each English word (`world.toy_lexicon()`)."""
    return world.toy_lexicon()


def reorder(words: list[str]) -> list[str]:
    """Return a clause's words in toy order: no articles, adjective after noun, verb last."""
    words = [w for w in words if w not in ARTICLES]
    out: list[str] = []
    i = 0
    while i < len(words):
        j = i
        while j < len(words) and words[j] in MODIFIERS:
            j += 1
        if j < len(words) - 1 and words[j] in ADJECTIVES and words[j + 1] in NOUNS:
            out += [words[j + 1], *words[i:j + 1]]  # "very good film" → "film very good"
            i = j + 2
        else:
            out.append(words[i])
            i += 1
    verbs = [w for w in out if w in VERBS][:1]
    return [w for w in out if w not in verbs] + verbs


def to_toy(english: str) -> str:
    """Return the toy-language translation of an English sentence of the world."""
    lex = lexicon()
    clauses: list[list[str]] = [[]]
    for word in english.lower().split():
        if word in PUNCTUATION:
            clauses.append([])
        elif word in BOUNDARIES:
            clauses += [[word], []]
        else:
            clauses[-1].append(word)
    toy = []
    for words in clauses:
        for word in words if words[:1] and words[0] in BOUNDARIES else reorder(words):
            if word not in lex:
                raise InputError(f"{word!r} is not in the toy lexicon; use words of "
                                 "world.vocabulary() (see world.toy_lexicon())")
            toy.append(lex[word])
    return " ".join(toy)


def english_sentence(rng: random.Random, max_words: int = MAX_WORDS) -> str:
    """Return one seeded English sentence about films (at most `max_words` words)."""
    kind = rng.random()
    if kind < 0.4:
        text = world.clause(DOMAIN, rng.randrange(2), rng, negation=0.3)
    elif kind < 0.7:
        first = world.clause(DOMAIN, rng.randrange(2), rng, negation=0.2)
        second = world.clause(DOMAIN, rng.randrange(2), rng, negation=0.2)
        text = f"{first} {rng.choice(('and', 'but'))} {second}"
    else:
        adjective = rng.choice(world.adjectives(DOMAIN)[rng.randrange(2)])
        modifier = f"{rng.choice(world.INTENSIFIERS)} " if rng.random() < 0.3 else ""
        text = (f"{rng.choice(SUBJECTS)} {rng.choice(OBJECT_VERBS)} a {modifier}{adjective} "
                f"{rng.choice(world.DOMAINS[DOMAIN]['items'])} in {rng.choice(PLACES)}")
    if len(text.split()) > max_words:
        return english_sentence(rng, max_words)
    return text + " ."


def toy_pairs(n: int, seed: int) -> Dataset:
    """Return n seeded English → toy-language pairs (columns: source, target)."""
    rng = random.Random(f"translation/{seed}")
    sources = [english_sentence(rng) for _ in range(n)]
    return Dataset.from_dict({"source": sources, "target": [to_toy(s) for s in sources]})


# --- hub pairs (full profile) -----------------------------------------------------------

@dataclass(frozen=True)
class PairSpec:
    """Where a hub translation corpus lives, its language pair and its splits."""

    path: str
    config: str
    source: str  # language code of the source side of each "translation" dict
    target: str
    splits: dict[str, str]  # our split → the hub's split ("train[:95%]" style slices allowed)


HUB_PAIRS = {
    "opus_books_en_fr": PairSpec("Helsinki-NLP/opus_books", "en-fr", "en", "fr",
                                 {"train": "train[:95%]", "test": "train[95%:]"}),
    "wmt16_de_en": PairSpec("wmt/wmt16", "de-en", "de", "en",
                            {"train": "train", "test": "test"}),
}


def standardize_pairs(ds: Dataset, spec: PairSpec) -> Dataset:
    """Return a hub split ({"translation": {lang: text}}) mapped to columns source, target."""
    def split(batch):
        return {"source": [t[spec.source] for t in batch["translation"]],
                "target": [t[spec.target] for t in batch["translation"]]}

    return ds.map(split, batched=True, remove_columns=ds.column_names)


# --- θ_S for translation: a masked-LM on both languages, unaligned (tasks.CORPORA) -----

def monolingual_corpus(n: int, seed: int = 0) -> list[str]:
    """Return n English sentences and n toy-language sentences, shuffled, none a pair.

    The toy sentences translate a different stream of English sentences, so the corpus
    teaches each language's words and word order but never which word translates which.
    """
    rng = random.Random(f"monolingual/{seed}")
    english = [english_sentence(rng) for _ in range(n)]
    toy = [to_toy(english_sentence(rng)) for _ in range(n)]
    texts = english + toy
    rng.shuffle(texts)
    return texts


# --- a closer look: which words come out right, and can the encoder tell words apart? -----

CONTENT = ADJECTIVES | NOUNS | set(world.PEOPLE) | set(world.PLACES)


def word_recall(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """Return the share of the references' content and function words found in the hypotheses.

    Content words translate adjectives, nouns, names and places; function words are the rest
    (verbs, negation, intensifiers, conjunctions, prepositions). Order is ignored.
    """
    content = {lexicon()[w] for w in CONTENT if w in lexicon()}
    found = {"content": [0, 0], "function": [0, 0]}
    for hyp, ref in zip(hypotheses, references, strict=True):
        left = Counter(hyp.split())
        for word in ref.split():
            kind = "content" if word in content else "function"
            found[kind][1] += 1
            if left[word] > 0:
                found[kind][0] += 1
                left[word] -= 1
    return {kind: hit / max(total, 1) for kind, (hit, total) in found.items()}
