"""Fine-tuning strategies: how θ_T(0) is trained on the target (chapter 7.2).

A strategy prepares a model and returns what `fit` needs: the model to train (LoRA wraps it in
adapters), the optimizer's parameter groups and the callbacks; `pipeline.transfer(...,
strategy=...)` applies it to any family's model::

    model, groups, callbacks = prepare("discriminative", model, lr=3e-4)
    fit(model, train, config=config, groups=groups, callbacks=callbacks, ...)

- full: every weight trains at one learning rate;
- frozen: the body is frozen and only the head trains (a linear probe of θ_S's features);
- discriminative: one learning rate per layer group, η_(l−1) = η_l / 2.6 (ULMFiT);
- gradual: all groups frozen but the top one, one more group unfrozen per epoch (ULMFiT);
- ulmfit: gradual unfreezing with discriminative learning rates (both, as in ULMFiT);
- lora: low-rank adapters on the attention's query and value (peft), the head trains too.

Not every strategy fits every model (`unsupported`): an encoder–decoder (seq2seq) has no
body/head split to freeze and starts its cross-attention at random, so it takes full and the
layer-group strategies; a decoder LLM that its family already wrapped in LoRA adapters (the
causal LM) takes full only, which trains those adapters. `prepare` refuses the others with
the list of those that fit.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from transfer_lab.training.loop import Callback, FitState, param_groups
from transfer_lab.validate import InputError

ULMFIT_DECAY = 2.6  # η_(l−1) = η_l / 2.6 (Howard and Ruder, 2018)
_LAYER = re.compile(r"\.layers?\.(\d+)\.")  # BERT's `.layer.N.`, Llama's `.layers.N.`
_EMBEDDINGS = (".embeddings.", ".embed_tokens.")
# the peft task type of a model with a head on a BERT body, by the end of its class name
_LORA_TASKS = {"ForSequenceClassification": "SEQ_CLS", "ForTokenClassification": "TOKEN_CLS",
               "ForQuestionAnswering": "QUESTION_ANS"}


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

    Groups: "embeddings", "layer.0" … "layer.(L−1)" (the transformer blocks: BERT's `.layer.N.`,
    Llama's `.layers.N.`), "head" (all the rest: pooler and classifier, final norm). An
    encoder–decoder has two stacks, "encoder.layer.i" below "decoder.layer.i". ULMFiT's
    learning-rate decay and unfreezing act on these.
    """
    embeddings: list = []
    stacks: dict[str, dict[int, list]] = {}  # the path to a stack of blocks → its blocks
    head: list = []
    for name, p in model.named_parameters():
        dotted = f".{name}"
        match = _LAYER.search(dotted)
        if match:
            stack = stacks.setdefault(dotted[1:match.start()], {})
            stack.setdefault(int(match.group(1)), []).append(p)
        elif any(part in dotted for part in _EMBEDDINGS):
            embeddings.append(p)
        else:
            head.append(p)
    if not stacks or not embeddings:
        raise InputError(f"found no embeddings or '.layer.N.' blocks in {type(model).__name__}; "
                         "layer groups need a transformer such as tl.build_model(...)")
    groups = [("embeddings", embeddings)]
    for path, layers in stacks.items():
        name = "layer" if len(stacks) == 1 else f"{path.split('.')[0]}.layer"
        groups += [(f"{name}.{i}", layers[i]) for i in sorted(layers)]
    return [*groups, ("head", head)]


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
    """Train every weight at one learning rate (of a model with adapters: the adapters)."""
    if not hasattr(model, "peft_config"):
        model.requires_grad_(True)
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
    from peft import LoraConfig, get_peft_model

    body = _body_prefix(model)[:-1]
    head = [name for name, module in model.named_children()
            if name != body and any(True for _ in module.parameters())]
    config = LoraConfig(task_type=_lora_task(model), r=r, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=["query", "value"], modules_to_save=head)
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        model = get_peft_model(model, config)
    return Prepared(model, param_groups(model, lr, weight_decay), [])


def _lora_task(model: torch.nn.Module) -> str | None:
    """Return peft's task type of a model with a classification, token or span head (or None)."""
    kind = type(model).__name__
    return next((task for end, task in _LORA_TASKS.items() if kind.endswith(end)), None)


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


def unsupported(strategy: str, model: torch.nn.Module) -> str | None:
    """Return why `strategy` cannot fine-tune `model`, or None when it can."""
    get_strategy(strategy)
    if hasattr(model, "peft_config"):
        return None if strategy == "full" else (
            "it carries LoRA adapters from its family already (the causal LM: CausalLM(lora_r=8)),"
            " and full trains them; CausalLM(lora_r=None) trains every weight")
    if strategy in ("discriminative", "gradual", "ulmfit"):
        try:
            layer_groups(model)
        except InputError as e:
            return str(e)
    if strategy == "lora" and (_lora_task(model) is None or not any(
            name.endswith(("query", "value")) for name, _ in model.named_modules())):
        return ("LoRA here adapts a BERT body's query and value under a classification, token or "
                "span head; a decoder LLM gets its adapters from its family (CausalLM(lora_r=...))")
    if strategy in ("frozen", "lora"):
        prefix = getattr(model, "base_model_prefix", "")
        if not prefix or not hasattr(model, prefix):
            return ("it has no body and head to tell apart (an encoder–decoder starts its "
                    "cross-attention at random, so it must train)")
        if not any(not name.startswith(prefix + ".") for name, _ in model.named_parameters()):
            return "its head has no weights of its own (tied to the embeddings): nothing trains"
    return None


def prepare(strategy: str, model: torch.nn.Module, lr: float, **options) -> Prepared:
    """Return (model, groups, callbacks) to fine-tune `model` with `strategy` at `lr`.

    A strategy that does not fit the model (`unsupported`) raises InputError naming those that do.
    """
    if lr <= 0:
        raise InputError(f"lr must be positive (got {lr})")
    why = unsupported(strategy, model)
    if why:
        fits = [name for name in STRATEGIES if unsupported(name, model) is None]
        raise InputError(f"strategy {strategy!r} does not fit a {type(model).__name__}: {why}; "
                         f"choose one of: {', '.join(fits)}")
    return get_strategy(strategy).prepare(model, lr, **options)


def trained_parameters(groups: list[dict]) -> int:
    """Return how many weights the optimizer updates (frozen ones of gradual unfreezing count)."""
    return sum(p.numel() for g in groups for p in g["params"])
