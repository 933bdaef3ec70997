"""Errors a builder raises for arguments it cannot build with.

``kbench.models.registry`` turns both into a one-line ``UsageError`` (exit code 2 on the CLI). Any
other exception from a builder is a bug in the builder and propagates as it is.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A builder option (a ``--set`` value) outside what the builder supports.

    ``allowed`` completes "option=value is not allowed: ...", e.g. "allowed depths 18, 34, 50".
    """

    def __init__(self, option: str, value: Any, allowed: str):
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(f"{option}={value!r} is not allowed: {allowed}")


class InputShapeError(ValueError):
    """An input size this configuration cannot be built at (a map too small for a layer...)."""
