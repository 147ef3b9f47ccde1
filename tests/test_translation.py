"""Tests of transfer_lab.translation: the toy language's rules, encoding, the model, metrics."""

import pytest
import torch

import transfer_lab as tl
from transfer_lab.data import translation
from transfer_lab.families import seq2seq
from transfer_lab.metrics import translation_metrics


def toy(*english_words: str) -> str:
    """Return the toy words of English words, in the given order (the expected answer)."""
    lex = translation.lexicon()
    return " ".join(lex[w] for w in english_words)


@pytest.mark.parametrize(("english", "expected"), [
    # articles dropped; copula verb last; punctuation dropped
    ("the plot was good .", ("plot", "good", "was")),
    # adjective after its noun, its intensifier travels with it
    ("a very good film", ("film", "very", "good")),
    # subject-object-verb: the verb goes to the end of its clause, after the place
    ("alice bought a cheap phone in paris .".replace("cheap", "decent"),
     ("alice", "phone", "decent", "in", "paris", "bought")),
    # negation stays before the adjective; "at all" stays in place
    ("the sound is not brilliant at all .", ("sound", "not", "brilliant", "at", "all", "is")),
    # each clause of a coordination is reordered on its own; the conjunction stays between
    ("the cast was dull , but the ending was superb .",
     ("cast", "dull", "was", "but", "ending", "superb", "was")),
])
def test_to_toy_rules_on_hand_made_examples(english, expected):
    assert translation.to_toy(english) == toy(*expected)


def test_to_toy_rejects_words_outside_the_lexicon():
    with pytest.raises(ValueError, match="not in the toy lexicon"):
        translation.to_toy("the spaceship was good")


def test_toy_pairs_are_seeded_short_and_translated_by_the_rules():
    a, b = translation.toy_pairs(50, seed=3), translation.toy_pairs(50, seed=3)
    assert a["source"] == b["source"] and a["source"] != translation.toy_pairs(50, seed=4)["source"]
    assert all(len(s.split()) <= translation.MAX_WORDS + 1 for s in a["source"])  # + the full stop
    assert all(translation.to_toy(s) == t for s, t in zip(a["source"], a["target"], strict=True))
    task = tl.get_task("toy_translation")
    assert task.family == "seq2seq"
    train, test = task.load("train", 200), task.load("test", 200)
    seen = set(train["source"])
    assert sum(s in seen for s in test["source"]) < 0.25 * len(test)  # mostly new sentences


def test_bleu_of_an_identical_sentence_is_100():
    sentence = translation.to_toy("the plot was very good but the ending was dull .")
    scores = translation_metrics([sentence], [sentence])
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert translation_metrics([toy("plot", "good")], [sentence])["bleu"] < 50


def test_encode_seq2seq_pads_labels_with_minus_100():
    tok = tl.load_tokenizer("tiny")
    pairs = translation.toy_pairs(2, seed=0).select([0, 1])
    pairs = pairs.from_dict({"source": ["the plot was good .", "a dull film"],
                             "target": [toy("plot", "good", "was"), toy("film", "dull")]})
    data = seq2seq.encode_seq2seq(pairs, tok)
    assert set(data.column_names) == {"input_ids", "attention_mask", "labels", "token_type_ids"} \
        or set(data.column_names) == {"input_ids", "attention_mask", "labels"}
    # labels: the target after [CLS], ending with [SEP] (the decoder starts from [CLS])
    assert data[0]["labels"][0] != tok.cls_token_id and data[0]["labels"][-1] == tok.sep_token_id
    batch = seq2seq.seq2seq_collator(tok)([data[0], data[1]])
    assert batch["labels"].shape == (2, 4)
    assert batch["labels"][1].tolist()[-1] == -100  # the shorter target is padded with -100
    assert (batch["labels"] == tok.pad_token_id).sum() == 0
    assert batch["input_ids"][1, -1] == tok.pad_token_id  # inputs are padded with [PAD]


@pytest.fixture(scope="module")
def theta(tmp_path_factory):
    """Return a checkpoint folder of a seeded, untrained tiny masked-LM BERT (a stand-in θ_S)."""
    out = tmp_path_factory.mktemp("theta") / "theta_S"
    tl.build_model("tiny", "mlm", seed=7).save_pretrained(out)
    tl.load_tokenizer("tiny").save_pretrained(out)
    return out


