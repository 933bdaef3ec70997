"""An analytic multiply-accumulate counter, independent of the TensorFlow profiler.

It reads each layer's configuration and its input/output shapes in the Functional graph and
applies the textbook formulas, one rule per layer class (fvcore style: one fused
multiply-add = 1 MAC; bias, BN, activations, pooling and element-wise ops are 0). The tests
use it to cross-check ``kbench.profile``'s ``macs`` on every registered model.

Custom layers that multiply (attention, capsules) register a rule with ``@mac_rule(Cls)``;
a weighted layer with no rule is reported in ``unknown_layers`` rather than counted as 0.
Rule signature: ``rule(layer, input_shapes, output_shapes) -> int`` with shapes that
exclude the batch dimension. The walk over the model is ``kbench.layer_walk.analyze``.
"""

from __future__ import annotations

from kbench._quiet import quiet_import

keras = quiet_import("keras")  # quietly: TF prints start-up notices on import

from kbench.layer_walk import RuleTable, analyze
from kbench.layer_walk import prod as _prod

MAC_RULES = RuleTable()
mac_rule = MAC_RULES.register


@mac_rule(keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
def _conv_macs(layer, input_shapes, output_shapes):
    out = output_shapes[0]
    cin = input_shapes[0][-1]
    return _prod(out) * _prod(layer.kernel_size) * (cin // layer.groups)


@mac_rule(keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
def _depthwise_macs(layer, input_shapes, output_shapes):
    return _prod(output_shapes[0]) * _prod(layer.kernel_size)


@mac_rule(keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
def _separable_macs(layer, input_shapes, output_shapes):
    out = output_shapes[0]
    cin = input_shapes[0][-1]
    depthwise = _prod(out[:-1]) * cin * layer.depth_multiplier * _prod(layer.kernel_size)
    pointwise = _prod(out[:-1]) * cin * layer.depth_multiplier * out[-1]
    return depthwise + pointwise


@mac_rule(keras.layers.Conv2DTranspose, keras.layers.Conv1DTranspose, keras.layers.Conv3DTranspose)
def _transposed_conv_macs(layer, input_shapes, output_shapes):
    # TF's Conv2DBackpropInput rule: output elements x k x k x Cin / stride^2, which equals the
    # usual "every input pixel meets the whole kernel" count (Hin x Win x Cin x Cout x k x k)
    # whenever output size = input size x stride ("same" padding).
    out = output_shapes[0]
    cin = input_shapes[0][-1]
    return _prod(out) * _prod(layer.kernel_size) * cin // _prod(layer.strides)


@mac_rule(keras.layers.Dense)
def _dense_macs(layer, input_shapes, output_shapes):
    return _prod(input_shapes[0]) * layer.units


@mac_rule(keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization,
          keras.layers.PReLU)
def _no_macs(layer, input_shapes, output_shapes):
    # Per-element scale/shift: counted by the profiler as element-wise FLOPs, never as MACs.
    return 0


def _load_layer_rules():
    import importlib
    import pkgutil

    from kbench import layer_rules

    for module in pkgutil.iter_modules(layer_rules.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{layer_rules.__name__}.{module.name}")


def count_macs(model) -> dict:
    """MACs per image of a Functional ``model``: ``{"macs", "per_layer", "unknown_layers"}``.

    ``per_layer`` names the layers of nested Functional models ``nested/layer`` (see
    ``kbench.layer_walk``); layers without a rule and without weights are not listed.
    """
    counted = analyze(model, MAC_RULES)
    return {"macs": counted.total, "per_layer": counted.per_layer, "unknown_layers": counted.uncovered}


_load_layer_rules()
