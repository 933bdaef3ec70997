"""Memory access cost (MAC in the ShuffleNet V2 sense): elements read + written per image.

Not to be confused with ``macs`` (multiply-accumulates). ShuffleNet V2 (Ma et al., 2018, §2)
and the seed slides count, for a 1x1 convolution from ``c1`` to ``c2`` channels on an ``h x w``
map, ``MAC = hw(c1 + c2) + c1*c2``: the input map is read once, the output map is written once
and the weights are read once. This module applies that convention to every layer of a
Functional model, per image (batch excluded), in *elements* (multiply by the dtype size for
bytes):

* convolution (any ``k x k``, stride, dilation, ``groups=g``), transposed conv:
  ``h_in*w_in*c1 + h_out*w_out*c2 + k*k*c1*c2/g`` (the kernel's size);
* depthwise conv: ``h_in*w_in*c + h_out*w_out*c*m + k*k*c*m``; separable conv: input + output +
  depthwise kernel + pointwise kernel (the intermediate map is not counted: one fused op);
* dense: ``n_in + n_out + n_in*n_out``;
* everything else (BN, activations, pooling, Add/Multiply and other merges, Concatenate,
  channel shuffle/split, reshape/flatten, global pooling): every input tensor read once plus
  every output tensor written once (an Add of two maps costs 3 maps);
* 0 for the input layer and for layers that are the identity at inference (Dropout and the
  noise layers).

Only kernels count as weights (variables whose name ends in ``kernel``); biases and BN
scale/shift/statistics are O(channels) and left out, as the slides' formula leaves them out.
Custom layers may register their own rule with ``@memory_rule(LayerClass)``; signature
``rule(layer, input_shapes, output_shapes) -> int``, shapes without the batch dimension.
An unregistered custom layer gets the default (inputs + outputs + kernel-named weights).
"""

from __future__ import annotations

import math

from kbench.common.quiet import quiet_import

keras = quiet_import("keras")  # quietly: TF prints start-up notices on import

from kbench.counting.layer_walk import RuleTable, analyze
from kbench.counting.layer_walk import prod as _prod

MEMORY_RULES = RuleTable()
memory_rule = MEMORY_RULES.register

# Identity at inference: no memory traffic of their own.
INFERENCE_IDENTITY = (
    keras.layers.Dropout, keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D, keras.layers.GaussianNoise, keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def kernel_elements(layer) -> int:
    """Elements of the layer's kernels (``kernel``, ``depthwise_kernel``, ``pointwise_kernel``...)."""
    total = 0
    for w in layer.weights:
        name = w.name.split("/")[-1].split(":")[0]
        if name.endswith("kernel"):
            total += _prod(w.shape)
    return total


def default_rule(layer, input_shapes, output_shapes) -> int:
    """Inputs read + outputs written + kernel weights read (see module docstring)."""
    return sum(_prod(s) for s in input_shapes) + sum(_prod(s) for s in output_shapes) + kernel_elements(layer)


@memory_rule(*INFERENCE_IDENTITY)
def _identity_rule(layer, input_shapes, output_shapes) -> int:
    return 0


def memory_access_cost(model, *, calls=None) -> dict:
    """Elements read + written per image: ``{"total": int, "per_layer": {layer_name: int}}``.

    Nested Functional models are walked into: their layers are listed as ``nested/layer``
    (see ``kbench.counting.layer_walk``; ``calls``: the model's ``layer_calls``, if walked already).
    """
    counted = analyze(model, MEMORY_RULES, default=default_rule, calls=calls)
    return {"total": counted.total, "per_layer": counted.per_layer}


def g1_lower_bound(hw: int, flops: int) -> float:
    """ShuffleNet V2 guideline 1: a 1x1 conv with ``B = hw*c1*c2`` has MAC >= 2*sqrt(hw*B) + B/hw,
    with equality iff ``c1 == c2``."""
    return 2.0 * math.sqrt(hw * flops) + flops / hw
