"""Every task family through the one pipeline: the registry, each family's columns, and a short
`compare` per family (scores, test size, an extra arm of `others=`, resume from the records)."""

import json

import pytest
import torch
from _helpers import without_seconds
from safetensors.torch import load_file

import transfer_lab as tl
from transfer_lab.data.tasks import TASKS
from transfer_lab.families import FAMILIES

COLUMNS = {"classification": {"text", "label"}, "token_classification": {"tokens", "tags"},
           "extractive_qa": {"id", "context", "question", "answers"},
           "seq2seq": {"source", "target"}}
WORLD = [task for task in TASKS.values() if not task.hub]
TARGETS = {"classification": "film_sentiment", "token_classification": "ner_reviews",
           "extractive_qa": "qa_orgs", "seq2seq": "toy_translation"}


@pytest.mark.parametrize("task", WORLD, ids=lambda t: t.name)
def test_a_world_task_is_of_a_registered_family_and_loads_its_columns(task):
    assert task.family in FAMILIES
    for split in ("train", "test"):
        rows = task.load(split, 3, 0)
        assert len(rows) == 3 and set(rows.column_names) == COLUMNS[task.family], split


def test_every_family_of_a_task_has_world_tasks_and_its_defaults_are_its_own():
    assert {task.family for task in WORLD} == set(COLUMNS) == set(TARGETS)
    for name in COLUMNS:
        family = tl.get_family(name)
        assert family.name == name and family.metric in family.columns
        assert tl.get_task(family.target).family == name
        if family.init == "mlm":
            assert family.source in tl.CORPORA
        else:
            assert tl.get_task(family.source).family == name
        assert tl.pipeline.family_of(family.target) is family


@pytest.fixture(scope="module")
def theta_S(tmp_path_factory):
    """Return a function: family name → a θ_S of its default source after 2 steps (cached)."""
    made = {}

    def make(name: str):
        if name not in made:
            family = tl.get_family(name)
            config = tl.TrainConfig(lr=1e-3, batch_size=16, max_steps=2, eval_every=0,
                                    max_length=32, progress=False)
            made[name] = tl.pretrain_source(family.source, "tiny", family.init, examples=32,
                                            config=config,
                                            out_dir=tmp_path_factory.mktemp(name) / "theta_S")
        return made[name]

    return make


def short_compare(name: str, theta, **kwargs) -> tl.Comparison:
    """Run a 2-step compare of a family's target: 8 labels, 8 test examples, one seed."""
    target = TARGETS[name]
    config = tl.pipeline.target_config("tiny", target).replace(max_steps=2, eval_every=0)
    return tl.compare(target, theta_S=theta, labels=8, seeds=1, config=config, test_examples=8,
                      progress=False, **kwargs)


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_short_compare_of_each_family(name, theta_S, tmp_path, monkeypatch):
    family, theta = tl.get_family(name), theta_S(name)
    result = short_compare(name, theta, others={"again": theta}, checkpoint_dir=tmp_path / "runs")
    assert (result.family, result.metric, result.test_examples) == (name, family.metric, 8)
    assert list(result.arms) == [*family.default_arms("tiny", family.init), "again"]
    for arm, runs in result.arms.items():
        if arm == "bow":  # no epochs, no training loss: its metrics only
            assert runs[0]["score"] == runs[0]["accuracy"]
            continue
        assert [r["seed"] for r in runs] == [0], arm
        row = runs[0]
        assert set(family.columns) <= set(row) and row["score"] == row[family.metric], arm
        assert len(row["train_loss"]) == 2  # max_steps=2
        assert row["curve"][-1][family.metric] == row[family.metric]  # the final evaluation
    # the arm of `others` is θ_S again: the same run, to the bit; scratch starts elsewhere
    assert without_seconds(result.arms["again"]) == without_seconds(result.arms["transfer"])
    assert result.arms["scratch"][0]["train_loss"] != result.arms["transfer"][0]["train_loss"]
    saved = result.to_dict()
    assert saved["family"] == name and saved["test_examples"] == 8
    back = tl.Comparison.from_json(result.to_json(tmp_path / "results.json"))
    assert back.arms == json.loads(json.dumps(result.arms)) and back.family == name
    assert all(title in result.table() for title in family.columns.values())
    # called again with resume=True: every run is read back from its record, none trains
    real, calls = tl.pipeline.transfer, []
    monkeypatch.setattr(tl.pipeline, "transfer", lambda *a, **k: pytest.fail("trained again"))
    args = dict(others={"again": theta}, checkpoint_dir=tmp_path / "runs", resume=True)
    expected = without_seconds(json.loads(json.dumps(result.arms)))
    resumed = short_compare(name, theta, **args)
    assert without_seconds(resumed.arms) == expected and resumed.test_examples == 8
    # as if it died during the transfer arm: only that run trains again, to the same result
    (tmp_path / "runs" / "transfer-seed0.json").unlink()
    monkeypatch.setattr(tl.pipeline, "transfer",
                        lambda *a, **k: calls.append(k["arm"]) or real(*a, **k))
    assert without_seconds(short_compare(name, theta, **args).arms) == expected
    assert calls == ["transfer"]


