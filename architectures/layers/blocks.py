"""Functional building blocks shared by every family (conv-norm-act, heads, dense stacks).

Builders compose these rather than repeating Conv2D/BatchNormalization/Activation triples, so a
change of convention (epsilon, padding, naming) happens in one place. Layer names are
systematic (``<prefix>_conv``, ``<prefix>_bn``, ``<prefix>_act``) because kbench groups
profiler scopes by layer name for its per-layer tables.
"""

from __future__ import annotations

import keras
from keras import layers

# torchvision's BatchNorm2d defaults, so trained-weight ports and parameter counts line up.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def norm_act(x, *, norm: bool = True, activation: str | None = "relu", epsilon: float = BN_EPSILON,
             momentum: float = BN_MOMENTUM, name: str):
    """BatchNorm (optional) then an activation (optional). ``epsilon``/``momentum`` for ports of
    TF-slim networks (NASNet: 1e-3, 0.9997); counts never depend on them."""
    if norm:
        x = layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def conv_bn_act(
    x,
    filters: int,
    kernel_size: int | tuple[int, int],
    *,
    strides: int = 1,
    padding: str = "same",
    groups: int = 1,
    dilation: int = 1,
    use_bias: bool = False,
    norm: bool = True,
    activation: str | None = "relu",
    name: str,
):
    """Conv2D -> BatchNorm -> activation, the unit most CNNs are made of.

    ``norm=False`` with ``use_bias=True`` gives the pre-BN-era conv + bias + ReLU (AlexNet, VGG).
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        dilation_rate=dilation,
        use_bias=use_bias,
        name=f"{name}_conv",
    )(x)
    return norm_act(x, norm=norm, activation=activation, name=name)


def depthwise_bn_act(
    x,
    kernel_size: int = 3,
    *,
    strides: int = 1,
    padding: str = "same",
    depth_multiplier: int = 1,
    dilation: int = 1,
    use_bias: bool = False,
    norm: bool = True,
    activation: str | None = "relu",
    name: str,
):
    """DepthwiseConv2D -> BatchNorm -> activation (MobileNet, ShuffleNet, Xception)."""
    x = layers.DepthwiseConv2D(
        kernel_size,
        strides=strides,
        padding=padding,
        depth_multiplier=depth_multiplier,
        dilation_rate=dilation,
        use_bias=use_bias,
        name=f"{name}_dwconv",
    )(x)
    return norm_act(x, norm=norm, activation=activation, name=name)


def separable_bn(
    x,
    filters: int,
    kernel_size: int = 3,
    *,
    strides: int = 1,
    padding: str = "same",
    pre_activation: bool = True,
    epsilon: float = BN_EPSILON,
    momentum: float = BN_MOMENTUM,
    name: str,
):
    """[ReLU] -> depthwise separable conv (one ``SeparableConv2D``: depthwise then pointwise, no
    bias, no BN or activation in between) -> BN: the unit of Xception and of NASNet's cells."""
    if pre_activation:
        x = layers.Activation("relu", name=f"{name}_pre_relu")(x)
    x = layers.SeparableConv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                               name=f"{name}_sepconv")(x)
    return norm_act(x, activation=None, epsilon=epsilon, momentum=momentum, name=name)


def dense_stack(x, units: tuple[int, ...], *, dropout: float = 0.0, activation: str = "relu", name: str):
    """Fully connected hidden layers (with optional dropout after each), as in AlexNet/VGG heads."""
    for i, width in enumerate(units, start=1):
        x = layers.Dense(width, activation=activation, name=f"{name}_fc{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_drop{i}")(x)
    return x


def classifier(x, num_classes: int, *, pool: bool = True, dropout: float = 0.0, use_bias: bool = True,
               activation: str | None = None, name: str = "head"):
    """Global average pool (optional), dropout (optional) and the final Dense layer."""
    if pool:
        x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return layers.Dense(num_classes, use_bias=use_bias, activation=activation, name=f"{name}_fc")(x)


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor`` without dropping more than 10%.

    The rule of the MobileNet V2 reference code, used by every width-multiplied family.
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def image_input(input_shape, name: str = "image"):
    return keras.Input(shape=tuple(input_shape), name=name)
