"""Classification with a decoder LLM: a prompt, label words, LoRA (ch-decoder).

The model answers in words: the class is the label word ("negative", "positive") whose token the
model finds most likely where the prompt ends. By default the prompt is plain text,
"Review: {text}\nSentiment:", answered by " positive" or " negative" (`template="completion"`);
`template="chat"` asks in the chat template the model was instruction-tuned with. The plain
prompt was chosen on validation sentences of the three real review domains
(`python -m benchmarks.decoder_recipe`); the chat template, taken as given when the family was
tuned on the synthetic world, scored well below it there and on the world too (ch-decoder).

Fine-tuning keeps that form: the causal-LM loss on the answer token alone, through LoRA adapters
(peft) on the attention's projections. Without any gradient step the same scoring gives the
`zero_shot` arm (the prompt alone) and the `few_shot` arm (k labelled examples of the seed's
training set in the prompt). Both are calibrated by default: a prompt, above all one with
examples, can make one label word likely whatever the text, so each label's score is centred on
unlabeled training texts of the seed (`prompting.calibrate`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase

from transfer_lab import validate
from transfer_lab.config import TrainConfig
from transfer_lab.data.tasks import Task
from transfer_lab.families import prompting
from transfer_lab.families.base import EvaluateFn, TaskFamily
from transfer_lab.families.bow import bow_arm
from transfer_lab.metrics import classification_metrics
from transfer_lab.models import smollm2
from transfer_lab.validate import InputError

TEMPLATES = ("completion", "chat")  # plain text "Review: …\nSentiment:", or the chat template
INSTRUCTION = "Is this review positive or negative? Answer with one word."
# the question for a task whose labels are not the sentiment pair (a user's file, say)
GENERIC_INSTRUCTION = "Which of these labels fits the text: {labels}? Answer with one word."
LABEL_WORDS_FIX = ("give one label word per class, in label order: --label-words "
                   "negative,positive (task_from_file(..., label_words=(\"negative\", "
                   "\"positive\")))")


def check_label_words(classes: Sequence[str]) -> None:
    """Refuse classes a prompted LLM cannot answer with: numbers, codes, single characters.

    The prompt arms and the fine-tuned decoder answer with a class's name; asked to answer
    "0" or "1", a model cannot know which is which and scores at chance.
    """
    bad = [c for c in classes if len(c.strip()) < 2 or not any(ch.isalpha() for ch in c)]
    if bad:
        raise InputError(f"the prompt arms (zero_shot, few_shot) and a decoder LLM answer with "
                         f"the classes' names, and {', '.join(map(repr, bad))} are not words "
                         f"(numbers, codes or single characters); {LABEL_WORDS_FIX}")


def answer_ids(tokenizer: PreTrainedTokenizerBase, classes: Sequence[str],
               after: str | None = None) -> list[int]:
    """Return the token id of each label word after `after` (`prompting.label_token_ids`), the
    words checked (`check_label_words`) and a refusal saying how to give others."""
    check_label_words(classes)
    try:
        return prompting.label_token_ids(tokenizer, classes, after)
    except InputError as err:
        raise InputError(f"{err}; {LABEL_WORDS_FIX}") from None


class AnswerCollator:
    """Pack a batch of prompt + answer into one row; ask for the logits around each answer.

    `prompting.pack` puts the prompts' shared start (in the chat template, the system message and
    the start of the user turn, ≈ 26 of ≈ 60 tokens of a film review's prompt) in the row once
    and each prompt's rest after it, with an attention mask that keeps the examples apart: the
    loss and its gradient are the padded batch's, with no padding (and, for chat prompts, a
    SmolLM2 LoRA step in `fit` ≈ 30 % faster on a CPU). The LM head runs at two positions per
    example only (`logits_to_keep`: the last prompt token, whose logits predict the answer, and
    the answer, labelled -100), not at every position over a 49k-token vocabulary.
    """

    def __call__(self, features: list[dict]) -> dict:
        """Return the packed input ids, mask and position ids, and the answers' labels."""
        for f in features:
            if len(f["input_ids"]) < 2 or any(label != -100 for label in f["labels"][:-1]):
                raise InputError("AnswerCollator trains on the last token only (the answer after "
                                 "a prompt); encode the examples with CausalLM.encode")
        row, ends = prompting.pack([list(f["input_ids"]) for f in features])
        labels = [x for f in features for x in (-100, f["labels"][-1])]
        return {**row, "labels": torch.tensor([labels]),
                "logits_to_keep": torch.tensor([x for end in ends for x in (end - 1, end)])}