def test_build_seq2seq_sets_special_tokens_and_warm_starts(theta):
    tok = tl.load_tokenizer("tiny")
    for theta_S, warm in ((None, "both"), (theta, "both"), (theta, "encoder")):
        model = seq2seq.build_seq2seq(theta_S, seed=0, warm_start=warm)
        for cfg in (model.config, model.generation_config):
            assert cfg.decoder_start_token_id == tok.cls_token_id
            assert cfg.pad_token_id == tok.pad_token_id
            assert cfg.eos_token_id == tok.sep_token_id
        assert model.decoder.config.is_decoder and model.decoder.config.add_cross_attention
    saved = tl.build_model("tiny", "mlm", seed=7).bert.embeddings.word_embeddings.weight
    both, scratch = seq2seq.build_seq2seq(theta, seed=0), seq2seq.build_seq2seq(None, seed=0)
    encoder_only = seq2seq.build_seq2seq(theta, seed=0, warm_start="encoder")
    assert tl.count_parameters(both) == tl.count_parameters(scratch)
    emb = "embeddings.word_embeddings.weight"
    assert torch.equal(both.encoder.state_dict()[emb], saved)
    assert torch.equal(both.decoder.bert.state_dict()[emb], saved)
    assert torch.equal(encoder_only.encoder.state_dict()[emb], saved)
    assert torch.equal(encoder_only.decoder.bert.state_dict()[emb],
                       scratch.decoder.bert.state_dict()[emb])  # the decoder stays random
    assert not torch.equal(scratch.encoder.state_dict()[emb], saved)
    with pytest.raises(ValueError, match="warm_start"):
        seq2seq.build_seq2seq(theta, warm_start="decoder")


def test_a_short_training_lowers_the_loss_and_translates():
    tok = tl.load_tokenizer("tiny")
    task, family = tl.get_task("toy_translation"), tl.get_family("seq2seq")
    config = tl.pipeline.target_config("tiny", "toy_translation").replace(max_steps=30)
    data = (family.encode(translation.toy_pairs(64, seed=0), tok, task, config.max_length),
            translation.toy_pairs(8, seed=5))

    def run(seed):
        return tl.transfer(None, "toy_translation", 64, seed, config=config, data=data)

    (first, model), (again, _), (other, _) = run(0), run(0), run(1)
    losses = first.to_dict()["train_loss"]
    assert len(losses) == 30 and losses[-1] < losses[0] - 1.0
    assert set(first.metrics) == {"bleu", "chrf", "exact_match", "hypotheses"}
    assert 0.0 <= first.metrics["exact_match"] <= 100.0  # a share in percent, as BLEU
    assert first.to_dict()["score"] == first.metrics["bleu"]
    outputs = first.metrics["hypotheses"]
    assert len(outputs) == 8 and all(isinstance(h, str) for h in outputs)
    # the same seed trains the same model; another seed starts and shuffles differently
    assert again.to_dict()["train_loss"] == losses and again.metrics == first.metrics
    assert other.to_dict()["train_loss"] != losses
    assert seq2seq.translate(model, tok, list(data[1]["source"])) == outputs  # what was scored
    words = ["good", "bad", "dull"]
    with torch.no_grad():  # each sentence alone: the word's vector after [CLS] the plot was
        vectors = [model.encoder(**tok(f"the plot was {w} .", return_tensors="pt",
                                       return_token_type_ids=False)).last_hidden_state[0, 4]
                   for w in words]
    cosine = torch.nn.functional.cosine_similarity
    pairs = [cosine(vectors[i], vectors[j], dim=0).item() for i in range(3) for j in range(i)]
    assert seq2seq.word_similarity(model.encoder, tok, words) == pytest.approx(
        sum(pairs) / 3, abs=1e-5), pairs


def test_word_recall_separates_content_and_function_words():
    ref = translation.to_toy("the plot was not good .")  # plot not good was
    wrong_content = toy("ending", "not", "dull", "was")
    recall = translation.word_recall([wrong_content, ref], [ref, ref])
    # function words (not, was) found in both; content words (plot, good) only in the second
    assert recall == {"content": pytest.approx(0.5), "function": pytest.approx(1.0)}
