"""DS (DeepSaliency): VGG-16 FCN with one 63x63/32 transposed conv back to full resolution."""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, register_model
from architectures.layers import image_input
from architectures.saliency._shared import COMMON_NOTE, check_input_multiple, conv, reference_reported
from architectures.vgg import vgg_features

INPUT_MULTIPLE = 32  # decoder re-aligns features of stride 32: input sides must be multiples of it

DS_PAPER = Paper("DeepSaliency: Multi-Task Deep Neural Network Model for Salient Object Detection", 2016,
                 "https://arxiv.org/abs/1510.05484")


def ds(input_shape=(224, 224, 3), num_classes=1, conv6_kernel=7, name=None):
    """DS (DeepSaliency, seed lines 320-366): VGG-16 FCN, conv6 7x7, conv7 1x1, 1-channel score,
    one 63x63/32 transposed conv back to full resolution."""
    check_input_multiple(input_shape, INPUT_MULTIPLE, "ds")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, "D", name="block")
    x = conv(x, 4096, conv6_kernel, "conv6")
    x = conv(x, 4096, 1, "conv7")
    x = layers.Conv2D(num_classes, 1, name="score")(x)
    outputs = layers.Conv2DTranspose(num_classes, 63, strides=32, padding="same", use_bias=False,
                                     name="deconv")(x)
    return models.Model(inputs, outputs, name=name or "ds")


register_model(
    "ds", builder=ds, family="saliency", input_multiple=INPUT_MULTIPLE,
    paper=DS_PAPER, default_num_classes=1,
    min_input_size=(32, 32), test_input_size=(64, 64),
    reported=reference_reported("DS", lines="320-366"),
    notes=(COMMON_NOTE, "Input sides must be multiples of 32.",
           "conv6 7x7 (cost line; audit), deconv 63x63/32 with 3969 weights (no bias).",
           "The 63x63/32 transposed conv: notes 3969*h*w, kbench/TF 3969/1024*h*w."),
)
