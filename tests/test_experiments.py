"""Tests of lab.experiments: weight distances, labels-to-match and a tiny label curve."""

import copy
import math

import pytest
import torch

from transfer_lab.lab.experiments import (
    curve_config,
    curve_table,
    initial_and_tuned,
    label_curve,
    labels_to_match,
    layer_of,
    steps_to_loss,
    weight_distance,
)
from transfer_lab.models import build_model, load_tokenizer
from transfer_lab.training.loop import History


def hand_curve(scratch: dict, transfer: dict) -> dict:
    """Return a label curve with the given per-budget seed accuracies (no training)."""
    def rows(arm: dict) -> dict:
        return {n: [{"seed": seed, "accuracy": a, "score": a} for seed, a in enumerate(accs)]
                for n, accs in arm.items()}

    return {"target": "t", "model": "tiny", "seeds": 2, "test_examples": 10,
            "arms": {"scratch": rows(scratch), "transfer": rows(transfer)}}


@pytest.fixture(scope="module")
def tiny():
    """Return a seeded random tiny classifier."""
    return build_model("tiny", seed=0)


@pytest.fixture(scope="module")
def theta_S(tmp_path_factory):
    """Return a folder holding a random tiny model and its tokenizer (a stand-in θ_S)."""
    path = tmp_path_factory.mktemp("theta_S")
    build_model("tiny", seed=3).save_pretrained(path)
    load_tokenizer("tiny").save_pretrained(path)
    return path


def test_layer_of_groups_bert_parameters():
    assert layer_of("bert.embeddings.word_embeddings.weight") == "embeddings"
    assert layer_of("bert.encoder.layer.1.attention.self.query.weight") == "encoder.layer.1"
    assert layer_of("bert.pooler.dense.bias") == "pooler"
    assert layer_of("classifier.weight") == "classifier"


def test_weight_distance_of_a_model_with_itself_is_zero(tiny):
    d = weight_distance(tiny, tiny)
    assert list(d) == ["embeddings", "encoder.layer.0", "encoder.layer.1", "pooler", "classifier"]
    assert all(v == 0.0 for v in d.values())


def test_weight_distance_is_the_norm_of_the_perturbation(tiny):
    moved = copy.deepcopy(tiny)
    gen = torch.Generator().manual_seed(1)
    expected = {}
    with torch.no_grad():
        for name, p in moved.named_parameters():
            if name.startswith(("bert.encoder.layer.1.", "classifier.")):
                delta = 0.01 * torch.randn(p.shape, generator=gen)
                p.add_(delta)
                layer = layer_of(name)
                expected[layer] = expected.get(layer, 0.0) + float(delta.pow(2).sum())
    d = weight_distance(tiny, moved)
    for layer in ("embeddings", "encoder.layer.0", "pooler"):
        assert d[layer] == 0.0
    for layer, sq in expected.items():
        assert d[layer] == pytest.approx(math.sqrt(sq), rel=1e-4)
    rel = weight_distance(tiny, moved, relative=True)
    norm = math.sqrt(sum(float(p.detach().pow(2).sum()) for n, p in tiny.named_parameters()
                         if n.startswith("classifier.")))
    assert rel["classifier"] == pytest.approx(d["classifier"] / norm, rel=1e-4)


def test_weight_distance_refuses_different_architectures(tiny):
    with pytest.raises(ValueError, match="different parameters"):
        weight_distance(tiny, build_model("tiny", "mlm", seed=0))


def test_labels_to_match_interpolates_in_log2_labels():
    # scratch: 0.5 @16, 0.6 @64, 0.8 @256 (two seeds each); transfer 0.7 @16 → halfway from
    # 64 to 256 in log2: 2 ** 7 = 128 labels, factor 8.
    curve = hand_curve({16: [0.49, 0.51], 64: [0.6, 0.6], 256: [0.78, 0.82]},
                       {16: [0.7, 0.7], 64: [0.9, 0.9], 4: [0.55, 0.55]})
    match = labels_to_match(curve)
    assert list(match) == [4, 16, 64]
    assert match[16]["scratch_labels"] == pytest.approx(128)
    assert match[16]["factor"] == pytest.approx(8)
    assert match[16]["bound"] == "=" and match[16]["text"] == "8×"
    # 0.55 is halfway from 0.5 @16 to 0.6 @64: 2 ** 5 = 32 labels, factor 8
    assert match[4]["scratch_labels"] == pytest.approx(32)
    # 0.9 is never reached: a lower bound from the largest budget
    assert match[64]["bound"] == ">=" and match[64]["factor"] == pytest.approx(4)
    assert match[64]["text"] == "≥ 4×"


def test_labels_to_match_upper_bound_when_scratch_starts_above():
    curve = hand_curve({32: [0.8, 0.8], 64: [0.9, 0.9]}, {16: [0.7, 0.7]})
    match = labels_to_match(curve)[16]
    assert match["bound"] == "<=" and match["factor"] == pytest.approx(2)


def test_label_curve_runs_both_arms_on_nested_budgets(theta_S):
    cfg = curve_config(steps=2, batch_size=4)
    curve = label_curve(theta_S, budgets={"scratch": (4, 8), "transfer": (4,)}, seeds=2,
                        config=cfg, test_examples=16)
    assert curve["arms"]["scratch"].keys() == {4, 8}
    assert all(len(v) == 2 for arm in curve["arms"].values() for v in arm.values())
    rows = [r for arm in curve["arms"].values() for v in arm.values() for r in v]
    # the score is the accuracy, a whole number of right answers out of the 16 test reviews
    assert all(r["score"] == r["accuracy"] and (16 * r["accuracy"]).is_integer() for r in rows)
    assert [r["seed"] for r in curve["arms"]["scratch"][8]] == [0, 1]
    assert all(len(r["train_loss"]) == 2 for r in rows) and curve["test_examples"] == 16
    assert "labels" in curve_table(curve)
    with pytest.raises(ValueError, match="no entry for arm"):
        label_curve(theta_S, budgets={"scratch": (4,)}, seeds=1, config=cfg, test_examples=8)


