"""GoogLeNet / Inception v1 (Szegedy et al., 2014), Table 1 of the paper, and torchvision's variant.

Paper layout (default): 7x7/2 conv (padding 3) - 3x3/2 max pool - LRN - 1x1 conv 64 - 3x3 conv
192 - LRN - 3x3/2 max pool - inception 3a, 3b - pool - 4a..4e - pool - 5a, 5b - global average
pool (the paper's 7x7 average pool at 224) - dropout 0.4 - linear. Every conv has a bias and a
ReLU, no batch norm; an inception module has four branches (1x1; 1x1 reduce -> 3x3; 1x1 reduce
-> 5x5; 3x3/1 max pool -> 1x1 projection) concatenated. LRN as in the Caffe reference model
(size 5, alpha 1e-4 divided by the size, beta 0.75, k 1). The four 3x3/2 max pools round up, as
Caffe's pooling always does (the reference model's layout; the paper does not say): emulated exactly
at any input size by ``architectures.layers.ceil_max_pool`` (at 224 every map is even and "same"
padding gives the same sizes; at 227 "same" would give 57 -> 29 where ceil mode gives 57 -> 28).

Auxiliary classifiers (after 4a and 4d: 5x5/3 average pool, 1x1 conv 128, FC 1024, dropout 0.7,
linear) are training-time heads: ``aux_logits=True`` adds them as two extra outputs
(``[logits, aux1, aux2]``). They are off by default, so profiles describe the inference network.

``torchvision_layout=True`` gives torchvision's ``googlenet``: BN after every conv and no conv
bias, the "5x5" branch is a 3x3 conv, no LRN, a 2x2/2 fourth pool, dropout 0.2, and aux heads
with an adaptive 4x4 average pool (6,624,904 parameters without aux heads). Its four stride-2 max
pools use ``ceil_mode=True``, emulated the same way.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import InputShapeError
from architectures.layers import ceil_max_pool, classifier, conv_bn_act, image_input
from architectures.layers.normalization import LocalResponseNormalization

PAPER = Paper("Going Deeper with Convolutions", 2014, "https://arxiv.org/abs/1409.4842")

# Table 1: name -> (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj)
INCEPTION_CONFIG = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}
# Modules after which a 3x3/2 max pool halves the map (the last one is 2x2/2 in torchvision).
POOL_AFTER = ("3b", "4e")
AUX_AFTER = ("4a", "4d")


def inception_module(x, widths, *, large_kernel=5, bn=False, name):
    """The four-branch module of Fig. 2(b); ``large_kernel`` is the "5x5" branch's kernel."""
    c1, c3r, c3, c5r, c5, pool_proj = widths
    unit = dict(use_bias=not bn, norm=bn)
    b1 = conv_bn_act(x, c1, 1, name=f"{name}_1x1", **unit)
    b2 = conv_bn_act(x, c3r, 1, name=f"{name}_3x3_reduce", **unit)
    b2 = conv_bn_act(b2, c3, 3, name=f"{name}_3x3", **unit)
    b3 = conv_bn_act(x, c5r, 1, name=f"{name}_5x5_reduce", **unit)
    b3 = conv_bn_act(b3, c5, large_kernel, name=f"{name}_5x5", **unit)
    b4 = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    b4 = conv_bn_act(b4, pool_proj, 1, name=f"{name}_pool_proj", **unit)
    return layers.Concatenate(name=f"{name}_concat")([b1, b2, b3, b4])


