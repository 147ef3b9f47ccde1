"""The synthetic text world: a seeded lexicon and grammar that make offline tasks (chapters 1-8).

Transfer only shows when the source carries signal for the target, and on real data it is
partial, so the world is designed that way (see DESIGN.md §4). Product and film reviews share
a generic core of polarity adjectives (`POSITIVE`, `NEGATIVE`: good, dreadful, …), negation and
contrast ("X, but Y": the second clause decides); each domain also has polarity words of its
own (`PRODUCT_*`: sturdy, flimsy, …; `FILM_*`: gripping, wooden, …), which a clause uses with
probability `OWN_SHARE`, and its own nouns. Restaurants use only their own `FOOD_*` adjectives
(a far source). So a model trained on product reviews (θ_S) reads the film reviews written with
the core and is near chance on those written with film words: it needs film labels, or
unlabeled film text (`film_corpus`, domain-adaptive pretraining), to learn them. A pretrained
English encoder (MiniLM) knows all of these words, as real English words.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

POSITIVE = (
    "good great excellent wonderful superb brilliant lovely delightful fantastic solid "
    "pleasant charming impressive outstanding remarkable enjoyable nice decent amazing terrific"
).split()
NEGATIVE = (
    "bad poor terrible awful dreadful boring disappointing mediocre weak dull "
    "horrible clumsy annoying tedious sloppy bland lousy messy flawed painful"
).split()
# Adjectives of the restaurant domain: disjoint from the reviews' set (a "far" source).
FOOD_POSITIVE = "delicious tasty fresh crispy juicy flavorful tender fragrant generous warm".split()
FOOD_NEGATIVE = "stale greasy soggy salty cold burnt chewy rancid tiny overcooked".split()
# Each review domain's own polarity words (real English, so a pretrained encoder knows them).
PRODUCT_POSITIVE = (
    "sturdy durable reliable responsive lightweight sleek efficient intuitive compact robust "
    "accurate fast comfortable convenient handy"
).split()
PRODUCT_NEGATIVE = (
    "flimsy broken faulty defective fragile noisy unreliable sluggish leaky overpriced slow "
    "loose scratched useless glitchy"
).split()
FILM_POSITIVE = (
    "gripping riveting moving touching hilarious suspenseful gorgeous haunting powerful witty "
    "stunning thrilling heartfelt captivating memorable"
).split()
FILM_NEGATIVE = (
    "predictable wooden cliched forgettable overlong confusing shallow pretentious unfunny "
    "plodding bloated lifeless hammy derivative melodramatic"
).split()
OWN_ADJECTIVES = {"products": (PRODUCT_NEGATIVE, PRODUCT_POSITIVE),
                  "films": (FILM_NEGATIVE, FILM_POSITIVE)}  # (negative, positive)
# The probability that a review clause of products or films takes its adjective from the
# domain's own words rather than from the shared core, tuned so that transfer from products to
# films is partial (DESIGN.md §4, benchmarks/world.py): θ_S of product reviews reaches ≈ 0.8 on
# film reviews from 16 labels, and film labels (or film text) are needed for the rest.
OWN_SHARE = 0.4
INTENSIFIERS = "very really truly quite extremely so rather fairly".split()
NEGATIONS = ("not", "never", "hardly", "not at all")

DOMAINS: dict[str, dict[str, list[str]]] = {
    "products": {
        "items": "phone blender laptop charger kettle headphones backpack camera toaster "
        "keyboard speaker watch lamp printer vacuum".split(),
        "aspects": "battery screen price design delivery packaging sound build manual "
        "charging cable software warranty finish".split(),
        "openings": [
            "i bought this {item} last {when} .",
            "got the {brand} {item} for my {relative} .",
            "ordered a {item} from {brand} .",
            "this is my second {item} from {brand} .",
        ],
    },
    "films": {
        "items": "film movie sequel documentary thriller comedy drama western musical "
        "cartoon".split(),
        "aspects": "plot acting soundtrack script ending dialogue cast pacing cinematography "
        "villain score humour editing costumes".split(),
        "openings": [
            "we watched {film} at the cinema in {place} .",
            "i saw {film} last {when} .",
            "{person} directed this {item} .",
            "my {relative} picked {film} for movie night .",
        ],
    },
    "restaurants": {
        "items": "restaurant bistro cafe diner pizzeria bakery bar canteen".split(),
        "aspects": "food service menu dessert soup pasta bread coffee portions salad steak "
        "wine noodles".split(),
        "openings": [
            "we had dinner at a {item} in {place} .",
            "my {relative} took me to this {item} last {when} .",
            "i had lunch at the {item} near {place} .",
        ],
    },
    "news": {
        "items": "report article bulletin story column".split(),
        "aspects": "election budget council market treaty vote strike merger summit "
        "harvest".split(),
        "openings": [
            "{person} spoke in {place} on {weekday} .",
            "officials from {org} met in {place} .",
            "{org} published a {item} last {when} .",
        ],
    },
}

PEOPLE = (
    "alice bruno chen dana elena farid greta hiro ines jonas kemal lena marta nadia omar "
    "priya quentin rosa sami tomas ugo vera wen yusuf zoe"
).split()
PLACES = (
    "paris lisbon berlin cairo lima oslo dublin kyoto nairobi quito vienna madrid "
    "toronto sydney delhi prague"
).split()
ORGS = "acme globex initech umbrella stark wayne hooli vandelay tyrell cyberdyne".split()
BRANDS = "zentek novaline brightway kumo solara vexo pixa orbio".split()
FILMS = (
    "the long road|midnight harbor|silver lake|the last winter|paper moons|"
    "the quiet river|red horizon|city of glass"
).split("|")
WHEN = "week month year summer winter spring autumn".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
RELATIVES = "sister brother mother father friend cousin daughter son".split()
VERDICTS = {
    1: ["five stars", "highly recommended", "buy it", "worth every penny", "a must see"],
    0: ["one star", "avoid it", "do not buy", "a waste of money", "never again"],
}


@dataclass(frozen=True)
class Example:
    """One labeled text of the world."""

    text: str
    label: int


def _fill(template: str, rng: random.Random, domain: str) -> str:
    """Return a template with its slots filled from the lexicon."""
    slots = {
        "item": rng.choice(DOMAINS[domain]["items"]),
        "brand": rng.choice(BRANDS),
        "when": rng.choice(WHEN),
        "relative": rng.choice(RELATIVES),
        "film": rng.choice(FILMS),
        "place": rng.choice(PLACES),
        "person": rng.choice(PEOPLE),
        "org": rng.choice(ORGS),
        "weekday": rng.choice(WEEKDAYS),
    }
    return template.format(**slots)


def adjectives(domain: str) -> tuple[list[str], list[str]]:
    """Return the (negative, positive) core adjectives of a domain: the shared core, or the
    restaurants' food words (their only ones)."""
    if domain == "restaurants":
        return FOOD_NEGATIVE, FOOD_POSITIVE
    return NEGATIVE, POSITIVE


