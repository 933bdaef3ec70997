"""DSS: VGG-16 with six deeply supervised side outputs and short connections."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.layers import image_input
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported, vgg16

INPUT_MULTIPLE = 32  # decoder re-aligns features of stride 32: input sides must be multiples of it

DSS_PAPER = Paper("Deeply Supervised Salient Object Detection with Short Connections", 2017,
                  "https://arxiv.org/abs/1611.04849")

# Side branches: (source, stride, kernel, width of the two convs).
DSS_SIDES = ((1, 3, 128), (2, 3, 128), (3, 5, 256), (4, 5, 256), (5, 5, 512), (6, 7, 512))


def dss(input_shape=(224, 224, 3), num_classes=1, fusion=True, name=None):
    """DSS (seed lines 745-841): VGG-16 with six side outputs (conv1_2 ... conv5_3 and pool5),
    each two convs + a 1x1 score conv, and short connections: side 4 <- (4, 5, 6), side 3 <-
    (3, 5, 6), sides 2 and 1 <- (own, 3~, 4~, 5, 6), each fused by a 1x1 conv. Deeper maps are
    upsampled (bilinear) to the target resolution; ``fusion`` adds the final 1x1 conv over the six
    refined maps at full resolution (DSS has it; the notes do not count it)."""
    check_input_multiple(input_shape, INPUT_MULTIPLE, "dss")
    inputs = image_input(input_shape)
    pre_pool, pooled = vgg16(inputs)
    sources = [*pre_pool, pooled[4]]
    strides = (1, 2, 4, 8, 16, 32)
    side = {}
    for (i, kernel, width), src in zip(DSS_SIDES, sources):
        x = conv(src, width, kernel, f"side{i}_conv1")
        x = conv(x, width, kernel, f"side{i}_conv2")
        side[i] = layers.Conv2D(num_classes, 1, name=f"side{i}_score")(x)

    cache = {}

    def resized(i, m, target):
        factor = strides[i - 1] // strides[target - 1]
        if factor == 1:
            return m
        if (i, target) not in cache:  # one upsampling per (map, resolution), shared by its users
            cache[i, target] = layers.UpSampling2D(factor, interpolation="bilinear", name=f"side{i}_to{target}")(m)
        return cache[i, target]

    refined = {5: side[5], 6: side[6]}
    plan = ((4, (5, 6)), (3, (5, 6)), (2, (3, 4, 5, 6)), (1, (3, 4, 5, 6)))
    for target, deeper in plan:
        maps = [side[target]] + [resized(j, refined[j], target) for j in deeper]
        x = layers.Concatenate(name=f"short{target}_in")(maps)
        refined[target] = layers.Conv2D(num_classes, 1, use_bias=False, name=f"short{target}")(x)
    if not fusion:
        # The six refined (deeply supervised) side maps, as in the notes' layer list.
        return models.Model(inputs, [refined[i] for i in range(1, 7)], name=name or "dss")
    # The refined maps 3~ .. 6 at full resolution are the ones already made for side 1.
    maps = [resized(j, refined[j], 1) for j in range(1, 7)]
    x = layers.Concatenate(name="fusion_in")(maps)
    outputs = layers.Conv2D(num_classes, 1, use_bias=False, name="fusion")(x)
    return models.Model(inputs, outputs, name=name or "dss")


register_model(
    "dss", builder=dss, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=DSS_PAPER, default_num_classes=1,
    min_input_size=(32, 32), test_input_size=(64, 64),
    reported=reference_reported("DSS", lines="745-841"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "Short connections: side4 <- (4,5,6), side3 <- (3,5,6), side2/side1 <- (own, 3~, 4~, 5, 6), "
           "each a 1x1 conv (3 or 5 weights), deeper maps bilinearly upsampled (not counted by the notes).",
           "fusion=True (default) adds DSS's final 1x1 conv over the six refined maps (6 weights, "
           "6*h*w MACs) that the notes omit; fusion=False matches the notes' layer list and outputs the "
           "six refined side maps (finest first)."),
)
