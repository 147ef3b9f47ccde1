"""Tests of the fine-tuning strategies (chapter 7) and of LogME on a body's frozen features."""

import numpy as np
import pytest
import torch

import transfer_lab as tl
from transfer_lab.families.classification import classification_collator, encode_classification
from transfer_lab.lab.strategies import (
    STRATEGIES,
    ULMFIT_DECAY,
    EarlyStopping,
    GradualUnfreezing,
    Monitor,
    discriminative_groups,
    features,
    layer_groups,
    prepare,
    source_accuracy,
    trained_parameters,
    unsupported,
)
from transfer_lab.lab.transferability import logme, rank_sources
from transfer_lab.pipeline import family_of
from transfer_lab.results import Run

LR = 1e-3


@pytest.fixture(scope="module")
def tokenizer():
    return tl.load_tokenizer("tiny")


@pytest.fixture(scope="module")
def data(tokenizer):
    """64 product reviews, encoded for the tiny BERT."""
    return encode_classification(tl.get_task("product_sentiment").load("train", 64, 0), tokenizer)


def tiny(seed: int = 0):
    """Return a randomly initialised tiny BERT classifier (seeded)."""
    return tl.build_model("tiny", seed=seed)


def snapshot(model) -> dict[str, torch.Tensor]:
    """Return a copy of every weight, by name."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def train(model, groups, data, tokenizer, callbacks=(), epochs=1, steps=None, lr=LR, batch=16):
    """Run `fit` for a few steps with the strategy's groups and callbacks; return the history."""
    config = tl.TrainConfig(lr=lr, epochs=epochs, max_steps=steps, batch_size=batch, eval_every=0,
                            warmup_ratio=0.0, progress=False)
    return tl.fit(model, data, config=config, collate_fn=classification_collator(tokenizer),
                  groups=groups, callbacks=callbacks)


def changed(before: dict, model) -> set[str]:
    """Return the names of the weights that differ from `before`."""
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="unknown strategy 'adapter'.*full, frozen"):
        prepare("adapter", tiny(), LR)
    assert set(STRATEGIES) == {"full", "frozen", "discriminative", "gradual", "ulmfit", "lora"}


def test_bad_learning_rate_is_refused():
    with pytest.raises(ValueError, match="lr must be positive"):
        prepare("full", tiny(), 0.0)


def test_layer_groups_bottom_to_top():
    model = tiny()
    names = [name for name, _ in layer_groups(model)]
    assert names == ["embeddings", "layer.0", "layer.1", "head"]
    grouped = [id(p) for _, ps in layer_groups(model) for p in ps]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each weight once


def test_frozen_body_does_not_change(data, tokenizer):
    model, groups, callbacks = prepare("frozen", tiny(), LR)
    before = snapshot(model)
    train(model, groups, data, tokenizer, callbacks, steps=3)
    moved = changed(before, model)
    assert moved and all(n.startswith("classifier.") for n in moved), moved
    assert trained_parameters(groups) == 128 * 2 + 2  # the linear head only


def test_full_fine_tuning_changes_every_layer(data, tokenizer):
    model, groups, callbacks = prepare("full", tiny(), LR)
    before = snapshot(model)
    train(model, groups, data, tokenizer, callbacks, steps=3)
    moved = changed(before, model)
    for group in ("embeddings", "layer.0", "layer.1", "pooler", "classifier"):
        assert any(group in n for n in moved), group
    assert trained_parameters(groups) == tl.count_parameters(model)


def test_lora_trains_only_adapters_and_head(data, tokenizer):
    base = tiny()
    model, groups, callbacks = prepare("lora", base, LR)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable), trainable
    assert any("lora_A" in n and "query" in n for n in trainable)
    assert any("lora_B" in n and "value" in n for n in trainable)
    assert not any("key" in n or "dense" in n for n in trainable)
    assert trained_parameters(groups) == tl.count_parameters(model, trainable=True)
    assert trained_parameters(groups) < 0.05 * tl.count_parameters(model)
    before = snapshot(model)
    train(model, groups, data, tokenizer, callbacks, steps=3)
    moved = changed(before, model)
    assert any("lora_B" in n for n in moved) and any("classifier" in n for n in moved)
    assert moved <= trainable, moved - trainable  # nothing outside adapters and head moved


def test_discriminative_rates_divide_by_2_6_per_layer_group():
    groups = discriminative_groups(tiny(), LR)
    rate = {g["name"]: g["lr"] for g in groups}
    order = ["embeddings", "layer.0", "layer.1", "head"]
    assert list(rate) == order
    assert rate["head"] == LR
    for lower, upper in zip(order[:-1], order[1:], strict=True):
        assert rate[lower] == pytest.approx(rate[upper] / ULMFIT_DECAY, rel=1e-12)
    assert rate["embeddings"] == pytest.approx(LR / 2.6**3)


