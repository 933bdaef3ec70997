"""The MAC rule table: one rule per layer class (fvcore style: one fused multiply-add = 1 MAC;
bias, BN, activations, pooling and element-wise ops are 0), Keras' own layers here, the zoo's
custom layers in ``kbench.counting.rules``. ``kbench.counting.macs`` counts a model with it.

Rule signature: ``rule(layer, input_shapes, output_shapes) -> int`` with shapes that exclude the
batch dimension; register one with ``@mac_rule(Cls)``.
"""

from __future__ import annotations

from kbench.common.quiet import quiet_import

keras = quiet_import("keras")  # quietly: TF prints start-up notices on import

from kbench.counting.layer_walk import RuleTable
from kbench.counting.layer_walk import prod as _prod

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
