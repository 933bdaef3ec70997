"""kbench: parameters, TF-profiler FLOPs/MACs and throughput sweeps for Keras 3 CNNs.

Public API (the README is the public contract: names, keys, exit codes, CSV columns)::

    kbench.list_models(family=None)
    kbench.build(name, input_shape=None, num_classes=None, **variant_kwargs)
    kbench.profile(model, input_shape=None, per_layer=False, num_classes=None, **variant_kwargs)
    kbench.sweep.sweep_models(models, out=..., batch_sizes=(1, 8, 32), ...)  # import kbench.sweep
    kbench.load_model(path)  # keras.saving.load_model with the zoo's layers registered

``model`` is a registered name, a saved ``PATH.keras``, a ``module:factory`` or a ``keras.Model``.
``import kbench`` also registers the zoo's custom layers with Keras (when Keras is imported), so
``keras.saving.load_model`` reads a saved kbench model.
"""

__version__ = "0.1.0"

from kbench.errors import InputSizeError, UnknownModelError, UsageError  # noqa: E402
from kbench.registry import build, get_spec, list_families, list_models, load_model  # noqa: E402
from kbench.registry import register_zoo_layers as _register_zoo_layers  # noqa: E402

_register_zoo_layers()  # keras.saving.load_model knows the zoo's layers once Keras is imported


def profile(model, input_shape=None, per_layer: bool = False, num_classes: int | None = None, **variant):
    """Params, ``flops_tf``, ``macs``, ``mem_access`` and ``uncounted_ops`` of one model (TF backend).

    ``model``: a registered name, a saved ``PATH.keras``, a ``module:factory`` (``variant`` are its
    keyword arguments) or a ``keras.Model`` (Functional, Sequential or subclassed; a model that
    declares no input shape needs ``input_shape``). Bad arguments raise ``UsageError``.
    """
    from kbench import registry, selectors
    from kbench.profiling import profile as profile_request

    if isinstance(model, str):
        names = selectors.expand(model)
        if len(names) != 1:
            raise UsageError(f"{model!r} names {len(names)} models; kbench.profile takes one "
                             "(loop over kbench.selectors.expand(...))")
        model = names[0]
    return profile_request(registry.resolve(model, input_shape, num_classes, variant), per_layer=per_layer)


__all__ = [
    "InputSizeError", "UnknownModelError", "UsageError", "build", "get_spec", "list_families",
    "list_models", "load_model", "profile", "__version__",
]
