"""Xception (Chollet, 2017): depthwise separable convolutions with residual connections (Fig. 5).

Entry flow: two plain 3x3 convs (32/2, 64; unpadded), then three blocks (128, 256, 728) of
[ReLU] separable conv - BN - ReLU - separable conv - BN - 3x3/2 max pool, added to a strided
1x1 conv + BN shortcut. Middle flow: eight residual blocks of three ReLU - separable 728 - BN.
Exit flow: ReLU-sep 728-BN-ReLU-sep 1024-BN-pool with a 1x1 shortcut, then sep 1536 - BN - ReLU
- sep 2048 - BN - ReLU, global average pool and the classifier. No conv biases; the layout (and
so the parameter count, 22,855,952 trainable) is keras.applications.Xception's.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.layers import classifier, conv_bn_act, image_input, separable_bn


def sep_bn(x, filters, *, pre_activation=True, name):
    """[ReLU] -> 3x3 depthwise separable conv (no bias, no BN in between) -> BN."""
    return separable_bn(x, filters, 3, pre_activation=pre_activation, name=name)


def downsampling_block(x, widths, *, first_pre_activation=True, name):
    shortcut = conv_bn_act(x, widths[-1], 1, strides=2, activation=None, name=f"{name}_shortcut")
    for i, width in enumerate(widths, start=1):
        x = sep_bn(x, width, pre_activation=first_pre_activation or i > 1, name=f"{name}_sep{i}")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def xception(input_shape=(299, 299, 3), num_classes=1000, middle_blocks=8, include_top=True, name=None):
    inputs = image_input(input_shape)
    # Entry flow.
    x = conv_bn_act(inputs, 32, 3, strides=2, padding="valid", name="block1_conv1")
    x = conv_bn_act(x, 64, 3, padding="valid", name="block1_conv2")
    x = downsampling_block(x, (128, 128), first_pre_activation=False, name="block2")
    x = downsampling_block(x, (256, 256), name="block3")
    x = downsampling_block(x, (728, 728), name="block4")
    # Middle flow.
    for b in range(5, 5 + middle_blocks):
        shortcut = x
        for i in (1, 2, 3):
            x = sep_bn(x, 728, name=f"block{b}_sep{i}")
        x = layers.Add(name=f"block{b}_add")([x, shortcut])
    # Exit flow.
    b = 5 + middle_blocks
    x = downsampling_block(x, (728, 1024), name=f"block{b}")
    x = sep_bn(x, 1536, pre_activation=False, name=f"block{b + 1}_sep1")
    x = layers.Activation("relu", name=f"block{b + 1}_sep1_relu")(x)
    x = sep_bn(x, 2048, pre_activation=False, name=f"block{b + 1}_sep2")
    x = layers.Activation("relu", name=f"block{b + 1}_sep2_relu")(x)
    if include_top:
        x = classifier(x, num_classes, name="head")
    return models.Model(inputs, x, name=name or "xception")


register_model(
    "xception",
    builder=xception,
    family="xception",
    paper=Paper("Xception: Deep Learning with Depthwise Separable Convolutions", 2017, "https://arxiv.org/abs/1610.02357"),
    default_input_shape=(299, 299, 3),
    min_input_size=(71, 71),
    reported=(
        Reported(exactness="exact", primary=True, params=22_855_952, macs=8_357_403_496, source="paper Table 3 params (= keras.applications trainable); "
                 "MACs: [calc] computed from the layer list of keras.applications.Xception", input_size=(299, 299)),
        Reported(exactness="exact", params_total=True, params=22_910_480, source="keras.applications.Xception count_params()",
                 convention="total parameters, BN moving mean/variance included (params_total)"),
    ),
    notes=(
        "keras.applications layout (the paper's Fig. 5): no conv biases, BN after every (separable) conv; "
        "the head returns logits (keras.applications applies softmax).",
        "min_input_size 71 is keras.applications' documented limit (the valid stem convs alone would accept 7).",
        "BN epsilon 1e-5 here vs 1e-3 in keras.applications; counts do not depend on it.",
    ),
    test_input_size=(71, 71),
)
