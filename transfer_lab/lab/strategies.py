"""Fine-tuning strategies: how θ_T(0) = θ_S is trained on the target (chapter 7, "Challenges").

A strategy prepares a model and returns what `fit` needs: the model to train (LoRA wraps it in
adapters), the optimizer's parameter groups and the callbacks::

    model, groups, callbacks = prepare("discriminative", model, lr=3e-4)
    fit(model, train, test, config=config, groups=groups, callbacks=callbacks, ...)

- full: every weight trains at one learning rate;
- frozen: the body is frozen and only the head trains (a linear probe of θ_S's features);
- discriminative: one learning rate per layer group, η_(l−1) = η_l / 2.6 (ULMFiT);
- gradual: all groups frozen but the top one, one more group unfrozen per epoch (ULMFiT);
- ulmfit: gradual unfreezing with discriminative learning rates (both, as in ULMFiT);
- lora: low-rank adapters on the attention's query and value (peft), the head trains too.

`fine_tune` runs one strategy end to end; `Monitor` and `EarlyStopping` watch a run for
overfitting; `source_accuracy` measures forgetting; `features` returns frozen features of a body
(what LogME scores before any fine-tuning).
"""

from __future__ import annotations

import copy
import math
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from transfer_lab.config import TrainConfig
from transfer_lab.families import classification_metric
from transfer_lab.families.classification import classification_collator
from transfer_lab.lab.probe import embed
from transfer_lab.models import build_model, get_backbone, load_tokenizer
from transfer_lab.training.fit import Callback, FitState, History, evaluate, fit, param_groups
from transfer_lab.validate import InputError

ULMFIT_DECAY = 2.6  # η_(l−1) = η_l / 2.6 (Howard and Ruder, 2018)
_LAYER = re.compile(r"\.layer\.(\d+)\.")


class Prepared(NamedTuple):
    """What a strategy hands to `fit`: the model, its optimizer groups and its callbacks."""

    model: torch.nn.Module
    groups: list[dict]
    callbacks: list[Callback]


@dataclass(frozen=True)
class Strategy:
    """A fine-tuning strategy: its name, what it does, and the function that prepares a model."""

    name: str
    description: str
    prepare: Callable[..., Prepared]


def _body_prefix(model: torch.nn.Module) -> str:
    """Return the prefix of the body's parameter names ("bert." for a BERT classifier)."""
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix or not hasattr(model, prefix):
        raise InputError(f"{type(model).__name__} has no body (base_model_prefix); strategies "
                         "need a transformers model such as tl.build_model(...)")
    return prefix + "."


def layer_groups(model: torch.nn.Module) -> list[tuple[str, list[torch.nn.Parameter]]]:
    """Return the model's weights in layer groups, bottom (embeddings) to top (head).

    Groups: "embeddings", "layer.0" … "layer.(L−1)" (the transformer blocks), "head" (all the
    rest: pooler and classifier). ULMFiT's learning-rate decay and unfreezing act on these.
    """
    _body_prefix(model)
    groups: dict[str, list] = {"embeddings": []}
    layers: dict[int, list] = {}
    head: list = []
    for name, p in model.named_parameters():
        match = _LAYER.search(name)
        if match:
            layers.setdefault(int(match.group(1)), []).append(p)
        elif ".embeddings." in f".{name}":
            groups["embeddings"].append(p)
        else:
            head.append(p)
    if not layers or not groups["embeddings"]:
        raise InputError(f"found no embeddings or '.layer.N.' blocks in {type(model).__name__}; "
                         "layer groups need a BERT-like model (tl.build_model)")
    groups.update({f"layer.{i}": layers[i] for i in sorted(layers)})
    groups["head"] = head
    return list(groups.items())


def _split_decay(name: str, params: list, model: torch.nn.Module, lr: float,
                 weight_decay: float) -> list[dict]:
    """Return two AdamW groups of `params` at `lr`: matrices decay, biases and norms do not."""
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = [p for p in params if p.ndim < 2 or "LayerNorm" in names[id(p)]]
    decay = [p for p in params if not (p.ndim < 2 or "LayerNorm" in names[id(p)])]
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr, "name": name},
            {"params": no_decay, "weight_decay": 0.0, "lr": lr, "name": name}]


def discriminative_groups(model: torch.nn.Module, lr: float, weight_decay: float = 0.01,
                          decay: float = ULMFIT_DECAY) -> list[dict]:
    """Return AdamW groups with one rate per layer group: `lr` on top, ÷ `decay` per group down."""
    if decay <= 0:
        raise InputError(f"decay must be positive (got {decay}); ULMFiT uses 2.6")
    named = layer_groups(model)
    top = len(named) - 1
    return [g for i, (name, params) in enumerate(named)
            for g in _split_decay(name, params, model, lr / decay ** (top - i), weight_decay)]


class GradualUnfreezing(Callback):
    """Unfreeze one more layer group, from the top, at the start of every `every` epochs."""

    def __init__(self, groups: list[tuple[str, list[torch.nn.Parameter]]], every: int = 1):
        if every < 1:
            raise InputError(f"every must be at least 1 epoch (got {every})")
        self.groups, self.every = groups, every
        self.unfrozen: list[list[str]] = []  # names of the trainable groups, per epoch

    def on_epoch_start(self, state: FitState) -> None:
        """Make the top `epoch // every + 1` groups trainable and the others frozen."""
        k = state.epoch // self.every + 1
        top = len(self.groups) - k
        for i, (_, params) in enumerate(self.groups):
            for p in params:
                p.requires_grad_(i >= top)
        self.unfrozen.append([name for name, _ in self.groups[max(top, 0):]])


