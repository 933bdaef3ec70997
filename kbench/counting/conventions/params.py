"""Parameter conventions: which weights a printed parameter count counts.

* ``torchvision``: every weight but BatchNorm's moving statistics (weights, biases, BN gamma/beta):
  what torchvision's ``num_params``, mmengine and most papers print (ResNet-50: 25,557,032).
* ``keras``: Keras' ``count_params()``, the moving statistics included (ResNet-50: 25,610,152).
* ``weights_and_biases``: conv/dense kernels and biases, no batch-norm variable at all (TF-slim's
  MobileNet V2 README: 3.47M).
"""

from __future__ import annotations

from kbench.counting.conventions._base import Convention

KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


def _elements(weights) -> int:
    from kbench.counting.layer_walk import prod

    return sum(prod(w.shape) for w in weights)


def papers_params(model) -> int:
    """Every weight but BatchNorm's moving statistics (``torchvision``): ``count_params``' ``params``,
    the one definition that profiles, sweeps and paper checks share."""
    from kbench.counting.layer_walk import count_params

    return count_params(model)["params"]


def keras_params(model) -> int:
    """Keras' ``count_params()``: ``count_params``' ``params_keras_total``."""
    from kbench.counting.layer_walk import count_params

    return count_params(model)["params_keras_total"]


def named_weights(layers, names=KERNELS) -> int:
    """Elements of the layers' weights whose last path part is one of ``names`` (kernels by default)."""
    return _elements(w for layer in layers for w in layer.weights if w.path.rsplit("/", 1)[-1] in names)


def weights_and_biases(model) -> int:
    return named_weights([model], KERNELS + ("bias",))


TORCHVISION = Convention(name="torchvision", unit="params", count_params=papers_params,
                         summary="parameters as torchvision and mmengine count them: weights, biases, BN gamma/beta "
                                 "(no moving statistics)")
KERAS = Convention(name="keras", unit="params", count_params=keras_params,
                   summary="parameters as Keras count_params() counts them: torchvision's plus BN moving mean/variance")
WEIGHTS_AND_BIASES = Convention(name="weights_and_biases", unit="params", count_params=weights_and_biases,
                                summary="conv/dense kernels and biases, no batch-norm variable (TF-slim's MobileNet V2 "
                                        "README)")
CONVENTIONS = (TORCHVISION, KERAS, WEIGHTS_AND_BIASES)
