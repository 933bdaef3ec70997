"""MobileNetV2 (output stride 8) + DeepLabv3 ASPP and the notes' simple decoder."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.layers import conv_bn_act, image_input
from architectures.mobilenet import inverted_residual
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, reference_reported

INPUT_MULTIPLE = 8  # decoder re-aligns features of stride 8: input sides must be multiples of it

DEEPLAB_PAPER = Paper("Rethinking Atrous Convolution for Semantic Image Segmentation (DeepLabv3), "
                      "MobileNetV2 backbone", 2017, "https://arxiv.org/abs/1706.05587")

# MobileNetV2 (t, c, n, s) at output stride 8, as reconstructed by the audit: the stride of
# stages 4 and 6 is replaced by dilation 2 and 4.
MBV2_OS8 = ((1, 16, 1, 1, 1), (6, 24, 2, 2, 1), (6, 32, 3, 2, 1), (6, 64, 4, 1, 2), (6, 96, 3, 1, 2),
            (6, 160, 3, 1, 4), (6, 320, 1, 1, 4))


def mobilenet_v2_os8_features(x, *, block1_expansion=True, name="mbv2"):
    """MobileNetV2 features at output stride 8; returns (h/4 x 24 low-level, h/8 x 320 top).

    The units are ``architectures.mobilenet.inverted_residual`` with the notes' variant: a t=1
    expansion conv in block 1 (``expand_always``) and dilated stages instead of strided ones.
    """
    x = conv_bn_act(x, 32, 3, strides=2, activation="relu6", name=f"{name}_head")
    low, previous_dilation = None, 1
    for b, (t, c, n, s, d) in enumerate(MBV2_OS8, start=1):
        for u in range(n):
            # The first unit of a stage keeps the previous stage's dilation (DeepLab's convention).
            x = inverted_residual(x, c, s if u == 0 else 1, t, dilation=previous_dilation if u == 0 else d,
                                  expand_always=block1_expansion and b == 1, name=f"{name}_block{b}_unit{u + 1}")
        previous_dilation = d
        if b == 2:
            low = x
    return low, x


def mobilenet_v2_deeplabv3(input_shape=(224, 224, 3), num_classes=1, block1_expansion=True,
                           atrous_rates=(12, 24, 36), name=None):
    """MobileNetV2 (output stride 8) + ASPP (1x1, three 3x3 atrous, image pooling) + 1x1
    projection, and the notes' simple decoder: 1x1 24 -> 48 on the h/4 feature, concat with the
    (bilinearly upsampled) ASPP output, 1x1 304 -> ``num_classes``, bilinear x4 to full size.

    Convs have no bias and are followed by BN (folded at inference: the notes count neither)."""
    check_input_multiple(input_shape, INPUT_MULTIPLE, "mobilenet_v2_deeplabv3")
    h8, w8 = input_shape[0] // 8, input_shape[1] // 8
    inputs = image_input(input_shape)
    low, x = mobilenet_v2_os8_features(inputs, block1_expansion=block1_expansion)
    branches = [conv_bn_act(x, 256, 1, name="aspp0")]
    for i, rate in enumerate(atrous_rates, start=1):
        branches.append(conv_bn_act(x, 256, 3, dilation=rate, name=f"aspp{i}"))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="aspp_gap")(x)
    pooled = conv_bn_act(pooled, 256, 1, name="aspp_gap_conv")
    branches.append(layers.UpSampling2D((h8, w8), interpolation="nearest", name="aspp_gap_broadcast")(pooled))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = conv_bn_act(x, 256, 1, name="aspp_projection")
    x = layers.UpSampling2D(2, interpolation="bilinear", name="decoder_up")(x)
    low = conv_bn_act(low, 48, 1, name="low_feature")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = layers.Conv2D(num_classes, 1, use_bias=False, name="last_conv")(x)
    outputs = layers.UpSampling2D(4, interpolation="bilinear", name="output_up")(x)
    return models.Model(inputs, outputs, name=name or "mobilenet_v2_deeplabv3")


register_model(
    "mobilenet_v2_deeplabv3", builder=mobilenet_v2_deeplabv3, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=DEEPLAB_PAPER,
    default_num_classes=1, min_input_size=(16, 16),
    # Small: the padding TF convolves around dilated convs is set apart (flops_tf_dilation_padding).
    test_input_size=(64, 64),
    reported=reference_reported("MobileNetV2+DeepLabv3", lines="422-490"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 8 (output stride 8).",
           "MobileNetV2 backbone from architectures/mobilenet.py's inverted_residual (dilation, expand_always), "
           "at output stride 8 (stages 4 and 6 dilated instead of strided), block 1 with a t=1 1x1 "
           "expansion conv as the notes count (block1_expansion=False gives standard MobileNetV2).",
           "Convs without bias + BN (folded at inference: the notes count neither BN cost nor BN params); "
           "residual adds, ASPP image pooling and decoder upsampling are not counted by the notes.",
           "ASPP atrous rates (12, 24, 36) at output stride 8.",
           "TF runs a dilated conv through SpaceToBatchND when the rate does not divide the feature "
           "size, and the profiler then counts the padded work (2.25x for rate 12 on an 8x8 map); "
           "kbench.profile's MACs equal the analytic count when h/8 and w/8 are multiples of every "
           "rate (inputs that are multiples of 576 for the default rates). The analytic count "
           "(kbench.counting.macs, fit-flops --counter analytic) is the textbook one at every size."),
)