def own_adjectives(domain: str) -> tuple[list[str], list[str]]:
    """Return the (negative, positive) polarity words only a domain's reviews use."""
    if domain == "restaurants":
        return FOOD_NEGATIVE, FOOD_POSITIVE
    return OWN_ADJECTIVES.get(domain, ([], []))


def polarity_words() -> tuple[list[str], list[str]]:
    """Return every (negative, positive) adjective of the world: core, domains', food."""
    negative = NEGATIVE + PRODUCT_NEGATIVE + FILM_NEGATIVE + FOOD_NEGATIVE
    return negative, POSITIVE + PRODUCT_POSITIVE + FILM_POSITIVE + FOOD_POSITIVE


def clause(domain: str, polarity: int, rng: random.Random, negation: float,
           own: float = 0.0) -> str:
    """Return one clause about an aspect whose meaning has the given polarity (0 or 1); its
    adjective is one of the domain's own words with probability `own`, else of its core."""
    aspect = rng.choice(DOMAINS[domain]["aspects"])
    negated = rng.random() < negation
    word_polarity = 1 - polarity if negated else polarity
    words = adjectives(domain)
    if own > 0 and domain in OWN_ADJECTIVES and rng.random() < own:
        words = OWN_ADJECTIVES[domain]
    adj = rng.choice(words[word_polarity])
    verb = rng.choice(("is", "was"))
    if negated:
        neg = rng.choice(NEGATIONS)
        if neg == "not at all":
            return f"the {aspect} {verb} not {adj} at all"
        return f"the {aspect} {verb} {neg} {adj}"
    if rng.random() < 0.3:
        return f"the {aspect} {verb} {rng.choice(INTENSIFIERS)} {adj}"
    if rng.random() < 0.3:
        return f"a {adj} {aspect}"
    return f"the {aspect} {verb} {adj}"