def test_bow_arm_sees_the_seed_s_training_rows_only_and_statistics_pair_by_seed(theta_S,
                                                                                 monkeypatch):
    from transfer_lab.families.classification import Classification

    seen = []
    real = Classification.baseline

    def spy(self, arm, model, task, theta, train, test, *args, **kwargs):
        seen.append((arm, list(train["text"]), len(test)))
        return real(self, arm, model, task, theta, train, test, *args, **kwargs)

    monkeypatch.setattr(Classification, "baseline", spy)
    config = tl.pipeline.target_config("tiny").replace(max_steps=2, eval_every=0)
    result = tl.compare("film_sentiment", theta_S=theta_S("classification"), labels=16,
                        seeds=2, arms=["bow", "scratch", "transfer"], config=config,
                        test_examples=40, progress=False)
    assert list(result.arms) == ["bow", "scratch", "transfer"]
    for seed, (arm, texts, tested) in enumerate(seen):  # the seed's 16 labels, never the test
        assert arm == "bow" and tested == 40
        assert texts == list(tl.get_task("film_sentiment").load("train", 16, seed)["text"])
    test_texts = set(tl.get_task("film_sentiment").load("test", 40)["text"])
    assert not any(set(texts) & test_texts for _, texts, _ in seen)
    bow = result.arms["bow"]
    assert [r["seed"] for r in bow] == [0, 1] and all(r["C"] in (0.1, 1.0, 10.0, 100.0)
                                                      for r in bow)
    saved = result.to_dict()
    assert set(saved["summary"]) == {"bow", "scratch", "transfer"}
    diff = saved["differences"]["transfer-bow"]
    paired = [t["score"] - b["score"] for t, b in zip(result.arms["transfer"], bow, strict=True)]
    assert diff["mean"] == pytest.approx(sum(paired) / 2)
    lo, hi = diff["ci95"]
    assert lo <= diff["mean"] <= hi
    assert "transfer − bow" in result.table()


