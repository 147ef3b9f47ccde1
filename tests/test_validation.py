"""Bad input at the package's boundary: one clear error naming the fix (API and command line)."""

import warnings
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from transformers import default_data_collator

import transfer_lab as tl
from transfer_lab.cli import main
from transfer_lab.families.classification import encode_classification
from transfer_lab.lab import strategies
from transfer_lab.training import checkpoint
from transfer_lab.training.loop import TrainingDiverged


@pytest.fixture(scope="module")
def tokenizer():
    return tl.load_tokenizer("tiny")


def rows(texts, labels) -> Dataset:
    """Return a small text/label data set."""
    return Dataset.from_dict({"text": texts, "label": labels})


@pytest.mark.parametrize("texts, labels, message", [
    ([], [], "the data is empty (0 examples); pass a data set with at least one example"),
    (["a film", "a good film"], [0, 5],
     "the label of row 1 of the data is 5, out of range; labels must be 0..1"),
    (["a film"], [-1], "the label of row 0 of the data is -1, out of range"),
    (["a film", "a good film"], [0.0, 1.5], ("the label of row 0 of the data is 0.0 (float); "
     "labels must be whole numbers 0..1: map your labels to class indices")),
    (["a film"], ["good"], "the label of row 0 of the data is 'good' (str); labels must be whole"),
    (["a film", "a good film"], [1, None], "the label of row 1 of the data is None (NoneType)"),
    (["a film", None], [0, 1], ("the text of row 1 of the data is None (NoneType), not a string; "
     "convert it with str() or drop the row")),
    ([3, 4], [0, 1], "the text of row 0 of the data is 3 (int), not a string"),
    (["a film", "  "], [0, 1],
     "the text of row 1 of the data is empty; give it some words or drop the row"),
])
def test_bad_rows_are_named(texts, labels, message, tokenizer):
    with pytest.raises(ValueError) as err:
        encode_classification(rows(texts, labels), tokenizer, num_classes=2)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_columns_and_label_names_say_the_fix(tokenizer):
    data = Dataset.from_dict({"sentence": ["ok"], "y": [0]})
    with pytest.raises(ValueError, match=r"needs 'text' and 'label'.*data.rename_column"):
        encode_classification(data, tokenizer)
    from transfer_lab import validate

    with pytest.raises(ValueError, match="is the name 'positive'; labels are class indices: "
                                         "use 1 for 'positive'"):
        validate.labels(["positive"], ("negative", "positive"))


@pytest.mark.parametrize("call, message", [
    (lambda: tl.compare(target="nope", progress=False), ("unknown task 'nope'; choose one of: "
     "product_sentiment, film_sentiment")),
    (lambda: tl.compare(model="gpt5", progress=False), "unknown model 'gpt5'; choose one of: tiny"),
    (lambda: tl.compare(init="magic", progress=False),
     "unknown init 'magic'; choose one of: supervised, mlm, pretrained"),
    (lambda: tl.compare(labels=2_000_000, progress=False), ("--labels 2000000 is more than the "
     "1000000 training examples of 'film_sentiment'; use at most 1000000")),
    (lambda: tl.get_task("film_sentiment").load("train", 2_000_000),
     "task 'film_sentiment' has 1000000 training examples; ask for at most 1000000"),
    (lambda: tl.get_task("film_sentiment").load("train", 0), "ask for a whole number, at least 1"),
    (lambda: tl.transfer("/nonexistent/theta", labels=8), ("θ_S folder '/nonexistent/theta' does "
     "not exist; pass a folder written by tl.pretrain_source")),
])
def test_bad_arguments_name_the_choices_or_the_fix(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="unknown strategy 'nope'; choose one of: full, frozen"):
        strategies.get_strategy("nope")


def test_a_theta_S_of_another_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"architectures": ["BertForSequenceClassification"]}')
    (tmp_path / "theta_S.json").write_text('{"model": "tiny"}')  # what pretrain_source writes
    with pytest.raises(ValueError, match="was trained from model 'tiny', not 'minilm'; pass "
                                         "model='tiny'"):
        tl.transfer(tmp_path, labels=8, model="minilm")


@pytest.mark.parametrize("change, message", [
    (dict(lr=0), "TrainConfig lr=0 must be a positive number; e.g. TrainConfig(lr=1e-4)"),
    (dict(batch_size=0), "TrainConfig batch_size=0 must be a positive number"),
    (dict(warmup_ratio=1.5), "TrainConfig warmup_ratio=1.5 must be in [0, 1)"),
    (dict(scheduler="fast"), "unknown scheduler 'fast'; choose one of: linear, cosine"),
])
def test_a_config_that_cannot_train_is_refused(change, message):
    data = Dataset.from_dict({"input_ids": [[1, 2]], "labels": [0]})
    with pytest.raises(ValueError) as err:
        tl.fit(tl.build_model("tiny"), data, config=tl.TrainConfig(**change))
    assert message in str(err.value)


