"""The full profile's hub loaders, tested offline on local Datasets with the hub's schema."""

import pytest
from datasets import ClassLabel, Dataset, Features, Value

import transfer_lab as tl
from transfer_lab.data import translation


def hub_rows(monkeypatch, hub: Dataset) -> list[tuple]:
    """Serve `hub` for every `datasets.load_dataset` call; return the calls' arguments."""
    import datasets

    calls = []

    def load_dataset(path, name=None, *, split=None, revision=None):
        calls.append((path, name, split, revision))
        return hub

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_sst2_loader_reads_glue_and_maps_its_schema(monkeypatch):
    features = Features({"sentence": Value("string"),
                         "label": ClassLabel(names=["negative", "positive"]),
                         "idx": Value("int32")})
    hub = Dataset.from_dict({"sentence": ["a gripping film ", "dull and slow "], "label": [1, 0],
                             "idx": [0, 1]}, features=features)
    calls = hub_rows(monkeypatch, hub)
    task = tl.get_task("sst2")
    ds = task.loader("test", 2, 0)  # the loader itself: Task.load refuses offline
    assert calls == [("nyu-mll/glue", "sst2", "validation", None)]
    assert ds.column_names == ["text", "label"]
    assert sorted(zip(ds["text"], ds["label"], strict=True)) == [("a gripping film ", 1),
                                                                  ("dull and slow ", 0)]
    assert len(task.loader("train", 1, 0)) == 1 and calls[-1][2] == "train"


def test_imdb_loader_reads_stanford_imdb_and_maps_its_schema(monkeypatch):
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    hub = Dataset.from_dict({"text": ["<br />Loved it.", "Awful."], "label": [1, 0]},
                            features=features)
    calls = hub_rows(monkeypatch, hub)
    ds = tl.get_task("imdb").loader("test", 2, 0)
    assert calls == [("stanfordnlp/imdb", None, "test", None)]
    assert ds.column_names == ["text", "label"]
    assert dict(zip(ds["text"], ds["label"], strict=True)) == {"<br />Loved it.": 1, "Awful.": 0}


@pytest.mark.parametrize(("name", "pair", "expected"), [
    ("opus_books_en_fr", {"en": "The house.", "fr": "La maison."}, ("The house.", "La maison.")),
    ("wmt16_de_en", {"de": "Das Haus.", "en": "The house."}, ("Das Haus.", "The house.")),
])
def test_standardize_pairs_hub_schema(name, pair, expected):
    spec = translation.HUB_PAIRS[name]
    hub = Dataset.from_dict({"id": ["0", "1"], "translation": [pair, pair]})
    ds = translation.standardize_pairs(hub, spec)
    assert ds.column_names == ["source", "target"]
    assert (ds[0]["source"], ds[0]["target"]) == expected


def test_hub_specs_name_the_real_data_sets():
    pair = translation.HUB_PAIRS["opus_books_en_fr"]
    assert (pair.path, pair.config) == \
        ("Helsinki-NLP/opus_books", "en-fr")
    pair = translation.HUB_PAIRS["wmt16_de_en"]
    assert (pair.path, pair.config) == \
        ("wmt/wmt16", "de-en")
    for name, family in [("sst2", "classification"), ("imdb", "classification"),
                         ("yelp_polarity", "classification"),
                         ("conll2003", "token_classification"), ("squad", "extractive_qa"),
                         ("opus_books_en_fr", "seq2seq"), ("wmt16_de_en", "seq2seq")]:
        assert tl.get_task(name).hub and tl.get_task(name).family == family, name


def test_translation_loader_maps_pairs_through_the_registry(monkeypatch):
    pair = {"en": "The house.", "fr": "La maison."}
    hub = Dataset.from_dict({"id": ["0"], "translation": [pair]})
    calls = hub_rows(monkeypatch, hub)
    ds = tl.get_task("opus_books_en_fr").loader("test", 5, 0)
    assert calls == [("Helsinki-NLP/opus_books", "en-fr", "train[95%:]", None)]
    assert ds.column_names == ["source", "target"] and ds[0] == {"source": "The house.",
                                                                  "target": "La maison."}


@pytest.mark.parametrize("name", ["sst2", "imdb", "opus_books_en_fr", "wmt16_de_en"])
def test_hub_task_offline_gives_one_clear_error(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert tl.offline()
    task = tl.get_task(name)
    assert task.hub
    with pytest.raises(tl.InputError, match="quick profile") as err:
        task.load("train", 10)
    assert name in str(err.value) and "offline" in str(err.value)
