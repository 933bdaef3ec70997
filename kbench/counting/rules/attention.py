"""MAC rules for the attention plugins (``architectures.layers.attention``).

Only Conv2D / MatMul / BatchMatMul work counts (the profiler's MAC ops). Pooling, softmax,
sigmoid, normalisation and the element-wise products and sums (SE/MSCA gating, FcaNet's DCT
projection, DSM's aggregation) are not multiply-accumulates in this convention.
"""

from architectures.layers.attention import (
    DecoupledAttention,
    DecoupledSelfAttention,
    MultiSpectralChannelAttention,
    SqueezeExcitation,
)
from kbench.counting.mac_rules import mac_rule


@mac_rule(SqueezeExcitation, MultiSpectralChannelAttention)
def _channel_gate_macs(layer, input_shapes, output_shapes):
    # Two FC layers on the (C,) descriptor: C -> hidden -> C.
    c = int(input_shapes[0][-1])
    return 2 * c * layer.hidden


@mac_rule(DecoupledSelfAttention, DecoupledAttention)
def _decoupled_attention_macs(layer, input_shapes, output_shapes):
    h, w, c = (int(d) for d in input_shapes[0])
    ic = layer.inter_channels
    length = h * w
    full_map_convs = length * (c * 1 + 3 * c * ic + c * c)  # q_right, v_right/q_left/v_left, value or gate conv
    attention_matmuls = 2 * ic * length                     # softmax(q) @ v, v_left @ softmax(g)
    outer_product = c * length                              # As (L, 1) @ Ac (1, C)
    pooled_convs = ic * c + c * ic + ic * 2 * c             # conv_up, sk_fc_reduce, sk_fc_select
    return full_map_convs + attention_matmuls + outer_product + pooled_convs
