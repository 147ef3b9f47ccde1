"""Sequence classification: one label per text, accuracy and macro-F1 (chapter 4)."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
)

from transfer_lab import validate
from transfer_lab.config import MIN_STEPS_PRETRAINED, TrainConfig, profile
from transfer_lab.data.tasks import Task
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.families.bow import bow_arm
from transfer_lab.metrics import classification_metrics
from transfer_lab.models import build_model, get_backbone


def classification_metric(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Return accuracy and macro-F1 of the argmax of `logits`."""
    return classification_metrics(labels.cpu().numpy(), logits.argmax(-1).cpu().numpy())


class Classification(TaskFamily):
    """A text classifier: a linear head on the body's first token (BERT's pooler)."""

    name = "classification"
    metric = "accuracy"
    columns = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    source, target = "product_sentiment", "film_sentiment"
    arms = ("bow", "scratch", "transfer")

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return a sequence classifier with a new head of the task's labels."""
        return build_model(model, "classification", classes=task.classes, theta=theta, seed=seed,
                           pretrained=pretrained)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return texts tokenized with their class indices (rows checked first)."""
        return encode_classification(data, tokenizer, max_length, num_classes=task.num_classes)

    def check(self, train: Dataset, test: Dataset, task: Task) -> None:
        """Raise on empty data or a label that is not a class of the task, naming the split."""
        super().check(train, test, task)
        validate.labels(train["labels"][:], task.classes, where="the training data")
        validate.classification_data(test, task.classes, where="the test data")

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
        """Return a collator that pads each batch to its longest text (dynamic padding)."""
        return DataCollatorWithPadding(tokenizer)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return the test loss, accuracy and macro-F1 of a model."""
        return self.logits_evaluation(test, tokenizer, task, config, classification_metric)

    def baseline(self, arm: str, model: str, task: Task, theta: str | Path, train: Dataset,
                 test: Dataset, tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                 seed: int) -> dict:
        """Return the metrics of `bow`: TF-IDF + logistic regression on the same labels."""
        if arm != "bow":
            return super().baseline(arm, model, task, theta, train, test, tokenizer, config, seed)
        return bow_arm(train, test, seed)

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of source training: long on a tiny body, short on a pretrained one."""
        if get_backbone(model).world_only:
            return TrainConfig(lr=5e-4, batch_size=32, max_steps=profile().source_steps,
                               warmup_ratio=0.06, eval_every=0)
        # a pretrained body needs few steps (chapter 4 uses the same, so θ_S is shared)
        return TrainConfig(lr=5e-5, batch_size=16, max_steps=profile().pretrained_steps,
                           warmup_ratio=0.1, eval_every=0)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning (every arm)."""
        if get_backbone(model).world_only:
            return TrainConfig(lr=3e-4, epochs=30, batch_size=16, eval_every=3)
        # a pretrained body: 3 epochs, but at least MIN_STEPS_PRETRAINED steps, since 3 epochs
        # of 64 labels (12 steps) left MiniLM's own weights at 0.58 (benchmarks/recipe.py)
        return TrainConfig(lr=1e-4, epochs=3, min_steps=MIN_STEPS_PRETRAINED, batch_size=16,
                           eval_every=0)


def encode_classification(data: Dataset, tokenizer: PreTrainedTokenizerBase,
                          max_length: int = 64, *,
                          num_classes: int | None = None) -> Dataset:
    """Return `data` tokenized (input_ids, attention_mask, labels), unpadded.

    The rows are checked first: `text` must hold non-empty strings and `label` class indices
    (below `num_classes` when it is given); a bad row raises one InputError naming it.
    """
    validate.classification_data(data, num_classes=num_classes, where="the data")

    def tok(batch):
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["labels"] = batch["label"]
        return enc

    return data.map(tok, batched=True, remove_columns=data.column_names)


def classification_collator(tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
    """Return a collator that pads each batch to its longest text (dynamic padding)."""
    return DataCollatorWithPadding(tokenizer)
