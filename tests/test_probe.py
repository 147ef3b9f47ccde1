"""Tests of transfer_lab.lab.probe: pooled features, linear probes, fill-mask (chapters 2 and 8)."""

import numpy as np
import pytest
import torch

import transfer_lab as tl
from transfer_lab.data import world
from transfer_lab.lab import probe


@pytest.fixture(scope="module")
def tiny():
    """Return a random tiny classifier and the world tokenizer."""
    return tl.build_model("tiny", seed=0), tl.load_tokenizer("tiny")


@pytest.fixture(scope="module")
def tiny_mlm():
    """Return a random tiny masked-LM and the world tokenizer."""
    return tl.build_model("tiny", head="mlm", seed=0), tl.load_tokenizer("tiny")


def test_mean_pooling_ignores_padding(tiny):
    model, tok = tiny
    short = "the plot was good ."
    long = "the acting was not brilliant at all , but the score was superb ."
    alone = probe.embed(model, tok, [short])
    padded = probe.embed(model, tok, [short, long])
    assert padded.shape == (2, model.config.hidden_size)
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
    assert not np.allclose(padded[0], padded[1], atol=1e-3)


def test_pooling_matches_the_hidden_states(tiny):
    model, tok = tiny
    text = "the film was dull ."
    model.eval()
    with torch.no_grad():
        hidden = model.bert(**tok([text], return_tensors="pt")).last_hidden_state[0].numpy()
    np.testing.assert_allclose(probe.embed(model, tok, [text], pooling="cls")[0], hidden[0],
                               atol=1e-5)
    np.testing.assert_allclose(probe.embed(model, tok, [text])[0], hidden.mean(0), atol=1e-5)
    unit = probe.embed(model, tok, [text, "a lovely score ."], normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)


def test_embed_rejects_bad_arguments(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="pooling"):
        probe.embed(model, tok, ["a text"], pooling="max")
    with pytest.raises(ValueError, match="no texts"):
        probe.embed(model, tok, [])


def separable(seed: int, n: int = 200, signal: float = 3.0):
    """Return 10-D features whose first column carries a binary label with `signal`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 10))
    X[:, 0] += signal * (2 * y - 1)
    return X, y


@pytest.mark.parametrize("seed", [0, 1])
def test_probe_finds_a_linear_signal_and_not_noise(seed):
    X, y = separable(seed)
    assert probe.probe(X[:100], y[:100], X[100:], y[100:]) > 0.95
    shuffled = np.random.default_rng(seed).permutation(y)
    assert probe.probe(X[:100], shuffled[:100], X[100:], shuffled[100:]) < 0.7
    mean, std = probe.probe_cv(X, y, seed=seed)
    assert mean > 0.95 and 0 <= std < 0.1
    assert probe.probe_cv(X, shuffled, seed=seed)[0] < 0.7


def test_probe_rejects_mismatched_or_single_class_labels():
    X, y = separable(0)
    with pytest.raises(ValueError, match="differ in length"):
        probe.probe(X, y[:-1], X, y)
    with pytest.raises(ValueError, match="single class"):
        probe.probe(X, np.zeros_like(y), X, y)


def test_project_2d_keeps_the_direction_of_largest_variance():
    X, y = separable(0, signal=10.0)
    xy = probe.project_2d(X)
    assert xy.shape == (len(X), 2)
    assert abs(np.corrcoef(xy[:, 0], y)[0, 1]) > 0.9


def test_masked_contexts_are_seeded_balanced_and_of_one_polarity():
    contexts = probe.masked_contexts(40, seed=3)
    assert contexts == probe.masked_contexts(40, seed=3)
    assert contexts != probe.masked_contexts(40, seed=4)
    assert sum(p for _, p in contexts) == 20
    lists = (set(world.NEGATIVE), set(world.POSITIVE))
    for text, polarity in contexts:
        words = text.replace(",", " ").split()
        assert words.count("[MASK]") == 1
        adjectives = [w for w in words if w in lists[0] | lists[1]]
        assert len(adjectives) == 2 and set(adjectives) <= lists[polarity]
        assert any(text.startswith(v) for v in world.VERDICTS[polarity])
    bare = probe.masked_contexts(10, neighbours=0)
    assert all(t.endswith(". [MASK] .") for t, _ in bare)
    with pytest.raises(ValueError, match="verdict cue or neighbouring"):
        probe.masked_contexts(10, cue=False, neighbours=0)


def test_fill_mask_returns_what_the_logits_favour(tiny_mlm):
    model, tok = tiny_mlm
    text = "five stars . superb , [MASK] and wonderful ."
    top = probe.fill_mask(model, tok, text, top_k=5)
    assert len(top) == 5 and all(p1 >= p2 for (_, p1), (_, p2) in zip(top, top[1:], strict=False))
    with torch.no_grad():
        model.cls.predictions.bias[tok.convert_tokens_to_ids("lovely")] += 100.0
    try:
        assert probe.fill_mask(model, tok, text)[0][0] == "lovely"
        weak = ["dull", "bland", "weak"]
        restricted = probe.fill_mask(model, tok, text, top_k=3, candidates=weak)
        assert {t for t, _ in restricted} == set(weak)
        assert sum(p for _, p in restricted) == pytest.approx(1.0, abs=1e-5)
    finally:
        with torch.no_grad():
            model.cls.predictions.bias[tok.convert_tokens_to_ids("lovely")] -= 100.0
    with pytest.raises(ValueError, match="exactly one"):
        probe.fill_mask(model, tok, "no gap here .")


def test_polarity_agreement_counts_same_and_opposite(tiny_mlm):
    model, tok = tiny_mlm
    ids = tok.convert_tokens_to_ids(world.POSITIVE)
    with torch.no_grad():
        model.cls.predictions.bias[ids] += 100.0  # a model that always says "positive"
    try:
        rates = probe.polarity_agreement(model, tok, probe.masked_contexts(20, seed=0), top_k=5)
    finally:
        with torch.no_grad():
            model.cls.predictions.bias[ids] -= 100.0
    assert rates == pytest.approx({"top1_same": 0.5, "topk_same": 0.5, "topk_opposite": 0.5})


def test_linear_probe_on_a_random_body_is_near_chance():
    acc = probe.linear_probe(None, "film_sentiment", labels=64, seed=0, test=200)
    assert 0.3 < acc < 0.7


def test_probe_curve_draws_stratified_seeded_samples():
    X, y = separable(0, n=120)
    curve = probe.probe_curve(X, y, [8, 60], seeds=3)
    assert set(curve) == {8, 60} and all(len(v) == 3 for v in curve.values())
    assert curve == probe.probe_curve(X, y, [8, 60], seeds=3)
    assert np.mean(curve[60]) > 0.95
    noise = probe.probe_curve(X, np.random.default_rng(1).permutation(y), [60], seeds=3)
    assert np.mean(noise[60]) < 0.7
    with pytest.raises(ValueError, match="leaves no test rows"):
        probe.probe_curve(X, y, [119])
