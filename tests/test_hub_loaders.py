"""The full profile's hub loaders, tested offline on local Datasets with the hub's schema."""

import pytest
from datasets import ClassLabel, Dataset, Features, Value

import transfer_lab as tl
from transfer_lab import tasks
from transfer_lab import translation as T


def test_standardize_sst2_schema():
    features = Features({"sentence": Value("string"),
                         "label": ClassLabel(names=["negative", "positive"]),
                         "idx": Value("int32")})
    hub = Dataset.from_dict({"sentence": ["a gripping film ", "dull and slow "], "label": [1, 0],
                             "idx": [0, 1]}, features=features)
    ds = tasks.standardize(hub, tasks.HUB["sst2"])
    assert ds.column_names == ["text", "label"]
    assert ds[0] == {"text": "a gripping film ", "label": 1} and ds[1]["label"] == 0


def test_standardize_imdb_schema():
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    hub = Dataset.from_dict({"text": ["<br />Loved it.", "Awful."], "label": [1, 0]},
                            features=features)
    ds = tasks.standardize(hub, tasks.HUB["imdb"])
    assert ds.column_names == ["text", "label"] and ds["label"] == [1, 0]


@pytest.mark.parametrize(("name", "pair", "expected"), [
    ("opus_books_en_fr", {"en": "The house.", "fr": "La maison."}, ("The house.", "La maison.")),
    ("wmt16_de_en", {"de": "Das Haus.", "en": "The house."}, ("Das Haus.", "The house.")),
])
def test_standardize_pairs_hub_schema(name, pair, expected):
    spec = T.HUB_PAIRS[name]
    hub = Dataset.from_dict({"id": ["0", "1"], "translation": [pair, pair]})
    ds = T.standardize_pairs(hub, spec)
    assert ds.column_names == ["source", "target"]
    assert (ds[0]["source"], ds[0]["target"]) == expected


def test_hub_specs_name_the_real_data_sets():
    assert (tasks.HUB["sst2"].path, tasks.HUB["sst2"].config) == ("nyu-mll/glue", "sst2")
    assert tasks.HUB["imdb"].path == "stanfordnlp/imdb"
    assert (T.HUB_PAIRS["opus_books_en_fr"].path, T.HUB_PAIRS["opus_books_en_fr"].config) == \
        ("Helsinki-NLP/opus_books", "en-fr")
    assert (T.HUB_PAIRS["wmt16_de_en"].path, T.HUB_PAIRS["wmt16_de_en"].config) == \
        ("wmt/wmt16", "de-en")


@pytest.mark.parametrize("name", ["sst2", "imdb", "opus_books_en_fr", "wmt16_de_en"])
def test_hub_task_offline_gives_one_clear_error(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert tasks.offline()
    task = tl.get_task(name)
    assert task.hub
    with pytest.raises(RuntimeError, match="quick profile") as err:
        task.load("train", 10)
    assert name in str(err.value) and "offline" in str(err.value)
