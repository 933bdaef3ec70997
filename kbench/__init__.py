"""kbench: parameters, TF-profiler FLOPs/MACs and throughput sweeps for Keras 3 CNNs.

The package face (the README is the public contract)::

    kbench.list_models(family=None)
    kbench.build(name, input_shape=None, num_classes=None, **variant_kwargs)
    kbench.profile(model, input_shape=None, per_layer=False, num_classes=None, **variant_kwargs)
    kbench.sweep_models(models, out=..., batch_sizes=(1, 8, 32), ...)
    kbench.load_model(path)  # keras.saving.load_model with the zoo's layers registered

Behind it, layers that import only downward (``tests/test_layout.py``): ``common`` < ``models`` <
``counting`` < ``results`` < ``running`` < ``nightly`` < ``papers`` < ``commands``.

``model`` is a registered name, a saved ``PATH.keras``, a ``module:factory`` or a ``keras.Model``.
``import kbench`` also registers the zoo's custom layers with Keras (when Keras is imported), so
``keras.saving.load_model`` reads a saved kbench model.
"""

from kbench.errors import InputSizeError, UnknownModelError, UsageError
from kbench.models.registry import build, get_spec, list_families, list_models, load_model
from kbench.models.registry import register_zoo_layers as _register_zoo_layers
from kbench.version import __version__

_register_zoo_layers()  # keras.saving.load_model knows the zoo's layers once Keras is imported


def profile(model, input_shape=None, per_layer: bool = False, num_classes: int | None = None, **variant):
    """Params, ``flops_tf``, ``macs``, ``mem_access`` and ``uncounted_ops`` of one model (TF backend).

    ``model``: a registered name, a saved ``PATH.keras``, a ``module:factory`` (``variant`` are its
    keyword arguments) or a ``keras.Model`` (Functional, Sequential or subclassed; a model that
    declares no input shape needs ``input_shape``). Bad arguments raise ``UsageError``.
    """
    from kbench.models import registry, selectors
    from kbench.counting.profiling import profile as profile_request

    if isinstance(model, str):
        names = selectors.expand(model)
        if len(names) != 1:
            raise UsageError(f"{model!r} names {len(names)} models; kbench.profile takes one "
                             "(loop over kbench.models.selectors.expand(...))")
        model = names[0]
    return profile_request(registry.resolve(model, input_shape, num_classes, variant), per_layer=per_layer)


def sweep_models(models, **options):
    """``kbench sweep`` from Python (``kbench.running.sweep.sweep_models``): measure ``models`` (a
    selector string, a ``keras.Model`` or a list of them) and append the rows to ``out``."""
    from kbench.running.sweep import sweep_models as run

    return run(models, **options)


__all__ = [
    "InputSizeError", "UnknownModelError", "UsageError", "build", "get_spec", "list_families",
    "list_models", "load_model", "profile", "sweep_models", "__version__",
]
