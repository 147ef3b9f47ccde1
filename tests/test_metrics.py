"""Tests of transfer_lab.metrics on small cases whose answers are worked out by hand."""

import pytest

import transfer_lab as tl
from transfer_lab.metrics import (
    classification_metrics,
    ner_metrics,
    normalize_answer,
    squad_exact_match,
    squad_f1,
    squad_metrics,
    translation_metrics,
)


def test_classification_metrics_known_case():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    # accuracy 4/6. Per class: 0: P 1/2 R 1/2 F 1/2; 1: P 2/3 R 1 F 4/5; 2: P 1 R 1/2 F 2/3.
    result = classification_metrics(y_true, y_pred)
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert all(type(v) is float for v in result.values())


def test_classification_metrics_perfect_and_strings():
    result = classification_metrics(["pos", "neg", "pos"], ["pos", "neg", "pos"])
    assert result == {"accuracy": 1.0, "macro_f1": 1.0}


def test_ner_metrics_hand_example():
    true_tags = [
        ["B-PER", "I-PER", "O", "B-LOC"],
        ["B-ORG", "O", "O"],
    ]
    pred_tags = [
        ["B-PER", "I-PER", "O", "B-ORG"],  # PER right; LOC predicted as ORG (wrong type)
        ["B-ORG", "O", "B-MISC"],  # ORG right; a spurious MISC
    ]
    # gold entities: PER, LOC, ORG (3); predicted: PER, ORG, ORG, MISC (4); correct: PER, ORG (2)
    # precision 2/4, recall 2/3, F1 = 2 * (1/2)(2/3) / (1/2 + 2/3) = 4/7
    result = ner_metrics(true_tags, pred_tags)
    assert result["precision"] == pytest.approx(1 / 2)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["f1"] == pytest.approx(4 / 7)


def test_ner_metrics_is_entity_level_not_token_level():
    # a half-found entity earns nothing: I-PER missing makes the span wrong
    result = ner_metrics([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert result == {"f1": 0.0, "precision": 0.0, "recall": 0.0}


def test_translation_metrics_identical_and_different():
    refs = ["the cat sat on the mat", "a dog runs in the park today"]
    same = translation_metrics(refs, refs)
    assert same["bleu"] == pytest.approx(100.0)
    assert same["chrf"] == pytest.approx(100.0)
    other = translation_metrics(["the cat sat on a hat", "a dog walks in the park"], refs)
    assert 0.0 < other["bleu"] < 100.0
    assert 0.0 < other["chrf"] < 100.0
    unrelated = translation_metrics(["zzz qqq", "xxx yyy"], refs)
    assert unrelated["bleu"] < other["bleu"]
    assert unrelated["chrf"] < other["chrf"]


def test_normalize_answer():
    assert normalize_answer("  The Eiffel   Tower! ") == "eiffel tower"
    assert normalize_answer("An apple, a PIE.") == "apple pie"
    # articles only as whole words
    assert normalize_answer("theatre banana") == "theatre banana"


def test_squad_exact_match_and_f1_by_hand():
    assert squad_exact_match("The Eiffel Tower", "eiffel tower") == 1.0
    assert squad_exact_match("Eiffel Tower in Paris", "eiffel tower") == 0.0
    # "tower in paris" vs "eiffel tower": 1 common token, P 1/3, R 1/2, F1 = 2/5
    assert squad_f1("the tower in Paris", "Eiffel Tower") == pytest.approx(2 / 5)
    assert squad_f1("Berlin", "Paris") == 0.0
    # repeated tokens count at most as often as in the other answer: common = 1, P 1/2, R 1
    assert squad_f1("paris paris", "paris") == pytest.approx(2 / 3)


def test_squad_metrics_takes_max_over_gold_answers():
    predictions = ["The Eiffel Tower", "Paris"]
    references = [["eiffel tower", "Tour Eiffel"], ["France", "Paris, France"]]
    # example 1: EM 1, F1 1. Example 2: EM 0; F1 max(0, "paris" vs "paris france" = 2/3)
    result = squad_metrics(predictions, references)
    assert result["exact_match"] == pytest.approx(50.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda: classification_metrics([0, 1], [0]),
        lambda: classification_metrics([], []),
        lambda: ner_metrics([["O"]], []),
        lambda: ner_metrics([["O", "B-PER"]], [["O"]]),
        lambda: translation_metrics(["a b c"], ["a b c", "d e f"]),
        lambda: squad_metrics(["x"], [["x"], ["y"]]),
        lambda: squad_metrics([], []),
        lambda: squad_metrics(["x"], [[]]),
        lambda: squad_metrics(["x"], ["x"]),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError, match="pass|wrap|predict"):
        call()


def test_single_string_is_a_type_error():
    with pytest.raises(tl.InputError, match="wrap"):
        translation_metrics("the cat sat", "the cat sat")
