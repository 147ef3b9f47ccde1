"""θ_S → save_pretrained → from_pretrained → fine-tune: round trips and the transfer effect."""

import json

import pytest
import torch
from safetensors.torch import load_file

import transfer_lab as tl


def test_theta_S_folder_holds_safetensors_tokenizer_and_card(theta_S_small):
    names = {p.name for p in theta_S_small.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "theta_S.json"} <= names
    card = json.loads((theta_S_small / "theta_S.json").read_text())
    assert card["steps"] == 250 and card["source"] == "product_sentiment"


def test_save_load_round_trip_keeps_the_body(theta_S_small):
    saved = load_file(theta_S_small / "model.safetensors")
    model = tl.build_model("tiny", theta=theta_S_small, seed=1)
    state = model.state_dict()
    body = [k for k in saved if not k.startswith("classifier")]
    assert body and all(torch.equal(saved[k], state[k]) for k in body)
    # the target gets a new head: not the source's
    assert not torch.equal(saved["classifier.weight"], state["classifier.weight"])
    kept = tl.build_model("tiny", theta=theta_S_small, new_head=False)
    assert torch.equal(saved["classifier.weight"], kept.state_dict()["classifier.weight"])


def test_default_seeds_are_five_on_tiny_models_and_three_on_pretrained_ones():
    assert tl.pipeline.default_seeds("tiny") == 5
    assert tl.pipeline.default_seeds("minilm") == tl.pipeline.default_seeds("smollm2") == 3


def test_scratch_is_random_and_seeded():
    a, b = tl.build_model("tiny", seed=0), tl.build_model("tiny", seed=0)
    c = tl.build_model("tiny", seed=1)
    w = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(a.state_dict()[w], b.state_dict()[w])
    assert not torch.equal(a.state_dict()[w], c.state_dict()[w])


def test_out_dir_is_never_overwritten(theta_S_small):
    with pytest.raises(FileExistsError, match="not empty"):
        tl.pretrain_source("product_sentiment", "tiny", examples=100, out_dir=theta_S_small,
                           config=tl.TrainConfig(max_steps=1, progress=False))


@pytest.mark.slow
def test_transfer_beats_scratch_end_to_end(theta_S_small):
    config = tl.TrainConfig(lr=3e-4, epochs=20, batch_size=16, eval_every=10, progress=False)
    result = tl.compare(theta_S=theta_S_small, labels=64, seeds=2, config=config, progress=False)
    # a small θ_S (250 steps) knows the shared polarity core, not the film words: the partial
    # world gives it ≈ 0.61 against scratch's ≈ 0.49 (measured)
    assert result.gain > 0.07, result.table()
    assert min(r["accuracy"] for r in result.arms["transfer"]) > 0.56, result.table()
    assert max(r["accuracy"] for r in result.arms["scratch"]) < 0.56, result.table()


def test_compare_runs_the_family_arms_with_a_curve_per_epoch(theta_S_small):
    config = tl.TrainConfig(epochs=2, eval_every=1, progress=False)
    result = tl.compare(theta_S=theta_S_small, labels=16, seeds=1, config=config, progress=False)
    assert list(result.arms) == ["bow", "scratch", "transfer"]  # the family's default arms
    assert "curve" not in result.arms["bow"][0]  # no epochs: metrics only
    assert [p["epoch"] for p in result.arms["scratch"][0]["curve"]] == [1, 2]
    assert result.arms["transfer"][0]["strategy"] == "full"
    assert result.arms["transfer"][0]["trained"] == result.arms["transfer"][0]["total"]


def test_an_arm_is_named_for_what_it_is():
    family = tl.pipeline.family_of("film_sentiment", "minilm")
    assert family.default_arms("minilm", "supervised") == ["bow", "scratch", "pretrained",
                                                             "transfer"]
    # no source task: the fine-tuned pretrained body is `pretrained`, never `transfer`
    assert family.default_arms("minilm", "pretrained") == ["bow", "scratch", "pretrained"]
    with pytest.raises(tl.InputError, match="the transfer arm starts from a θ_S trained on a"):
        tl.compare(model="minilm", init="pretrained", arms=["transfer"], progress=False)


def test_family_options_pass_through_and_unknown_ones_name_the_valid_ones():
    assert tl.pipeline.family_of("film_sentiment", "smollm2", {"shots": 2}).shots == 2
    assert tl.pipeline.family_of("film_sentiment", "smollm2").shots == 4  # the registry's own
    with pytest.raises(tl.InputError, match="has no option 'shots'; its options: none"):
        tl.pipeline.family_of("film_sentiment", "tiny", {"shots": 2})


def test_fit_uses_a_fresh_optimizer_and_changes_the_weights(theta_S_small):
    run, model = tl.transfer(theta_S_small, labels=16, seed=0,
                             config=tl.TrainConfig(epochs=1, progress=False))
    before = tl.build_model("tiny", theta=theta_S_small, seed=0).state_dict()
    after = model.state_dict()
    moved = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(moved) > len(before) // 2
    task, family = tl.get_task("film_sentiment"), tl.pipeline.family_of("film_sentiment")
    evaluate = family.evaluation(task.load("test"), tl.load_tokenizer(str(theta_S_small)), task,
                                 tl.TrainConfig())
    assert run.arm == "transfer"
    assert run.metrics["accuracy"] == pytest.approx(evaluate(model)["accuracy"], abs=1e-6)


@pytest.mark.parametrize("bad, message", [
    (dict(target="nope"), "unknown task 'nope'; choose one of"),
    (dict(model="gpt5"), "unknown model 'gpt5'; choose one of"),
    (dict(init="magic"), "unknown init 'magic'; choose one of"),
    (dict(seeds=0), "at least 1"),
])
def test_bad_arguments_name_the_fix(bad, message):
    with pytest.raises(ValueError, match=message):
        tl.compare(**bad, progress=False)


def test_hub_names_fail_at_once_offline():
    with pytest.raises(tl.InputError, match="quick profile"):
        tl.get_task("sst2").load("train", 10)
    with pytest.raises(tl.InputError, match="offline"):
        tl.get_backbone("bert-base-uncased")


def test_an_arm_that_no_seed_changes_is_measured_once_and_filed_per_seed(theta_S_small,
                                                                          monkeypatch):
    calls = []
    family = tl.FAMILIES["classification"]
    baseline = family.baseline
    monkeypatch.setattr(family, "seed_free", ("bow",))
    monkeypatch.setattr(family, "baseline", lambda *a, **k: calls.append(1) or baseline(*a, **k))
    result = tl.compare(theta_S=theta_S_small, labels=16, seeds=3, arms=["bow"],
                        test_examples=32, progress=False)
    assert len(calls) == 1 and [r["seed"] for r in result.arms["bow"]] == [0, 1, 2]
    assert len({r["accuracy"] for r in result.arms["bow"]}) == 1