def review(
    domain: str,
    polarity: int,
    rng: random.Random,
    *,
    negation: float = 0.35,
    contrast: float = 0.35,
    opening: float = 0.5,
    own: float | None = None,
) -> tuple[str, bool]:
    """Return (review text, has_contrast) whose sentiment is `polarity`; each clause uses the
    domain's own words with probability `own` (default `OWN_SHARE`)."""
    own = OWN_SHARE if own is None else own
    parts = []
    if rng.random() < opening:
        parts.append(_fill(rng.choice(DOMAINS[domain]["openings"]), rng, domain))
    has_contrast = rng.random() < contrast
    if has_contrast:
        first = clause(domain, 1 - polarity, rng, negation, own)
        parts.append(f"{first} , but {clause(domain, polarity, rng, negation, own)} .")
    elif rng.random() < 0.4:
        parts.append(f"{clause(domain, polarity, rng, negation, own)} and "
                     f"{clause(domain, polarity, rng, negation, own)} .")
    else:
        parts.append(f"{clause(domain, polarity, rng, negation, own)} .")
    return " ".join(parts), has_contrast


def sentiment(
    domain: str,
    n: int,
    seed: int,
    *,
    negation: float = 0.35,
    contrast: float = 0.35,
    noise: float = 0.0,
) -> list[Example]:
    """Return n seeded reviews of a domain labeled 1 (positive) or 0 (negative).

    `noise` is the fraction of labels flipped at random (label noise, chapter 7).
    """
    rng = random.Random(f"sentiment/{domain}/{seed}")
    out = []
    for i in range(n):
        polarity = i % 2  # balanced: any prefix of even length has half of each
        text, _ = review(domain, polarity, rng, negation=negation, contrast=contrast)
        label = 1 - polarity if rng.random() < noise else polarity
        out.append(Example(text, label))
    return out


def topic(n: int, seed: int) -> list[Example]:
    """Return n seeded texts labeled by their domain (an unrelated source task)."""
    names = list(DOMAINS)
    rng = random.Random(f"topic/{seed}")
    out = []
    for _ in range(n):
        label = rng.randrange(len(names))
        domain = names[label]
        if domain == "news":
            text = _fill(rng.choice(DOMAINS["news"]["openings"]), rng, "news")
            aspect, adj = rng.choice(DOMAINS["news"]["aspects"]), rng.choice(POSITIVE + NEGATIVE)
            text += f" the {aspect} was {adj} ."
        else:
            text, _ = review(domain, rng.randrange(2), rng)
        out.append(Example(text, label))
    return out


def contrast(n: int, seed: int, domain: str = "products") -> list[Example]:
    """Return n seeded reviews labeled 1 if they contain a contrast (an unrelated source task)."""
    rng = random.Random(f"contrast/{domain}/{seed}")
    out = []
    for _ in range(n):
        text, has_contrast = review(domain, rng.randrange(2), rng, contrast=0.5)
        out.append(Example(text, int(has_contrast)))
    return out


