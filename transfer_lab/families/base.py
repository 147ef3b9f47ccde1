"""TaskFamily: what differs between kinds of task, and nothing else (chapters 4 and 5).

A family says how to build a model with its head (from a backbone, from θ_S, or at random), how
to encode and collate examples, how to evaluate a model (a dict of metrics), which metric heads
its tables, and its default tasks and recipes. `pipeline.pretrain_source`, `transfer` and
`compare` are written once and ask the target task's family for each of these.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from transfer_lab.config import TrainConfig
from transfer_lab.validate import InputError

if TYPE_CHECKING:
    from transfer_lab.data.tasks import Task

EvaluateFn = Callable[[torch.nn.Module], dict]


class TaskFamily:
    """The protocol of a task family; each family overrides what it needs."""

    name: ClassVar[str]
    metric: ClassVar[str]  # the headline metric: `score` in results, `gain` in tables
    higher_is_better: ClassVar[bool] = True
    columns: ClassVar[dict[str, str]]  # metric → its title in `Comparison.table`
    points: ClassVar[float] = 100.0  # factor from the metric to points (1: already 0..100)
    bounds: ClassVar[tuple[float, float]] = (0.0, 1.0)  # the range of the metrics in `columns`
    unit: ClassVar[str] = "labels"  # what one training example of the target is
    source: ClassVar[str]  # default source task (or corpus, for a masked-LM θ_S)
    target: ClassVar[str]  # default target task
    init: ClassVar[str] = "supervised"  # default objective of θ_S
    labels: ClassVar[int] = 64  # default label budget of the target
    source_examples: ClassVar[int | None] = None  # None: the profile's source_examples
    test_examples: ClassVar[int | None] = None  # None: the profile's test_examples
    arms: ClassVar[tuple[str, ...]] = ("scratch", "transfer")  # default arms of `compare`
    seed_free: ClassVar[tuple[str, ...]] = ()  # baseline arms that no seed changes

    def build(self, model: str, task: Task, theta: str | Path | None = None, *, seed: int = 0,
              pretrained: bool = False) -> torch.nn.Module:
        """Return a model for `task`: body from θ (a folder), pretrained, or random; new head."""
        raise NotImplementedError

    def encode(self, data: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
               max_length: int) -> Dataset:
        """Return training examples as model inputs with labels (unpadded)."""
        raise NotImplementedError

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable:
        """Return the collator that pads a batch of encoded examples."""
        raise NotImplementedError

    def evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                   config: TrainConfig) -> EvaluateFn:
        """Return `evaluate(model) -> {metric: value}` on the raw test rows."""
        raise NotImplementedError

    def check(self, train: Dataset, test: Dataset, task: Task) -> None:
        """Raise one clear error on data a run cannot use (encoded train, raw test rows)."""
        from transfer_lab import validate

        validate.not_empty(train, "the training data")
        validate.not_empty(test, "the test data")

    def default_arms(self, model: str, init: str) -> list[str]:
        """Return the arms `compare` runs by default: the family's, with `pretrained` before
        `transfer` when θ_S was trained from a pretrained backbone (did the source help?). With
        init="pretrained" there is no source task: the fine-tuned body is the `pretrained` arm."""
        from transfer_lab.models import get_backbone

        arms = list(self.arms)
        if init == "pretrained":
            return ["pretrained" if arm == "transfer" else arm for arm in arms]
        if get_backbone(model).config is None and "transfer" in arms:
            arms.insert(arms.index("transfer"), "pretrained")
        return arms

    def with_options(self, **options) -> TaskFamily:
        """Return a copy of this family with some options of its constructor changed."""
        names = [n for n, p in inspect.signature(type(self).__init__).parameters.items()
                 if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        unknown = [k for k in options if k not in names]
        if unknown:
            raise InputError(f"the {self.name} family has no option {unknown[0]!r}; its options: "
                             f"{', '.join(names) or 'none'}")
        return type(self)(**{**{n: getattr(self, n) for n in names}, **options})

    def unwrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """Return the model as `save_pretrained` should keep it (adapters merged, say)."""
        return net

    def baseline(self, arm: str, model: str, task: Task, theta: str | Path, train: Dataset,
                 test: Dataset, tokenizer: PreTrainedTokenizerBase, config: TrainConfig,
                 seed: int) -> dict:
        """Return the metrics (and "seconds") of an arm that is not θ fine-tuned, e.g. a prompt.

        `train` holds the seed's raw training rows, `theta` is θ_S.
        """
        raise InputError(f"unknown arm {arm!r} for the {self.name} family; choose scratch, "
                         "transfer, pretrained, an arm of others=, or (classification) bow")

    def logits_evaluation(self, test: Dataset, tokenizer: PreTrainedTokenizerBase, task: Task,
                          config: TrainConfig, metric_fn: Callable) -> EvaluateFn:
        """Return `train.evaluate` of the encoded test rows with `metric_fn` of the logits."""
        from transfer_lab.training.loop import evaluate

        return partial(evaluate, data=self.encode(test, tokenizer, task, config.max_length),
                       collate_fn=self.collator(tokenizer), metric_fn=metric_fn,
                       batch_size=config.eval_batch_size)

    def source_config(self, model: str) -> TrainConfig:
        """Return the recipe of supervised source training on a backbone."""
        raise NotImplementedError

    def target_config(self, model: str) -> TrainConfig:
        """Return the recipe of target fine-tuning, the same for every arm."""
        raise NotImplementedError
