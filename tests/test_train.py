"""The training loader: seeded shuffling, and length-grouped batches that pad less."""

from datasets import Dataset
from transformers import DataCollatorWithPadding

import transfer_lab as tl
from transfer_lab.training.loop import loader


def _data(n: int = 256) -> Dataset:
    """Return n tokenized rows whose lengths vary from 3 to 60 tokens."""
    ids = [[1] * (3 + (7 * i) % 58) for i in range(n)]
    return Dataset.from_dict({"input_ids": ids, "attention_mask": ids, "labels": [0] * n})


def _padding(batches) -> int:
    """Return how many pad positions the batches hold."""
    return sum(int((1 - b["attention_mask"]).sum()) for b in batches)


def test_length_grouped_batches_cover_every_row_once_and_pad_less():
    data, collate = _data(), DataCollatorWithPadding(tl.load_tokenizer("tiny"))
    plain = list(loader(data, 16, collate, shuffle=True, seed=0))
    grouped = list(loader(data, 16, collate, shuffle=True, seed=0, group_by_length=True))
    assert sum(len(b["input_ids"]) for b in grouped) == len(data)
    assert _padding(grouped) < 0.5 * _padding(plain), (_padding(grouped), _padding(plain))
    again = list(loader(data, 16, collate, shuffle=True, seed=0, group_by_length=True))
    assert all((a["input_ids"] == b["input_ids"]).all() for a, b in zip(grouped, again,
                                                                      strict=True))


def test_fit_trains_with_length_grouped_batches():
    tok = tl.load_tokenizer("tiny")
    from transfer_lab.families.classification import classification_collator, encode_classification

    data = encode_classification(tl.get_task("film_sentiment").load("train", 64, 0), tok, 64)
    net = tl.build_model("tiny", num_classes=2)
    config = tl.TrainConfig(epochs=2, batch_size=16, group_by_length=True, progress=False)
    history = tl.fit(net, data, config=config, collate_fn=classification_collator(tok))
    assert len(history.steps) == 8
