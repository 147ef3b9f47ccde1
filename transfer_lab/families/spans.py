"""Extractive QA: an answer span of the context, SQuAD exact match and F1 (ch. 5, ch-app-qa)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from ..config import TrainConfig
from ..models import build_model, get_backbone
from ..qa import encode_qa, evaluate_qa
from ..tasks import Task
from .base import EvaluateFn, TaskFamily


class ExtractiveQA(TaskFamily):
    """A reader: start and end scores on every token, windows over long contexts."""

    name = "extractive_qa"
    metric = "f1"
    columns = {"exact_match": "exact match", "f1": "F1"}
    points = 1.0  # SQuAD scores are already 0..100
    bounds = (0.0, 100.0)
    unit = "labelled questions"
    source, target = "qa_people", "qa_orgs"
    labels = 128
    source_examples = 6_000

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return a span extractor with a new head."""
        return build_model(model, "extractive_qa", theta=theta, seed=seed, pretrained=pretrained)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return training windows (a stride of a quarter window) with answer token spans."""
        return encode_qa(data, tokenizer, max_length, max_length // 4)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
        """Return a collator that pads each batch of windows to its longest."""
        return DataCollatorWithPadding(tokenizer)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return SQuAD exact match and F1 (0..100) of a model's answers to the test questions."""
        return partial(evaluate_qa, data=test, tokenizer=tokenizer,
                       max_length=config.max_length, stride=config.max_length // 4)

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of reader source training."""
        if get_backbone(model).world_only:
            return TrainConfig(lr=1e-3, batch_size=32, max_steps=300, warmup_ratio=0.06,
                               eval_every=0, max_length=64, progress=False)
        return TrainConfig(lr=5e-5, batch_size=16, max_steps=300, warmup_ratio=0.1,
                           eval_every=0, max_length=384, progress=False)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning (every arm).

        Windows are `max_length` tokens: 64 for the world's short contexts, 384 for SQuAD's.
        """
        if get_backbone(model).world_only:
            return TrainConfig(lr=1e-3, epochs=10, batch_size=16, eval_every=5, max_length=64)
        return TrainConfig(lr=3e-5, epochs=2, batch_size=16, eval_every=1, max_length=384)
