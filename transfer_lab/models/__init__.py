"""Models: backbones and their tokenizers, heads, masked-LM training data, SmolLM2 offline."""

from transfer_lab.models.backbones import (
    ASSETS,
    BACKBONES,
    HEADS,
    LABELLED,
    Backbone,
    build_model,
    count_parameters,
    get_backbone,
    load_tokenizer,
    model_config,
    reset_head,
)
from transfer_lab.models.mlm import MaskedTokensOnly, encode_mlm, mlm_collator

__all__ = ["ASSETS", "BACKBONES", "HEADS", "LABELLED", "Backbone", "MaskedTokensOnly",
           "build_model", "count_parameters", "encode_mlm", "get_backbone", "load_tokenizer",
           "mlm_collator", "model_config", "reset_head"]
