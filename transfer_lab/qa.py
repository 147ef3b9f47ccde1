"""Extractive question answering: spans, stride windows, SQuAD EM/F1 (chapter 5, ch-app-qa).

The offline task: a context of fact sentences about the world's people and organisations
("alice lives in paris . acme is based in oslo .") and a question whose answer is a span of it
("where does alice live ?" → "paris"). The source asks about people (plentiful labels); the
target asks about organisations (few labels): other relations, the same kind of reading.
Rows use SQuAD v1.1's columns (id, context, question, answers{text, answer_start}), so the hub
loader only selects columns. The tasks are registered in `tasks`; the family is
`families.spans.ExtractiveQA`, trained by the one pipeline (`tl.compare`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from . import world
from .metrics import squad_metrics
from .train import loader

COLUMNS = ["id", "context", "question", "answers"]

# relation: (fact template, question template, who it is about, what the answer is)
RELATIONS = {
    "lives": ("{s} lives in {o} .", "where does {s} live ?", "people", "place"),
    "born": ("{s} was born in {o} .", "where was {s} born ?", "people", "place"),
    "works": ("{s} works for {o} .", "who does {s} work for ?", "people", "org"),
    "bought": ("{s} bought a {o} .", "what did {s} buy ?", "people", "product"),
    "based": ("{s} is based in {o} .", "where is {s} based ?", "orgs", "place"),
    "founded": ("{s} was founded by {o} .", "who founded {s} ?", "orgs", "person"),
    "makes": ("{s} makes the {o} .", "what does {s} make ?", "orgs", "product"),
    "sponsors": ("{s} sponsors {o} .", "what does {s} sponsor ?", "orgs", "film"),
}


def _value(kind: str, rng: random.Random) -> str:
    """Return a random object of a kind: a place, organisation, person, product or film."""
    if kind == "product":
        return f"{rng.choice(world.BRANDS)} {rng.choice(world.DOMAINS['products']['items'])}"
    pools = {"place": world.PLACES, "org": world.ORGS, "person": world.PEOPLE,
             "film": world.FILMS}
    return rng.choice(pools[kind])


BY_SUBJECT = {who: [r for r, spec in RELATIONS.items() if spec[2] == who]
              for who in ("people", "orgs")}


def example(about: str, rng: random.Random, facts: tuple[int, int] = (3, 6)) -> dict:
    """Return one SQuAD-style row: a context of facts and a question about `about` (people/orgs).

    The context mixes one fact each about several people and organisations (at least one of
    each), so the answer is found by matching the question's subject in the context.
    """
    n = rng.randint(*facts)
    n_orgs = rng.randint(1, n - 1)
    chosen = [(rng.choice(BY_SUBJECT["people"]), s) for s in rng.sample(world.PEOPLE, n - n_orgs)]
    chosen += [(rng.choice(BY_SUBJECT["orgs"]), s) for s in rng.sample(world.ORGS, n_orgs)]
    rng.shuffle(chosen)
    relation, subject = rng.choice([c for c in chosen if RELATIONS[c[0]][2] == about])
    parts, answer, start = [], "", 0
    for rel, s in chosen:
        obj = _value(RELATIONS[rel][3], rng)
        fact = RELATIONS[rel][0].format(s=s, o=obj)
        if (rel, s) == (relation, subject):
            answer = obj
            start = sum(len(p) + 1 for p in parts) + fact.index(obj, len(s))
        parts.append(fact)
    return {"context": " ".join(parts), "question": RELATIONS[relation][1].format(s=subject),
            "answers": {"text": [answer], "answer_start": [start]}}


def questions(about: str, n: int, seed: int) -> Dataset:
    """Return n seeded SQuAD-style rows whose questions are about `about` ("people" or "orgs")."""
    if about not in ("people", "orgs"):
        raise ValueError(f"unknown question subject {about!r}; choose 'people' or 'orgs'")
    rng = random.Random(f"qa/{about}/{seed}")
    rows = [example(about, rng) for _ in range(n)]
    return Dataset.from_dict({"id": [f"{about}-{seed}-{i}" for i in range(n)],
                              **{c: [r[c] for r in rows] for c in COLUMNS[1:]}})


# --- data: the world's questions, SQuAD on the hub (tasks.py registers the tasks) ----------

SQUAD_HUB = "rajpurkar/squad"


def from_squad(ds: Dataset) -> Dataset:
    """Return SQuAD v1.1 rows with the offline task's columns: id, context, question, answers."""
    missing = set(COLUMNS) - set(ds.column_names)
    if missing:
        raise ValueError(f"a SQuAD split needs the columns {COLUMNS}; {sorted(missing)} missing")
    return ds.select_columns(COLUMNS)


# --- encoder: windows over long contexts, answer spans in tokens ---------------------------

def answer_tokens(offsets, sequence_ids, start_char: int, end_char: int) -> tuple[int, int]:
    """Return the (start, end) token indices of a character span, or (0, 0) ([CLS]) if the
    window does not hold the whole answer."""
    context = [i for i, s in enumerate(sequence_ids) if s == 1]
    first, last = context[0], context[-1]
    if offsets[first][0] > start_char or offsets[last][1] < end_char:
        return 0, 0
    start = first
    while start <= last and offsets[start][0] <= start_char:
        start += 1
    end = last
    while end >= first and offsets[end][1] >= end_char:
        end -= 1
    return start - 1, end + 1


