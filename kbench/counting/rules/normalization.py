"""Local response normalisation: element-wise arithmetic only, no multiply-accumulates."""

from architectures.layers.normalization import LocalResponseNormalization
from kbench.counting.mac_rules import mac_rule


@mac_rule(LocalResponseNormalization)
def _lrn_macs(layer, input_shapes, output_shapes):
    return 0