def test_discriminative_rates_survive_the_scheduler(data, tokenizer):
    seen = []

    class Rates(tl.Callback):
        def on_step_end(self, state):
            seen.append({g["name"]: g["lr"] for g in state.optimizer.param_groups})

    model, groups, callbacks = prepare("discriminative", tiny(), LR)
    config = tl.TrainConfig(lr=LR, max_steps=4, batch_size=16, eval_every=0, progress=False)
    tl.fit(model, data, config=config, collate_fn=classification_collator(tokenizer),
           groups=groups, callbacks=[*callbacks, Rates()])
    for rates in seen[1:]:  # the linear schedule scales every group by the same factor
        assert rates["layer.1"] == pytest.approx(rates["head"] / 2.6)
        assert rates["layer.0"] == pytest.approx(rates["head"] / 2.6**2)


def test_gradual_unfreezing_one_more_group_per_epoch_from_the_top(data, tokenizer):
    model, groups, callbacks = prepare("gradual", tiny(), LR)
    unfreeze = next(cb for cb in callbacks if isinstance(cb, GradualUnfreezing))
    names = [name for name, _ in layer_groups(model)]
    moved_per_epoch = []

    class Watch(tl.Callback):
        def on_epoch_start(self, state):
            self.before = snapshot(state.model)

        def on_epoch_end(self, state):
            moved_per_epoch.append(changed(self.before, state.model))

    train(model, groups, data, tokenizer, [*callbacks, Watch()], epochs=5)  # 4 steps an epoch
    assert unfreeze.unfrozen == [names[-1:], names[-2:], names[-3:], names, names]
    # epoch 0: only the head moves; epoch 1: layer.1 too, not layer.0 nor the embeddings
    assert not any(".layer." in n or "embeddings" in n for n in moved_per_epoch[0])
    assert any("classifier" in n for n in moved_per_epoch[0])
    assert any(".layer.1." in n for n in moved_per_epoch[1])
    assert not any(".layer.0." in n or "embeddings" in n for n in moved_per_epoch[1])
    assert any("embeddings" in n for n in moved_per_epoch[3])


def test_ulmfit_combines_both(data, tokenizer):
    model, groups, callbacks = prepare("ulmfit", tiny(), LR)
    assert len({g["lr"] for g in groups}) == 4
    assert any(isinstance(cb, GradualUnfreezing) for cb in callbacks)


@pytest.fixture(scope="module")
def theta(tmp_path_factory, tokenizer):
    """A tiny θ_S (random weights, seeded) saved with save_pretrained, as pretrain_source does."""
    path = tmp_path_factory.mktemp("theta_S")
    tiny(seed=1).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_logme_ranks_a_pretrained_body_above_a_random_one():
    # the packaged MiniLM (pretrained on real English) against a random tiny BERT, as θ_S
    # candidates for film reviews: LogME on frozen features must prefer the pretrained body
    target = tl.get_task("film_sentiment").load("train", 200, 0)
    labels = np.array(target["label"])
    minilm = tl.pretrain_source(model="minilm", init="pretrained")
    pretrained = features(minilm, target["text"], model="minilm")
    assert pretrained.shape == (200, 384)
    scores = {"minilm": logme(pretrained, labels), "random": logme(features(None, target["text"]),
                                                                    labels)}
    assert rank_sources(scores) == ["minilm", "random"], scores
    assert scores["minilm"] > scores["random"] + 0.02, scores  # measured: −0.70 against −0.75
    shuffled = np.random.default_rng(0).permutation(labels)  # the labels must match the texts
    assert logme(pretrained, shuffled) < scores["minilm"] - 0.05


def test_features_mean_pooling_ignores_padding(theta):
    short, long = "the finish is great .", "the finish is great . the manual is awful and slow ."
    for pooling in ("mean", "cls"):
        alone = features(theta, [short], pooling=pooling)
        batched = features(theta, [short, long], pooling=pooling)
        assert alone.shape == (1, 128) and batched.shape == (2, 128)
        np.testing.assert_allclose(alone[0], batched[0], atol=1e-5)
    assert not np.allclose(features(theta, [short]), features(theta, [short], pooling="cls"))
    with pytest.raises(ValueError, match="unknown pooling"):
        features(theta, [short], pooling="max")


