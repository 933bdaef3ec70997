"""MobileNet V1 (Howard et al., 2017) and MobileNet V2 (Sandler et al., 2018).

V1: a 3x3/2 stem then 13 depthwise-separable blocks (3x3 depthwise + BN + act, 1x1 pointwise
+ BN + act), global average pool, dropout, fully connected classifier (with bias). The width
multiplier ``alpha`` thins every layer to ``int(alpha * channels)`` (the Keras/TF-slim rule); the
resolution multiplier is the input size (presets for the paper's Table 7 rows). ``separable=False``
gives Table 4's "Conv MobileNet": every separable block replaced by one full 3x3 conv with the
pointwise block's output width and the depthwise block's stride. ``shallow=True`` gives Table 5's
"Shallow MobileNet": the five repeated 14x14x512 separable blocks (Table 1's "5x", blocks 7-11)
removed; the remaining blocks keep their Table 1 numbers (block6, block12, ...).

V2: inverted residual blocks (1x1 expansion + ReLU6, 3x3 depthwise + ReLU6, linear 1x1
projection, identity add when stride 1 and widths agree), torchvision layout: widths rounded with
``make_divisible(c * alpha, 8)``, last conv 1280 * max(1, alpha), dropout 0.2 then the classifier.

Activation: ReLU6 by default (the released TF-slim/Keras/torchvision weights); the V1 paper writes
ReLU, pass ``activation="relu"``. It changes no count.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import classifier, conv_bn_act, depthwise_bn_act, image_input, make_divisible

PAPER_V1 = Paper("MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications", 2017,
                 "https://arxiv.org/abs/1704.04861")
PAPER_V2 = Paper("MobileNetV2: Inverted Residuals and Linear Bottlenecks", 2018, "https://arxiv.org/abs/1801.04381")

# (pointwise filters, depthwise stride) of the 13 separable blocks (paper Table 1).
MOBILENET_V1_BLOCKS = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)
# The "5x Conv dw / s1, Conv / s1" rows of Table 1 at 14x14x512 (1-based block numbers).
MOBILENET_V1_REPEATED_BLOCKS = range(7, 12)


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ConfigError("alpha", alpha, "the width multiplier must be a positive number")


def mobilenet_v1(
    input_shape=(224, 224, 3),
    num_classes=1000,
    alpha=1.0,
    separable=True,
    shallow=False,
    activation="relu6",
    dropout=1e-3,
    include_top=True,
    name=None,
):
    """MobileNet V1 with width multiplier ``alpha``; ``separable=False`` for Conv MobileNet (Table 4),
    ``shallow=True`` for Shallow MobileNet (Table 5)."""
    _check_alpha(alpha)
    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, int(32 * alpha), 3, strides=2, activation=activation, name="conv1")
    for i, (filters, strides) in enumerate(MOBILENET_V1_BLOCKS, start=1):
        if shallow and i in MOBILENET_V1_REPEATED_BLOCKS:
            continue
        filters = int(filters * alpha)
        if separable:
            x = depthwise_bn_act(x, 3, strides=strides, activation=activation, name=f"block{i}_dw")
            x = conv_bn_act(x, filters, 1, activation=activation, name=f"block{i}_pw")
        else:
            x = conv_bn_act(x, filters, 3, strides=strides, activation=activation, name=f"block{i}_conv")
    if include_top:
        x = classifier(x, num_classes, dropout=dropout, name="head")
    default = ("mobilenet_v1" if separable else "mobilenet_v1_conv") + ("_shallow" if shallow else "")
    return models.Model(inputs, x, name=name or (default if alpha == 1.0 else f"{default}_{alpha:g}"))


# (expansion t, output channels c, repeats n, first stride s) of the bottleneck sequences (Table 2).
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)


def inverted_residual(x, out_channels: int, strides: int, expansion: int, *, activation="relu6", dilation=1,
                      expand_always=False, name: str):
    """1x1 expand (skipped when t=1) -> 3x3 depthwise -> linear 1x1 projection (+ identity).

    ``dilation`` dilates the depthwise conv (DeepLab's output-stride-8 backbone); ``expand_always``
    keeps the 1x1 expansion conv at t=1 (the saliency notes count one in block 1).
    """
    in_channels = x.shape[-1]
    shortcut = x
    if expansion != 1 or expand_always:
        x = conv_bn_act(x, int(round(in_channels * expansion)), 1, activation=activation, name=f"{name}_expand")
    x = depthwise_bn_act(x, 3, strides=strides, dilation=dilation, activation=activation, name=f"{name}_dw")
    x = conv_bn_act(x, out_channels, 1, activation=None, name=f"{name}_project")
    if strides == 1 and in_channels == out_channels:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def mobilenet_v2(
    input_shape=(224, 224, 3),
    num_classes=1000,
    alpha=1.0,
    round_nearest=8,
    activation="relu6",
    dropout=0.2,
    include_top=True,
    name=None,
):
    """MobileNet V2 with width multiplier ``alpha`` (torchvision/Keras channel rounding)."""
    _check_alpha(alpha)
    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, make_divisible(32 * alpha, round_nearest), 3, strides=2, activation=activation,
                    name="conv1")
    block = 0
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        out_channels = make_divisible(c * alpha, round_nearest)
        for i in range(n):
            block += 1
            x = inverted_residual(x, out_channels, s if i == 0 else 1, t, activation=activation, name=f"block{block}")
    x = conv_bn_act(x, make_divisible(1280 * max(1.0, alpha), round_nearest), 1, activation=activation,
                    name="conv_last")
    if include_top:
        x = classifier(x, num_classes, dropout=dropout, name="head")
    return models.Model(inputs, x, name=name or ("mobilenet_v2" if alpha == 1.0 else f"mobilenet_v2_{alpha:g}"))


# ---- registrations ---------------------------------------------------------------------------
_V1_NOTE_PARAMS = ("Paper parameter counts exclude BN moving statistics; Keras 'Total params' adds them "
                   "(non-trainable). Compare params_trainable.")

# name, alpha, input size, paper MACs (Tables 6/7), paper params, Keras total params (keras-io / MXOP)
_MOBILENET_V1 = (
    ("mobilenet_v1", 1.0, 224, 569e6, 4.2e6, 4_253_864),
    ("mobilenet_v1_075", 0.75, 224, 325e6, 2.6e6, 2_601_976),
    ("mobilenet_v1_050", 0.5, 224, 149e6, 1.3e6, 1_342_536),
    ("mobilenet_v1_025", 0.25, 224, 41e6, 0.5e6, 475_544),
    ("mobilenet_v1_192", 1.0, 192, 418e6, 4.2e6, 4_253_864),
    ("mobilenet_v1_160", 1.0, 160, 290e6, 4.2e6, 4_253_864),
    ("mobilenet_v1_128", 1.0, 128, 186e6, 4.2e6, 4_253_864),
)
for _name, _alpha, _size, _macs, _params, _keras_total in _MOBILENET_V1:
    _table = "Table 6 (width multiplier)" if _size == 224 else "Table 7 (resolution multiplier)"
    register_model(
        _name,
        builder=mobilenet_v1,
        preset=dict(alpha=_alpha),
        family="mobilenet",
        paper=PAPER_V1,
        default_input_shape=(_size, _size, 3),
        min_input_size=(32, 32),
        reported=(
            Reported(exactness="rounded", primary=True, params=_params, macs=_macs, source=f"paper {_table}, million mult-adds / parameters",
                     input_size=(_size, _size)),
            Reported(exactness="exact", params_total=True, params=_keras_total, source="keras.applications MobileNet total params (incl. BN moving stats)",
                     convention="Keras total = trainable + non-trainable BN statistics", input_size=(_size, _size)),
        ),
        notes=(_V1_NOTE_PARAMS,) + (
            ("TF-slim's table gives 317 M MACs for alpha=0.75; the paper and this build give 325 M.",)
            if _alpha == 0.75 else ()),
        test_input_size=(32, 32),
    )

register_model(
    "mobilenet_v1_conv",
    builder=mobilenet_v1,
    preset=dict(separable=False),
    family="mobilenet",
    paper=PAPER_V1,
    min_input_size=(32, 32),
    # 4866 M is 1.3 M (0.03%) below this build's 4867.3 M, more than its last digit: checked within 0.1%.
    reported=(Reported(exactness="derived", primary=True, params=29.3e6, macs=4866e6, tolerance=0.001,
                       source="paper Table 4 'Conv MobileNet' (full convolutions)"),),
    notes=("Each depthwise-separable block replaced by one 3x3 conv (pointwise width, depthwise stride) + BN + act.",),
    test_input_size=(32, 32),
)

register_model(
    "mobilenet_v1_shallow",
    builder=mobilenet_v1,
    preset=dict(shallow=True),
    family="mobilenet",
    paper=PAPER_V1,
    min_input_size=(32, 32),
    reported=(Reported(exactness="rounded", primary=True, params=2.9e6, macs=307e6,
                       source="paper Table 5 'Shallow MobileNet' (million mult-adds / parameters)"),),
    notes=("Table 1's five repeated 14x14x512 separable blocks (blocks 7-11) removed, as Section 4.2 of the paper "
           "describes; 2,887,976 trainable parameters and 307.3 M MACs at 224.", _V1_NOTE_PARAMS),
    test_input_size=(32, 32),
)

register_model(
    "mobilenet_v2",
    builder=mobilenet_v2,
    preset=dict(alpha=1.0),
    family="mobilenet",
    paper=PAPER_V2,
    min_input_size=(32, 32),
    reported=(
        Reported(exactness="exact", primary=True, params=3_504_872, macs=300_774_272, source="torchvision MobileNet_V2_Weights meta (num_params; "
                 "_ops 0.301); keras.applications MobileNetV2 trainable params"),
        Reported(exactness="rounded", macs=300e6, source="paper Table 4 (300 M MAdds)"),
        Reported(exactness="derived", params=3.4e6,
                 source="paper Table 4 (3.4 M params; 3% below torchvision's and this build's 3.5 M)"),
    ),
    test_input_size=(32, 32),
)
register_model(
    "mobilenet_v2_140",
    builder=mobilenet_v2,
    preset=dict(alpha=1.4),
    family="mobilenet",
    paper=PAPER_V2,
    min_input_size=(32, 32),
    reported=(
        Reported(exactness="exact", primary=True, params=6_108_776, macs=582_195_824, source="computed from the layer list (torchvision-style "
                 "rounding; TF-slim README 6.06 M / 582 M)", convention="calculated"),
        Reported(exactness="derived", params=6.9e6, macs=585e6, source="paper Table 4, MobileNetV2 (1.4): 585 M MAdds, 6.9 M params"),
    ),
    notes=("Conflict: the paper's 6.9 M parameters for alpha=1.4 match neither the released TF-slim checkpoint "
           "(6.06 M) nor any consistent rounding of the architecture (6,108,776 trainable here, 6,156,712 with BN "
           "statistics, as Keras builds it); the paper's 585 M MAdds is 3 M (0.5%) above the 582.2 M counted here "
           "and by TF-slim. Treated as a paper typo.",),
    test_input_size=(32, 32),
)

# MobileNet V2 at the widths of ShuffleNet V2's Table 8 (the seed's comparison table). Name, alpha,
# [calc] trainable params / MACs at 224 (paper Table 2 layers, torchvision/Keras rounding; recomputed
# by hand in tests/models/test_mobilenet.py), Table 8's "(our impl.)" MFLOPs, and this build's MACs
# at the resolutions a reader might try (for the notes).
_TABLE8 = "ShuffleNet V2 paper Table 8 (seed 001 comparison table), '{alpha:g} MobileNet v2 (our impl.)' MFLOPs"
_V2_WIDTHS = (
    ("mobilenet_v2_075", 0.75, 2_636_424, 209_069_792, 145e6,
     "153.9 M at 192 (TF-slim 0.75_192: 153 M), 107.3 M at 160"),
    ("mobilenet_v2_060", 0.6, 2_217_000, 150_958_928, 141e6, "135.0 M at 208, 111.2 M at 192"),
    ("mobilenet_v2_040", 0.4, 1_770_728, 80_695_280, 43e6, "59.6 M at 192, 41.8 M at 160 (-2.8%)"),
    ("mobilenet_v2_015", 0.15, 1_415_496, 30_567_888, 39e6,
     "fewer at any smaller input: 39 M exceeds this build's 224 count (every width below 8 is rounded up to 8)"),
)
for _name, _alpha, _params, _macs, _table_macs, _other_sizes in _V2_WIDTHS:
    _figures = [
        Reported(exactness="exact", primary=_alpha != 0.75, params=_params, macs=_macs, convention="calculated",
                 source="calculated: paper Table 2 layers with torchvision/Keras channel rounding at 224 (hand count "
                        "in tests/models/test_mobilenet.py)"),
        Reported(exactness="derived", macs=_table_macs, source=_TABLE8.format(alpha=_alpha),
                 convention="another implementation; input size not in the seed"),
    ]
    if _alpha == 0.75:
        _figures[1:1] = [
            Reported(exactness="rounded", primary=True, macs=209e6, source="TF-slim MobileNet README, "
                     "mobilenet_v2_0.75_224 (209 million MACs)", input_size=(224, 224)),
            Reported(exactness="derived", params=2.61e6, source="TF-slim MobileNet README, mobilenet_v2_0.75_224 "
                     "(2.61 M parameters; 1% below torchvision-style counts, as its 3.47 M for alpha=1 is)"),
        ]
    register_model(
        _name,
        builder=mobilenet_v2,
        preset=dict(alpha=_alpha),
        family="mobilenet",
        paper=PAPER_V2,
        min_input_size=(32, 32),
        reported=tuple(_figures),
        notes=(f"Not comparable: Table 8 lists {_table_macs / 1e6:g} MFLOPs for its own '(our impl.)' "
               f"{_alpha:g}x MobileNet v2 without the input size or channel rounding (the table's footnotes are "
               f"not in the seed); this build counts {_macs / 1e6:.1f} M MACs at 224, {_other_sizes}.",),
        test_input_size=(32, 32),
    )
