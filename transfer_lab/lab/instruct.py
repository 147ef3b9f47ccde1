"""Instruction tuning: a decoder fine-tuned on a mix of tasks written as instructions (ch-instruct).

Supervised fine-tuning (SFT) turns each source task into prompts (its instruction, the text, the
assistant header) followed by the answer word, concatenates the tasks, shuffles them with a
seed and trains the causal-LM loss on the answer tokens alone (every prompt token is labelled
−100). The tuned model is θ_S; the target is a task the tuning never saw, asked zero-shot. Each
task's instruction and single-token answer words live in one table, `INSTRUCTIONS`; the rest is
the causal family (`CausalLM`: prompts, `encode`, the collator) and `training.fit`; every
training run returns the same `results.Run` as `tl.transfer` (the mix is no registered task, and
θ_S stays in memory, so `train` calls `fit` with the causal family's collator itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets

from transfer_lab import validate
from transfer_lab.config import TrainConfig
from transfer_lab.data.tasks import Task, get_task
from transfer_lab.families import prompting
from transfer_lab.families.causal import INSTRUCTION, CausalLM
from transfer_lab.models import count_parameters, smollm2
from transfer_lab.results import Run
from transfer_lab.stats import paired_bootstrap
from transfer_lab.training.loop import EvaluateFn, fit


@dataclass(frozen=True)
class Instruction:
    """How one task is asked: its instruction, its answer word per class, what its text is."""

    task: str  # the registered task whose rows are asked
    question: str
    words: tuple[str, ...]  # the answer word of class 0, 1, …: one token each
    field: str = "Review"


ENTITY_TAGS = ("PER", "LOC", "ORG", "PROD")  # NER types → the words of `first_name`
INSTRUCTIONS: dict[str, Instruction] = {
    "topic": Instruction("topic", "Is this text about products, films, food or news? Answer with "
                         "one word.", ("products", "films", "food", "news"), "Text"),
    "contrast": Instruction("contrast", "Does this review weigh one thing against another? "
                            "Answer yes or no.", ("no", "yes")),
    "first_name": Instruction("ner_news", "Is the first name in this sentence a person, a place, "
                              "a company or a product? Answer with one word.",
                              ("person", "place", "company", "product"), "Sentence"),
    "product_sentiment": Instruction("product_sentiment", INSTRUCTION, ("negative", "positive")),
    "film_sentiment": Instruction("film_sentiment", INSTRUCTION, ("negative", "positive")),
    "restaurant_sentiment": Instruction("restaurant_sentiment", INSTRUCTION,
                                        ("negative", "positive")),
}


@dataclass(frozen=True)
class InstructConfig:
    """The defaults of instruction tuning: which tasks, how many examples, the SFT recipe."""

    sources: tuple[str, ...] = ("topic", "contrast", "first_name")
    held_out: str = "film_sentiment"  # asked zero-shot: its instruction and words are not mixed
    examples_per_task: int = 64
    steps: int = 24
    lr: float = 1e-3
    batch_size: int = 8
    lora_r: int | None = 8  # None: every weight trains
    max_length: int = 128
    seed: int = 0

    def train_config(self) -> TrainConfig:
        """Return the `fit` recipe of the SFT run."""
        return TrainConfig(lr=self.lr, max_steps=self.steps, batch_size=self.batch_size,
                           warmup_ratio=0.1, max_length=self.max_length, eval_every=0,
                           seed=self.seed, progress=False)


def instruction(name: str) -> Instruction:
    """Return the table's entry of the instruction task `name` (a clear error if unknown)."""
    return INSTRUCTIONS[validate.choice("instruction task", name, INSTRUCTIONS)]


def family(name: str, **options) -> CausalLM:
    """Return the causal family that asks task `name` its own instruction (LoRA by default)."""
    entry = instruction(name)
    return CausalLM(template="chat", instruction=entry.question, field=entry.field, **options)


def task(name: str) -> Task:
    """Return the task `name` with the table's answer words as its label names."""
    entry = instruction(name)
    base = get_task(entry.task)
    if base.family == "token_classification":  # NER rows become "what is the first name?"
        return Task(name, "classification", entry.words, f"first name's type in {base.name}",
                    lambda split, n, seed: first_name_rows(base.load(split, n, seed)))
    if len(entry.words) != base.num_classes:
        raise validate.InputError(f"{name!r} has {len(entry.words)} answer words for "
                                  f"{base.num_classes} classes {base.classes}; give one word per "
                                  "class in INSTRUCTIONS")
    return replace(base, name=name, classes=entry.words)


def first_name_rows(sentences: Dataset) -> Dataset:
    """Return NER sentences as text and the class of their first entity (`ENTITY_TAGS`)."""
    texts, labels = [], []
    for tokens, tags in zip(sentences["tokens"], sentences["tags"], strict=True):
        first = next((tag[2:] for tag in tags if tag.startswith("B-")), None)
        if first in ENTITY_TAGS:
            texts.append(" ".join(tokens))
            labels.append(ENTITY_TAGS.index(first))
    return Dataset.from_dict({"text": texts, "label": labels})


def load(name: str, split: str, n: int, seed: int = 0) -> Dataset:
    """Return `n` raw rows (text, label) of the instruction task `name`."""
    return task(name).load(split, n, seed)


def encode(name: str, rows: Dataset, tokenizer, max_length: int = 128) -> Dataset:
    """Return rows of task `name` as prompt + answer token, the loss on the answer only."""
    encoded = family(name).encode(rows, tokenizer, task(name), max_length)
    return encoded.add_column("task", [name] * len(encoded))


