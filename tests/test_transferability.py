"""Tests of LogME (the fixed-point iteration against a direct maximisation of the evidence) and of
the vocabulary overlap of two domains."""

from collections import Counter

import numpy as np
import pytest
from scipy.optimize import minimize

import transfer_lab as tl
from transfer_lab.lab.transferability import (
    domain_overlap,
    log_evidence,
    logme,
    rank_sources,
    vocabulary_overlap,
    word_distribution,
)


def direct_max_evidence_per_n(F: np.ndarray, y: np.ndarray) -> float:
    """Return max over (α, β) of log_evidence / n, by Nelder-Mead on (log α, log β), 5 starts."""
    n = len(y)

    def loss(p):
        return -log_evidence(F, y, np.exp(p[0]), np.exp(p[1])) / n

    opts = {"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000}
    starts = [(0.0, 0.0), (-4.0, 3.0), (4.0, -3.0), (3.0, 3.0), (-3.0, -3.0)]
    return -min(minimize(loss, x0, method="Nelder-Mead", options=opts).fun for x0 in starts)


def linear_data(seed: int, n: int = 40, D: int = 5):
    """Return features F and a target y = F w + noise, seeded."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, D))
    y = F @ rng.normal(size=D) + rng.normal(scale=0.7, size=n)
    return F, y


def class_data(seed: int, n: int = 40, n_classes: int = 3, signal: float = 1.0):
    """Return 5-D features whose first n_classes columns carry the label with weight `signal`."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    F = rng.normal(size=(n, 5))
    F[:, :n_classes] += signal * np.eye(n_classes)[labels]
    return F, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_point_reaches_the_direct_maximum_regression(seed):
    F, y = linear_data(seed)
    expected = direct_max_evidence_per_n(F, y)
    assert logme(F, y, regression=True) == pytest.approx(expected, rel=1e-4)


def test_fixed_point_reaches_the_direct_maximum_more_dims_than_examples():
    # n < D: F has D - n zero singular values, whose α terms the SVD path must still count
    F, y = linear_data(3, n=12, D=20)
    expected = direct_max_evidence_per_n(F, y)
    assert logme(F, y, regression=True) == pytest.approx(expected, rel=1e-4)


def test_fixed_point_reaches_the_direct_maximum_classification():
    F, labels = class_data(4, n_classes=2, signal=1.5)
    # classification = mean over the one-hot columns of each column's maximised evidence / n
    expected = np.mean([direct_max_evidence_per_n(F, (labels == c).astype(float)) for c in (0, 1)])
    assert logme(F, labels) == pytest.approx(expected, rel=1e-4)


def test_log_evidence_is_lower_away_from_the_maximum():
    F, y = linear_data(5)
    best = logme(F, y, regression=True) * len(y)
    for alpha, beta in [(1.0, 1.0), (0.01, 10.0), (100.0, 0.1)]:
        assert log_evidence(F, y, alpha, beta) < best


def test_label_signal_scores_higher_than_noise():
    F_signal, labels = class_data(6, signal=2.0)
    rng = np.random.default_rng(60)
    F_noise = rng.normal(size=F_signal.shape)
    F_weak, _ = class_data(6, signal=0.5)
    assert logme(F_signal, labels) > logme(F_weak, labels) > logme(F_noise, labels)
    assert rank_sources({"noise": logme(F_noise, labels), "signal": logme(F_signal, labels)}) == [
        "signal",
        "noise",
    ]


def test_invariances():
    F, labels = class_data(7)
    score = logme(F, labels)
    rng = np.random.default_rng(70)
    rows = rng.permutation(len(labels))
    assert logme(F[rows], labels[rows]) == pytest.approx(score, rel=1e-9)
    assert logme(F[:, ::-1], labels) == pytest.approx(score, rel=1e-9)
    # renaming classes changes nothing; lists and strings are accepted
    names = np.array(["neg", "neu", "pos"])[labels]
    assert logme(F.tolist(), names.tolist()) == pytest.approx(score, rel=1e-9)
    # a rotation of feature space keeps the singular values and the evidence
    Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    assert logme(F @ Q, labels) == pytest.approx(score, rel=1e-6)
    # scaling the features is absorbed by α at the maximum (up to the iteration's tolerance)
    assert logme(10.0 * F, labels) == pytest.approx(score, rel=1e-4)
    # float32 features are computed in float64
    assert logme(F.astype(np.float32), labels) == pytest.approx(score, rel=1e-5)


def test_shapes_and_targets():
    F, labels = class_data(8)
    score = logme(F, labels)
    assert type(score) is float and np.isfinite(score)
    onehot = np.eye(3)[labels]
    assert logme(F, onehot, regression=True) == pytest.approx(score, rel=1e-12)
    F2, y = linear_data(9)
    one = logme(F2, y, regression=True)
    assert logme(F2, y[:, None], regression=True) == pytest.approx(one, rel=1e-12)
    two = logme(F2, np.stack([y, -2 * y + 1], axis=1), regression=True)
    assert two == pytest.approx((one + logme(F2, -2 * y + 1, regression=True)) / 2, rel=1e-12)


def test_rank_sources_highest_first():
    assert rank_sources({"a": -1.2, "b": 0.3, "c": -0.4}) == ["b", "c", "a"]


@pytest.mark.parametrize(
    "features, labels, kwargs, match",
    [
        (np.zeros(10), np.arange(10) % 2, {}, "2-D"),
        (np.zeros((10, 3)), np.arange(9) % 2, {}, "one label per feature row"),
        (np.ones((10, 3)), np.zeros(10), {}, "at least 2 classes"),
        (np.ones((10, 3)), np.zeros((10, 2)), {}, "regression=True"),
        (np.full((10, 3), np.nan), np.arange(10) % 2, {}, "NaN"),
        (np.zeros((0, 3)), np.zeros(0), {}, "at least one example"),
    ],
)
def test_bad_input_raises_value_error(features, labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        logme(features, labels, **kwargs)


FILMS = ["the plot was dull .", "a brilliant score , but the ending is weak .", "the cast is solid"]


def test_identical_domains_overlap_fully():
    assert vocabulary_overlap(FILMS, FILMS) == pytest.approx(1.0, abs=1e-12)
    # the same word frequencies in other texts (order, case, punctuation) are the same domain
    shuffled = [" ".join(reversed(t.upper().split())) + " !" for t in reversed(FILMS)]
    assert vocabulary_overlap(FILMS, shuffled) == pytest.approx(1.0, abs=1e-12)
    assert vocabulary_overlap(FILMS * 3, FILMS) == pytest.approx(1.0, abs=1e-12)


def test_disjoint_vocabularies_do_not_overlap():
    assert vocabulary_overlap(FILMS, ["tasty soup", "rude waiter , cold pasta"]) == 0.0


def test_overlap_is_the_shared_share_of_word_occurrences():
    # p_S = {a: 1/2, b: 1/2}, p_T = {a: 1/4, c: 3/4}: Σ min = 1/4 = 1 − total variation
    assert vocabulary_overlap(["a b"], ["a c c c"]) == pytest.approx(0.25)
    p = word_distribution(["A a b ."])
    assert p == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    assert sum(p.values()) == pytest.approx(1.0)


def one_minus_total_variation(a: list[str], b: list[str]) -> float:
    """Return 1 − ½ Σ_w |p_a(w) − p_b(w)| of space-separated words, counted here by hand."""
    p, q = Counter(" ".join(a).split()), Counter(" ".join(b).split())
    n_p, n_q = sum(p.values()), sum(q.values())
    return 1 - sum(abs(p[w] / n_p - q[w] / n_q) for w in p.keys() | q.keys()) / 2


def test_overlap_is_symmetric_and_one_minus_the_total_variation():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)]
    for _ in range(20):
        a = [" ".join(rng.choice(words, size=8)) for _ in range(5)]
        b = [" ".join(rng.choice(words[10:], size=8)) for _ in range(5)]
        value = vocabulary_overlap(a, b)
        assert value == pytest.approx(one_minus_total_variation(a, b), abs=1e-12)
        assert value == pytest.approx(vocabulary_overlap(b, a), abs=1e-12)


