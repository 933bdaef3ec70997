"""CapsNet (Sabour, Frosst & Hinton, 2017) for 28x28 MNIST digits.

Conv1 256@9x9 (stride 1, ReLU) -> PrimaryCaps: a 9x9/2 conv with 32 x 8 channels, read as
32 x 6 x 6 = 1,152 8-D capsules and squashed -> DigitCaps: 10 16-D capsules, fully connected
to the primary capsules by 8x16 matrices, with 3 iterations of routing-by-agreement -> capsule
lengths as class scores. The reconstruction decoder (FC 512 - 1024 - 784, sigmoid) reads the
masked digit capsules; ``decoder=True`` (the registered default, as in the paper's 8.2 M
figure) adds it as a second output ``[lengths, reconstruction]``. It masks with the longest
capsule; the paper's training-time masking by the true label is ``CapsuleMask()([caps, y])``.
"""

from __future__ import annotations

import math

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import conv_bn_act, dense_stack, image_input
from architectures.layers.capsule import CapsuleLength, CapsuleMask, CapsuleRouting, Squash


def capsnet(input_shape=(28, 28, 1), num_classes=10, routings=3, decoder=True, conv_filters=256,
            primary_capsules=32, primary_dim=8, digit_dim=16, decoder_units=(512, 1024), name=None):
    if isinstance(routings, bool) or not isinstance(routings, int) or routings < 1:
        raise ConfigError("routings", routings, "the number of routing iterations must be an integer >= 1")
    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, conv_filters, 9, padding="valid", use_bias=True, norm=False, name="conv1")
    x = conv_bn_act(x, primary_capsules * primary_dim, 9, strides=2, padding="valid", use_bias=True, norm=False,
                    activation=None, name="primarycaps")
    x = layers.Reshape((-1, primary_dim), name="primarycaps_reshape")(x)
    x = Squash(name="primarycaps_squash")(x)
    capsules = CapsuleRouting(num_classes, digit_dim, routings=routings, name="digitcaps")(x)
    lengths = CapsuleLength(name="capsule_length")(capsules)
    if not decoder:
        return models.Model(inputs, lengths, name=name or "capsnet")
    y = CapsuleMask(name="decoder_mask")(capsules)
    y = dense_stack(y, tuple(decoder_units), name="decoder")
    y = layers.Dense(math.prod(input_shape), activation="sigmoid", name="decoder_out")(y)
    reconstruction = layers.Reshape(tuple(input_shape), name="reconstruction")(y)
    return models.Model(inputs, [lengths, reconstruction], name=name or "capsnet")


register_model(
    "capsnet",
    builder=capsnet,
    family="capsnet",
    paper=Paper("Dynamic Routing Between Capsules", 2017, "https://arxiv.org/abs/1710.09829"),
    default_input_shape=(28, 28, 1),
    min_input_size=(17, 17),
    default_num_classes=10,
    reported=(
        Reported(exactness="rounded", primary=True, params=8.2e6, source="paper Sec. 5 / Table 1: CapsNet 8.2M parameters (with the reconstruction "
                 "decoder)", convention="rounded; registered model includes the decoder", input_size=(28, 28)),
        Reported(exactness="rounded", params=6.8e6, source="paper: 6.8M without the reconstruction subnetwork",
                 convention="rounded; build with decoder=False", input_size=(28, 28), variant={"decoder": False}),
    ),
    notes=(
        "The registered model includes the reconstruction decoder (paper's 8.2M): 8,215,568 parameters = "
        "conv1 20,992 + primary caps 5,308,672 + digit caps 1,474,560 (1152x10 matrices of 16x8, no bias) + "
        "decoder 1,411,344; decoder=False gives 6,804,224 (paper: 6.8M). Both within 0.2% of the paper.",
        "Outputs [capsule lengths, reconstruction]; the decoder masks with the longest capsule (inference), "
        "not with the true label (training).",
        "MACs count the 1152x10x(16x8) prediction matmul and, per routing iteration, the weighted sum "
        "(1152x10x16) plus, for all but the last iteration, the agreement dot products (1152x10x16).",
        "Routing logits are not stopped from back-propagating (the paper's Procedure 1 says nothing about it).",
    ),
    test_input_size=(28, 28),
)
