"""Tests of transfer_lab.ner: world sentences, label alignment on word pieces, metric glue."""

import pytest
import seqeval.metrics as seqeval
import torch
from datasets import ClassLabel, Dataset, Features, List, Value
from transformers import AutoModelForTokenClassification

import transfer_lab as tl
from transfer_lab.data import ner
from transfer_lab.families import tokens
from transfer_lab.models import load_tokenizer, model_config


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


def test_align_labels_hand_made_word_ids():
    # [CLS] xavier(x ##a ##vie ##r) lives in barcelona(bar ##cel ##on ##a) [SEP]
    word_ids = [None, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, None]
    labels = tokens.align_labels(word_ids, [1, 0, 0, 3])
    assert labels == [-100, 1, -100, -100, -100, 0, 0, 3, -100, -100, -100, -100]


def test_encode_ner_labels_first_piece_of_each_word(tokenizer):
    words = ["xavier", "lives", "in", "barcelona", "."]
    tags = ["B-PER", "O", "O", "B-LOC", "O"]
    enc = tokens.encode_ner(Dataset.from_dict({"tokens": [words], "tags": [tags]}), tokenizer)
    pieces = tokenizer.convert_ids_to_tokens(enc[0]["input_ids"])
    labels = enc[0]["labels"]
    assert len(pieces) > len(words) + 2, pieces  # the unknown names really are split
    # reading the labelled pieces back gives one tag per word, on the word's first piece
    kept = [(p, ner.LABELS[lab])
            for p, lab in zip(pieces, labels, strict=True) if lab != tokens.IGNORE]
    assert [t for _, t in kept] == tags
    assert all(not p.startswith("##") for p, _ in kept)
    assert labels[0] == labels[-1] == tokens.IGNORE  # [CLS] and [SEP]
    ignored = sum(lab == tokens.IGNORE for lab in labels)
    assert sum(p.startswith("##") for p in pieces) == ignored - 2


def test_encode_ner_rejects_unknown_tags(tokenizer):
    data = Dataset.from_dict({"tokens": [["acme"]], "tags": [["B-MISC"]]})
    with pytest.raises(ValueError, match="B-MISC"):
        tokens.encode_ner(data, tokenizer)


def test_sentences_are_seeded_iob2_and_domains_differ():
    a, b = ner.sentences("reviews", 50, 0), ner.sentences("reviews", 50, 0)
    assert a["tokens"] == b["tokens"] and a["tags"] == b["tags"]
    assert a["tokens"] != ner.sentences("reviews", 50, 1)["tokens"]
    for words, tags in zip(a["tokens"], a["tags"], strict=True):
        assert len(words) == len(tags)
        for prev, tag in zip(["O"] + tags[:-1], tags, strict=True):
            if tag.startswith("I-"):
                assert prev[2:] == tag[2:], (words, tags)
    kinds = {t[2:] for tags in a["tags"] for t in tags if t != "O"}
    assert kinds == {"PER", "LOC", "ORG", "PROD"}
    news = ner.sentences("news", 50, 0)
    assert set(map(tuple, news["tokens"])).isdisjoint(set(map(tuple, a["tokens"])))
    with pytest.raises(ValueError, match="news"):
        ner.sentences("sports", 1, 0)


def test_metric_glue_from_logits_skips_ignored_tokens():
    names = ner.LABELS
    gold_words = [["B-PER", "O", "B-LOC"], ["B-PROD", "I-PROD"]]
    pred_words = [["B-PER", "O", "B-ORG"], ["B-PROD", "I-PROD"]]
    # token rows: [CLS] w0 w1 ##piece w2 [SEP] / [CLS] w0 w1 [SEP] [PAD] [PAD]
    rows = [[None, 0, 1, None, 2, None], [None, 0, 1, None, None, None]]
    labels = torch.full((2, 6), tokens.IGNORE)
    logits = torch.zeros(2, 6, len(names))
    for r, (row, gold, pred) in enumerate(zip(rows, gold_words, pred_words, strict=True)):
        for t, w in enumerate(row):
            if w is not None:
                labels[r, t] = names.index(gold[w])
                logits[r, t, names.index(pred[w])] = 5.0
            else:
                logits[r, t, names.index("B-ORG")] = 9.0  # ignored tokens must not count
    gold, pred = tokens.tags_from_logits(logits, labels)
    assert gold == gold_words and pred == pred_words
    # gold entities PER, LOC, PROD; predicted PER, ORG, PROD; 2 correct: P = R = F1 = 2/3
    m = tokens.ner_metric()(logits, labels)
    assert m["f1"] == pytest.approx(2 / 3) and m["precision"] == pytest.approx(2 / 3)