class CausalLM(TaskFamily):
    """A classifier that is a prompted decoder LLM, fine-tuned with LoRA on the answer token."""

    name = "causal_lm"
    metric = "accuracy"
    columns = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    source, target = "product_sentiment", "film_sentiment"
    init = "pretrained"  # θ_S: the pretrained, instruction-tuned LLM itself
    arms = ("bow", "zero_shot", "few_shot", "transfer")
    test_examples = 200  # scoring a prompt costs a 135M-parameter forward pass

    def __init__(self, template: str = "completion", instruction: str = INSTRUCTION,
                 lora_r: int | None = 8,
                 lora_alpha: int = 16, targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj",
                                                                   "o_proj"),
                 shots: int = 4, calibrate: bool = True, calibration_texts: int = 32,
                 field: str = "Review"):
        self.template = validate.choice("prompt template", template, TEMPLATES)
        self.instruction, self.lora_r, self.lora_alpha = instruction, lora_r, lora_alpha
        self.field = field  # what the text is called in the prompt ("Review: …", "Text: …")
        self.targets, self.shots = targets, shots  # shots: labelled examples in a few_shot prompt
        # calibration: up to `calibration_texts` unlabeled training texts centre the prompt arms
        self.calibrate, self.calibration_texts = calibrate, calibration_texts
        # uncalibrated, the prompt alone is the same for every seed; calibrated, it reads the
        # seed's training texts
        self.seed_free = () if calibrate else ("zero_shot",)

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return the LLM from θ (or its pretrained weights, or random), with LoRA adapters.

        `lora_r=None` fine-tunes every weight instead.
        """
        # refuse classes that are not words, or not one token each
        self.answers(self._tokenizer(model, theta), task.classes)
        return smollm2.causal_lm(model, theta, seed=seed, pretrained=pretrained,
                                 lora_r=self.lora_r, lora_alpha=self.lora_alpha,
                                 targets=self.targets)

    def unwrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """Return the model with its LoRA adapters merged in (what `save_pretrained` keeps)."""
        return smollm2.merged(net)

    def _tokenizer(self, model: str, theta) -> PreTrainedTokenizerBase:
        """Return the tokenizer of θ or of the backbone."""
        from transfer_lab.models import load_tokenizer

        return load_tokenizer(str(theta) if theta else model)

    def instruction_for(self, classes: Sequence[str]) -> str:
        """Return the question for these label words: the sentiment one, or one naming them."""
        if self.instruction != INSTRUCTION or set(classes) == {"negative", "positive"}:
            return self.instruction
        return GENERIC_INSTRUCTION.format(labels=", ".join(classes))

    def cue_for(self, classes: Sequence[str]) -> str:
        """Return the word before a completion prompt's answer: "Sentiment", or "Label"."""
        return "Sentiment" if set(classes) == {"negative", "positive"} else "Label"

    def prompts(self, tokenizer: PreTrainedTokenizerBase, texts, examples=(),
                classes: Sequence[str] = ("negative", "positive")) -> list[str]:
        """Return the prompt of each text (after `examples`, the few-shot turns) in the
        family's template.

        A completion prompt asks nothing: its cue ("Sentiment:") is the question, with the
        instruction as a first line only when it is not the sentiment one (a task's own
        question, or the list of label words of a user's task).
        """
        instruction = self.instruction_for(classes)
        if self.template == "chat":
            return [prompting.chat_prompt(tokenizer, instruction, text, examples,
                                          field=self.field) for text in texts]
        header = "" if instruction == INSTRUCTION else f"{instruction}\n\n"
        cue = self.cue_for(classes)
        return [prompting.completion_prompt(text, examples, self.field, cue, header)
                for text in texts]

    def answers(self, tokenizer: PreTrainedTokenizerBase, classes: Sequence[str]) -> list[int]:
        """Return the token id of each label word where the family's prompts end."""
        after = None if self.template == "chat" else f"{self.cue_for(classes)}:"
        return answer_ids(tokenizer, classes, after)

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return prompt + answer token as input ids; the loss sees the answer token only."""
        answers = self.answers(tokenizer, task.classes)
        rows = {"input_ids": [], "attention_mask": [], "labels": []}
        for prompt, label in zip(self.prompts(tokenizer, data["text"], classes=task.classes),
                                 data["label"],
                                 strict=True):
            # a long prompt loses its middle, as in `prompting.score_labels`: the template's start
            # and the question with the assistant header stay
            ids = prompting.cut_middle(tokenizer(prompt, add_special_tokens=False)["input_ids"],
                                 max_length - 1)
            rows["input_ids"].append([*ids, answers[label]])
            rows["attention_mask"].append([1] * (len(ids) + 1))
            rows["labels"].append([-100] * len(ids) + [answers[label]])
        return Dataset.from_dict(rows)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> AnswerCollator:
        """Return the collator that packs a batch into one row and keeps the answers' logits."""
        return AnswerCollator()

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig, examples=(), calibration=()) -> EvaluateFn:
        """Return accuracy and macro-F1 of the label word the model scores highest.

        `examples` are (text, label word) turns put before each question (few-shot);
        `calibration` are unlabeled texts whose mean scores are subtracted (`prompting.calibrate`).
        Besides the metrics, `answer_share` is the share of the commonest answer (1.0: one
        label for every text); with calibration, `uncalibrated_accuracy` and
        `uncalibrated_answer_share` say what the raw scores gave. Each turn of a prompt may
        take `config.max_length` tokens.
        """
        answers = self.answers(tokenizer, task.classes)
        prompts = self.prompts(tokenizer, test["text"], examples, task.classes)
        reference = self.prompts(tokenizer, calibration, examples, task.classes)
        max_length = config.max_length * (len(examples) + 1)
        gold = list(test["label"])

        def evaluate(model: torch.nn.Module) -> dict:
            # one call: the test and calibration prompts share the cached prefix
            scores = prompting.score_labels(model, tokenizer, prompts + reference, answers,
                                      batch_size=min(config.eval_batch_size, 32),
                                      max_length=max_length)
            raw = scores[:len(prompts)].argmax(-1)
            predicted = prompting.calibrate(scores[:len(prompts)], scores[len(prompts):]).argmax(-1)
            metrics = {**classification_metrics(gold, predicted.tolist()),
                       "answer_share": _commonest_share(predicted)}
            if reference:
                metrics["uncalibrated_accuracy"] = float((raw == torch.tensor(gold)).float()
                                                         .mean())
                metrics["uncalibrated_answer_share"] = _commonest_share(raw)
            return metrics

        return evaluate

    def prompt_evaluation(self, arm: str, task: Task, train: Dataset, test: Dataset,
                          tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                          seed: int) -> EvaluateFn:
        """Return `evaluate(model)` of a prompt arm: zero_shot or few_shot, on the seed's rows.

        few_shot puts `shots` labelled examples of `train` in each prompt (classes balanced,
        order seeded). With `calibrate`, up to `calibration_texts` other texts of `train`
        (their labels unread) centre the scores.
        """
        if arm not in ("zero_shot", "few_shot"):
            raise InputError(f"unknown arm {arm!r} for a decoder LLM; choose bow, zero_shot, "
                             "few_shot, or a θ arm (transfer, pretrained, scratch)")
        check_label_words(task.classes)
        examples = []
        if arm == "few_shot" and self.shots:
            examples = prompting.few_shot_examples(train["text"], train["label"],
                                             min(self.shots, len(train)), seed, task.classes)
        shown = {text for text, _ in examples}
        calibration = [text for text in train["text"] if text not in shown][
            :self.calibration_texts] if self.calibrate else []
        return self.evaluation(test, tokenizer, task, config, examples, calibration)

    def baseline(self, arm: str, model: str, task: Task, theta: str | Path, train: Dataset,
                 test: Dataset, tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                 seed: int) -> dict:
        """Return the metrics of an arm without gradient steps on θ: a prompt
        (`prompt_evaluation`), or `bow` (TF-IDF + logistic regression on the same labels)."""
        if arm == "bow":
            return bow_arm(train, test, seed)
        start = time.perf_counter()
        evaluate = self.prompt_evaluation(arm, task, train, test, tokenizer, config, seed)
        net = AutoModelForCausalLM.from_pretrained(str(theta), dtype=torch.float32)
        return {**evaluate(net), "seconds": time.perf_counter() - start}

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of supervised source training (instruction-style, LoRA)."""
        return TrainConfig(lr=5e-4, batch_size=8, max_steps=60, warmup_ratio=0.1,
                           max_length=128, eval_every=0)

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning: LoRA at lr 5e-4 for four epochs.

        Chosen on real film sentences of the training pool, never test
        (`python -m benchmarks.decoder_recipe --part lora`: 64 labels, 200 validation sentences,
        the completion prompt): lr 5e-4 or 2e-3 × 2 or 4 epochs, the best validation accuracy.
        The world-tuned recipe (lr 2e-3, two epochs) was one of the four.
        """
        return TrainConfig(lr=5e-4, epochs=4, batch_size=8, warmup_ratio=0.1, max_length=128,
                           eval_every=0, group_by_length=True)


def _commonest_share(predicted: torch.Tensor) -> float:
    """Return the share of the most frequent prediction."""
    return float(predicted.bincount().max() / len(predicted))
