"""kbench: parameters, TF-profiler FLOPs/MACs and throughput sweeps for Keras 3 CNNs.

Public API (see the README and ``shared/specs/interface.md``)::

    kbench.list_models(family=None)
    kbench.build(name, input_shape=None, num_classes=None, **variant_kwargs)
    kbench.profile(name, input_shape=None, per_layer=False, num_classes=None, **variant_kwargs)
"""

__version__ = "0.1.0"

from kbench.errors import InputSizeError, UnknownModelError, UsageError  # noqa: E402
from kbench.registry import build, get_spec, list_families, list_models  # noqa: E402


def profile(name, input_shape=None, per_layer=False, num_classes=None, **variant):
    """Params, ``flops_tf``, ``macs`` and ``uncounted_ops`` of a registered model (TF backend).

    The arguments are resolved once (``registry.resolve``: bad ones raise ``UsageError``) and
    the resulting request is profiled by ``kbench.profiling.profile``.
    """
    from kbench.profiling import profile as _profile
    from kbench.registry import resolve

    return _profile(resolve(name, input_shape, num_classes, variant), per_layer=per_layer)


__all__ = [
    "InputSizeError", "UnknownModelError", "UsageError", "build", "get_spec", "list_families",
    "list_models", "profile", "__version__",
]
