"""What chapter 7.2 watches while a strategy fine-tunes θ_S: overfitting and forgetting.

The strategies themselves (full, frozen, discriminative, gradual, ulmfit, lora) live in
`training.strategies` and are re-exported here for the chapter; a run with one is
`tl.transfer(theta_S, target, labels, seed, config=config, strategy=name)`, which returns the
same `Run` as every other arm. `Monitor` and `EarlyStopping` watch a run for overfitting;
`source_accuracy` measures forgetting; `features` returns frozen features of a body (what LogME
scores before any fine-tuning).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from transfer_lab.families import classification_metric
from transfer_lab.families.classification import classification_collator
from transfer_lab.lab.probe import embed
from transfer_lab.models import build_model, get_backbone, load_tokenizer
from transfer_lab.training.loop import Callback, FitState, evaluate
from transfer_lab.training.strategies import (  # noqa: F401 (the chapter reads them here)
    STRATEGIES,
    ULMFIT_DECAY,
    GradualUnfreezing,
    Prepared,
    discriminative_groups,
    get_strategy,
    layer_groups,
    prepare,
    trained_parameters,
    unsupported,
)
from transfer_lab.validate import InputError


class Monitor(Callback):
    """Evaluate on a data set (e.g. the training set) every `every` epochs; keep the curve."""

    def __init__(self, data, collate_fn, every: int = 1, batch_size: int = 128):
        self.data, self.collate_fn = data, collate_fn
        self.every, self.batch_size = every, batch_size
        self.curve: list[dict] = []  # {"step", "epoch", "loss", "accuracy", "macro_f1"}

    def measure(self, model: torch.nn.Module) -> dict:
        """Return the model's loss and metrics on the monitored data."""
        return evaluate(model, self.data, collate_fn=self.collate_fn,
                        metric_fn=classification_metric, batch_size=self.batch_size)

    def on_epoch_end(self, state: FitState) -> None:
        """Evaluate the model and append the metrics to the curve."""
        if (state.epoch + 1) % self.every == 0:
            self.curve.append({"step": state.step, "epoch": state.epoch + 1,
                               **self.measure(state.model)})


class EarlyStopping(Monitor):
    """Watch a validation metric each epoch; keep the best weights; `restore` puts them back.

    Training "stops" after `patience` epochs without improvement: later epochs no longer count
    (`stopped_epoch`), so `restore` gives the model early stopping would have returned. With
    `halt=True` it ends `fit` there (`state.stop`); by default the later epochs still run, so a
    chapter can show what early stopping saved.
    """

    def __init__(self, data, collate_fn, metric: str = "loss", patience: int = 3,
                 halt: bool = False):
        super().__init__(data, collate_fn)
        self.halt = halt
        if patience < 1:
            raise InputError(f"patience must be at least 1 epoch (got {patience})")
        self.metric, self.patience = metric, patience
        self.sign = 1.0 if metric == "loss" else -1.0  # lower loss is better, higher accuracy
        self.best, self.best_epoch, self.stopped_epoch = math.inf, 0, None
        self.best_state: dict | None = None

    def on_epoch_end(self, state: FitState) -> None:
        """Record the validation metric; remember the weights when they are the best so far."""
        super().on_epoch_end(state)
        if self.stopped_epoch is not None or not self.curve:
            return
        epoch, value = self.curve[-1]["epoch"], self.sign * self.curve[-1][self.metric]
        if value < self.best:
            self.best, self.best_epoch = value, epoch
            self.best_state = {k: v.detach().clone() for k, v in state.model.state_dict().items()}
        elif epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            state.stop = self.halt

    def restore(self, model: torch.nn.Module) -> torch.nn.Module:
        """Load the best weights seen (before stopping) into `model` and return it."""
        if self.best_state is None:
            raise RuntimeError("no epoch was evaluated; pass this callback to fit(callbacks=...)")
        model.load_state_dict(self.best_state)
        return model


def source_accuracy(model: torch.nn.Module, source_head: torch.nn.Module, data,
                    tokenizer: PreTrainedTokenizerBase,
                    batch_size: int = 128) -> float:
    """Return the source task's accuracy of `model`'s body read out by θ_S's own head.

    The body after fine-tuning (LoRA adapters merged in) gets a copy of the source head back:
    what it lost on the source task is what it forgot.
    """
    from peft import PeftModel

    net = copy.deepcopy(model)
    if isinstance(net, PeftModel):
        net = net.merge_and_unload()
    net.classifier = copy.deepcopy(source_head)
    metrics = evaluate(net, data, collate_fn=classification_collator(tokenizer),
                       metric_fn=classification_metric, batch_size=batch_size)
    return metrics["accuracy"]


def features(theta: str | Path | torch.nn.Module | None, texts: list[str], *, model: str = "tiny",
             pooling: str = "mean", batch_size: int = 256, max_length: int = 64) -> np.ndarray:
    """Return frozen features of θ's body for `texts` (`probe.embed` of θ, or of the backbone's
    pretrained weights, or random ones for a world-only backbone, when θ is None)."""
    if isinstance(theta, torch.nn.Module):
        net, tokenizer = theta, load_tokenizer(model)
    else:
        random = theta is None and get_backbone(model).config is not None
        net = build_model(model, "classification", theta=theta, pretrained=not random)
        tokenizer = load_tokenizer(str(theta) if theta is not None else model)
    return embed(net, tokenizer, [str(t) for t in texts], pooling=pooling,
                 batch_size=batch_size, max_length=max_length)