def mix(tokenizer, config: InstructConfig = InstructConfig()) -> Dataset:
    """Return the SFT data: `examples_per_task` of each source, encoded, shuffled with the seed."""
    if config.held_out in config.sources:
        raise validate.InputError(f"the held-out task {config.held_out!r} is among the sources "
                         f"{config.sources}; hold out a task the tuning never sees")
    parts = [encode(name, load(name, "train", config.examples_per_task, config.seed), tokenizer,
                    config.max_length) for name in config.sources]
    return concatenate_datasets(parts).shuffle(seed=config.seed)


def adapt(model, lora_r: int | None):
    """Return `model` with LoRA adapters of rank `lora_r` on the attention, or (None) with
    every weight trainable (a merged θ_S comes back frozen from peft)."""
    if lora_r is None:
        return model.requires_grad_(True)
    return smollm2.lora(model, r=lora_r, alpha=2 * lora_r, target_modules=CausalLM().targets)


def train(model, tokenizer, data: Dataset, config: TrainConfig, lora_r: int | None = 8, *,
          arm: str = "transfer", evaluate: EvaluateFn | None = None) -> tuple[Run, torch.nn.Module]:
    """Return (Run, model) after `fit` on encoded instruction data, LoRA merged back in.

    The loss is the answer token's (`CausalLM.collator`). The Run is built as `tl.transfer`
    builds it (family causal_lm, strategy lora or full, trained and total weights); its metrics
    are `evaluate(model)`'s at the end, or none without it. `model` itself is trained: pass a
    copy to keep the original.
    """
    net = adapt(model, lora_r)
    trained, total = count_parameters(net, True), count_parameters(net)
    history = fit(net, data, config=config, collate_fn=CausalLM().collator(tokenizer),
                  evaluate_fn=evaluate)
    metrics = {k: v for k, v in (history.evals or [{}])[-1].items() if k not in ("step", "epoch")}
    net = net.merge_and_unload() if hasattr(net, "merge_and_unload") else net
    run = Run(arm, config.seed, metrics, history, family=CausalLM.name,
              strategy="full" if lora_r is None else "lora", trained=trained, total=total)
    return run, net.eval()


def instruction_tune(model, tokenizer,
                     config: InstructConfig = InstructConfig()) -> tuple[Run, torch.nn.Module]:
    """Return (Run, θ_S): `model` after SFT on the mix of `config.sources`."""
    return train(model, tokenizer, mix(tokenizer, config), config.train_config(), config.lora_r,
                 arm="instruction_tuned")


def fine_tune(model, tokenizer, name: str, rows: Dataset, config: TrainConfig,
              lora_r: int | None = 8) -> tuple[Run, torch.nn.Module]:
    """Return (Run, θ_T*): `model` fine-tuned on labelled rows of task `name`."""
    return train(model, tokenizer, encode(name, rows, tokenizer, config.max_length), config,
                 lora_r)


def scores(model, tokenizer, name: str, texts: Sequence[str]) -> torch.Tensor:
    """Return log p(answer word | prompt) of each text asked task `name`: shape (n, classes)."""
    words = task(name).classes
    prompts = family(name).prompts(tokenizer, list(texts), classes=words)
    answers = prompting.label_token_ids(tokenizer, words)
    return prompting.score_labels(model, tokenizer, prompts, answers)


def measure(model, tokenizer, name: str, rows: Dataset,
            calibration: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Return per row: `answer` (the class of the likeliest answer word), `raw` (1 if it is
    right), `calibrated` (the same after `prompting.calibrate` on the unlabeled `calibration` texts)
    and `mass` (the probability of all the task's answer words together)."""
    everything = scores(model, tokenizer, name, [*rows["text"], *calibration])
    test, gold = everything[:len(rows)], np.asarray(rows["label"])
    calibrated = prompting.calibrate(test, everything[len(rows):])
    return {"answer": test.argmax(-1).numpy(),
            "raw": (test.argmax(-1).numpy() == gold).astype(float),
            "calibrated": (calibrated.argmax(-1).numpy() == gold).astype(float),
            "mass": test.exp().sum(-1).numpy()}


def accuracy(model, tokenizer, name: str, rows: Dataset) -> dict:
    """Return the zero-shot accuracy of the model on rows of task `name`, and the rows' count."""
    right = measure(model, tokenizer, name, rows)["raw"]
    return {"accuracy": float(right.mean()), "n": len(right)}


def bootstrap(values: Sequence[float], draws: int = 2000,
              seed: int = 0) -> tuple[float, float, float]:
    """Return the mean of `values` and its 95 % bootstrap interval (items resampled, seeded)."""
    values = np.asarray(values, dtype=float)
    return paired_difference(values, np.zeros_like(values), draws, seed)


def paired_difference(a: Sequence[float], b: Sequence[float], draws: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """Return mean(a − b) over paired items and its 95 % bootstrap interval
    (`stats.paired_bootstrap`)."""
    result = paired_bootstrap(a, b, n_resamples=draws, seed=seed)
    if result["n"] < 2:
        raise validate.InputError(f"a bootstrap needs at least 2 paired items, got {result['n']}")
    return result["mean"], *result["ci95"]


def forgetting(before: Sequence[float], after: Sequence[float]) -> tuple[float, float, float]:
    """Return how much a source task's accuracy fell (before − after) with its 95 % interval."""
    return paired_difference(before, after)
