"""Plugin mechanism: attention modules inserted into a backbone block by name.

In the style of mmcv's ``plugins``: a backbone receives a list of plugin configurations::

    [{"type": "se", "stages": (True, True, True, True), "position": "after_conv3", "reduction": 16}]

and, for every block of a selected stage, builds the plugin with the channel count at that
position and applies it (``x = plugin(x)``). Plugin classes register themselves under a short
type name with ``@register_plugin("se")`` so a configuration stays plain data (CLI ``--set``).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from architectures.errors import ConfigError

PLUGIN_POSITIONS = ("after_conv1", "after_conv2", "after_conv3")

PLUGIN_TYPES: dict[str, Callable[..., Any]] = {}


def register_plugin(type_name: str):
    """Record a plugin layer class under ``type_name``; it is built as ``cls(**kwargs, name=...)``."""

    def record(cls):
        if type_name in PLUGIN_TYPES:
            raise ValueError(f"plugin type {type_name!r} registered twice")
        PLUGIN_TYPES[type_name] = cls
        return cls

    return record


def normalize_plugins(plugins: Sequence[Mapping[str, Any]] | None, num_stages: int) -> list[dict[str, Any]]:
    """Validate plugin configurations; return copies with ``stages`` as a tuple of bools."""
    normalized = []
    for cfg in plugins or ():
        cfg = dict(cfg)
        type_name = cfg.get("type")
        if type_name not in PLUGIN_TYPES:
            raise ConfigError("plugins", plugins, f"unknown plugin type {type_name!r}; known: "
                                             f"{', '.join(sorted(PLUGIN_TYPES)) or 'none'}")
        position = cfg.get("position")
        if position not in PLUGIN_POSITIONS:
            raise ConfigError("plugins", plugins, f"unknown plugin position {position!r}; allowed: "
                                             f"{', '.join(PLUGIN_POSITIONS)}")
        stages = tuple(bool(s) for s in cfg.get("stages", (True,) * num_stages))
        if len(stages) != num_stages:
            raise ConfigError("plugins", plugins, f"plugin stages {stages} must have {num_stages} entries")
        cfg["stages"] = stages
        normalized.append(cfg)
    return normalized


def apply_plugins(x, plugins: Sequence[Mapping[str, Any]], *, stage: int, position: str, name: str):
    """Apply, in order, every plugin configured for ``stage`` (0-based) at ``position``."""
    for index, cfg in enumerate(plugins):
        if cfg["position"] != position or not cfg["stages"][stage]:
            continue
        kwargs = {k: v for k, v in cfg.items() if k not in ("type", "stages", "position")}
        layer = PLUGIN_TYPES[cfg["type"]](**kwargs, name=f"{name}_{cfg['type']}{index}_{position}")
        x = layer(x)
    return x
