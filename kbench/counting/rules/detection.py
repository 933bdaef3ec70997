"""MAC rules for the detection layers (``architectures.layers.detection``).

Proposal selection (top-k, box decoding, NMS), RoIAlign's bilinear sampling and the detection
output are gathers, comparisons and element-wise arithmetic: no multiply-accumulate in the
conv/matmul sense, and mmengine's counter skips them too. They are 0 here by rule, not by
omission; the profiler lists their gathers/loops among ``uncounted_ops`` or element-wise FLOPs.
The box head's dense layers are ordinary ``Dense`` layers, counted by the core rules.
"""

from architectures.layers.detection import DetectionOutput, MultiLevelRoIAlign, RPNProposals
from kbench.counting.mac_rules import mac_rule


@mac_rule(RPNProposals, MultiLevelRoIAlign, DetectionOutput)
def _no_macs(layer, input_shapes, output_shapes):
    return 0
