"""ResNeXt (Xie et al., 2017): ResNet bottlenecks whose 3x3 conv is grouped (cardinality).

No code of its own: the variants are presets of :func:`architectures.resnet.resnet` through its
``groups`` (cardinality C) and ``width_per_group`` (bottleneck width d) options; the 3x3 conv
of a stage with ``planes`` channels is ``planes * d / 64 * C`` wide (torchvision's rule), stride
on the 3x3 conv, no conv bias, BN after every conv.
"""

from __future__ import annotations

from architectures._registry import Paper, Reported, register_model
from architectures.resnet import resnet

PAPER = Paper("Aggregated Residual Transformations for Deep Neural Networks", 2017, "https://arxiv.org/abs/1611.05431")

register_model(
    "resnext50_32x4d",
    builder=resnet,
    preset=dict(depth=50, groups=32, width_per_group=4),
    family="resnext",
    paper=PAPER,
    reported=(
        Reported(exactness="rounded", primary=True, params=25_028_904, macs=4.23e9, source="torchvision ResNeXt50_32X4D_Weights (num_params, _ops 4.23)"),
        Reported(exactness="rounded", params=25.0e6, macs=4.2e9, source="paper Table 1 (FLOPs = multiply-adds)", convention="rounded"),
    ),
    test_input_size=(64, 64),
)

register_model(
    "resnext101_32x8d",
    builder=resnet,
    preset=dict(depth=101, groups=32, width_per_group=8),
    family="resnext",
    paper=PAPER,
    reported=(
        Reported(exactness="rounded", primary=True, params=88_791_336, macs=16.414e9, source="torchvision ResNeXt101_32X8D_Weights (num_params, _ops 16.414)"),
    ),
    test_input_size=(32, 32),
)
