"""Models: backbones and their tokenizers, heads, masked-LM training data, SmolLM2 offline.

The names are imported on first use (PEP 562): `from transfer_lab.models import BACKBONES`
reads the light `registry` without torch or transformers; `build_model` and the others load
them.
"""

import importlib
from typing import TYPE_CHECKING

_PUBLIC = {
    "transfer_lab.models.registry": ("BACKBONES", "Backbone", "get_backbone"),
    "transfer_lab.models.backbones": ("ASSETS", "HEADS", "LABELLED", "build_model",
                                      "count_parameters", "load_tokenizer", "model_config",
                                      "reset_head"),
    "transfer_lab.models.mlm": ("MaskedTokensOnly", "encode_mlm", "mlm_collator"),
}
_WHERE = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    """Import a public name, or a submodule (`models.smollm2`), on first use."""
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names beside the module's own."""
    return sorted([*globals(), *__all__])


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
