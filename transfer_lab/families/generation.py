"""Tasks whose answer is text, on a decoder LLM: a plain prompt, the loss on the answer tokens,
`model.generate`, and the task's metric on what it wrote (ch-app-translation, ch-app-qa).

A row becomes a plain-text prompt ("English: the plot was dull .\\nToy:") and its answer
(" zura budahi" and the end-of-sequence token). Supervised fine-tuning (LoRA by default) sees
the loss on the answer's tokens only: the prompt's labels are -100. The answer ends with EOS,
so that the tuned model stops after it. Decoding goes through `model.generate` with one small
set of settings (`Decoding`: greedy, beam search or seeded sampling), on left-padded batches of
prompts, and stops at a line break, so that a prompt-only arm, which never learned the EOS,
stops after one line too. The arms without a gradient step are `zero_shot` (the prompt alone)
and `few_shot` (k training pairs before the question).

`Generation` is translation (BLEU, chrF); `GenerativeQA` is extractive QA answered in words
(SQuAD exact match and F1). A new kind of text answer overrides `inputs`, `answers`,
`references`, `fields` and `score`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from transfer_lab import validate
from transfer_lab.config import TrainConfig
from transfer_lab.data.tasks import Task
from transfer_lab.families import prompting
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.metrics import squad_metrics, translation_metrics
from transfer_lab.models import smollm2
from transfer_lab.validate import InputError

# --- decoding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoding:
    """How `generate` picks each next token: greedy (the default), beam search (`num_beams`),
    or sampling (`sample=True`) at a `temperature` from the smallest set of tokens whose
    probabilities reach `top_p`, seeded by `seed` so that a run can be repeated."""

    num_beams: int = 1
    sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 64

    def __post_init__(self):
        """Refuse settings `generate` cannot use."""
        if isinstance(self.num_beams, bool) or not isinstance(self.num_beams, int) \
                or self.num_beams < 1:
            raise InputError(f"num_beams must be a whole number ≥ 1 (got {self.num_beams!r}); "
                             "1 is greedy")
        if self.sample and self.num_beams > 1:
            raise InputError("choose beam search (num_beams > 1) or sampling (sample=True), "
                             "not both")
        if not self.temperature > 0:
            raise InputError(f"temperature must be above 0 (got {self.temperature!r}); use "
                             "sample=False for greedy decoding")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must lie in (0, 1] (got {self.top_p!r})")
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1 (got {self.max_new_tokens!r})")

    @property
    def name(self) -> str:
        """Return a short name of the settings: "greedy", "beam 4", "sampling T=0.7 p=0.9"."""
        if self.sample:
            return f"sampling T={self.temperature:g} p={self.top_p:g}"
        return "greedy" if self.num_beams == 1 else f"beam {self.num_beams}"

    def kwargs(self) -> dict:
        """Return the settings as keyword arguments of `model.generate`."""
        if self.sample:  # top_k=0: no top-k cut, only top_p's
            return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p,
                    "top_k": 0, "num_beams": 1}
        return {"do_sample": False, "num_beams": self.num_beams}


GREEDY = Decoding()
DECODINGS = {"greedy": GREEDY, "beam": Decoding(num_beams=4),
             "sample": Decoding(sample=True, temperature=0.7, top_p=0.9)}


def decoding_named(value: Decoding | str) -> Decoding:
    """Return `value` if it is a Decoding, else the settings of that name in `DECODINGS`."""
    if isinstance(value, Decoding):
        return value
    return DECODINGS[validate.choice("decoding", value, DECODINGS)]


def _encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                    max_length: int) -> list[list[int]]:
    """Return each prompt's token ids, its middle cut (with one warning) if too long."""
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    long = sum(len(ids) > max_length for ids in encoded)
    if long:
        warnings.warn(f"{long} of {len(encoded)} prompts were longer than {max_length} tokens; "
                      "their middle was cut", stacklevel=3)
    return [prompting.cut_middle(ids, max_length) for ids in encoded]


