"""RFCN: FCN-8s on RGB + saliency prior, with the recurrent refinement unrolled (``passes``)."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.errors import ConfigError
from architectures.layers import image_input
from architectures.layers.saliency import ChannelSlice
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported, vgg16

INPUT_MULTIPLE = 32  # decoder re-aligns features of stride 32: input sides must be multiples of it

RFCN_PAPER = Paper("Saliency Detection with Recurrent Fully Convolutional Networks", 2016,
                   "https://doi.org/10.1007/978-3-319-46493-0_50")


def rfcn(input_shape=(224, 224, 4), num_classes=2, score_channels=60, fc6_kernel=7, passes=1, name=None):
    """RFCN (seed lines 254-318): FCN-8s on RGB + saliency prior (4 channels).

    fc6 7x7 (the cost line; the audit's consistent reading), fc7 1x1, 60-channel score maps
    (PASCAL-Context), two 4x4/2 transposed convs with the pool4/pool3 skips, 16x16/8 bigscore.
    ``passes=T`` unrolls the recurrent refinement: the same network (shared weights) runs T
    times, each pass fed the RGB channels plus the previous pass's foreground probability as
    the prior channel, so MACs are T x one pass (the seed counts one pass, ``passes=1``).
    """
    check_input_multiple(input_shape, INPUT_MULTIPLE, "rfcn")
    if not isinstance(passes, int) or passes < 1:
        raise ConfigError("passes", passes, "rfcn passes must be a positive integer")
    if passes > 1:
        return _unrolled_rfcn(input_shape, num_classes, score_channels, fc6_kernel, passes, name)
    inputs = image_input(input_shape)
    _, pooled = vgg16(inputs)
    x = conv(pooled[4], 4096, fc6_kernel, "fc6")
    x = conv(x, 4096, 1, "fc7")
    x = layers.Conv2D(score_channels, 1, name="score")(x)
    x = layers.Conv2DTranspose(score_channels, 4, strides=2, padding="same", name="upscore2")(x)
    skip = layers.Conv2D(score_channels, 1, name="score_pool4")(pooled[3])
    x = layers.Add(name="fuse")([x, skip])
    x = layers.Conv2DTranspose(score_channels, 4, strides=2, padding="same", name="upsample_fused16")(x)
    skip = layers.Conv2D(score_channels, 1, name="score_pool3")(pooled[2])
    x = layers.Add(name="score_final")([x, skip])
    outputs = layers.Conv2DTranspose(num_classes, 16, strides=8, padding="same", name="bigscore")(x)
    return models.Model(inputs, outputs, name=name or "rfcn")


def _unrolled_rfcn(input_shape, num_classes, score_channels, fc6_kernel, passes, name):
    one_pass = rfcn(input_shape, num_classes, score_channels, fc6_kernel, passes=1, name="rfcn_pass")
    inputs = image_input(input_shape)
    channels = input_shape[-1]
    rgb = ChannelSlice(0, channels - 1, name="rgb")(inputs)
    x = one_pass(inputs)
    for t in range(2, passes + 1):
        probabilities = layers.Softmax(name=f"pass{t}_softmax")(x)
        prior = ChannelSlice(num_classes - 1, num_classes, name=f"pass{t}_prior")(probabilities)
        x = one_pass(layers.Concatenate(name=f"pass{t}_input")([rgb, prior]))
    return models.Model(inputs, x, name=name or f"rfcn_x{passes}")


register_model(
    "rfcn", builder=rfcn, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=RFCN_PAPER, default_input_shape=(224, 224, 4),
    default_num_classes=2, min_input_size=(32, 32), test_input_size=(64, 64),
    reported=reference_reported("RFCN", lines="254-318"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32; 4 input channels (RGB + saliency prior).",
           "fc6 is 7x7 (cost line; audit's consistent value 102760448 params), score_pool3 included.",
           "Transposed convs: the notes charge out*k*k*Cin (full kernel at output resolution); TF and "
           "kbench charge 1/stride^2 of that (true 424652.421875*h*w in total).",
           "One pass, as the notes count it; passes=T unrolls the recurrent refinement with shared "
           "weights (T passes cost T times the MACs)."),
)
