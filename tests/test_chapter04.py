"""What chapter 4 relies on: θ_S saved whole, a new head on its body, a fresh optimizer per fit."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score
from transformers import AutoTokenizer

import transfer_lab as tl
from transfer_lab.families import classification_metric
from transfer_lab.families.classification import classification_collator, encode_classification
from transfer_lab.models import reset_head

TEXT = "the film was great"


@pytest.fixture(scope="module")
def theta_S(tmp_path_factory):
    """Return a θ_S folder written by pretrain_source: a tiny BERT after 2 source steps."""
    out = tmp_path_factory.mktemp("ch04") / "theta_S"
    config = tl.TrainConfig(lr=5e-4, batch_size=16, max_steps=2, eval_every=0, progress=False)
    return tl.pretrain_source("product_sentiment", model="tiny", examples=32, config=config,
                              out_dir=out)


@pytest.fixture(scope="module")
def film():
    """Return 16 encoded film reviews (the target) and the tiny tokenizer."""
    tokenizer = tl.load_tokenizer("tiny")
    texts = tl.get_task("film_sentiment").load("train", 16, seed=0)
    return encode_classification(texts, tokenizer), tokenizer


def test_theta_S_folder_holds_model_and_tokenizer(theta_S):
    names = {p.name for p in theta_S.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    reloaded = AutoTokenizer.from_pretrained(theta_S)
    assert reloaded(TEXT)["input_ids"] == tl.load_tokenizer("tiny")(TEXT)["input_ids"]
    assert "[UNK]" not in reloaded.convert_ids_to_tokens(reloaded(TEXT)["input_ids"])


def test_new_head_keeps_body_and_resets_head(theta_S):
    kept = tl.build_model("tiny", theta=theta_S, new_head=False).state_dict()
    fresh = tl.build_model("tiny", theta=theta_S, seed=1).state_dict()
    differ = {k for k in kept if not torch.equal(kept[k], fresh[k])}
    assert differ, "reset_head changed nothing"
    assert all(k.startswith("classifier") for k in differ), differ
    assert all(torch.equal(kept[k], fresh[k]) for k in kept if k.startswith("bert."))


def test_reset_head_is_seeded(theta_S):
    a, b = (tl.build_model("tiny", theta=theta_S) for _ in range(2))
    reset_head(b, seed=0)
    assert torch.equal(a.classifier.weight, b.classifier.weight)


def test_fit_builds_a_fresh_optimizer_for_each_model(theta_S, film):
    data, tokenizer = film
    config = tl.TrainConfig(lr=1e-3, max_steps=2, batch_size=8, eval_every=0, progress=False)
    for _ in range(2):  # a second model must move too: nothing carries over between calls
        model = tl.build_model("tiny", theta=theta_S)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        tl.fit(model, data, config=config, collate_fn=classification_collator(tokenizer))
        moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
        assert len(moved) == len(before), set(before) - set(moved)


def test_evaluate_uses_eval_mode_and_restores_train_mode(theta_S, film):
    data, tokenizer = film
    model = tl.build_model("tiny", theta=theta_S)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    model.train()
    metrics = tl.evaluate(model, data, collate_fn=classification_collator(tokenizer),
                          metric_fn=classification_metric)
    assert seen and not any(seen), "evaluate ran the model in train mode (dropout on)"
    assert model.training, "evaluate did not restore train mode"
    model.eval()  # each review alone, unpadded, with dropout off: what evaluate must have scored
    with torch.no_grad():
        alone = [model(input_ids=torch.tensor([row["input_ids"]]),
                       labels=torch.tensor([row["labels"]])) for row in data]
    # dropout on moves the mean loss by ~6e-4 here (measured); padding and batching by ~1e-7
    assert metrics["loss"] == pytest.approx(torch.stack([o.loss for o in alone]).mean().item(),
                                            abs=1e-5)
    predicted = [o.logits.argmax(-1).item() for o in alone]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(data["labels"], predicted))