def generate(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
             decoding: Decoding = GREEDY, *, batch_size: int = 16,
             max_length: int | None = None) -> list[str]:
    """Return the model's answer to each prompt: its first line, without surrounding spaces.

    Prompts run in batches of similar length, left-padded; `decoding` says how tokens are
    picked and how many at most, and seeds sampling (the caller's random state is kept). A
    prompt longer than `max_length` tokens (default: the model's context less
    `decoding.max_new_tokens`) loses its middle, with a warning.
    """
    validate.texts(prompts, "the prompts")
    net = getattr(model, "module", model)  # a DistributedDataParallel wrapper has no generate
    context = net.config.max_position_embeddings - decoding.max_new_tokens
    encoded = _encode_prompts(tokenizer, prompts, min(max_length or context, context))
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    out: list[str] = [""] * len(encoded)
    device = next(net.parameters()).device
    was_training = net.training
    net.eval()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            torch.inference_mode():
        torch.manual_seed(decoding.seed)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            input_ids, mask = prompting.pad_left([encoded[i] for i in rows],
                                                 tokenizer.pad_token_id)
            ids = net.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                               max_new_tokens=decoding.max_new_tokens,
                               pad_token_id=tokenizer.pad_token_id,
                               eos_token_id=tokenizer.eos_token_id, stop_strings=["\n"],
                               tokenizer=tokenizer, **decoding.kwargs())
            texts = tokenizer.batch_decode(ids[:, input_ids.shape[1]:], skip_special_tokens=True)
            for i, text in zip(rows, texts, strict=True):
                out[i] = " ".join(text.split("\n")[0].split())
    net.train(was_training)
    return out


# --- supervised fine-tuning on the answers ------------------------------------------------

def answer_ids(tokenizer: PreTrainedTokenizerBase, answer: str) -> list[int]:
    """Return the tokens of an answer as it follows a prompt's cue: " answer", then EOS."""
    return [*tokenizer(f" {answer}", add_special_tokens=False)["input_ids"],
            tokenizer.eos_token_id]


