"""Tests of transfer_lab.qa: world questions, answer spans in windows, decoding back to text."""

import numpy as np
import pytest
import torch
from datasets import Dataset, Features, List, Value
from transformers import AutoModelForQuestionAnswering

import transfer_lab as tl
from transfer_lab.data import qa
from transfer_lab.families import spans
from transfer_lab.metrics import squad_metrics
from transfer_lab.models import load_tokenizer, model_config


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny")


def oracle_logits(enc, width: int):
    """Return start/end logits that put all mass on each window's gold answer tokens."""
    starts = np.full((len(enc), width), -10.0)
    ends = np.full((len(enc), width), -10.0)
    for i, (s, e) in enumerate(zip(enc["start_positions"], enc["end_positions"],
                                         strict=True)):
        starts[i, s] = ends[i, e] = 10.0 if s else -10.0
    return starts, ends


def test_answer_tokens_hand_example():
    # [CLS] where is acme ? [SEP] acme is based in oslo . [SEP]
    offsets = [(0, 0), (0, 5), (6, 8), (9, 13), (14, 15), (0, 0),
               (0, 4), (5, 7), (8, 13), (14, 16), (17, 21), (22, 23), (0, 0)]
    seq = [None, 0, 0, 0, 0, None, 1, 1, 1, 1, 1, 1, None]
    assert spans.answer_tokens(offsets, seq, 17, 21) == (10, 10)  # "oslo"
    assert spans.answer_tokens(offsets, seq, 8, 21) == (8, 10)  # "based in oslo"
    # a window that starts after the answer holds none of it: point at [CLS]
    assert spans.answer_tokens(offsets[:6] + offsets[9:], seq[:6] + seq[9:], 0, 4) == (0, 0)


def test_questions_are_seeded_and_answers_sit_at_answer_start():
    a = qa.questions("people", 40, 0)
    assert a.column_names == qa.COLUMNS
    assert list(a["context"]) == list(qa.questions("people", 40, 0)["context"])
    assert list(a["context"]) != list(qa.questions("people", 40, 1)["context"])
    for row in a:
        text, start = row["answers"]["text"][0], row["answers"]["answer_start"][0]
        assert row["context"][start:start + len(text)] == text
    asked = qa.questions("orgs", 40, 0)["question"]
    org_questions = {" ".join(q.split()[:2]) for q in asked}
    assert org_questions <= {"where is", "who founded", "what does"}
    with pytest.raises(ValueError, match="orgs"):
        qa.questions("films", 1, 0)


def test_decoded_span_equals_the_answer_text(tokenizer):
    data = qa.questions("orgs", 60, 3)
    enc = spans.encode_qa(data, tokenizer, max_length=64, stride=16)
    windows = spans.encode_qa_eval(data, tokenizer, max_length=64, stride=16)
    assert len(windows.offsets) == len(enc)
    starts, ends = oracle_logits(enc, 64)
    predictions = spans.decode(starts, ends, windows, list(data["context"]))
    assert predictions == [a["text"][0] for a in data["answers"]]


def test_long_context_needs_windows_and_still_decodes(tokenizer):
    facts = [f"{p} lives in {c} ." for p, c in zip(
        "alice bruno chen dana elena farid greta hiro ines jonas".split(),
        "paris lisbon berlin cairo lima oslo dublin kyoto nairobi quito".split(), strict=True)]
    context = " ".join(facts)
    answer = "nairobi"  # near the end: only the last windows hold it
    row = {"id": ["long"], "context": [context], "question": ["where does ines live ?"],
           "answers": [{"text": [answer], "answer_start": [context.index(answer)]}]}
    data = Dataset.from_dict(row)
    enc = spans.encode_qa(data, tokenizer, max_length=24, stride=8)
    assert len(enc) >= 3  # the context overflows into several windows
    positions = list(zip(enc["start_positions"], enc["end_positions"], strict=True))
    assert (0, 0) in positions and any(s > 0 for s, _ in positions)
    for ids, (s, e) in zip(enc["input_ids"], positions, strict=True):
        if s:  # the labelled tokens of a window spell the answer
            assert tokenizer.decode(ids[s:e + 1]).replace(" ##", "") == answer
    windows = spans.encode_qa_eval(data, tokenizer, max_length=24, stride=8)
    assert windows.example == [0] * len(enc)
    starts, ends = oracle_logits(enc, 24)
    assert spans.decode(starts, ends, windows, [context]) == [answer]
    # a distractor window whose best span scores lower does not win
    starts[0, 9] = ends[0, 9] = 3.0
    assert spans.decode(starts, ends, windows, [context]) == [answer]


def test_from_squad_keeps_the_offline_columns(tokenizer):
    features = Features({
        "id": Value("string"), "title": Value("string"), "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))}})
    context = "Architecturally, the school has a Catholic character."
    ds = Dataset.from_dict({"id": ["5733be284776f41900661182"], "title": ["University"],
                            "context": [context], "question": ["What character has the school?"],
                            "answers": [{"text": ["a Catholic character"],
                                         "answer_start": [context.index("a Catholic")]}]},
                           features=features)
    out = qa.from_squad(ds)
    assert out.column_names == qa.COLUMNS
    with pytest.raises(ValueError, match="answers"):
        qa.from_squad(ds.remove_columns("answers"))


def test_squad_offline_error_names_the_quick_profile(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(tl.InputError, match="quick profile"):
        tl.get_task("squad").load("train", 10)


def test_new_head_and_a_short_fine_tune(tmp_path, tokenizer):
    torch.manual_seed(0)
    saved = AutoModelForQuestionAnswering.from_config(model_config("tiny"))
    saved.save_pretrained(tmp_path)
    net = tl.build_model("tiny", "extractive_qa", theta=tmp_path, seed=1)
    assert not torch.equal(net.qa_outputs.weight, saved.qa_outputs.weight)
    emb = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(net.state_dict()[emb], saved.state_dict()[emb])
    config = tl.pipeline.target_config("tiny", "qa_orgs").replace(epochs=2, eval_every=1,
                                                                   progress=False)
    train, test = tl.target_data("qa_orgs", 8, 0, tokenizer, config.max_length, test_examples=16)
    assert {"start_positions", "end_positions"} <= set(train.column_names)
    assert test.column_names == qa.COLUMNS and len(test) == 16  # raw rows: questions to answer
    run, model = tl.transfer(None, "qa_orgs", labels=8, config=config, data=(train, test))
    row = run.to_dict()
    assert [p["epoch"] for p in row["curve"]] == [1, 2]
    assert 0.0 <= row["exact_match"] <= row["f1"] <= 100.0 and row["score"] == row["f1"]
    predictions = spans.predict(model, test, tokenizer)
    assert len(predictions) == 16
    assert squad_metrics(predictions, [a["text"] for a in test["answers"]])["f1"] == row["f1"]