def _windows(tokenizer: PreTrainedTokenizerBase, batch, max_length: int, stride: int):
    """Tokenize (question, context) pairs into windows of max_length that overlap by stride."""
    return tokenizer([q.strip() for q in batch["question"]], list(batch["context"]),
                     truncation="only_second", max_length=max_length, stride=stride,
                     return_overflowing_tokens=True, return_offsets_mapping=True)


def qa_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    """Return a collator that pads each batch of windows to its longest (dynamic padding)."""
    return DataCollatorWithPadding(tokenizer)


def encode_qa(data: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int = 64,
              stride: int = 16) -> Dataset:
    """Return training windows with start_positions / end_positions of the answer's tokens.

    A context longer than a window becomes several windows (stride tokens shared); a window
    without the whole answer points at [CLS] (0, 0), as in SQuAD fine-tuning.
    """
    def prep(batch):
        enc = _windows(tokenizer, batch, max_length, stride)
        sample, offsets = enc.pop("overflow_to_sample_mapping"), enc.pop("offset_mapping")
        enc["start_positions"], enc["end_positions"] = [], []
        for i, offs in enumerate(offsets):
            answers = batch["answers"][sample[i]]
            start_char = answers["answer_start"][0]
            s, e = answer_tokens(offs, enc.sequence_ids(i), start_char,
                                 start_char + len(answers["text"][0]))
            enc["start_positions"].append(s)
            enc["end_positions"].append(e)
        return enc

    return data.map(prep, batched=True, remove_columns=data.column_names)


@dataclass
class Windows:
    """Evaluation windows: model inputs, the example each came from, and context offsets."""

    inputs: Dataset
    example: list[int]  # index of the example each window belongs to
    offsets: list[list[tuple[int, int] | None]]  # character span per token; None outside context


def encode_qa_eval(data: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int = 64,
                   stride: int = 16) -> Windows:
    """Return the evaluation windows of questions and contexts (no answers needed)."""
    enc = _windows(tokenizer, data, max_length, stride)
    offsets = [[tuple(o) if s == 1 else None
                for o, s in zip(offs, enc.sequence_ids(i), strict=True)]
               for i, offs in enumerate(enc["offset_mapping"])]
    inputs = Dataset.from_dict({k: enc[k] for k in tokenizer.model_input_names if k in enc})
    return Windows(inputs, list(enc["overflow_to_sample_mapping"]), offsets)


def decode(start_logits, end_logits, windows: Windows, contexts, max_answer_tokens: int = 30,
           top: int = 20) -> list[str]:
    """Return the best answer text per example: the span of highest start + end logit over all
    of its windows, end ≥ start, at most max_answer_tokens long, inside the context.

    `start_logits` and `end_logits` hold one array of scores per window (its tokens).
    """
    best: dict[int, tuple[float, str]] = {}
    for w, (starts, ends) in enumerate(zip(start_logits, end_logits, strict=True)):
        offs, ex = windows.offsets[w], windows.example[w]
        for s in np.argsort(starts)[::-1][:top]:
            for e in np.argsort(ends)[::-1][:top]:
                if s >= len(offs) or e >= len(offs) or offs[s] is None or offs[e] is None:
                    continue
                if e < s or e - s + 1 > max_answer_tokens:
                    continue
                score = float(starts[s] + ends[e])
                if ex not in best or score > best[ex][0]:
                    best[ex] = (score, contexts[ex][offs[s][0]:offs[e][1]])
    return [best.get(i, (0.0, ""))[1] for i in range(len(contexts))]


@torch.inference_mode()
def predict(model: torch.nn.Module, data: Dataset, tokenizer: PreTrainedTokenizerBase,
            max_length: int = 64, stride: int = 16, batch_size: int = 128) -> list[str]:
    """Return the predicted answer text of each (question, context) row of `data`."""
    windows = encode_qa_eval(data, tokenizer, max_length, stride)
    was_training = model.training
    model.eval()
    starts, ends = [], []
    for batch in loader(windows.inputs, batch_size, qa_collator(tokenizer)):
        out = model(**{k: v.to(model.device) for k, v in batch.items()})
        for row, n in enumerate(batch["attention_mask"].sum(1).tolist()):  # drop the padding
            starts.append(out.start_logits[row, :n].float().cpu().numpy())
            ends.append(out.end_logits[row, :n].float().cpu().numpy())
    model.train(was_training)
    return decode(starts, ends, windows, list(data["context"]))


def evaluate_qa(model: torch.nn.Module, data: Dataset, tokenizer: PreTrainedTokenizerBase,
                max_length: int = 64, stride: int = 16) -> dict:
    """Return SQuAD {"exact_match", "f1"} (0..100) of the model's answers on `data`."""
    predictions = predict(model, data, tokenizer, max_length, stride)
    return squad_metrics(predictions, [a["text"] for a in data["answers"]])
