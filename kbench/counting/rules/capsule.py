"""Capsule layers: the prediction matmul and routing's weighted sums and agreements."""

from architectures.layers.capsule import CapsuleLength, CapsuleMask, CapsuleRouting, Squash
from kbench.counting.mac_rules import mac_rule


@mac_rule(CapsuleRouting)
def _capsule_routing_macs(layer, input_shapes, output_shapes):
    num_inputs, input_dim = input_shapes[0]
    num_capsules, capsule_dim = output_shapes[0]
    pairs = num_inputs * num_capsules * capsule_dim
    predictions = pairs * input_dim                     # u_hat_{j|i} = W_ij u_i
    weighted_sums = layer.routings * pairs              # s_j = sum_i c_ij u_hat_{j|i}, every iteration
    agreements = (layer.routings - 1) * pairs           # b_ij += u_hat_{j|i} . v_j, all but the last
    return predictions + weighted_sums + agreements


@mac_rule(Squash, CapsuleLength, CapsuleMask)
def _capsule_elementwise_macs(layer, input_shapes, output_shapes):
    return 0