def _full(model, lr, weight_decay=0.01) -> Prepared:
    """Train every weight at one learning rate."""
    for p in model.parameters():
        p.requires_grad_(True)
    return Prepared(model, param_groups(model, lr, weight_decay), [])


def _frozen(model, lr, weight_decay=0.01) -> Prepared:
    """Freeze the body; train only the head (a linear probe of the body's features)."""
    body = _body_prefix(model)
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(body))
    return Prepared(model, param_groups(model, lr, weight_decay), [])


def _discriminative(model, lr, weight_decay=0.01, decay=ULMFIT_DECAY) -> Prepared:
    """Train every weight; each layer group's rate is the one above it ÷ `decay`."""
    for p in model.parameters():
        p.requires_grad_(True)
    return Prepared(model, discriminative_groups(model, lr, weight_decay, decay), [])


def _gradual(model, lr, weight_decay=0.01, every=1) -> Prepared:
    """Start with the top group trainable and unfreeze one more group per epoch, at one rate."""
    prepared = _full(model, lr, weight_decay)
    return Prepared(model, prepared.groups, [GradualUnfreezing(layer_groups(model), every)])


def _ulmfit(model, lr, weight_decay=0.01, decay=ULMFIT_DECAY, every=1) -> Prepared:
    """Gradual unfreezing with discriminative learning rates, as ULMFiT fine-tunes."""
    prepared = _discriminative(model, lr, weight_decay, decay)
    return Prepared(model, prepared.groups, [GradualUnfreezing(layer_groups(model), every)])


def _lora(model, lr, weight_decay=0.01, r=8, alpha=16, dropout=0.1) -> Prepared:
    """Wrap the model in LoRA adapters on query and value; train adapters and head only."""
    from peft import LoraConfig, TaskType, get_peft_model

    _body_prefix(model)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=["query", "value"], modules_to_save=["classifier"])
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        model = get_peft_model(model, config)
    return Prepared(model, param_groups(model, lr, weight_decay), [])


STRATEGIES: dict[str, Strategy] = {s.name: s for s in [
    Strategy("full", "full fine-tuning: every weight, one learning rate", _full),
    Strategy("frozen", "frozen body, train the head only (linear probe)", _frozen),
    Strategy("discriminative", f"discriminative rates: lr ÷ {ULMFIT_DECAY} per layer group down",
             _discriminative),
    Strategy("gradual", "gradual unfreezing: one more layer group per epoch, from the top",
             _gradual),
    Strategy("ulmfit", "gradual unfreezing + discriminative rates (ULMFiT)", _ulmfit),
    Strategy("lora", "LoRA adapters (r=8) on query and value; head trainable", _lora),
]}


def get_strategy(name: str) -> Strategy:
    """Return the registered strategy called `name`."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]


def prepare(strategy: str, model: torch.nn.Module, lr: float, **options) -> Prepared:
    """Return (model, groups, callbacks) to fine-tune `model` with `strategy` at `lr`."""
    if lr <= 0:
        raise InputError(f"lr must be positive (got {lr})")
    return get_strategy(strategy).prepare(model, lr, **options)


def trained_parameters(groups: list[dict]) -> int:
    """Return how many weights the optimizer updates (frozen ones of gradual unfreezing count)."""
    return sum(p.numel() for g in groups for p in g["params"])


@dataclass
class StrategyRun:
    """One strategy fine-tuned on the target: final metrics, size, time and history."""

    strategy: str
    seed: int
    metrics: dict
    trained: int  # weights the optimizer updates
    total: int  # weights of the model
    seconds: float
    history: History


def fine_tune(
    strategy: str,
    theta_S: str | Path | None,
    train,
    test,
    *,
    config: TrainConfig,
    model: str = "tiny",
    num_labels: int = 2,
    new_head: bool = True,
    callbacks: tuple[Callback, ...] = (),
    **options,
) -> tuple[StrategyRun, torch.nn.Module]:
    """Fine-tune θ_T(0) = θ_S with `strategy` on encoded (train, test); return (run, θ_T*).

    Same recipe as `tl.transfer` (new head, seeded, `config`'s budget), but the optimizer's
    groups and callbacks come from the strategy; `config.lr` is the top learning rate.
    """
    get_strategy(strategy)
    start = time.perf_counter()
    tokenizer = load_tokenizer(str(theta_S) if theta_S else model)
    net = build_model(model, "classification", num_labels, theta=theta_S, seed=config.seed,
                      new_head=new_head)
    net, groups, own = prepare(strategy, net, config.lr, weight_decay=config.weight_decay,
                               **options)
    history = fit(net, train, test, config=config, collate_fn=classification_collator(tokenizer),
                  metric_fn=classification_metric, groups=groups, callbacks=[*own, *callbacks])
    metrics = {k: v for k, v in history.evals[-1].items() if k not in ("step", "epoch")}
    run = StrategyRun(strategy, config.seed, metrics, trained_parameters(groups),
                      sum(p.numel() for p in net.parameters()), time.perf_counter() - start,
                      history)
    return run, net


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
