"""Instruction tuning (transfer_lab.lab.instruct): the task mix, the answer-only loss mask, seeded
mixing, zero-shot evaluation of the held-out task and the paired interval, on a tiny random
Llama with SmolLM2's tokenizer."""

import numpy as np
import pytest
import torch
from datasets import Dataset

from transfer_lab.families import prompting
from transfer_lab.lab import instruct
from transfer_lab.models import smollm2
from transfer_lab.results import Run

HEADER = "<|im_start|>assistant\n"
SMALL = instruct.InstructConfig(examples_per_task=4, steps=2, batch_size=4)


@pytest.fixture(scope="module")
def tokenizer():
    """Return the real SmolLM2 tokenizer (from the cache if built, else from the GGUF file)."""
    return smollm2.load_smollm2_tokenizer()


def test_every_answer_word_is_one_token(tokenizer):
    for name, entry in instruct.INSTRUCTIONS.items():
        ids = prompting.label_token_ids(tokenizer, entry.words)
        assert len(ids) == instruct.task(name).num_classes, name


def test_the_mix_holds_every_source_task_and_not_the_held_out(tokenizer):
    data = instruct.mix(tokenizer, SMALL)
    counts = {name: data["task"].count(name) for name in set(data["task"])}
    assert counts == dict.fromkeys(SMALL.sources, 4)
    assert SMALL.held_out not in counts
    held_out = instruct.instruction(SMALL.held_out)
    for name in SMALL.sources:  # the held-out question and its words are never mixed in
        entry = instruct.instruction(name)
        assert entry.question != held_out.question and not set(entry.words) & set(held_out.words)


def test_the_loss_mask_covers_the_answer_token_only(tokenizer):
    data = instruct.mix(tokenizer, SMALL)
    for example in data:
        ids, labels = example["input_ids"], example["labels"]
        words = instruct.instruction(example["task"]).words
        answers = prompting.label_token_ids(tokenizer, words)
        assert len(ids) == len(labels)
        assert labels[:-1] == [-100] * (len(ids) - 1)
        assert labels[-1] == ids[-1] and ids[-1] in answers
        assert tokenizer.decode(ids).endswith(HEADER + words[answers.index(ids[-1])])
        assert instruct.instruction(example["task"]).question in tokenizer.decode(ids)


def test_mixing_is_seeded(tokenizer):
    first, again = instruct.mix(tokenizer, SMALL), instruct.mix(tokenizer, SMALL)
    other = instruct.mix(tokenizer, instruct.InstructConfig(examples_per_task=4, seed=1))
    assert first["input_ids"] == again["input_ids"] and first["task"] == again["task"]
    assert first["input_ids"] != other["input_ids"]


def test_ner_sentences_become_the_type_of_their_first_name():
    sentences = Dataset.from_dict({
        "tokens": [["bruno", "visited", "vienna"], ["the", "pixa", "toaster", "by", "initech"],
                   ["nothing", "here"]],
        "tags": [["B-PER", "O", "B-LOC"], ["O", "B-PROD", "I-PROD", "O", "B-ORG"], ["O", "O"]]})
    rows = instruct.first_name_rows(sentences)
    assert rows["text"] == ["bruno visited vienna", "the pixa toaster by initech"]
    assert rows["label"] == [instruct.ENTITY_TAGS.index("PER"), instruct.ENTITY_TAGS.index("PROD")]


def test_tuning_and_the_held_out_evaluation_on_the_tiny_model(tokenizer):
    run, theta_S = instruct.instruction_tune(smollm2.tiny_llama(tokenizer), tokenizer, SMALL)
    assert isinstance(run, Run) and len(run.history.steps) == SMALL.steps
    assert (run.family, run.strategy, run.arm) == ("causal_lm", "lora", "instruction_tuned")
    assert 0 < run.trained < run.total and run.metrics == {}
    assert not any("lora" in name for name, _ in theta_S.named_parameters())  # merged
    rows = instruct.load(SMALL.held_out, "test", 6)
    result = instruct.accuracy(theta_S, tokenizer, SMALL.held_out, rows)
    assert result["n"] == 6 and 0 <= result["accuracy"] <= 1
    measured = instruct.measure(theta_S, tokenizer, SMALL.held_out, rows,
                                calibration=instruct.load(SMALL.held_out, "train", 4)["text"])
    for key in ("raw", "calibrated"):
        assert measured[key].shape == (6,) and set(measured[key]) <= {0.0, 1.0}
    assert measured["raw"].mean() == result["accuracy"]
    assert ((measured["mass"] > 0) & (measured["mass"] <= 1)).all()


