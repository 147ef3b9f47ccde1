"""Token classification (NER): one IOB2 tag per word, entity-level F1 (chapter 5, ch-app-ner)."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerBase

from ..config import TrainConfig
from ..models import build_model, get_backbone
from ..ner import encode_ner, ner_metric
from ..tasks import Task
from .base import EvaluateFn, TaskFamily


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
        return build_model(model, "token_classification", labels=task.labels, theta=theta,
                           seed=seed, pretrained=pretrained)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return tagged sentences as word pieces with labels aligned to first pieces."""
        return encode_ner(data, tokenizer, task.labels, max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForTokenClassification:
        """Return a collator that pads ids and labels (with -100) to the longest sentence."""
        return DataCollatorForTokenClassification(tokenizer)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return the test loss and entity F1, precision and recall (seqeval) of a model."""
        return self.logits_evaluation(test, tokenizer, task, config, ner_metric(task.labels))

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