def encode_answers(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                   answers: Sequence[str], max_length: int) -> Dataset:
    """Return prompt + answer as input ids, labelled -100 on the prompt: the loss reads the
    answer's tokens (and its EOS) only.

    A pair longer than `max_length` tokens loses the middle of its prompt; an answer longer
    than half of `max_length` loses its end (and its EOS). One warning counts them.
    """
    rows: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
    cut = 0
    for prompt, answer in zip(prompts, answers, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        target = answer_ids(tokenizer, answer)
        if len(prompt_ids) + len(target) > max_length:
            cut += 1
            target = target[:max(max_length - len(prompt_ids), max_length - max_length // 2)]
            prompt_ids = prompting.cut_middle(prompt_ids, max_length - len(target))
        rows["input_ids"].append(prompt_ids + target)
        rows["attention_mask"].append([1] * (len(prompt_ids) + len(target)))
        rows["labels"].append([-100] * len(prompt_ids) + target)
    if cut:
        warnings.warn(f"{cut} of {len(rows['labels'])} training pairs were longer than "
                      f"{max_length} tokens: their prompt lost its middle (a long answer its "
                      "end); raise max_length to keep them whole", stacklevel=2)
    return Dataset.from_dict(rows)


class PadAnswers:
    """Pad a batch of prompt + answer on the right (labels with -100), and ask the model for
    the logits from the earliest answer on: a 49k-token LM head is not run on prompt tokens
    whose labels no loss reads."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict:
        """Return input ids, mask and the labels of the kept positions, and `logits_to_keep`."""
        width = max(len(f["input_ids"]) for f in features)
        starts = [next((i for i, x in enumerate(f["labels"]) if x != -100), None)
                  for f in features]
        if None in starts or 0 in starts:
            raise InputError("each example needs a prompt and an answer (labels -100 on the "
                             "prompt, token ids on the answer); encode them with "
                             "encode_answers")
        keep = width - min(starts) + 1  # from the last prompt token before the earliest answer

        def pad(key: str, value: int) -> torch.Tensor:
            return torch.tensor([list(f[key]) + [value] * (width - len(f[key]))
                                 for f in features])

        return {"input_ids": pad("input_ids", self.pad_id), "attention_mask": pad(
            "attention_mask", 0), "labels": pad("labels", -100)[:, width - keep:],
                "logits_to_keep": keep}


# --- the family ----------------------------------------------------------------------------

# what the prompt calls the two sides of a translation task (default: Source, Target)
LANGUAGES = {"toy_translation": ("English", "Toy"), "opus_books_en_fr": ("English", "French"),
             "wmt16_de_en": ("German", "English")}
ATTENTION_AND_MLP = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Generation(TaskFamily):
    """Translation by a prompted decoder LLM: zero- and few-shot prompts, or LoRA fine-tuned on
    the answers; BLEU and chrF of what `generate` writes."""

    name = "generation"
    metric = "bleu"
    columns = {"bleu": "BLEU", "chrf": "chrF", "exact_match": "exact %"}
    points = 1.0  # sacrebleu's scores are 0..100
    bounds = (0.0, 100.0)
    unit = "training pairs"
    source, target = "opus_books_en_fr", "toy_translation"  # a translation source (full profile)
    init = "pretrained"  # θ_S: the pretrained, instruction-tuned LLM itself
    labels = 64
    test_examples = 100  # each test sentence costs a generation of ≈ 20 tokens
    arms = ("zero_shot", "few_shot", "transfer")

    def __init__(self, decoding: Decoding | str = "greedy", shots: int = 4,
                 lora_r: int | None = 8, lora_alpha: int = 16,
                 targets: tuple[str, ...] = ATTENTION_AND_MLP,
                 fields: tuple[str, str] | None = None, header: str = ""):
        self.decoding = decoding_named(decoding)
        self.shots = shots  # training pairs in a few_shot prompt
        self.lora_r, self.lora_alpha, self.targets = lora_r, lora_alpha, targets
        self.fields = fields  # (what the input is called, the answer's cue); None: the task's
        self.header = header  # a first line of every prompt (an instruction), or nothing
        # greedy and beam search give the same text under every seed; sampling does not
        self.seed_free = () if self.decoding.sample else ("zero_shot",)

    # what differs between kinds of text answer
    def names(self, task: Task) -> tuple[str, str]:
        """Return what the prompt calls the input and the answer: ("English", "Toy")."""
        return self.fields or LANGUAGES.get(task.name, ("Source", "Target"))

    def inputs(self, rows: Dataset) -> list[str]:
        """Return the text each prompt asks about: the sentence to translate."""
        return list(rows["source"])

    def answers(self, rows: Dataset) -> list[str]:
        """Return the answer each row teaches: its reference translation."""
        return list(rows["target"])

    def references(self, rows: Dataset) -> list[list[str]]:
        """Return the correct answers of each row: its one reference translation."""
        return [[t] for t in rows["target"]]

    def score(self, hypotheses: list[str], references: list[list[str]]) -> dict:
        """Return corpus BLEU, chrF (sacrebleu, 0..100) and the share written exactly right."""
        exact = np.mean([h in r for h, r in zip(hypotheses, references, strict=True)])
        return {**translation_metrics(hypotheses, [r[0] for r in references]),
                "exact_match": 100 * float(exact)}

    def check_rows(self, rows: Dataset, task: Task, split: str) -> None:
        """Raise one InputError naming the first row with an empty input or answer."""
        validate.not_empty(rows, f"the {split} rows of {task.name!r}")
        validate.texts(self.inputs(rows), f"{task.name!r} ({split})")
        for i, refs in enumerate(self.references(rows)):
            if not all(isinstance(r, str) and r.strip() for r in refs):
                raise InputError(f"the answer of row {i} of {task.name!r} ({split}) is empty or "
                                 "not a string; every row needs its answer (what training teaches "
                                 "and the metric scores against): give one or drop the row")

    # prompts, model, training and evaluation
    def prompts(self, task: Task, texts: Sequence[str],
                examples: Sequence[tuple[str, str]] = ()) -> list[str]:
        """Return the plain-text prompt of each text ("English: …\\nToy:") after the examples."""
        field, cue = self.names(task)
        header = f"{self.header}\n\n" if self.header else ""
        return [prompting.completion_prompt(text, examples, field, cue, header) for text in texts]

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return the LLM from θ (or its pretrained weights, or random), with LoRA adapters.

        `lora_r=None` fine-tunes every weight instead.
        """
        return smollm2.causal_lm(model, theta, seed=seed, pretrained=pretrained,
                                 lora_r=self.lora_r, lora_alpha=self.lora_alpha,
                                 targets=self.targets)

    def unwrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """Return the model with its LoRA adapters merged in (what `save_pretrained` keeps)."""
        return smollm2.merged(net)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return prompt + answer + EOS as input ids; the loss reads the answer tokens only."""
        self.check_rows(data, task, "train")
        return encode_answers(tokenizer, self.prompts(task, self.inputs(data)),
                              self.answers(data), max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadAnswers:
        """Return the collator that pads on the right and keeps the answers' logits."""
        return PadAnswers(tokenizer.pad_token_id)

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig, examples: Sequence[tuple[str, str]] = ()) -> EvaluateFn:
        """Return `evaluate(model)`: the task's metrics of the answers `generate` writes to the
        test rows, after `examples` (few-shot), and the answers under "hypotheses".

        Sampling is seeded by the run's seed (`config.seed`); at most one and a half times the
        longest reference's tokens are generated (and `decoding.max_new_tokens`). Each turn of
        a prompt may take `config.max_length` tokens.
        """
        self.check_rows(test, task, "test")
        prompts = self.prompts(task, self.inputs(test), examples)
        references = self.references(test)
        longest = max(len(answer_ids(tokenizer, r)) for refs in references for r in refs)
        decoding = replace(self.decoding, seed=config.seed, max_new_tokens=min(
            self.decoding.max_new_tokens, int(1.5 * longest) + 2))
        max_length = config.max_length * (len(examples) + 1)

        def evaluate(model: torch.nn.Module) -> dict:
            hypotheses = generate(model, tokenizer, prompts, decoding,
                                  batch_size=min(config.eval_batch_size, 32),
                                  max_length=max_length)
            return {**self.score(hypotheses, references), "hypotheses": hypotheses}

        return evaluate

    def shown(self, train: Dataset, seed: int) -> list[tuple[str, str]]:
        """Return the few-shot examples of a seed: `shots` seeded (input, answer) pairs."""
        k = min(self.shots, len(train))
        chosen = np.random.default_rng(seed).choice(len(train), size=k, replace=False)
        inputs, answers = self.inputs(train), self.answers(train)
        return [(inputs[int(i)], answers[int(i)]) for i in chosen]

    def baseline(self, arm: str, model: str, task: Task, theta: str | Path, train: Dataset,
                 test: Dataset, tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                 seed: int) -> dict:
        """Return the metrics (and "seconds") of a prompt arm on θ itself: zero_shot, or
        few_shot with `shots` training pairs of the seed in each prompt."""
        if arm not in ("zero_shot", "few_shot"):
            raise InputError(f"unknown arm {arm!r} for the {self.name} family; choose zero_shot, "
                             "few_shot, or a θ arm (pretrained, transfer, scratch); bow answers "
                             "with a class, not with text")
        start = time.perf_counter()
        examples = self.shown(train, seed) if arm == "few_shot" and self.shots else []
        evaluate = self.evaluation(test, tokenizer, task, config.replace(seed=seed), examples)
        net = AutoModelForCausalLM.from_pretrained(str(theta), dtype=torch.float32)
        return {**evaluate(net), "seconds": time.perf_counter() - start}

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of supervised source training (LoRA, as the target's)."""
        return self.target_config(model).replace(epochs=1)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning: LoRA at a high learning rate, four epochs.

        Chosen on validation (`python -m benchmarks.generation --part recipe`): 1,000 toy pairs
        of seed 0, lr 2e-3 and 5e-3 scored after each of four epochs on 100 validation pairs;
        both reached BLEU 96.9 at epoch 4 (at epoch 2: 26.7 and 21.5).
        """
        return TrainConfig(lr=5e-3, epochs=4, batch_size=8, warmup_ratio=0.1, max_length=128,
                           eval_every=0, group_by_length=True)


class GenerativeQA(Generation):
    """Extractive QA answered in words by a prompted decoder LLM: SQuAD exact match and F1 of
    the written answer against the gold answers."""

    name = "generative_qa"
    metric = "f1"
    columns = {"exact_match": "exact match", "f1": "F1"}
    unit = "labelled questions"
    source, target = "qa_people", "qa_orgs"

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning: LoRA, two epochs.

        Chosen on validation (`python -m benchmarks.generation --part recipe`): 128 questions
        of seed 0, lr 5e-4 and 2e-3 scored after each of four epochs on 100 validation
        questions; 2e-3 reached F1 98.0 from epoch 2 on (5e-4: 94.0, then 95.0).
        """
        return super().target_config(model).replace(lr=2e-3, epochs=2)

    def names(self, task: Task) -> tuple[str, str]:
        """Return what the prompt calls the input and the answer: ("Context", "Answer")."""
        return self.fields or ("Context", "Answer")

    def inputs(self, rows: Dataset) -> list[str]:
        """Return the context and the question of each row, as one text."""
        return [f"{c}\nQuestion: {q}" for c, q in zip(rows["context"], rows["question"],
                                                       strict=True)]

    def answers(self, rows: Dataset) -> list[str]:
        """Return the answer each row teaches: its first gold answer."""
        return [a["text"][0] if a["text"] else "" for a in rows["answers"]]

    def references(self, rows: Dataset) -> list[list[str]]:
        """Return the gold answers of each row."""
        return [list(a["text"]) for a in rows["answers"]]

    def check_rows(self, rows: Dataset, task: Task, split: str) -> None:
        """Raise one InputError naming the first row without a context, a question or a gold
        answer, or with an empty one."""
        validate.not_empty(rows, f"the {split} rows of {task.name!r}")
        for column in ("context", "question"):
            validate.texts(rows[column], f"{task.name!r} ({split}), column {column!r}")
        for i, refs in enumerate(self.references(rows)):
            if not refs:
                raise InputError(f"row {i} of {task.name!r} ({split}) has no gold answer; give "
                                 "each question at least one answer, or drop the row")
        super().check_rows(rows, task, split)

    def score(self, hypotheses: list[str], references: list[list[str]]) -> dict:
        """Return SQuAD exact match and F1 (0..100), each the best over a row's gold answers."""
        return squad_metrics(hypotheses, references)