def test_full_fine_tuning_trains_every_weight(tokenizer):
    model = smollm2.tiny_llama(tokenizer)
    before = model.lm_head.weight.detach().clone()
    config = instruct.InstructConfig(examples_per_task=4, steps=1, batch_size=4, lora_r=None)
    run, theta_S = instruct.instruction_tune(model, tokenizer, config)
    assert not theta_S.lm_head.weight.detach().equal(before)
    assert run.strategy == "full" and run.trained == run.total


def test_fine_tune_returns_a_run_with_the_evaluation(tokenizer):
    rows = instruct.load("film_sentiment", "train", 4)
    config = instruct.InstructConfig(examples_per_task=4, steps=1, batch_size=4).train_config()
    evaluate = instruct.family("film_sentiment").evaluation(
        instruct.load("film_sentiment", "test", 4), tokenizer, instruct.task("film_sentiment"),
        config)
    run, net = instruct.train(smollm2.tiny_llama(tokenizer), tokenizer,
                              instruct.encode("film_sentiment", rows, tokenizer), config,
                              evaluate=evaluate)
    assert 0 <= run.to_dict()["score"] == run.metrics["accuracy"] <= 1
    run, net = instruct.fine_tune(smollm2.tiny_llama(tokenizer), tokenizer, "film_sentiment",
                                  rows, config)
    assert run.arm == "transfer" and len(run.history.steps) == 1


def test_paired_difference_and_forgetting():
    before, after = [1, 1, 1, 1, 0, 1], [1, 0, 1, 0, 0, 1]
    mean, low, high = instruct.forgetting(before, after)
    assert mean == pytest.approx(2 / 6) and low <= mean <= high
    assert instruct.paired_difference(before, before) == (0.0, 0.0, 0.0)
    assert instruct.paired_difference(after, before, seed=3) == instruct.paired_difference(
        after, before, seed=3)
    with pytest.raises(ValueError, match="equal-length"):
        instruct.paired_difference([1, 0], [1, 0, 1])
    with pytest.raises(ValueError, match="at least 2"):
        instruct.bootstrap([1.0])
    mean, low, high = instruct.bootstrap([0, 1, 1, 1])
    assert mean == 0.75 and 0 <= low < mean < high <= 1


def test_an_unknown_task_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown instruction task 'poetry'; choose one of: topic"):
        instruct.task("poetry")


def test_the_held_out_task_among_the_sources_is_refused(tokenizer):
    config = instruct.InstructConfig(sources=("topic", "film_sentiment"))
    with pytest.raises(ValueError, match="held-out task 'film_sentiment' is among the sources"):
        instruct.mix(tokenizer, config)


def test_a_multi_token_answer_word_is_refused(tokenizer, monkeypatch):
    entry = instruct.Instruction("topic", "Which domain?", ("products", "films", "restaurants",
                                                              "news"))
    monkeypatch.setitem(instruct.INSTRUCTIONS, "topic", entry)
    with pytest.raises(ValueError, match="'restaurants' is not one token"):
        instruct.encode("topic", instruct.load("topic", "train", 2), tokenizer)


def test_a_word_per_class_is_required(monkeypatch):
    entry = instruct.Instruction("contrast", "Contrast?", ("yes", "no", "maybe"))
    monkeypatch.setitem(instruct.INSTRUCTIONS, "contrast", entry)
    with pytest.raises(ValueError, match="3 answer words for 2 classes"):
        instruct.task("contrast")


def test_accuracy_counts_right_answers(tokenizer, monkeypatch):
    rows = instruct.load("film_sentiment", "test", 4)
    fixed = np.log([[0.9, 0.1]] * 4)  # always the first word: right where the label is 0
    monkeypatch.setattr(instruct, "scores", lambda *args: torch.tensor(fixed))
    result = instruct.accuracy(None, tokenizer, "film_sentiment", rows)
    assert result["accuracy"] == pytest.approx(np.mean(np.asarray(rows["label"]) == 0))
