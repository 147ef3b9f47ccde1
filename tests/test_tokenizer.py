"""The shipped world tokenizer covers the world's words and round-trips its texts."""

from transfer_lab.data import world
from transfer_lab.models import load_tokenizer


def test_round_trip_of_world_texts():
    tok = load_tokenizer("tiny")
    for e in world.sentiment("films", 50, 0) + world.sentiment("products", 50, 0):
        ids = tok(e.text)["input_ids"]
        text = tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        assert text == e.text


def test_world_words_are_single_tokens_and_not_unknown():
    tok = load_tokenizer("tiny")
    for word in world.vocabulary():
        pieces = tok.tokenize(word)
        assert tok.unk_token not in pieces
    negative, positive = world.polarity_words()
    split = [w for w in negative + positive if len(tok.tokenize(w)) != 1]
    assert not split, f"rerun scripts/train_tokenizer.py: {split} are not single tokens"
    unk = sum(tok.unk_token in tok.tokenize(e.text) for e in world.sentiment("films", 200, 0))
    assert unk == 0


def test_special_tokens_frame_the_text():
    tok = load_tokenizer("tiny")
    ids = tok("the plot was good .")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert tok.mask_token_id is not None and tok.pad_token_id == 0
