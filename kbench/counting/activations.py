"""Activations: output elements of the conv and matmul (dense) layers, per image.

fvcore's ``ActivationCountAnalysis`` (mmengine's ``ActivationAnalyzer``, timm's "macts"): every
convolution, linear/addmm, matmul, bmm and einsum contributes the number of elements it outputs;
nothing else does (BN, activations, pooling, adds: 0). A separable convolution is two convolutions
(depthwise output + pointwise output). The attention plugins (``architectures.layers.attention``)
register the outputs of their inner convolutions and matmuls here.

Checked: ResNet-50 at 224 without its head (``part="backbone"``) = 11,113,984, the "Activation:
11.114M" of mmpretrain (and DSNet's README); with the fc head it is 11,114,984 ("11.115M").
"""

from __future__ import annotations

from kbench.common.quiet import quiet_import

keras = quiet_import("keras")

from kbench.counting.parts import Counted, count_with_rules, output_elements
from kbench.counting.layer_walk import RuleTable
from kbench.counting.layer_walk import prod as _prod

ACTIVATION_RULES = RuleTable()
activation_rule = ACTIVATION_RULES.register
L = keras.layers


@activation_rule(L.Conv1D, L.Conv2D, L.Conv3D, L.DepthwiseConv1D, L.DepthwiseConv2D, L.Conv1DTranspose,
                 L.Conv2DTranspose, L.Conv3DTranspose, L.Dense, L.EinsumDense)
def _output(layer, input_shapes, output_shapes):
    return output_elements(output_shapes)


@activation_rule(L.SeparableConv1D, L.SeparableConv2D)
def _separable(layer, input_shapes, output_shapes):
    out = output_shapes[0]
    depthwise = _prod(out[:-1]) * input_shapes[0][-1] * layer.depth_multiplier
    return depthwise + _prod(out)


@activation_rule(L.BatchNormalization, L.LayerNormalization, L.GroupNormalization, L.PReLU)
def _none(layer, input_shapes, output_shapes):
    return 0


def _register_plugins():
    from architectures.layers.attention import (DecoupledAttention, DecoupledSelfAttention,
                                                MultiSpectralChannelAttention, SqueezeExcitation)

    @activation_rule(SqueezeExcitation, MultiSpectralChannelAttention)
    def _channel_gate(layer, input_shapes, output_shapes):
        # Two FC layers on the (C,) descriptor: hidden + C outputs.
        return layer.hidden + int(input_shapes[0][-1])

    @activation_rule(DecoupledSelfAttention, DecoupledAttention)
    def _decoupled(layer, input_shapes, output_shapes):
        # The outputs of the convs/matmuls whose MACs kbench.counting.rules.attention counts.
        h, w, c = (int(d) for d in input_shapes[0])
        ic, length = layer.inter_channels, h * w
        full_map_convs = length * (1 + 3 * ic + c)
        attention_matmuls = ic + length
        outer_product = c * length
        pooled_convs = c + ic + 2 * c
        return full_map_convs + attention_matmuls + outer_product + pooled_convs


_register_plugins()


def count_activations(model, part: str = "whole", *, calls=None) -> Counted:
    """Output elements of conv/matmul layers of ``part`` of ``model``, per image (``calls``: the
    model's ``layer_walk.layer_calls``, if walked already)."""
    return count_with_rules(model, ACTIVATION_RULES, part, calls=calls)
