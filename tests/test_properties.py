"""Property tests (hypothesis) of the encoders of chapter 5: NER labels aligned to word pieces,
QA answer spans mapped to tokens and back, through truncation and stride windows."""

import string

import numpy as np
from datasets import Dataset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import transfer_lab as tl
from transfer_lab.data import ner
from transfer_lab.families import spans, tokens

TOKENIZER = tl.load_tokenizer("tiny")
NORMALIZE = TOKENIZER.backend_tokenizer.normalizer.normalize_str
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

# A word the tokenizer keeps: something is left after normalisation. (A word of control
# characters only, e.g. "\x01", becomes no token at all, so encode_ner cannot label it.)
WORDS = st.text(min_size=1, max_size=12).filter(lambda w: NORMALIZE(w).strip())


@SETTINGS
@given(data=st.data(), max_length=st.integers(4, 48))
def test_ner_first_piece_carries_the_label_the_others_are_ignored(data, max_length):
    words = data.draw(st.lists(WORDS, min_size=1, max_size=12))
    tags = data.draw(st.lists(st.sampled_from(ner.LABELS), min_size=len(words),
                              max_size=len(words)))
    row = tokens.encode_ner(Dataset.from_dict({"tokens": [words], "tags": [tags]}), TOKENIZER,
                         max_length=max_length)[0]
    enc = TOKENIZER(words, is_split_into_words=True, truncation=True, max_length=max_length)
    assert row["input_ids"] == enc["input_ids"] and len(row["labels"]) == len(row["input_ids"])
    word_ids = enc.word_ids()
    kept = sorted({w for w in word_ids if w is not None})
    assert kept == list(range(len(kept)))  # truncation keeps a prefix of the words
    if len(enc["input_ids"]) < max_length:
        assert len(kept) == len(words)  # nothing truncated: every word is labelled
    seen = set()
    for wid, label in zip(word_ids, row["labels"], strict=True):
        if wid is None or wid in seen:
            assert label == tokens.IGNORE  # special tokens and later pieces of a word
        else:
            assert label == ner.LABELS.index(tags[wid])  # the first piece: the word's label
            seen.add(wid)
    assert sum(label != tokens.IGNORE for label in row["labels"]) == len(kept)


QA_WORD = st.text(string.ascii_letters + string.digits + ".,!?'-", min_size=1, max_size=9)


@SETTINGS
@given(data=st.data(), stride=st.integers(4, 10))
def test_qa_answer_span_maps_to_tokens_and_back_through_stride_windows(data, stride):
    words = data.draw(st.lists(QA_WORD, min_size=1, max_size=40))
    i = data.draw(st.integers(0, len(words) - 1))
    j = data.draw(st.integers(i + 1, min(len(words), i + 3)))
    context, answer = " ".join(words), " ".join(words[i:j])
    start = len(" ".join(words[:i])) + (1 if i else 0)
    assert context[start:start + len(answer)] == answer
    rows = Dataset.from_dict({"id": ["x"], "question": ["what is it ?"], "context": [context],
                              "answers": [{"text": [answer], "answer_start": [start]}]})
    max_length = 32
    train = spans.encode_qa(rows, TOKENIZER, max_length, stride)
    windows = spans.encode_qa_eval(rows, TOKENIZER, max_length, stride)
    assert len(train) == len(windows.offsets) == len(windows.example)
    holding = []
    for w, (s, e) in enumerate(zip(train["start_positions"], train["end_positions"],
                                   strict=True)):
        if (s, e) == (0, 0):
            continue  # this window does not hold the whole answer: it points at [CLS]
        offsets = windows.offsets[w]
        assert context[offsets[s][0]:offsets[e][1]] == answer
        holding.append((w, s, e))
    pieces = TOKENIZER(context, add_special_tokens=False, return_offsets_mapping=True)
    length = sum(start <= a and b <= start + len(answer) for a, b in pieces["offset_mapping"])
    if length <= stride:  # windows overlap by `stride` tokens: a short answer fits in one
        assert holding, (context, answer, stride)
    for w, s, e in holding:  # decode() reads back the answer from one-hot logits
        starts = [np.full(len(offs), -10.0) for offs in windows.offsets]
        ends = [np.full(len(offs), -10.0) for offs in windows.offsets]
        starts[w][s], ends[w][e] = 10.0, 10.0
        assert spans.decode(starts, ends, windows, [context]) == [answer]