def aux_head(x, num_classes, *, torchvision_layout=False, name):
    """Auxiliary classifier: 4x4 pooled map -> 1x1 conv 128 -> FC 1024 -> dropout 0.7 -> linear."""
    if torchvision_layout:
        x = layers.AdaptiveAveragePooling2D(4, name=f"{name}_pool")(x)
    else:
        if min(x.shape[1:3]) < 5:
            raise InputShapeError(f"the auxiliary heads' 5x5 average pool needs a map of at least 5x5 after "
                             f"inception 4a/4d (input >= 79 px with ceil-mode pools); got {x.shape[1]}x{x.shape[2]}")
        x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = conv_bn_act(x, 128, 1, use_bias=not torchvision_layout, norm=torchvision_layout, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc1")(x)
    x = layers.Dropout(0.7, name=f"{name}_drop")(x)
    return layers.Dense(num_classes, name=f"{name}_fc2")(x)


def googlenet(input_shape=(224, 224, 3), num_classes=1000, aux_logits=False, torchvision_layout=False,
              dropout=None, name=None):
    """GoogLeNet; ``aux_logits=True`` returns ``[logits, aux1, aux2]`` (training heads)."""
    tv = bool(torchvision_layout)
    unit = dict(use_bias=not tv, norm=tv)
    inputs = image_input(input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = conv_bn_act(x, 64, 7, strides=2, padding="valid", name="conv1", **unit)
    x = ceil_max_pool(x, 3, 2, partial_windows=True, name="pool1")
    if not tv:
        x = LocalResponseNormalization(size=5, alpha=1e-4 / 5, beta=0.75, k=1.0, name="pool1_lrn")(x)
    x = conv_bn_act(x, 64, 1, name="conv2_reduce", **unit)
    x = conv_bn_act(x, 192, 3, name="conv2", **unit)
    if not tv:
        x = LocalResponseNormalization(size=5, alpha=1e-4 / 5, beta=0.75, k=1.0, name="conv2_lrn")(x)
    x = ceil_max_pool(x, 3, 2, partial_windows=True, name="pool2")

    aux_outputs = []
    for module, widths in INCEPTION_CONFIG.items():
        x = inception_module(x, widths, large_kernel=3 if tv else 5, bn=tv, name=f"inception{module}")
        if aux_logits and module in AUX_AFTER:
            aux_outputs.append(aux_head(x, num_classes, torchvision_layout=tv, name=f"aux{len(aux_outputs) + 1}"))
        if module in POOL_AFTER:
            stage = POOL_AFTER.index(module) + 3
            kernel = 2 if (tv and module == "4e") else 3
            x = ceil_max_pool(x, kernel, 2, partial_windows=True, name=f"pool{stage}")
    dropout = (0.2 if tv else 0.4) if dropout is None else dropout
    outputs = classifier(x, num_classes, dropout=dropout, name="head")
    model_name = name or ("googlenet_torchvision" if tv else "googlenet")
    if aux_logits:
        return models.Model(inputs, [outputs, *aux_outputs], name=model_name)
    return models.Model(inputs, outputs, name=model_name)


register_model(
    "googlenet",
    builder=googlenet,
    family="googlenet",
    paper=PAPER,
    min_input_size=(32, 32),
    reported=(
        Reported(exactness="rounded", primary=True, params=6_998_552, macs=1_582.7e6, source="[calc] computed from the layer list: the paper's architecture "
                 "recomputed (true 5x5 branches, biases, no BN, no aux heads)", input_size=(224, 224)),
        Reported(exactness="derived", params=6.8e6, macs=1.5e9, source="paper Table 1 column sums (params 6,797.7K; ops 1,502M) and text "
                 "('1.5 billion multiply-adds')", convention="rounded; see notes for the gap"),
        Reported(exactness="rounded", params=6_624_904, macs=1.498e9, source="torchvision GoogLeNet_Weights (num_params, _ops); "
                 "build with torchvision_layout=True", convention="BN, no conv bias, 3x3 in the '5x5' branch",
                 variant={"torchvision_layout": True}),
    ),
    notes=(
        "Inference network by default: aux_logits=False, so the two auxiliary classifiers (training-only heads) "
        "are excluded from parameters and profiles; aux_logits=True adds them as outputs 2 and 3 "
        "(paper layout: +6,379,728 params, 13,378,280 in all; torchvision layout: 13,004,888 in all).",
        "Parameters: the paper's architecture has 6,998,552 (6,990,272 weights + 8,280 biases), 2.95% above the "
        "6,797.7K sum of Table 1's params column. The column does not follow from its own layer specification: "
        "conv1 lists 2.7K params / 34M ops where 7x7x3x64 gives 9.4K / 118M, the linear layer lists 1000K for "
        "1024x1000 = 1,024K, and the other rows are 2-9% below the products of their kernel sizes and widths "
        "(e.g. 4c 463K vs 509.4K). No reading of the specification reproduces the column, so the test pins the "
        "recomputed 6,998,552 exactly, and torchvision_layout=True reproduces torchvision's 6,624,904 exactly.",
        "MACs: 1,582.7 M at 224, 5.4% above the table's 1,502 M ops; the conv1 row alone (34 M listed vs "
        "118 M computed) accounts for the whole 81 M gap.",
        "min_input_size 32 (the total stride); the aux heads' 5x5/3 pool needs >= 79 px (paper layout).",
        "Stride-2 max pools in ceil mode in both layouts (torchvision: ceil_mode=True; paper layout: Caffe's "
        "bvlc_googlenet, whose pooling always rounds up), exact at any input size; at 224 the counts are those of "
        "'same' padding.",
        "torchvision_layout: BN epsilon 1e-5 here vs torchvision's 1e-3 (counts do not depend on it); its "
        "transform_input rescaling is not part of the model.",
    ),
    test_input_size=(32, 32),
)
