"""Models: backbones and their tokenizers, heads, masked-LM training data, SmolLM2 offline.

The names are imported on first use (PEP 562): `from transfer_lab.models import BACKBONES`
reads the light `registry` without torch or transformers; `build_model` and the others load
them.
"""

from typing import TYPE_CHECKING

from transfer_lab.lazy import lazy_names

_PUBLIC = {
    "transfer_lab.models.registry": ("BACKBONES", "Backbone", "get_backbone"),
    "transfer_lab.models.backbones": ("ASSETS", "HEADS", "LABELLED", "build_model",
                                      "count_parameters", "load_tokenizer", "model_config",
                                      "reset_head"),
    "transfer_lab.models.mlm": ("MaskedTokensOnly", "encode_mlm", "mlm_collator"),
}
__getattr__, __dir__, __all__ = lazy_names(__name__, _PUBLIC)


if TYPE_CHECKING:  # for type checkers and editors: the same names, imported eagerly
    from transfer_lab.models.backbones import (  # noqa: F401
        ASSETS,
        HEADS,
        LABELLED,
        build_model,
        count_parameters,
        load_tokenizer,
        model_config,
        reset_head,
    )
    from transfer_lab.models.mlm import MaskedTokensOnly, encode_mlm, mlm_collator  # noqa: F401
    from transfer_lab.models.registry import BACKBONES, Backbone, get_backbone  # noqa: F401
