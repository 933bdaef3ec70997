"""DenseNet-BC (Huang et al., 2017), the ImageNet models of Table 1.

Stem: 7x7/2 conv (64 = 2k filters, no bias), BN, ReLU, 3x3/2 max pool (padding 1). Four dense
blocks; each layer is pre-activation BN-ReLU-1x1 conv (4k, the "bottleneck") then BN-ReLU-3x3 conv
(k = growth rate 32), concatenated to its input. Between blocks, transitions BN-ReLU-1x1 conv
(compression 0.5) then 2x2/2 average pool; after the last block BN-ReLU, global average pool
and the classifier. Convs have no bias (torchvision and keras.applications alike), padding is
explicit and symmetric (torchvision's), so the maps are 112/56/28/14/7 at 224.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError, InputShapeError
from architectures.layers import classifier, conv_bn_act, image_input, norm_act

PAPER = Paper("Densely Connected Convolutional Networks", 2017, "https://arxiv.org/abs/1608.06993")

# depth -> layers per dense block (paper Table 1)
DENSENET_BLOCKS = {
    121: (6, 12, 24, 16),
    169: (6, 12, 32, 32),
    201: (6, 12, 48, 32),
    264: (6, 12, 64, 48),
}


def _conv(x, filters, kernel, *, strides=1, name):
    """A bare bias-free conv (DenseNet is pre-activation: BN/ReLU come before, not after)."""
    padding = "valid" if kernel == 1 or strides > 1 else "same"
    return conv_bn_act(x, filters, kernel, strides=strides, padding=padding, norm=False, activation=None, name=name)


def dense_layer(x, growth_rate, bn_size, *, name):
    y = norm_act(x, name=f"{name}_0")
    y = _conv(y, bn_size * growth_rate, 1, name=f"{name}_1")
    y = norm_act(y, name=f"{name}_1")
    y = _conv(y, growth_rate, 3, name=f"{name}_2")
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def transition(x, compression, *, name):
    x = norm_act(x, name=name)
    x = _conv(x, int(x.shape[-1] * compression), 1, name=name)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def densenet(input_shape=(224, 224, 3), num_classes=1000, depth=121, blocks=None, growth_rate=32, bn_size=4,
             compression=0.5, init_features=None, include_top=True, name=None):
    """DenseNet-BC; ``depth`` picks the paper's block lengths, ``blocks`` overrides them."""
    if blocks is None:
        if depth not in DENSENET_BLOCKS:
            raise ConfigError("depth", depth, f"allowed depths {', '.join(map(str, DENSENET_BLOCKS))}")
        blocks = DENSENET_BLOCKS[depth]
    inputs = image_input(input_shape)
    x = layers.ZeroPadding2D(3, name="conv0_pad")(inputs)
    x = conv_bn_act(x, init_features or 2 * growth_rate, 7, strides=2, padding="valid", name="conv0")
    # Zero padding before the max pool is exact here: the ReLU output is >= 0.
    x = layers.ZeroPadding2D(1, name="pool0_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool0")(x)
    for b, num_layers in enumerate(blocks, start=1):
        for i in range(1, num_layers + 1):
            x = dense_layer(x, growth_rate, bn_size, name=f"block{b}_layer{i}")
        if b < len(blocks):
            if min(x.shape[1:3]) < 2:
                raise InputShapeError(f"input {tuple(input_shape)} leaves a {x.shape[1]}x{x.shape[2]} map before "
                                 f"transition {b} (needs at least 2x2)")
            x = transition(x, compression, name=f"transition{b}")
    x = norm_act(x, name="final")
    if include_top:
        x = classifier(x, num_classes, name="head")
    return models.Model(inputs, x, name=name or f"densenet{depth}")


_KERAS_APPS = "keras.applications (model.count_params(): trainable + BN moving statistics)"
# name, depth, trainable params, total params (Keras convention), MACs, source, source of the total
_DENSENETS = (
    ("densenet121", 121, 7_978_856, 8_062_504, 2.834e9, "torchvision DenseNet121_Weights (num_params, _ops)", _KERAS_APPS),
    ("densenet169", 169, 14_149_480, 14_307_880, 3.360e9, "torchvision DenseNet169_Weights (num_params, _ops)", _KERAS_APPS),
    ("densenet201", 201, 20_013_928, 20_242_984, 4.291e9, "torchvision DenseNet201_Weights (num_params, _ops)", _KERAS_APPS),
    ("densenet264", 264, 33_337_704, 33_736_232, 5.752e9, "[calc] computed from the layer list (no published weights)",
     "[calc] computed from the layer list"),
)
for _name, _depth, _params, _keras_total, _macs, _src, _total_src in _DENSENETS:
    register_model(
        _name,
        builder=densenet,
        preset=dict(depth=_depth),
        family="densenet",
        paper=PAPER,
        min_input_size=(32, 32),
        reported=(
            Reported(exactness="rounded", primary=True, params=_params, macs=_macs, source=_src),
            Reported(exactness="exact", params_total=True, params=_keras_total, source=_total_src,
                     convention="total parameters, BN moving mean/variance included (params_total)"),
        ),
        notes=(
            "BN epsilon 1e-5 (torchvision); keras.applications uses 1.001e-5. Parameter counts do not depend on it.",
            "min_input_size 32 (keras.applications' limit); the shape arithmetic alone would accept 29.",
        ),
        test_input_size=(32, 32),
    )