def test_dapt_arm_trains_the_source_from_a_masked_lm_of_the_unlabeled_corpus(
        theta_S, tmp_path, monkeypatch):
    from dataclasses import replace

    from transfer_lab.data.userdata import corpus_from_file

    monkeypatch.setenv("TRANSFER_LAB_CACHE", str(tmp_path / "cache"))
    texts = tl.get_task("film_sentiment").load("train", 40, 7)["text"]
    path = tmp_path / "films.txt"
    path.write_text("\n".join(texts) + "\n\n")
    corpus = corpus_from_file(path, name="films_unlabeled")
    assert corpus.examples == 40 and sorted(corpus.make(40, 0)) == sorted(texts)
    monkeypatch.setitem(tl.data.tasks.CORPORA, corpus.name, tl.data.tasks.Corpus(
        corpus.name, corpus.description, corpus.make, examples=40, steps=2))
    small = replace(tl.config.profile(), source_examples=32, source_steps=3)
    monkeypatch.setattr(tl.pipeline, "profile", lambda: small)
    monkeypatch.setattr(tl.families.classification, "profile", lambda: small)
    config = tl.pipeline.target_config("tiny").replace(max_steps=2, eval_every=0)
    result = tl.compare("film_sentiment", theta_S=theta_S("classification"), labels=8, seeds=1,
                        arms=["dapt", "transfer"], unlabeled=corpus.name, config=config,
                        test_examples=8, progress=False)
    assert list(result.arms) == ["dapt", "transfer"]
    cache = tmp_path / "cache" / "theta_S"
    body = next(cache.glob("tiny-mlm-*"))
    card = json.loads((body / "theta_S.json").read_text())
    assert (card["source"], card["examples"], card["steps"]) == ("films_unlabeled", 40, 2)
    # then the source task (product reviews) trains from that body, not from random
    dapt = json.loads(next(cache.glob("tiny-supervised-*/theta_S.json")).read_text())
    assert (dapt["source"], dapt["theta"], dapt["steps"]) == ("product_sentiment", str(body), 3)
    embedding = "bert.embeddings.word_embeddings.weight"
    film_words = tl.load_tokenizer("tiny").convert_tokens_to_ids(["gripping", "wooden"])
    masked, adapted = (load_file(next(cache.glob(f"tiny-{kind}-*")) / "model.safetensors")
                       [embedding][film_words] for kind in ("mlm", "supervised"))
    assert torch.allclose(adapted, masked, atol=1e-4)  # no product review has a film word
    with pytest.raises(ValueError, match="dapt arm needs unlabeled text"):
        tl.compare("film_sentiment", theta_S=theta_S("classification"), labels=8, seeds=1,
                   arms=["dapt"], config=config, test_examples=8, progress=False)
    given = tl.compare("film_sentiment", theta_S=theta_S("classification"), labels=8, seeds=1,
                       others={"dapt": body}, config=config, test_examples=8, progress=False)
    assert "dapt" in given.arms  # a θ of `others` named like a built-in arm is used as given


def test_selection_tunes_every_arm_alike_on_held_out_labels_only(theta_S, monkeypatch):
    seen = []
    real = tl.pipeline.transfer

    def spy(theta, target, labels, seed, model, config, data=None, **kwargs):
        seen.append((kwargs.get("arm"), config.lr, config.epochs, len(data[0]), len(data[1]),
                     list(data[1]["text"])))
        return real(theta, target, labels, seed, model, config, data=data, **kwargs)

    monkeypatch.setattr(tl.pipeline, "transfer", spy)
    config = tl.pipeline.target_config("tiny").replace(epochs=1, batch_size=8)
    selection = tl.Selection(lrs=(1e-4, 1e-3), validation=0.25, min_steps=4)
    result = tl.compare("film_sentiment", theta_S=theta_S("classification"), labels=16, seeds=1,
                        arms=["scratch", "transfer"], config=config, test_examples=20,
                        selection=selection, progress=False)
    test_texts = set(tl.get_task("film_sentiment").load("test", 20)["text"])
    trials = [s for s in seen if s[0] is None]  # the selection's runs: 12 labels, 4 held out
    finals = [s for s in seen if s[0] is not None]
    assert [(s[1], s[3], s[4]) for s in trials] == [(1e-4, 12, 4), (1e-3, 12, 4)] * 2
    assert all(not set(s[5]) & test_texts for s in trials)  # selection never sees the test
    assert all(s[2] == 2 for s in trials)  # 2 batches of 8 a epoch: 2 epochs reach 4 steps
    for arm, runs in result.arms.items():
        chosen = runs[0]["selected"]
        assert chosen["lr"] in (1e-4, 1e-3) and set(chosen["validation"]) == {"0.0001", "0.001"}
        final = next(s for s in finals if s[0] == arm)
        assert (final[1], final[2], final[3], final[4]) == (chosen["lr"], chosen["epochs"], 16,
                                                            20)
