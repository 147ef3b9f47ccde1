"""Named entities: IOB2 tags, labels aligned to word pieces, entity F1 (chapter 5, ch-app-ner).

The offline task: sentences written from the world's lexicon (people, places, organisations,
products and films) and tagged PER / LOC / ORG / PROD in IOB2. The source has plentiful labels
(news sentences); the target has few (review sentences: the same names in other contexts).
CoNLL-2003 (full profile) is mapped to the same columns: `tokens` (words) and `tags` (IOB2 names).
The tasks are registered in `tasks`; the family (model, head, evaluation) is
`families.tokens.TokenClassification`, trained by the one pipeline (`tl.compare`).
"""

from __future__ import annotations

import random

import torch
from datasets import Dataset
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from . import world
from .metrics import ner_metrics

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PROD", "I-PROD")
CONLL_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
IGNORE = -100  # the label of tokens that the loss and the metric skip

# {PER} {LOC} {ORG} are names; {PROD} is a brand and an item, {FILM} a film title (both PROD).
TEMPLATES = {
    "news": [
        "{PER} spoke in {LOC} on {weekday} .",
        "officials from {ORG} met {PER} in {LOC} .",
        "{ORG} published a report on the {PROD} last {when} .",
        "{PER} joined {ORG} in {LOC} last {when} .",
        "{ORG} will sell the {PROD} in {LOC} from {weekday} .",
        "{PER} , the head of {ORG} , visited {LOC} .",
        "the council of {LOC} invited {PER} and {PER} .",
        "{ORG} and {ORG} signed a treaty in {LOC} .",
        "{ORG} paid for {FILM} , which was shot in {LOC} .",
        "the {aspect} of the {PROD} worried {ORG} on {weekday} .",
    ],
    "reviews": [
        "i bought the {PROD} in {LOC} last {when} .",
        "my {relative} {PER} loves the {PROD} .",
        "we watched {FILM} with {PER} .",
        "{PER} directed {FILM} for {ORG} .",
        "the {PROD} from {ORG} was {adj} .",
        "{FILM} is set in {LOC} and the acting is {adj} .",
        "the {aspect} of my {PROD} is {adj} , says {PER} .",
        "{ORG} shipped my {PROD} to {LOC} .",
    ],
}
FILLERS = {
    "weekday": world.WEEKDAYS, "when": world.WHEN, "relative": world.RELATIVES,
    "aspect": world.DOMAINS["products"]["aspects"], "adj": world.POSITIVE + world.NEGATIVE,
}


def _entity(slot: str, rng: random.Random) -> tuple[str, list[str]]:
    """Return (entity type, its words) for an entity slot such as "{PER}"."""
    kind = slot[1:-1]
    if kind == "PER":
        return kind, [rng.choice(world.PEOPLE)]
    if kind == "LOC":
        return kind, [rng.choice(world.PLACES)]
    if kind == "ORG":
        return kind, [rng.choice(world.ORGS)]
    if kind == "PROD":
        return kind, [rng.choice(world.BRANDS), rng.choice(world.DOMAINS["products"]["items"])]
    if kind == "FILM":
        return "PROD", rng.choice(world.FILMS).split()
    raise ValueError(f"unknown entity slot {slot!r}; use {{PER}}, {{LOC}}, {{ORG}}, {{PROD}} "
                     "or {FILM}")


def sentence(template: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """Return (words, IOB2 tags) of one template filled from the world's lexicon."""
    words, tags = [], []
    for slot in template.split():
        if slot.startswith("{") and slot[1:-1].isupper():
            kind, entity = _entity(slot, rng)
            words += entity
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(entity) - 1)
        else:
            words.append(rng.choice(FILLERS[slot[1:-1]]) if slot.startswith("{") else slot)
            tags.append("O")
    return words, tags


def sentences(domain: str, n: int, seed: int) -> Dataset:
    """Return n seeded tagged sentences of a domain ("news" or "reviews"): tokens, tags."""
    if domain not in TEMPLATES:
        raise ValueError(f"unknown NER domain {domain!r}; choose one of: {', '.join(TEMPLATES)}")
    rng = random.Random(f"ner/{domain}/{seed}")
    rows = [sentence(rng.choice(TEMPLATES[domain]), rng) for _ in range(n)]
    return Dataset.from_dict({"tokens": [w for w, _ in rows], "tags": [t for _, t in rows]})


