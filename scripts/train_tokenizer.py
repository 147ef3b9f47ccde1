"""Train the world's WordPiece tokenizer once and write transfer_lab/assets/tokenizer.json.

WordPiece training is not repeatable across processes, so the book ships the result; run
`python scripts/train_tokenizer.py` to regenerate it after changing the world's lexicon.
"""

from pathlib import Path

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)

from transfer_lab.data import world

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
OUT = Path(__file__).resolve().parents[1] / "transfer_lab" / "assets" / "tokenizer.json"


def corpus() -> list[str]:
    """Return texts covering every word the world writes, and the toy language's words."""
    texts = [e.text for d in world.DOMAINS for e in world.sentiment(d, 2000, 0)]
    texts += [e.text for e in world.topic(2000, 0)] + world.mlm_corpus(2000, 0)
    texts += world.vocabulary() + world.QUESTION_WORDS + list(world.toy_lexicon().values())
    return texts


def main() -> None:
    """Train and save the tokenizer."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(cleanup=False)  # decode " ." as written
    tok.train_from_iterator(corpus(), trainers.WordPieceTrainer(vocab_size=3000,
                                                                special_tokens=SPECIAL))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(OUT))
    print(f"wrote {OUT} ({tok.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main()
