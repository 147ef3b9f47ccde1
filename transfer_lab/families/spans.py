"""Extractive QA: an answer span of the context, SQuAD exact match and F1 (ch. 5, ch-app-qa)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from transfer_lab.config import TrainConfig
from transfer_lab.data.tasks import Task
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.metrics import squad_metrics
from transfer_lab.models import build_model, get_backbone
from transfer_lab.training.loop import loader


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
