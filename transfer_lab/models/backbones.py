"""Backbones, tokenizers and heads: build θ from scratch or from a checkpoint (chapters 2 and 4).

The backbones themselves (names, sizes, descriptions) are listed in `registry`, which needs
neither torch nor transformers; they are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    BertConfig,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from transfer_lab.models.registry import BACKBONES, Backbone, get_backbone
from transfer_lab.validate import InputError

ASSETS = Path(__file__).parents[1] / "assets"  # transfer_lab/assets
HEADS = {"classification": AutoModelForSequenceClassification,
         "token_classification": AutoModelForTokenClassification,
         "extractive_qa": AutoModelForQuestionAnswering, "mlm": AutoModelForMaskedLM}
LABELLED = ("classification", "token_classification")  # heads with one output per label
__all__ = ["ASSETS", "BACKBONES", "HEADS", "LABELLED", "Backbone", "build_model",
           "count_parameters", "get_backbone", "load_tokenizer", "model_config", "reset_head"]


@lru_cache(maxsize=8)
def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerFast:
    """Return the tokenizer of a backbone name or of a saved checkpoint folder."""
    if name_or_path in BACKBONES:
        backbone = get_backbone(name_or_path)
        if backbone.config is not None:
            return PreTrainedTokenizerFast(
                tokenizer_file=str(ASSETS / "tokenizer.json"), unk_token="[UNK]",
                pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                model_max_length=128)
        name_or_path = backbone.path()
    return AutoTokenizer.from_pretrained(name_or_path)


def model_config(name: str, **overrides) -> AutoConfig:
    """Return the architecture of a backbone (no weights)."""
    backbone = get_backbone(name)
    if backbone.config is not None:
        tok = load_tokenizer(name)
        return BertConfig(vocab_size=len(tok), max_position_embeddings=128,
                          pad_token_id=tok.pad_token_id, **backbone.config, **overrides)
    return AutoConfig.from_pretrained(backbone.path(), **overrides)


def build_model(
    backbone: str,
    head: str = "classification",
    num_classes: int = 2,
    theta: str | Path | None = None,
    seed: int = 0,
    pretrained: bool = False,
    new_head: bool = True,
    classes: Sequence[str] | None = None,
) -> PreTrainedModel:
    """Return a model with a `head`, its body initialised from θ (a checkpoint) or at random.

    `theta` is a folder written by `save_pretrained` (θ_S); `pretrained=True` takes the
    backbone's own pretrained weights (MiniLM, BERT); otherwise the weights are random (seeded).
    `classes` names the classes (or tags) of a labelled head; without it there are `num_classes`.
    A model from θ gets a new, randomly initialised head (`new_head=False` keeps θ_S's head when
    its size fits, e.g. to measure the source task again after fine-tuning); a masked-LM keeps
    its head.
    """
    if head not in HEADS:
        raise InputError(f"unknown head {head!r}; choose one of: {', '.join(HEADS)}")
    extra = {}
    if head in LABELLED:
        extra = {"num_labels": len(classes) if classes else num_classes}
        if classes:
            extra.update(id2label=dict(enumerate(classes)),
                         label2id={name: i for i, name in enumerate(classes)})
    torch.manual_seed(seed)
    if theta is None and not pretrained:
        return HEADS[head].from_config(model_config(backbone, **extra))
    source = str(theta) if theta is not None else get_backbone(backbone).path()
    model = HEADS[head].from_pretrained(source, ignore_mismatched_sizes=True, **extra)
    if head != "mlm" and new_head:
        reset_head(model, seed)
    return model


def reset_head(model: PreTrainedModel, seed: int = 0) -> None:
    """Re-initialise every module outside the body (the task head), seeded, as BERT does.

    `model._init_weights` would skip weights that `from_pretrained` loaded, so the head is
    initialised explicitly: normal(0, initializer_range) weights, zero biases.
    """
    generator = torch.Generator().manual_seed(seed)
    std = getattr(model.config, "initializer_range", 0.02)
    with torch.no_grad():
        for name, child in model.named_children():
            if name == model.base_model_prefix:
                continue
            for module in child.modules():
                if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if isinstance(module, torch.nn.Linear) and module.bias is not None:
                    module.bias.zero_()
                if isinstance(module, torch.nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()


def count_parameters(model, trainable: bool = False) -> int:
    """Return the number of (trainable) parameters of a model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)