def test_from_conll_maps_hub_schema_to_tag_names():
    names = list(ner.CONLL_LABELS)
    features = Features({
        "id": Value("string"), "tokens": List(Value("string")),
        "pos_tags": List(Value("int32")), "chunk_tags": List(Value("int32")),
        "ner_tags": List(ClassLabel(names=names))})
    ds = Dataset.from_dict({"id": ["0"], "tokens": [["EU", "rejects", "German", "call"]],
                            "pos_tags": [[1, 2, 3, 4]], "chunk_tags": [[1, 2, 3, 4]],
                            "ner_tags": [[3, 0, 7, 0]]}, features=features)
    out = ner.from_conll(ds)
    assert out.column_names == ["tokens", "tags"]
    assert out[0]["tags"] == ["B-ORG", "O", "B-MISC", "O"]
    enc = tokens.encode_ner(out, load_tokenizer("tiny"), classes=ner.CONLL_LABELS)
    assert [x for x in enc[0]["labels"] if x != tokens.IGNORE] == [3, 0, 7, 0]


def test_conll_offline_error_names_the_quick_profile(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(tl.InputError, match="quick profile"):
        tl.get_task("conll2003").load("train", 10)
    with pytest.raises(ValueError, match="ner_reviews"):
        tl.get_task("ner_sports")


def test_conll_loader_reads_the_parquet_revision_and_maps_tags(monkeypatch):
    import datasets

    calls = []
    features = Features({"tokens": List(Value("string")),
                         "ner_tags": List(ClassLabel(names=list(ner.CONLL_LABELS)))})
    hub = Dataset.from_dict({"tokens": [["EU", "rejects"]], "ner_tags": [[3, 0]]},
                            features=features)
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **k: calls.append((a, k)) or hub)
    ds = tl.get_task("conll2003").loader("test", 5, 0)
    assert calls == [((ner.CONLL_HUB, None), {"split": "test", "revision": ner.CONLL_REVISION})]
    assert ds.column_names == ["tokens", "tags"] and ds[0]["tags"] == ["B-ORG", "O"]


def test_new_head_from_a_same_shaped_checkpoint(tmp_path):
    torch.manual_seed(0)
    kw = dict(num_classes=len(ner.LABELS))
    saved = AutoModelForTokenClassification.from_config(model_config("tiny", **kw))
    saved.save_pretrained(tmp_path)
    task = tl.get_task("ner_reviews")
    family = tl.get_family(task.family)
    net = family.build("tiny", task, tmp_path, seed=1)
    emb = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(net.state_dict()[emb], saved.state_dict()[emb])  # the body is θ_S
    assert not torch.equal(net.classifier.weight, saved.classifier.weight)  # the head is new
    again = family.build("tiny", task, tmp_path, seed=1)
    assert torch.equal(net.classifier.weight, again.classifier.weight)  # seeded
    assert net.config.id2label[1] == "B-PER" and net.num_labels == len(ner.LABELS)


def test_transfer_runs_and_reports_entity_f1():
    # 128 sentences, 2 epochs at 3e-3: enough for entities to be found (F1 0.66, measured)
    config = tl.pipeline.target_config("tiny", "ner_reviews").replace(
        epochs=2, lr=3e-3, eval_every=1, progress=False)
    tok = load_tokenizer("tiny")
    data = tl.target_data("ner_reviews", 128, 0, tok, test_examples=16)
    assert len(data[1]) == 16 and data[1].column_names == ["tokens", "tags"]  # raw test rows
    run, net = tl.transfer(None, "ner_reviews", 128, 0, config=config, data=data)
    row = run.to_dict()
    assert run.arm == "scratch" and run.family == "token_classification"
    assert [p["epoch"] for p in row["curve"]] == [1, 2]
    assert row["score"] == row["f1"] and len(row["train_loss"]) == 16  # 128 / 16 × 2 epochs
    # the scores are seqeval's on the returned model's tags for the 16 test sentences
    test = data[1]
    predicted = [[t for _, _, t in tokens.tag(net, tok, words)] for words in test["tokens"]]
    kw = dict(y_true=test["tags"], y_pred=predicted, zero_division=0)
    expected = {"f1": seqeval.f1_score(**kw), "precision": seqeval.precision_score(**kw),
                "recall": seqeval.recall_score(**kw)}
    assert {k: row[k] for k in expected} == pytest.approx(expected, abs=1e-9), expected
    assert row["f1"] > 0.3  # entities were found: the comparison above is not of zeros
    words = ["alice", "bought", "the", "zentek", "phone", "."]
    tagged = tokens.tag(net, tok, words)
    assert [w for w, _, _ in tagged] == words and all(t in ner.LABELS for _, _, t in tagged)
