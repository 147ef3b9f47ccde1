"""The synthetic world is seeded, balanced, and shares a core of adjectives between source and
target beside each domain's own polarity words (in the tuned proportion)."""

import pytest

from transfer_lab.data import world
from transfer_lab.data.tasks import TASKS, get_corpus, get_task


def test_same_seed_same_data():
    assert world.sentiment("films", 50, 3) == world.sentiment("films", 50, 3)
    assert world.mlm_corpus(20, 1) == world.mlm_corpus(20, 1)
    assert world.topic(20, 1) == world.topic(20, 1)
    assert world.film_corpus(20, 1) == world.film_corpus(20, 1)
    assert world.film_corpus(20, 1) != world.film_corpus(20, 2)


def test_other_seed_other_data():
    assert world.sentiment("films", 50, 3) != world.sentiment("films", 50, 4)


def test_train_and_test_splits_differ_and_repeat():
    task = get_task("film_sentiment")
    train, test = task.load("train", 100, 0), task.load("test", 100)
    assert train["text"] != test["text"]
    assert task.load("train", 100, 0)["text"] == train["text"]


def test_labels_balanced_and_in_range():
    for name in ("product_sentiment", "film_sentiment", "topic", "contrast"):
        task = get_task(name)
        labels = task.load("train", 200, 0)["label"]
        assert set(labels) <= set(range(task.num_classes))
        assert len(set(labels)) == task.num_classes
    assert sum(get_task("film_sentiment").load("train", 64, 5)["label"]) == 32


def test_domains_share_adjectives_but_not_domain_words():
    films = " ".join(e.text for e in world.sentiment("films", 300, 0))
    products = " ".join(e.text for e in world.sentiment("products", 300, 0))
    words_f, words_p = set(films.split()), set(products.split())
    shared = [a for a in world.POSITIVE + world.NEGATIVE if a in words_f and a in words_p]
    assert len(shared) > 30
    assert "plot" in films.split() and "plot" not in products.split()
    assert "battery" in products.split() and "battery" not in films.split()


def own_words(domain):
    """Return the set of a domain's own polarity words."""
    negative, positive = world.OWN_ADJECTIVES[domain]
    return set(negative + positive)


def test_each_domain_has_own_polarity_words_beside_the_core():
    core = set(world.POSITIVE + world.NEGATIVE)
    films, products = own_words("films"), own_words("products")
    food = set(world.FOOD_POSITIVE + world.FOOD_NEGATIVE)
    for a, b in [(core, films), (core, products), (films, products), (core | films | products,
                                                                      food)]:
        assert not a & b
    for negative, positive in world.OWN_ADJECTIVES.values():
        assert not set(negative) & set(positive) and len(negative) == len(positive) >= 10
    film_text = {w for e in world.sentiment("films", 300, 0) for w in e.text.split()}
    product_text = {w for e in world.sentiment("products", 300, 0) for w in e.text.split()}
    assert films <= film_text and not products & film_text
    assert products <= product_text and not films & product_text


@pytest.mark.parametrize("domain", ["films", "products"])
def test_own_words_take_the_tuned_share_of_adjectives(domain):
    own, core = own_words(domain), set(world.POSITIVE + world.NEGATIVE)
    words = [w for e in world.sentiment(domain, 2000, 0) for w in e.text.split()]
    n_own, n_core = sum(w in own for w in words), sum(w in core for w in words)
    assert abs(n_own / (n_own + n_core) - world.OWN_SHARE) < 0.03
    assert 0 < world.OWN_SHARE < 1


def test_own_words_have_the_clause_polarity():
    negative, positive = world.OWN_ADJECTIVES["films"]
    for e in world.sentiment("films", 500, 2, negation=0, contrast=0):
        words = set(e.text.split())
        assert not words & set((positive, negative)[e.label])  # never the opposite polarity


def test_shared_names_still_cover_every_word():
    negative, positive = world.polarity_words()
    assert set(world.POSITIVE) | set(world.FILM_POSITIVE) <= set(positive)
    assert set(world.NEGATIVE) | set(world.PRODUCT_NEGATIVE) <= set(negative)
    assert set(negative + positive) <= set(world.vocabulary())
    assert world.adjectives("films") == (world.NEGATIVE, world.POSITIVE)
    assert world.own_adjectives("restaurants") == (world.FOOD_NEGATIVE, world.FOOD_POSITIVE)


def test_film_corpus_puts_film_words_beside_core_words_without_labels():
    texts = world.film_corpus(300, 0)
    films, core = own_words("films"), set(world.POSITIVE + world.NEGATIVE)
    products = own_words("products")
    listed = [t for t in texts if t.startswith(tuple(v for vs in world.VERDICTS.values()
                                                     for v in vs))]
    assert len(listed) > 150
    for text in listed:  # a verdict, then a list with both film words and core words
        words = set(text.split())
        assert words & films and words & core and not words & products
    assert all(isinstance(t, str) and t for t in texts)  # plain texts: no label anywhere
    corpus = get_corpus("film_reviews")
    assert corpus.make(5, 0) == world.film_corpus(5, 0)
    assert corpus.steps is None and corpus.examples is None  # the world corpus's recipe


def test_film_corpus_lists_keep_one_polarity():
    negative, positive = (set(words) for words in world.polarity_words())
    cues = {v: polarity for polarity, vs in world.VERDICTS.items() for v in vs}
    for text in world.film_corpus(300, 3):
        cue = next((v for v in cues if text.startswith(v + " .")), None)
        if cue is not None:  # a verdict, then adjectives of its polarity only
            words = set(text.split())
            assert words & (negative, positive)[cues[cue]], text
            assert not words & (positive, negative)[cues[cue]], text


TEXT_COLUMNS = {"classification": ("text",), "token_classification": ("tokens",),
                "extractive_qa": ("context", "question"), "seq2seq": ("source", "target")}


def test_every_offline_task_prints_examples():
    offline = [task for task in TASKS.values() if not task.hub]
    assert {task.family for task in offline} == set(TEXT_COLUMNS)  # every family has one
    for task in offline:
        ds = task.load("train", 3, 0)
        for column in TEXT_COLUMNS[task.family]:
            for value in ds[column]:  # a text, or a sentence's words (token classification)
                words = value if isinstance(value, list) else [value]
                assert words and all(isinstance(t, str) and t for t in words), (task.name, column)
