"""LeNet-5 (LeCun et al., 1998) in the modern form of the seed notes.

C1 6@5x5 -> avg-pool 2 -> C3 16@5x5 (every map connected to all 6 inputs, not the paper's
partial table) -> avg-pool 2 -> C5 120@5x5 -> F6 84 -> 10 outputs, tanh, biases everywhere.
61,706 parameters and 416,520 MACs at 32x32x1.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.layers import conv_bn_act, image_input


@register_model(
    family="lenet",
    paper=Paper("Gradient-based learning applied to document recognition", 1998),
    default_input_shape=(32, 32, 1),
    min_input_size=(32, 32),
    default_num_classes=10,
    reported=(Reported(exactness="exact", primary=True, params=61_706, macs=416_520, source="seed notes (004), all-conv C3 with biases"),),
    notes=(
        "C3 connects every map to all 6 S2 maps (the seed's modern form); the 1998 paper's partial "
        "connection table and RBF output give 60,000 trainable parameters instead.",
    ),
)
def lenet5(input_shape=(32, 32, 1), num_classes=10, activation="tanh"):
    inputs = image_input(input_shape)
    x = inputs
    for i, filters in enumerate((6, 16), start=1):
        x = conv_bn_act(x, filters, 5, padding="valid", use_bias=True, norm=False, activation=activation, name=f"c{2 * i - 1}")
        x = layers.AveragePooling2D(2, name=f"s{2 * i}")(x)
    x = conv_bn_act(x, 120, 5, padding="valid", use_bias=True, norm=False, activation=activation, name="c5")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    outputs = layers.Dense(num_classes, name="output")(x)
    return models.Model(inputs, outputs, name="lenet5")