def test_domain_overlap_of_tasks_is_seeded():
    near = domain_overlap("product_sentiment", "film_sentiment_plain", n=300, seed=0)
    assert near == domain_overlap("product_sentiment", "film_sentiment_plain", n=300, seed=0)
    assert near != domain_overlap("product_sentiment", "film_sentiment_plain", n=300, seed=1)
    assert domain_overlap("film_sentiment_plain", "film_sentiment_plain", n=300) == (
        pytest.approx(1.0, abs=1e-12))
    # the shuffled source has product reviews' very texts, so the same domain overlap
    assert domain_overlap("product_sentiment_shuffled", "film_sentiment_plain", n=300) == near
    assert 0.0 < near < 1.0


@pytest.mark.parametrize(
    "source, target, error, match",
    [
        ([], FILMS, ValueError, "empty list of texts"),
        (FILMS, [], ValueError, "empty list of texts"),
        (FILMS, [" . , !", ""], ValueError, "no words"),
        ("the plot was dull", FILMS, tl.InputError, "list of texts"),
    ],
)
def test_overlap_bad_input(source, target, error, match):
    with pytest.raises(error, match=match):
        vocabulary_overlap(source, target)


def test_domain_overlap_needs_text_tasks():
    with pytest.raises(ValueError, match="no text column"):
        domain_overlap("ner_news", "film_sentiment_plain", n=10)
    with pytest.raises(ValueError, match="unknown task"):
        domain_overlap("no_such_task", "film_sentiment_plain", n=10)
