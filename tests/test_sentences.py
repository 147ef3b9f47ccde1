"""Real review sentences (UCI Sentiment Labelled Sentences): shipped unchanged, read right, split
once, drawn like the world's tasks, and compared end to end offline."""

import hashlib
import re
import shutil
from collections import Counter

import pytest

import transfer_lab as tl
from transfer_lab.data import sentences
from transfer_lab.data.tasks import CORPORA, TASKS

TASK_NAMES = ["product_sentences", "film_sentences", "restaurant_sentences"]


def test_vendored_files_match_the_readme_sums():
    readme = (sentences.FOLDER / "README.md").read_text()
    listed = {name: digest for digest, name in
              re.findall(r"^([0-9a-f]{64})  (\S+)$", readme, flags=re.M)}
    assert listed == sentences.SHA256
    for name, digest in listed.items():
        assert hashlib.sha256((sentences.FOLDER / name).read_bytes()).hexdigest() == digest
    assert "CC BY 4.0" in readme and "unchanged" in readme and "Kotzias" in readme


@pytest.mark.parametrize("name", sorted(sentences.SHA256))
def test_each_file_gives_1000_rows_half_positive(name):
    rows = sentences.read_sentences(sentences.FOLDER / name)
    assert len(rows) == 1000
    assert Counter(r["label"] for r in rows) == {0: 500, 1: 500}
    assert all(r["text"] and r["text"] == r["text"].strip(" ") for r in rows)


def test_u0085_stays_inside_imdb_sentences():
    path = sentences.FOLDER / "imdb_labelled.txt"
    assert len(path.read_text(encoding="utf-8").splitlines()) > 1000  # the trap
    rows = sentences.read_sentences(path)
    assert any("\x85" in r["text"] for r in rows)
    assert all("\t" not in r["text"] and "\n" not in r["text"] for r in rows)


@pytest.mark.parametrize("domain", list(sentences.FILES))
def test_splits_fixed_disjoint_stratified(domain):
    pool, test = sentences.split(domain)
    sentences.split.cache_clear()
    assert sentences.split(domain) == (pool, test)  # the same split when read again
    assert len(test) >= 400 and len(pool) == sentences.POOL_SIZE
    assert len(pool) + len(test) == 1000
    assert Counter(r["label"] for r in test) == {0: len(test) // 2, 1: len(test) // 2}
    assert Counter(r["label"] for r in pool) == {0: len(pool) // 2, 1: len(pool) // 2}
    key = sentences._key
    assert not {key(r["text"]) for r in pool} & {key(r["text"]) for r in test}


def test_load_train_seeded_stratified_and_test_fixed():
    task = tl.get_task("film_sentences")
    a, b, c = (task.load("train", 64, s) for s in (0, 0, 1))
    assert a["text"] == b["text"] and a["label"] == b["label"]
    assert a["text"] != c["text"]
    assert Counter(a["label"]) == {0: 32, 1: 32}
    assert task.load("train", 128, 0)["text"][:64] == a["text"]  # a larger draw holds it
    test = task.load("test")
    assert len(test) == len(sentences.split("film")[1])
    assert task.load("test", 16)["text"] == test["text"][:16]
    assert Counter(task.load("test", 16)["label"]) == {0: 8, 1: 8}
    pool = {sentences._key(t) for t in task.load("train", task.size, 3)["text"]}
    assert len(task.load("train", task.size, 3)) == task.size
    assert not pool & {sentences._key(t) for t in test["text"]}
    with pytest.raises(tl.InputError, match="at most 500"):
        task.load("train", task.size + 1)


def test_tasks_and_corpora_registered_offline_in_every_profile(monkeypatch):
    monkeypatch.setenv("TRANSFER_LAB_PROFILE", "full")
    for name in TASK_NAMES:
        task = TASKS[name]
        assert task.family == "classification" and task.classes == ("negative", "positive")
        assert not task.hub and "CC BY 4.0" in task.description
        task.require_data()  # the full profile never asks the hub for them
        assert len(task.load("test", 4)) == 4
    for domain in sentences.FILES:
        corpus = CORPORA[f"{domain}_sentences_text"]
        texts = corpus.make(corpus.examples, 0)
        assert len(texts) == corpus.examples == sentences.POOL_SIZE
        assert Counter(texts) == Counter(r["text"] for r in sentences.split(domain)[0])
        assert corpus.make(10, 1) == corpus.make(10, 1) != corpus.make(10, 2)


def test_an_altered_file_is_refused(tmp_path):
    copy = tmp_path / "yelp_labelled.txt"
    shutil.copyfile(sentences.FOLDER / "yelp_labelled.txt", copy)
    copy.write_bytes(copy.read_bytes().replace(b"\t1\n", b"\t0\n", 1))
    with pytest.raises(tl.InputError, match="altered.*restore the unchanged"):
        sentences.read_sentences(copy)
    with pytest.raises(tl.InputError, match="not one of the sentence files"):
        sentences.read_sentences(tmp_path / "other.txt")


@pytest.mark.slow
def test_compare_product_to_film_sentences_offline():
    config = tl.pipeline.target_config("minilm", "film_sentences").replace(
        max_steps=2, min_steps=0, epochs=1)
    result = tl.compare("film_sentences", source="product_sentences", model="minilm",
                        init="pretrained", arms=["bow", "pretrained"], labels=8, seeds=1,
                        test_examples=16, config=config, progress=False)
    assert result.source == "product_sentences" and result.target == "film_sentences"
    assert result.test_examples == 16
    for arm in ("bow", "pretrained"):
        (run,) = result.arms[arm]
        assert 0.0 <= run["accuracy"] <= 1.0
