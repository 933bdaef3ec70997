"""Channel shuffle and channel split (ShuffleNet V1/V2): pure data movement, 0 MACs."""

from architectures.layers.shuffle import ChannelShuffle, ChannelSplit
from kbench.counting.mac_rules import mac_rule


@mac_rule(ChannelShuffle, ChannelSplit)
def _shuffle_macs(layer, input_shapes, output_shapes):
    return 0