def test_label_curve_reads_finished_runs_back_from_the_cache(theta_S, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path))  # a cache with no runs yet
    cfg = curve_config(steps=2, batch_size=4)
    args = dict(budgets={"scratch": (4, 8), "transfer": (4,)}, seeds=2, test_examples=16)
    first = label_curve(theta_S, config=cfg, **args)
    again = label_curve(theta_S, config=cfg, **args)
    assert first["cached"] == 0 and again["cached"] == 6  # (2 scratch + 1 transfer) x 2 seeds
    assert again["arms"] == first["arms"]
    assert len(list((tmp_path / "runs").glob("*.json"))) == 6
    # a run that differs in anything (here the steps, or the labels it sees) trains again
    longer = label_curve(theta_S, config=curve_config(steps=3, batch_size=4), **args)
    assert longer["cached"] == 0
    other_test = label_curve(theta_S, config=cfg, **{**args, "test_examples": 20})
    assert other_test["cached"] == 0
    # a larger budget draws a longer sample of the same stream: the old runs saw the same data
    more = label_curve(theta_S, config=cfg, **{**args, "budgets": {"scratch": (4, 8, 12),
                                                                    "transfer": (4,)}})
    assert more["cached"] == 6 and len(more["arms"]["scratch"][12]) == 2


def test_label_curves_in_two_threads_train_each_run_once(theta_S, tmp_path, monkeypatch):
    import threading
    import time
    from types import SimpleNamespace

    from transfer_lab.lab import experiments

    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path))
    trained = []

    def slow_transfer(*args, **kwargs):  # long enough that the two curves overlap
        trained.append(args[2:4])
        time.sleep(0.05)
        row = {"seed": args[3], "accuracy": 0.5, "score": 0.5}
        return SimpleNamespace(to_dict=lambda: row), None

    monkeypatch.setattr(experiments, "transfer", slow_transfer)
    args = dict(budgets={"scratch": (4, 8), "transfer": (4,)}, seeds=2, test_examples=16,
                config=curve_config(steps=2, batch_size=4))
    curves = []
    threads = [threading.Thread(target=lambda: curves.append(label_curve(theta_S, **args)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # without the lock both would train most runs; with it, one trains, the other reads back
    assert len(trained) == 6, trained
    assert sum(c["cached"] for c in curves) == 6 and curves[0]["arms"] == curves[1]["arms"]


def test_label_curve_trains_again_over_a_record_of_metrics_alone(theta_S, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from transfer_lab.lab import experiments

    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path))
    seen = []

    def fake_transfer(theta, target, labels, seed, model, config, *, data, arm):
        seen.append((arm, labels, seed, len(data[0])))
        row = {"seed": seed, "accuracy": 0.5, "score": 0.5}
        return SimpleNamespace(to_dict=lambda: row), None

    monkeypatch.setattr(experiments, "transfer", fake_transfer)
    args = dict(budgets={"scratch": (4,), "transfer": (4,)}, seeds=1, test_examples=8,
                config=curve_config(steps=2, batch_size=4))
    label_curve(theta_S, **args)
    assert seen == [("scratch", 4, 0, 4), ("transfer", 4, 0, 4)]
    for record in (tmp_path / "runs").glob("*.json"):  # the records of an older version
        record.write_text('{"accuracy": 0.5}')
    assert label_curve(theta_S, **args)["cached"] == 0 and len(seen) == 4


def test_initial_and_tuned_starts_where_transfer_starts():
    cfg = curve_config(steps=3, batch_size=4)
    theta_0, run, theta_star = initial_and_tuned(None, labels=8, seed=1, config=cfg)
    assert len(run.history.steps) == 3
    again = build_model("tiny", seed=1)  # what transfer(None, seed=1) starts from
    assert all(v == 0.0 for v in weight_distance(theta_0, again).values())
    assert all(v > 0.0 for v in weight_distance(theta_0, theta_star).values())


def test_initial_and_tuned_from_theta_S_keeps_the_body(theta_S):
    theta_0, _, _ = initial_and_tuned(theta_S, labels=4, config=curve_config(1, batch_size=4))
    d = weight_distance(build_model("tiny", seed=3), theta_0)
    assert d["embeddings"] == d["encoder.layer.0"] == d["encoder.layer.1"] == 0.0


def test_initial_and_tuned_from_theta_S_gets_a_new_head(theta_S):
    theta_0, _, _ = initial_and_tuned(theta_S, labels=4, config=curve_config(1, batch_size=4))
    assert weight_distance(build_model("tiny", seed=3), theta_0)["classifier"] > 0.0


def test_steps_to_loss_finds_the_first_window_below_the_level():
    history = History(steps=[{"loss": v} for v in [0.7] * 5 + [0.1] * 5])
    assert steps_to_loss(history, level=0.3, window=2) == 7  # steps 5-6: 0.4, steps 6-7: 0.1
    assert steps_to_loss(history, level=0.05, window=2) is None
    assert steps_to_loss(History(steps=[{"loss": 0.0}]), window=2) is None
