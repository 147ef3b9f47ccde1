"""Public names imported on first use (PEP 562), so that light commands stay light."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, public: dict[str, tuple[str, ...]],
               submodules: dict[str, str] | None = None) -> tuple[Callable, Callable, list[str]]:
    """Return a package's (`__getattr__`, `__dir__`, `__all__`) for its `public` names.

    `public` maps a module to the names it defines; `submodules` maps an attribute to a module
    (`tl.exercises`). Any other attribute is tried as a subpackage (`tl.data`, `models.mlm`).
    """
    where = {name: module for module, names in public.items() for name in names}
    submodules = submodules or {}
    names = sorted([*where, *submodules])
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        """Import a public name, or a submodule, on first use."""
        if name in where:
            value = getattr(importlib.import_module(where[name]), name)
        elif name in submodules:
            value = importlib.import_module(submodules[name])
        else:
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        """List the public names beside the module's own."""
        return sorted([*namespace, *names])

    return __getattr__, __dir__, names
