"""Shared layers and blocks of the zoo: one import for builders.

``blocks``: functional conv-norm-act units and heads. Custom Keras layers (channel shuffle,
attention plugins, capsules, ...) live in sibling modules and are re-exported here.
"""

from architectures.layers.blocks import (
    BN_EPSILON,
    BN_MOMENTUM,
    classifier,
    conv_bn_act,
    dense_stack,
    depthwise_bn_act,
    image_input,
    make_divisible,
    norm_act,
)

__all__ = [
    "BN_EPSILON",
    "BN_MOMENTUM",
    "classifier",
    "conv_bn_act",
    "dense_stack",
    "depthwise_bn_act",
    "image_input",
    "make_divisible",
    "norm_act",
]
