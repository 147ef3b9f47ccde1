"""Token classification (NER): one IOB2 tag per word, entity-level F1 (chapter 5, ch-app-ner)."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from transfer_lab.config import TrainConfig
from transfer_lab.data.ner import LABELS
from transfer_lab.data.tasks import Task
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.metrics import ner_metrics
from transfer_lab.models import build_model, get_backbone
from transfer_lab.validate import InputError


class TokenClassification(TaskFamily):
    """A tagger: a linear head on every token; words are scored on their first piece."""

    name = "token_classification"
    metric = "f1"
    columns = {"f1": "entity F1", "precision": "precision", "recall": "recall"}
    unit = "labelled sentences"
    source, target = "ner_news", "ner_reviews"
    source_examples = 3_000

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return a token classifier with a new head of the task's tags."""
        return build_model(model, "token_classification", classes=task.classes, theta=theta,
                           seed=seed, pretrained=pretrained)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return tagged sentences as word pieces with labels aligned to first pieces."""
        return encode_ner(data, tokenizer, task.classes, max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForTokenClassification:
        """Return a collator that pads ids and labels (with -100) to the longest sentence."""
        return DataCollatorForTokenClassification(tokenizer)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return the test loss and entity F1, precision and recall (seqeval) of a model."""
        return self.logits_evaluation(test, tokenizer, task, config, ner_metric(task.classes))

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of tagger source training."""
        if get_backbone(model).world_only:
            return TrainConfig(lr=5e-4, batch_size=32, max_steps=200, warmup_ratio=0.06,
                               eval_every=0, progress=False)
        return TrainConfig(lr=5e-5, batch_size=16, max_steps=300, warmup_ratio=0.1,
                           eval_every=0, max_length=128, progress=False)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning (every arm).

        The tiny model's learning rate is chapter 5's choice for scratch (a slower one leaves
        scratch under-trained in 20 epochs), so the gain is not a slow baseline's.
        """
        if get_backbone(model).world_only:
            return TrainConfig(lr=1e-3, epochs=20, batch_size=16, eval_every=5)
        return TrainConfig(lr=5e-5, epochs=3, batch_size=16, eval_every=1, max_length=128)


IGNORE = -100  # the label of tokens that the loss and the metric skip


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


def encode_ner(data: Dataset, tokenizer: PreTrainedTokenizerBase, classes=LABELS,
               max_length: int = 64) -> Dataset:
    """Return tagged sentences tokenized into word pieces with aligned labels, unpadded."""
    label2id = {name: i for i, name in enumerate(classes)}
    unknown = {t for tags in data["tags"] for t in tags} - set(label2id)
    if unknown:
        raise InputError(f"tags {sorted(unknown)} are not among the classes {list(classes)}; "
                         "pass the task's classes (e.g. classes=get_task(name).classes)")

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
