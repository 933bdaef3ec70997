"""Saliency networks' custom layers (``architectures.layers.saliency``): no multiply-accumulates."""

from architectures.layers.saliency import ChannelSlice, ZeroState
from kbench.counting.mac_rules import mac_rule


@mac_rule(ZeroState, ChannelSlice)
def _data_movement_macs(layer, input_shapes, output_shapes):
    # ZeroState fills zeros, ChannelSlice slices: no arithmetic.
    return 0
