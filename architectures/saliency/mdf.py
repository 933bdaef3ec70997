"""MDF: one region evaluation (shared AlexNet-style extractor x 3 + fusion MLP) and the whole-method cost."""

from __future__ import annotations

import keras
from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.errors import InputShapeError
from architectures.layers import image_input
from architectures.layers.saliency import ChannelSlice
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported

INPUT_MULTIPLE = 32  # decoder re-aligns features of stride 32: input sides must be multiples of it

MDF_PAPER = Paper("Visual Saliency Based on Multiscale Deep Features", 2015, "https://arxiv.org/abs/1503.08663")


def mdf_extractor(input_shape=(224, 224, 3), name="mdf_extractor"):
    """MDF's per-region feature extractor: AlexNet-style, ungrouped convs, fc6 + fc7 (4096-d).

    Layers as in the notes: 11x11/4 conv + 3x3/2 pool, 5x5 conv + pool, three 3x3 convs + pool,
    fc6 on the flattened h/32 x w/32 x 256 map (so its weights grow with h*w), fc7.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="region")
    x = conv(inputs, 96, 11, "conv1", strides=4)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = conv(x, 256, 5, "conv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = conv(x, 384, 3, "conv3")
    x = conv(x, 384, 3, "conv4")
    x = conv(x, 256, 3, "conv5")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    return models.Model(inputs, x, name=name)


def mdf(input_shape=(224, 224, 9), num_classes=2, name=None):
    """MDF, one region evaluation: the shared extractor on the region, its neighbourhood and the
    whole image (stacked as 3 x 3 channels), concatenated 3 x 4096 -> 300 -> 300 -> ``num_classes``.

    The whole method runs the extractor (2n+1) times and the MLP n times per segmentation, for k
    segmentations, plus a k*h*w fusion: see ``mdf_total_macs``.
    """
    check_input_multiple(input_shape, INPUT_MULTIPLE, "mdf")
    if input_shape[2] % 3:
        raise InputShapeError(f"mdf takes three stacked 3-channel patches (9 channels); got {input_shape[2]} channels")
    h, w, c = input_shape
    inputs = image_input(input_shape)
    extractor = mdf_extractor((h, w, c // 3))
    features = []
    for i, part in enumerate(("region", "context", "image")):
        patch = ChannelSlice(i * (c // 3), (i + 1) * (c // 3), name=f"{part}_patch")(inputs)
        features.append(extractor(patch))
    x = layers.Concatenate(name="features")(features)
    x = layers.Dense(300, activation="relu", name="nn_layer1")(x)
    x = layers.Dense(300, activation="relu", name="nn_layer2")(x)
    outputs = layers.Dense(num_classes, name="nn_output")(x)
    return models.Model(inputs, outputs, name=name or "mdf")


def mdf_total_macs(extractor_macs, mlp_macs, h, w, n, k):
    """Total cost of MDF on one image (the notes' line 246, as corrected by the audit).

    ``extractor_macs``: one extractor pass at the region size h x w; ``mlp_macs``: one pass of the
    3x4096 -> 300 -> 300 -> 2 network; n superpixels per level, k segmentations. The first and
    second level regions need n extractor passes each and the whole image one, the MLP runs n
    times, and the k saliency maps are fused with one op per pixel each:
    ``k * ((2n + 1) * extractor + n * mlp + h * w)``.
    """
    return k * ((2 * n + 1) * extractor_macs + n * mlp_macs + h * w)


register_model(
    "mdf", builder=mdf, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=MDF_PAPER, default_input_shape=(224, 224, 9),
    default_num_classes=2, min_input_size=(32, 32), test_input_size=(64, 64),
    reported=reference_reported("MDF", lines="200-252 (k=n=1)", k=1, n=1),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32; h x w is the region (warp) size, "
           "the input stacks region, neighbourhood and whole image as 9 channels.",
           "Registered model = one region evaluation: 3 passes of the shared extractor + the fusion "
           "MLP (3*4096 -> 300 -> 300 -> 2). Whole method: mdf_total_macs(E, M, h, w, n, k) = "
           "k*((2n+1)*E + n*M + h*w), E = one extractor pass, M = one MLP pass; with the notes' "
           "per-layer values k*((49845.5n + 24923.75)*h*w + 37331432n + 16777216) (audit).",
           "Extractor convs ungrouped (as the notes), 'same' padding so the map is h/32 x w/32; "
           "fc6 weights grow with h*w (1024*h*w).",
           "The notes' per-region extractor count is (2n+1) per segmentation; the registered model "
           "with k=n=1 differs from it by the k*h*w fusion term (1 op/pixel)."),
)
