"""Sequence to sequence (translation): a BERT encoder–decoder, BLEU, chrF (ch-app-translation)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from ..config import TrainConfig
from ..metrics import translation_metrics
from ..tasks import Task
from ..translation import build_seq2seq, encode_seq2seq, seq2seq_collator, translate
from .base import EvaluateFn, TaskFamily

# EncoderDecoderModel warns on every forward pass that it computes the loss itself
warnings.filterwarnings("ignore", message="Version v4.12.0 introduces a better way")


class Seq2Seq(TaskFamily):
    """An encoder–decoder whose encoder and decoder start from one BERT θ (BERT2BERT)."""

    name = "seq2seq"
    metric = "bleu"
    columns = {"bleu": "BLEU", "chrf": "chrF", "exact_match": "exact %"}
    points = 1.0  # sacrebleu's scores are 0..100
    bounds = (0.0, 100.0)
    unit = "training pairs"
    source, target = "bilingual", "toy_translation"
    init = "mlm"  # θ_S: a masked-LM on unaligned text of both languages
    labels = 1_000

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return a BERT encoder–decoder from θ (encoder and decoder) or random (seeded)."""
        return build_seq2seq(theta, model, seed)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return pairs tokenized: the source's ids, the target's as labels."""
        return encode_seq2seq(data, tokenizer, max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
        """Return a collator that pads inputs with [PAD] and labels with -100."""
        return seq2seq_collator(tokenizer)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return BLEU, chrF and the exact share (0..100) of beam-search translations.

        The translations themselves are kept under "hypotheses".
        """
        sources, references = list(test["source"]), list(test["target"])

        def evaluate(model: torch.nn.Module) -> dict:
            hypotheses = translate(model, tokenizer, sources)
            exact = np.mean([h == r for h, r in zip(hypotheses, references, strict=True)])
            return {**translation_metrics(hypotheses, references),
                    "exact_match": 100 * float(exact), "hypotheses": hypotheses}

        return evaluate

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of supervised source training (a pretrained BERT, full profile)."""
        return TrainConfig(lr=5e-5, batch_size=16, max_steps=300, warmup_ratio=0.1,
                           eval_every=0, progress=False)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of fine-tuning both arms: a fixed number of steps."""
        return TrainConfig(lr=3e-3, max_steps=150, batch_size=32, warmup_ratio=0.1,
                           max_length=32, eval_every=0, progress=False)