def test_transfer_with_a_strategy_returns_a_run_and_forgetting(theta, data, tokenizer):
    source_head = tl.build_model("tiny", theta=theta, new_head=False).classifier
    config = tl.TrainConfig(lr=1e-3, max_steps=4, batch_size=16, eval_every=0, progress=False)
    rows = tl.get_task("product_sentiment").load("train", 64, 0)
    before = source_accuracy(tl.build_model("tiny", theta=theta), source_head, data,
                             tokenizer)
    for strategy in ("frozen", "lora"):
        run, model = tl.transfer(theta, "product_sentiment", 64, 0, config=config,
                                 data=(data, rows), strategy=strategy)
        assert isinstance(run, Run) and run.strategy == strategy and run.family == "classification"
        assert run.trained < run.total
        task = tl.get_task("product_sentiment")  # the run's accuracy is its model's, on `rows`
        evaluate = family_of("product_sentiment").evaluation(rows, tokenizer, task, config)
        assert run.metrics["accuracy"] == pytest.approx(evaluate(model)["accuracy"], abs=1e-6)
        after = source_accuracy(model, source_head, data, tokenizer)
        if strategy == "frozen":  # the body did not move: nothing forgotten
            assert after == before


def build(target: str):
    """Return the tiny model the target's family builds (random, seeded)."""
    return family_of(target).build("tiny", tl.get_task(target), None, seed=0)


@pytest.mark.parametrize("target", ["ner_news", "qa_people"])
def test_every_strategy_fits_token_and_span_heads(target):
    for strategy in STRATEGIES:
        model, groups, _ = prepare(strategy, build(target), LR)
        head = "classifier" if target == "ner_news" else "qa_outputs"
        trainable = {n for g in groups for p in g["params"]
                     for n, q in model.named_parameters() if q is p}
        assert any(head in n for n in trainable), (strategy, trainable)
        if strategy in ("frozen", "lora"):
            assert all(head in n or "lora_" in n for n in trainable), (strategy, trainable)


def test_encoder_decoder_has_two_stacks_and_refuses_frozen_and_lora():
    model = build("toy_translation")
    names = [name for name, _ in layer_groups(model)]
    assert names == ["embeddings", "encoder.layer.0", "encoder.layer.1", "decoder.layer.0",
                     "decoder.layer.1", "head"]
    assert [s for s in STRATEGIES if unsupported(s, model) is None] == [
        "full", "discriminative", "gradual", "ulmfit"]
    with pytest.raises(ValueError, match="'frozen' does not fit.*full, discriminative, gradual"):
        tl.transfer(None, "toy_translation", 4, 0, strategy="frozen")


def test_decoder_llm_layers_and_its_own_adapters():
    from transfer_lab.families.causal import CausalLM
    from transfer_lab.models import smollm2

    llama = smollm2.tiny_llama(tl.load_tokenizer("smollm2"))
    assert [name for name, _ in layer_groups(llama)][:2] == ["embeddings", "layer.0"]
    assert unsupported("discriminative", llama) is None and unsupported("frozen", llama)
    adapted = smollm2.lora(llama, r=2, alpha=4, target_modules=CausalLM().targets)
    with pytest.raises(ValueError, match="LoRA adapters from its family.*choose one of: full$"):
        prepare("lora", adapted, LR)


class Scripted(EarlyStopping):
    """Early stopping fed a fixed sequence of validation losses (no evaluation)."""

    def __init__(self, losses, patience):
        super().__init__(None, None, patience=patience)
        self.losses = iter(losses)

    def measure(self, model):
        return {"loss": next(self.losses)}


def test_early_stopping_keeps_the_best_weights_before_it_stops():
    model = tiny()
    stop = Scripted([0.9, 0.5, 0.6, 0.7, 0.1, 0.05], patience=2)
    for epoch in range(6):
        with torch.no_grad():
            model.classifier.bias.fill_(epoch)  # the weights of each epoch, told apart
        stop.on_epoch_end(tl.FitState(model, None, epoch=epoch))
    # best 0.5 at epoch 2; two epochs without improvement: stopped at epoch 4; 0.1 never counts
    assert (stop.best_epoch, stop.stopped_epoch) == (2, 4)
    assert stop.restore(tiny()).classifier.bias.tolist() == [1.0, 1.0]


def test_monitor_records_the_training_set_curve(data, tokenizer):
    collate = classification_collator(tokenizer)
    watch, stop = Monitor(data, collate, every=2), EarlyStopping(data, collate, patience=1)
    model, groups, callbacks = prepare("full", tiny(), LR)
    train(model, groups, data, tokenizer, [*callbacks, watch, stop], epochs=4)
    assert [c["epoch"] for c in watch.curve] == [2, 4]
    assert [c["epoch"] for c in stop.curve] == [1, 2, 3, 4]
    assert watch.curve[-1]["loss"] == pytest.approx(stop.curve[-1]["loss"])
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(data, collate, patience=0)
