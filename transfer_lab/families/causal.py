"""Classification with a decoder LLM: a chat prompt, label words, LoRA (ch-decoder).

The model answers in words: the review goes into the chat template the model was tuned with,
and the class is the label word ("negative", "positive") whose token the model finds most
likely right after the assistant header. Fine-tuning keeps that form: the causal-LM loss on the
answer token alone, through LoRA adapters (peft) on the attention's projections. Without any
gradient step the same scoring gives the `zero_shot` arm (the prompt alone) and the `few_shot`
arm (k labelled examples of the seed's training set in the prompt).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForSeq2Seq,
    PreTrainedTokenizerBase,
)

from .. import llm
from ..config import TrainConfig
from ..metrics import classification_metrics
from ..models import get_backbone, model_config
from ..tasks import Task
from .base import EvaluateFn, TaskFamily

INSTRUCTION = "Is this review positive or negative? Answer with one word."


class CausalLM(TaskFamily):
    """A classifier that is a prompted decoder LLM, fine-tuned with LoRA on the answer token."""

    name = "causal_lm"
    metric = "accuracy"
    columns = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    source, target = "product_sentiment", "film_sentiment"
    init = "pretrained"  # θ_S: the pretrained, instruction-tuned LLM itself
    arms = ("zero_shot", "few_shot", "transfer")
    test_examples = 200  # scoring a prompt costs a 135M-parameter forward pass
    shots = 4  # labelled examples in a few-shot prompt
    seed_free = ("zero_shot",)  # the prompt alone: the same for every seed

    def __init__(self, instruction: str = INSTRUCTION, lora_r: int | None = 8,
                 lora_alpha: int = 16, targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj",
                                                                   "o_proj")):
        self.instruction, self.lora_r, self.lora_alpha = instruction, lora_r, lora_alpha
        self.targets = targets

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return the LLM from θ (or its pretrained weights, or random), with LoRA adapters.

        `lora_r=None` fine-tunes every weight instead.
        """
        llm.label_token_ids(self._tokenizer(model, theta), task.labels)  # refuse bad label words
        torch.manual_seed(seed)
        if theta is None and not pretrained:
            net = AutoModelForCausalLM.from_config(model_config(model))
        else:
            net = AutoModelForCausalLM.from_pretrained(str(theta or get_backbone(model).path()),
                                                       dtype=torch.float32)
        if self.lora_r is None:
            return net
        return llm.lora(net, r=self.lora_r, alpha=self.lora_alpha, target_modules=self.targets)

    def unwrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """Return the model with its LoRA adapters merged in (what `save_pretrained` keeps)."""
        return net.merge_and_unload() if hasattr(net, "merge_and_unload") else net

    def _tokenizer(self, model: str, theta) -> PreTrainedTokenizerBase:
        """Return the tokenizer of θ or of the backbone."""
        from ..models import load_tokenizer

        return load_tokenizer(str(theta) if theta else model)

    def prompts(self, tokenizer: PreTrainedTokenizerBase, texts, examples=()) -> list[str]:
        """Return the chat prompt of each text (after `examples`, the few-shot turns)."""
        return [llm.chat_prompt(tokenizer, self.instruction, text, examples) for text in texts]

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return prompt + answer token as input ids; the loss sees the answer token only."""
        answers = llm.label_token_ids(tokenizer, task.labels)
        rows = {"input_ids": [], "attention_mask": [], "labels": []}
        for prompt, label in zip(self.prompts(tokenizer, data["text"]), data["label"],
                                 strict=True):
            ids = tokenizer(prompt, add_special_tokens=False)["input_ids"][-(max_length - 1):]
            rows["input_ids"].append([*ids, answers[label]])
            rows["attention_mask"].append([1] * (len(ids) + 1))
            rows["labels"].append([-100] * len(ids) + [answers[label]])
        return Dataset.from_dict(rows)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
        """Return a collator that pads on the right: ids with [PAD], labels with -100."""
        right = copy.copy(tokenizer)
        right.padding_side = "right"  # training positions count from each prompt's start
        return DataCollatorForSeq2Seq(right, label_pad_token_id=-100)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig, examples=()) -> EvaluateFn:
        """Return accuracy and macro-F1 of the label word the model scores highest."""
        prompts = self.prompts(tokenizer, test["text"], examples)
        answers = llm.label_token_ids(tokenizer, task.labels)

        def evaluate(model: torch.nn.Module) -> dict:
            predicted = llm.predict_labels(model, tokenizer, prompts, answers,
                                           batch_size=min(config.eval_batch_size, 32))
            return classification_metrics(list(test["label"]), predicted.tolist())

        return evaluate

    def baseline(self, arm: str, model: str, task: Task, theta: str | Path, train: Dataset,
                 test: Dataset, tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                 seed: int) -> dict:
        """Return the metrics of an arm without gradient steps: zero_shot or few_shot."""
        start = time.perf_counter()
        examples = ()
        if arm == "few_shot":
            examples = llm.few_shot_examples(train["text"], train["label"], min(self.shots,
                                             len(train)), seed, task.labels)
        elif arm != "zero_shot":
            raise ValueError(f"unknown arm {arm!r} for a decoder LLM; choose zero_shot, "
                             "few_shot, or a θ arm (transfer, pretrained, scratch)")
        net = AutoModelForCausalLM.from_pretrained(str(theta), dtype=torch.float32)
        metrics = self.evaluation(test, tokenizer, task, config, examples)(net)
        return {**metrics, "seconds": time.perf_counter() - start}

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of supervised source training (instruction-style, LoRA)."""
        return TrainConfig(lr=5e-4, batch_size=8, max_steps=60, warmup_ratio=0.1,
                           max_length=128, eval_every=0)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning: LoRA at a high learning rate, few epochs."""
        return TrainConfig(lr=5e-4, epochs=2, batch_size=8, warmup_ratio=0.1, max_length=128,
                           eval_every=0)