def test_empty_data_to_fit_and_evaluate():
    empty = Dataset.from_dict({"input_ids": [], "labels": []})
    with pytest.raises(ValueError, match="train_data is empty"):
        tl.fit(tl.build_model("tiny"), empty)
    with pytest.raises(ValueError, match="the evaluation data is empty"):
        tl.evaluate(tl.build_model("tiny"), empty)


def test_hub_task_offline_names_the_quick_profile():
    with pytest.raises(tl.InputError, match="needs the Hugging Face hub, which is offline here; "
                                           "use the quick profile's tasks"):
        tl.compare(target="sst2", progress=False)


@pytest.mark.parametrize("bad", ["training", "test"])
def test_labels_of_given_data_beyond_the_task_are_refused(bad, tokenizer):
    good, wrong = rows(["a film"] * 4, [0, 1, 0, 1]), rows(["a film"] * 4, [0, 1, 0, 3])
    train = encode_classification(wrong if bad == "training" else good, tokenizer)
    test = wrong if bad == "test" else good  # the raw test rows, as target_data returns them
    with pytest.raises(ValueError, match=f"row 3 of the {bad} data is 3, out of range; labels "
                                         r"must be 0..1 \(negative, positive\)"):
        tl.transfer(None, labels=4, data=(train, test), config=tl.TrainConfig(epochs=1,
                                                                              progress=False))


def test_a_theta_S_head_of_another_size_gets_a_new_head_said_once(tmp_path):
    theta_S = tl.pretrain_source("topic", "tiny", examples=32, out_dir=tmp_path / "topic",
                                 config=tl.TrainConfig(max_steps=2, batch_size=16,
                                                       progress=False))
    config = tl.TrainConfig(epochs=1, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = tl.compare(theta_S=theta_S, labels=8, seeds=2, config=config, progress=False)
    said = [str(w.message) for w in caught if "head" in str(w.message)]
    assert said == [(f"θ_S in {theta_S} has a 4-label head and 'film_sentiment' has 2 labels: "
                    "the target gets a new 2-label head (its body still comes from θ_S)")], said
    assert len(result.arms["transfer"]) == 2


class Exploding(torch.nn.Module):
    """A linear classifier whose loss becomes NaN at a given call (a run that diverges)."""

    def __init__(self, at: int):
        super().__init__()
        self.linear, self.at, self.calls = torch.nn.Linear(2, 2), at, 0

    def forward(self, x, labels):
        self.calls += 1
        logits = self.linear(x)
        loss = torch.nn.functional.cross_entropy(logits, labels)
        return SimpleNamespace(loss=loss * float("nan") if self.calls == self.at else loss,
                               logits=logits)


def test_a_nan_loss_stops_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    data = Dataset.from_dict({"x": [[0.0, 1.0], [1.0, 0.0]] * 8, "labels": [0, 1] * 8})
    config = tl.TrainConfig(lr=1e-3, epochs=3, batch_size=4, progress=False)
    with pytest.raises(TrainingDiverged) as err:
        tl.fit(Exploding(at=6), data, config=config, collate_fn=default_data_collator,
               checkpoint_dir=tmp_path, checkpoint_every=2)
    assert str(err.value) == (
        "training diverged: the loss became nan at step 6 (epoch 2); lower the learning rate "
        f"(lr=0.001; try 0.0001); the last good checkpoint is kept in {tmp_path / 'step-00000004'}")
    assert isinstance(err.value, ValueError)
    good = checkpoint.latest_good(tmp_path)
    assert good.step == 4 and all(s["loss"] == s["loss"] for s in good.history["steps"])


@pytest.mark.parametrize("args, needle", [
    (["run", "--epochs", "0"], "argument --epochs: must be at least 1 (got 0)"),
    (["run", "--checkpoint-every", "x"], "'x' is not a whole number"),
    (["run", "--labels", "2000000"], "use at most 1000000"),
    (["run", "--target", "sst2"], "quick profile"),
])
def test_cli_errors_are_one_line_with_exit_code_2(args, needle, capsys, tmp_path):
    try:
        code = main([*args, "--out", str(tmp_path / "out")])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()  # nothing written for a bad command
