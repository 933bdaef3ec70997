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

# Channel shuffle / split (ShuffleNet V1/V2).
from architectures.layers.shuffle import ChannelShuffle, ChannelSplit, channel_shuffle, shuffle_permutation  # noqa: E402

__all__ += ["ChannelShuffle", "ChannelSplit", "channel_shuffle", "shuffle_permutation"]

# Attention plugins (SE, FcaNet MSCA, DSNet DSM/DAM); importing registers their plugin types.
from architectures.layers.attention import (  # noqa: E402
    DecoupledAttention,
    DecoupledSelfAttention,
    MultiSpectralChannelAttention,
    SqueezeExcitation,
)

__all__ += ["DecoupledAttention", "DecoupledSelfAttention", "MultiSpectralChannelAttention", "SqueezeExcitation"]
