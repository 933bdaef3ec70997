"""VGG (Simonyan & Zisserman, 2014), configurations A, A-LRN, B, C, D, E of Table 1.

One builder walks a configuration list; the named models are presets. Convolutions are 3x3
(C adds 1x1 convs in its last three blocks), stride 1, "same" padding, bias, ReLU; 2x2 max
pools; head = flatten -> 4096 -> 4096 -> classes with dropout 0.5.

Two heads, both legitimate: ``head="flatten"`` (the default, as in the paper and Keras'
applications) flattens the last map, so the first FC layer's size follows the input size (224
gives the paper's 7x7x512); ``head="adaptive"`` first average-pools the map to 7x7 as torchvision
does (``AdaptiveAvgPool2d((7, 7))``, which replicates a smaller map), so the parameters are those of
224 at any input size (vgg16: 138,357,544).
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import conv_bn_act, dense_stack, image_input
from architectures.layers.normalization import LocalResponseNormalization

PAPER = Paper("Very Deep Convolutional Networks for Large-Scale Image Recognition", 2014, "https://arxiv.org/abs/1409.1556")

# Per block: a list of kernel sizes (one per conv layer); widths double per block up to 512.
VGG_CONFIGS = {
    "A": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "B": ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    "C": ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    "D": ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    "E": ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
}
BLOCK_WIDTHS = (64, 128, 256, 512, 512)
HEADS = ("flatten", "adaptive")


def vgg_features(x, config: str = "D", *, lrn: bool = False, batch_norm: bool = False, name: str = "block"):
    """The convolutional part of VGG (shared with the saliency networks' VGG-16 backbones).

    ``config`` is a key of ``VGG_CONFIGS`` or a tuple of per-block kernel tuples.
    Returns the list of each block's output *before* its max pool, and the pooled output.
    """
    if isinstance(config, str):
        if config not in VGG_CONFIGS:
            raise ConfigError("config", config, f"allowed configurations {', '.join(VGG_CONFIGS)}")
        blocks = VGG_CONFIGS[config]
    else:
        # A custom configuration: a tuple of per-block kernel tuples (at most five blocks), e.g.
        # the first four blocks of a VGG-style backbone whose last block is built elsewhere.
        blocks = tuple(tuple(k) for k in config)
        if not 1 <= len(blocks) <= len(BLOCK_WIDTHS):
            raise ConfigError("config", config, f"a VGG configuration has 1 to {len(BLOCK_WIDTHS)} blocks")
    block_outputs = []
    for b, (kernels, width) in enumerate(zip(blocks, BLOCK_WIDTHS), start=1):
        for c, k in enumerate(kernels, start=1):
            # Conv biases stay with batch norm too, as in torchvision's vgg*_bn (their counts include them).
            x = conv_bn_act(x, width, k, use_bias=True, norm=batch_norm, name=f"{name}{b}_conv{c}")
            if lrn and b == 1 and c == 1:
                x = LocalResponseNormalization(name=f"{name}1_lrn")(x)
        block_outputs.append(x)
        x = layers.MaxPooling2D(2, name=f"{name}{b}_pool")(x)
    return block_outputs, x


def vgg(input_shape=(224, 224, 3), num_classes=1000, config="D", lrn=False, batch_norm=False, dropout=0.5,
        head="flatten", name=None):
    """VGG; ``head="flatten"`` (default) sizes the classifier by the input, ``"adaptive"`` pools to 7x7 first."""
    if head not in HEADS:
        raise ConfigError("head", head, f"allowed heads {', '.join(HEADS)}")
    inputs = image_input(input_shape)
    _, x = vgg_features(inputs, config, lrn=lrn, batch_norm=batch_norm)
    if head == "adaptive":
        x = layers.AdaptiveAveragePooling2D(7, name="adaptive_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = dense_stack(x, (4096, 4096), dropout=dropout, name="head")
    outputs = layers.Dense(num_classes, name="predictions")(x)
    return models.Model(inputs, outputs, name=name or f"vgg_{config.lower()}")


def _register(name, config, reported_params, reported_macs, *, source, **preset):
    register_model(
        name,
        builder=vgg,
        preset=dict(config=config, **preset),
        family="vgg",
        paper=PAPER,
        min_input_size=(32, 32),
        reported=(Reported(exactness="rounded", primary=True, params=reported_params, macs=reported_macs, source=source),),
        notes=("head='flatten' (default, as the paper and Keras): the first FC layer follows the input size; "
               "head='adaptive' pools to 7x7 first, as torchvision, so the parameters are those at 224 at any size.",),
        test_input_size=(32, 32),
    )


_register("vgg11", "A", 132_863_336, 7.609e9, source="torchvision VGG11_Weights; paper Table 2: 133M")
_register("vgg11_lrn", "A", 132_863_336, 7.609e9, lrn=True, source="paper Table 2 (A-LRN: 133M; LRN has no weights)")
_register("vgg13", "B", 133_047_848, 11.308e9, source="torchvision VGG13_Weights; paper Table 2: 133M")
_register("vgg16_c", "C", 133_638_952, 11.771e9, source="[calc] computed from the layer list; paper Table 2: 134M")
_register("vgg16", "D", 138_357_544, 15.470e9, source="keras.applications VGG16; torchvision VGG16_Weights")
_register("vgg19", "E", 143_667_240, 19.632e9, source="keras.applications VGG19; torchvision VGG19_Weights")
_register("vgg16_bn", "D", 138_365_992, 15.470e9, batch_norm=True, source="torchvision VGG16_BN_Weights")
_register("vgg19_bn", "E", 143_678_248, 19.632e9, batch_norm=True, source="torchvision VGG19_BN_Weights")
