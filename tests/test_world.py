"""The synthetic world is seeded, balanced, and shares adjectives between source and target."""

from transfer_lab import world
from transfer_lab.tasks import TASKS, get_task


def test_same_seed_same_data():
    assert world.sentiment("films", 50, 3) == world.sentiment("films", 50, 3)
    assert world.mlm_corpus(20, 1) == world.mlm_corpus(20, 1)
    assert world.topic(20, 1) == world.topic(20, 1)


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
        assert set(labels) <= set(range(task.num_labels))
        assert len(set(labels)) == task.num_labels
    assert sum(get_task("film_sentiment").load("train", 64, 5)["label"]) == 32


def test_domains_share_adjectives_but_not_domain_words():
    films = " ".join(e.text for e in world.sentiment("films", 300, 0))
    products = " ".join(e.text for e in world.sentiment("products", 300, 0))
    words_f, words_p = set(films.split()), set(products.split())
    shared = [a for a in world.POSITIVE + world.NEGATIVE if a in words_f and a in words_p]
    assert len(shared) > 30
    assert "plot" in films.split() and "plot" not in products.split()
    assert "battery" in products.split() and "battery" not in films.split()


def test_negation_and_contrast_decide_the_label():
    for e in world.sentiment("films", 300, 1):
        if " but " in e.text:  # the clause after "but" decides
            last = e.text.split(" but ")[-1].split()
            negated = any(n in last for n in ("not", "never", "hardly"))
            positive_word = any(w in world.POSITIVE for w in last)
            assert e.label == int(positive_word != negated), e


def test_mlm_corpus_has_polarity_cues():
    texts = world.mlm_corpus(200, 0)
    cues = tuple(v for vs in world.VERDICTS.values() for v in vs)
    cued = [t for t in texts if t.startswith(cues)]
    assert len(cued) > 100


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
