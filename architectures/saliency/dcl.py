"""DCL: the pixel-level multiscale FCN stream (DeepLab-style VGG-16 at output stride 8)."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.layers import image_input
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported

INPUT_MULTIPLE = 8  # decoder re-aligns features of stride 8: input sides must be multiples of it

DCL_PAPER = Paper("Deep Contrast Learning for Salient Object Detection", 2016, "https://arxiv.org/abs/1603.01976")


def _dcl_side(x, name, num_classes):
    """A multiscale side branch: 3x3 conv -> 128, 1x1 128 -> 128, 1x1 128 -> saliency."""
    x = conv(x, 128, 3, f"{name}_conv")
    x = conv(x, 128, 1, f"{name}_fc")
    return layers.Conv2D(num_classes, 1, name=f"{name}_ms_saliency")(x)


def dcl(input_shape=(224, 224, 3), num_classes=1, name=None):
    """DCL, pixel-level multiscale FCN stream (seed lines 368-420), DeepLab-style VGG-16 at
    output stride 8: 3x3/2 pools 1-3, 3x3/1 pools 4-5, conv5 3x3 dilated 2, fc6 4x4 dilated 4
    (the parameter line's kernels), fc7 1x1, fc8 -> saliency; six side maps upsampled
    (bilinear) to full resolution and fused by a 1x1 conv (6 weights)."""
    check_input_multiple(input_shape, INPUT_MULTIPLE, "dcl")
    inputs = image_input(input_shape)
    sides = [_dcl_side(inputs, "data", num_classes)]
    x = conv(inputs, 64, 3, "conv1_1")
    x = conv(x, 64, 3, "conv1_2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    sides.append(_dcl_side(x, "pool1", num_classes))
    x = conv(x, 128, 3, "conv2_1")
    x = conv(x, 128, 3, "conv2_2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    sides.append(_dcl_side(x, "pool2", num_classes))
    for c in range(1, 4):
        x = conv(x, 256, 3, f"conv3_{c}")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool3")(x)
    sides.append(_dcl_side(x, "pool3", num_classes))
    for c in range(1, 4):
        x = conv(x, 512, 3, f"conv4_{c}")
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool4")(x)
    sides.append(_dcl_side(x, "pool4", num_classes))
    for c in range(1, 4):
        x = conv(x, 512, 3, f"conv5_{c}", dilation=2)
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool5")(x)
    x = conv(x, 4096, 4, "fc6", dilation=4)
    x = conv(x, 4096, 1, "fc7")
    sides.append(layers.Conv2D(num_classes, 1, name="fc8")(x))
    factors = (1, 2, 4, 8, 8, 8)
    maps = [m if f == 1 else layers.UpSampling2D(f, interpolation="bilinear", name=f"side{i}_up")(m)
            for i, (m, f) in enumerate(zip(sides, factors))]
    x = layers.Concatenate(name="multiscale_maps")(maps)
    outputs = layers.Conv2D(num_classes, 1, use_bias=False, name="fuse")(x)
    return models.Model(inputs, outputs, name=name or "dcl")


register_model(
    "dcl", builder=dcl, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=DCL_PAPER, default_num_classes=1,
    min_input_size=(8, 8), test_input_size=(64, 64),
    reported=reference_reported("DCL", lines="368-420"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 8 (output stride 8).",
           "conv2_1 takes pool1's 64 channels (audit); conv5_x 3x3 dilation 2 and fc6 4x4 dilation 4 "
           "(the parameter line's kernels; audit's consistent reading, 897160*h*w for block5).",
           "The six side maps are upsampled bilinearly (not counted by the notes, 40*h*w in their "
           "convention) and fused by a 1x1 conv with 6 weights that the notes' params omit.",
           "Pixel-level stream only (segment-level stream and CRF not built).",
           "Dilated convs: TF pads through SpaceToBatchND when the rate does not divide the h/8 map, "
           "and the profiler counts that padded work; profiler MACs equal the analytic ones for inputs "
           "that are multiples of 32 (h/8 divisible by the rates 2 and 4)."),
)
