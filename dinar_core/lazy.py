"""Lazy package namespaces: ``from dinar_core.fitting import fit_body`` imports ``dinar_core.fitting.fitter`` (and
torch) on first use, so that importing a torch-free submodule (``dinar_core.fitting.config``) stays torch-free.

A package ends its ``__init__`` with ``lazy_package(__name__, {"fit_body": "fitter", ...})`` (public name ->
submodule defining it) and keeps the eager imports under ``if TYPE_CHECKING:`` for type checkers.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def lazy_package(name: str, exports: dict[str, str]) -> None:
    """Make the package `name` resolve each public name of `exports` (name -> submodule) on first access.

    Any other public attribute that names a submodule (``dinar_core.fitting.losses``) is imported on access too,
    as the eager ``__init__`` made it available. A submodule that has the name of a function it exports
    (``dinar_core.texture.unwrap``) does not shadow that function on the package when it gets imported.
    """
    module = sys.modules[name]

    class LazyPackage(types.ModuleType):
        def __getattr__(self, attr: str):
            source = exports.get(attr)
            if source is not None:
                value = getattr(importlib.import_module(f"{name}.{source}"), attr)
                self.__dict__[attr] = value
                return value
            if not attr.startswith("_") and importlib.util.find_spec(f"{name}.{attr}") is not None:
                return importlib.import_module(f"{name}.{attr}")  # the import binds it on the package
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")

        def __setattr__(self, attr: str, value) -> None:
            if (attr in exports and isinstance(value, types.ModuleType)
                    and value.__name__ == f"{name}.{exports[attr]}"):
                value = getattr(value, attr)  # the import system binding the submodule: keep the function
            super().__setattr__(attr, value)

        def __dir__(self) -> list[str]:
            return sorted({*self.__dict__, *exports})

    module.__class__ = LazyPackage