def mlm_corpus(n: int, seed: int) -> list[str]:
    """Return n unlabeled texts where a word's polarity is visible from its context.

    Each text is a verdict cue ("five stars", "avoid it") with a list of same-polarity
    adjectives: a masked adjective can be predicted only by knowing which adjectives go
    together. Ordinary reviews are mixed in so the model also sees the grammar.
    """
    rng = random.Random(f"mlm/{seed}")
    out = []
    for _ in range(n):
        if rng.random() < 0.25:
            domain = rng.choice(("products", "films"))
            out.append(review(domain, rng.randrange(2), rng)[0])
            continue
        polarity = rng.randrange(2)
        words = rng.sample((NEGATIVE, POSITIVE)[polarity], rng.randint(3, 5))
        cue, end = rng.choice(VERDICTS[polarity]), rng.choice(VERDICTS[polarity])
        out.append(f"{cue} . {' , '.join(words[:-1])} and {words[-1]} . {end} .")
    return out


def film_corpus(n: int, seed: int) -> list[str]:
    """Return n unlabeled texts of the film domain (for domain-adaptive pretraining).

    Like `mlm_corpus`, but the adjective lists mix the film domain's own words with the shared
    core ("a must see . gripping , superb and moving ."), so a masked-LM can learn the film
    words' polarity from the core words beside them; a third of the texts are film reviews.
    No text carries a label.
    """
    rng = random.Random(f"film-corpus/{seed}")
    out = []
    for _ in range(n):
        if rng.random() < 1 / 3:
            out.append(review("films", rng.randrange(2), rng)[0])
            continue
        polarity = rng.randrange(2)
        k = rng.randint(3, 5)
        own = rng.randint(1, k - 1)  # at least one film word and one core word
        words = (rng.sample(OWN_ADJECTIVES["films"][polarity], own)
                 + rng.sample((NEGATIVE, POSITIVE)[polarity], k - own))
        rng.shuffle(words)
        cue, end = rng.choice(VERDICTS[polarity]), rng.choice(VERDICTS[polarity])
        out.append(f"{cue} . {' , '.join(words[:-1])} and {words[-1]} . {end} .")
    return out



def vocabulary() -> list[str]:
    """Return every word the world can write (for the tokenizer and for readers)."""
    negative, positive = polarity_words()
    words = set(negative + positive + INTENSIFIERS)
    words.update("not never hardly at all and but the a is was".split())
    for d in DOMAINS.values():
        words.update(d["items"] + d["aspects"])
        for t in d["openings"]:
            words.update(w for w in t.split() if not w.startswith("{"))
    for group in (PEOPLE, PLACES, ORGS, BRANDS, WHEN, WEEKDAYS, RELATIVES):
        words.update(group)
    for text in FILMS + [v for vs in VERDICTS.values() for v in vs]:
        words.update(text.split())
    return sorted(words)


QUESTION_WORDS = "who what where when which did does is lives works born in for of".split()
_SYLLABLES = "ka lo mi ru te zu pa ne si vo ga da fe hi jo bu ke ma ni po ra so ti wa".split()


def toy_lexicon() -> dict[str, str]:
    """Return the toy language's word for every English word of the world (translation)."""
    rng = random.Random("toy-language")
    lexicon: dict[str, str] = {}
    used: set[str] = set()
    for word in vocabulary() + QUESTION_WORDS:
        if word in lexicon:
            continue
        while True:
            toy = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
            if toy not in used:
                break
        lexicon[word] = toy
        used.add(toy)
    return lexicon


def fingerprint() -> str:
    """Return a short hash of samples of every generator (a cached θ_S is keyed by it)."""
    import hashlib

    sample = [e.text for d in DOMAINS for e in sentiment(d, 20, 0)]
    sample += [e.text for e in topic(20, 0) + contrast(20, 0)] + mlm_corpus(20, 0)
    sample += film_corpus(20, 0) + [OWN_SHARE]
    sample += sorted(toy_lexicon().items())[:50]
    return hashlib.sha256(repr(sample).encode()).hexdigest()[:12]