# --- data: the world's sentences, CoNLL-2003 on the hub (tasks.py registers the tasks) -----

CONLL_HUB = "eriktks/conll2003"  # the canonical "conll2003" moved here
CONLL_REVISION = "refs/convert/parquet"  # its loading script no longer runs in datasets >= 4


def from_conll(ds: Dataset) -> Dataset:
    """Return CoNLL-2003 rows mapped to the offline columns: tokens and tags (IOB2 names)."""
    feature = ds.features["ner_tags"].feature
    names = list(getattr(feature, "names", None) or CONLL_LABELS)
    return ds.map(lambda b: {"tags": [[names[i] for i in row] for row in b["ner_tags"]]},
                  batched=True, remove_columns=[c for c in ds.column_names if c != "tokens"])


# --- encoder and metric glue ---------------------------------------------------------------

def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Return one label per token: its word's label on the first piece, IGNORE on the others.

    Special tokens ([CLS], [SEP]; word id None) and the later pieces of a split word get
    IGNORE (-100), so the loss and the metric count each word exactly once.
    """
    out, previous = [], None
    for wid in word_ids:
        out.append(IGNORE if wid is None or wid == previous else word_labels[wid])
        previous = wid
    return out


def encode_ner(data: Dataset, tokenizer: PreTrainedTokenizerBase, labels=LABELS,
               max_length: int = 64) -> Dataset:
    """Return tagged sentences tokenized into word pieces with aligned labels, unpadded."""
    label2id = {name: i for i, name in enumerate(labels)}
    unknown = {t for tags in data["tags"] for t in tags} - set(label2id)
    if unknown:
        raise ValueError(f"tags {sorted(unknown)} are not among the labels {list(labels)}; "
                         "pass the task's labels (e.g. labels=get_task(name).labels)")

    def tok(batch):
        enc = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True,
                        max_length=max_length)
        enc["labels"] = [align_labels(enc.word_ids(i), [label2id[t] for t in tags])
                         for i, tags in enumerate(batch["tags"])]
        return enc

    return data.map(tok, batched=True, remove_columns=data.column_names)


def ner_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorForTokenClassification:
    """Return a collator that pads input ids and labels (with IGNORE) to the longest sentence."""
    return DataCollatorForTokenClassification(tokenizer)


def tags_from_logits(logits: torch.Tensor, labels: torch.Tensor, names=LABELS):
    """Return (gold, predicted) IOB2 tags per sentence, one per word (IGNORE tokens skipped)."""
    gold, pred = [], []
    for p_row, l_row in zip(logits.argmax(-1).tolist(), labels.tolist(), strict=True):
        kept = [(names[g], names[p]) for p, g in zip(p_row, l_row, strict=True) if g != IGNORE]
        gold.append([g for g, _ in kept])
        pred.append([p for _, p in kept])
    return gold, pred


def ner_metric(names=LABELS):
    """Return a metric_fn for `fit`/`evaluate`: entity-level F1, precision, recall (seqeval)."""

    def metric(logits: torch.Tensor, labels: torch.Tensor) -> dict:
        return ner_metrics(*tags_from_logits(logits, labels, names))

    return metric


@torch.inference_mode()
def tag(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
        words: list[str]) -> list[tuple[str, str, str]]:
    """Return (word, its word pieces, predicted tag) for each word of one sentence."""
    model.eval()
    enc = tokenizer(words, is_split_into_words=True, return_tensors="pt")
    enc = enc.to(model.device)
    pred = model(**enc).logits[0].argmax(-1).tolist()
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    word_ids = enc.word_ids(0)
    out = []
    for i, word in enumerate(words):
        idx = [j for j, w in enumerate(word_ids) if w == i]
        out.append((word, " ".join(pieces[j] for j in idx), model.config.id2label[pred[idx[0]]]))
    return out
