"""The kbench model zoo: pure Keras 3 builders, one module per family.

Importing the package imports every family module, which registers its models in
``architectures._registry.MODEL_SPECS``. Nothing here measures anything; see ``kbench``.
"""

import importlib
import pkgutil

from architectures._registry import MODEL_SPECS, ModelSpec, Paper, Reported, register_model

__all__ = ["MODEL_SPECS", "ModelSpec", "Paper", "Reported", "register_model"]

# Every public module of the package but these is a family file (or package); a new family is
# picked up by existing.
_NOT_FAMILIES = {"layers", "errors"}
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name not in _NOT_FAMILIES:
        importlib.import_module(f"{__name__}.{_module.name}")
