"""kbench: parameters, TF-profiler FLOPs/MACs and throughput sweeps for Keras 3 CNNs.

Public API (see the README and ``shared/specs/interface.md``)::

    kbench.list_models(family=None)
    kbench.build(name, input_shape=None, num_classes=None, **variant_kwargs)
    kbench.profile(name, input_shape=None, per_layer=False, **variant_kwargs)
"""

__version__ = "0.1.0"

from kbench.errors import InputSizeError, UnknownModelError, UsageError  # noqa: E402
from kbench.registry import build, get_spec, list_families, list_models  # noqa: E402


def profile(name, input_shape=None, per_layer=False, **kwargs):
    """Params, ``flops_tf``, ``macs`` and ``uncounted_ops`` of a registered model (TF backend)."""
    from kbench.profiling import profile as _profile

    return _profile(name, input_shape=input_shape, per_layer=per_layer, **kwargs)


__all__ = [
    "InputSizeError", "UnknownModelError", "UsageError", "build", "get_spec", "list_families",
    "list_models", "profile", "__version__",
]
