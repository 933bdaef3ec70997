"""Shared layers and blocks of the zoo: one import for builders.

``blocks``: functional conv-norm-act units and heads. Custom Keras layers live in sibling
modules (normalisation, channel shuffle, attention plugins, capsules) and are re-exported
here; importing ``attention`` also registers its plugin types (``se``, ``msca``, ``dsm``, ``dam``).
"""

from architectures.layers.attention import (
    DecoupledAttention,
    DecoupledSelfAttention,
    MultiSpectralChannelAttention,
    SqueezeExcitation,
)
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
    separable_bn,
)
from architectures.layers.capsule import CapsuleLength, CapsuleMask, CapsuleRouting, Squash
from architectures.layers.normalization import LocalResponseNormalization
from architectures.layers.pooling import ceil_max_pool
from architectures.layers.plugins import PLUGIN_POSITIONS, PLUGIN_TYPES, apply_plugins, register_plugin
from architectures.layers.shuffle import (
    ChannelGather,
    ChannelShuffle,
    ChannelSplit,
    channel_shuffle,
    shuffle_permutation,
)

__all__ = [
    "BN_EPSILON", "BN_MOMENTUM", "PLUGIN_POSITIONS", "PLUGIN_TYPES",
    "CapsuleLength", "CapsuleMask", "CapsuleRouting", "ChannelGather", "ChannelShuffle", "ChannelSplit",
    "DecoupledAttention", "DecoupledSelfAttention", "LocalResponseNormalization",
    "MultiSpectralChannelAttention", "SqueezeExcitation", "Squash",
    "apply_plugins", "ceil_max_pool", "channel_shuffle", "classifier", "conv_bn_act", "dense_stack", "depthwise_bn_act",
    "image_input", "make_divisible", "norm_act", "register_plugin", "separable_bn", "shuffle_permutation",
]
