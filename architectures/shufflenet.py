"""ShuffleNet V1 (Zhang et al., 2017) and ShuffleNet V2 (Ma et al., 2018).

V1 unit (paper Fig. 2b/c): 1x1 group conv (bottleneck = out/4) + BN + ReLU, channel shuffle,
3x3 depthwise (stride 1 or 2) + BN, 1x1 group conv + BN; stride 1: add the identity then ReLU;
stride 2: concatenate a 3x3/2 average-pooled shortcut, then ReLU (so the main branch outputs
``out - in`` channels). The first pointwise layer of stage 2 is not grouped (Table 1 note).
Stage widths are Table 1's 1x columns times the scale factor ``s``; the stem width follows
megvii's ShuffleNet-Series code (24; 12 for 0.5x, 48 for 2x), raised where needed so that
``stage2 - stem`` is divisible by ``g``; bottlenecks not divisible by ``g`` (some non-1x scales)
are rounded up to a multiple of ``g``. Classifier without bias (megvii).

V2 unit (paper Fig. 3c/d): stride 1 splits the channels in two halves, one half goes through 1x1
conv-BN-ReLU, 3x3 depthwise-BN, 1x1 conv-BN-ReLU and is concatenated with the other half; stride 2
feeds the whole input to both branches (the left, projection one is 3x3/2 depthwise-BN then 1x1
conv-BN-ReLU). Both end with a channel shuffle with 2 groups. conv5 1x1 then global pool and a
fully connected classifier. ``downsample`` picks the stride-2 layout:

* ``"torchvision"`` (default): both branches output ``out // 2`` channels (the right one's 1x1 convs
  and depthwise are ``out // 2`` wide); classifier with bias.
* ``"megvii"``: the authors' code (megvii-model/ShuffleNet-Series, ShuffleNetV2 ``ShuffleV2Block``):
  the projection branch keeps the input width (``in -> in``), the main branch is ``out // 2`` wide
  inside and outputs ``out - in`` channels; classifier without bias, dropout 0.2 before it at 2x.
  Only stage 2's first unit differs in counts (stages 3/4 have ``in == out / 2``): this layout gives
  the paper's Table 5 FLOPs (146/299/591M at 1x/1.5x/2x; 0.5x counts the same 40.48M either way).

Channel shuffle is ``architectures.layers.ChannelShuffle`` (the paper's reshape-transpose-flatten;
``shuffle_method="gather"`` selects the equivalent gather implementation).
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import ChannelShuffle, ChannelSplit, classifier, conv_bn_act, depthwise_bn_act, image_input

PAPER_V1 = Paper("ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices", 2017,
                 "https://arxiv.org/abs/1707.01083")
PAPER_V2 = Paper("ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design", 2018,
                 "https://arxiv.org/abs/1807.11164")

# groups -> stage 2/3/4 output channels at 1x (paper Table 1).
SHUFFLENET_V1_WIDTHS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
                        8: (384, 768, 1536)}
SHUFFLENET_V1_REPEATS = (4, 8, 4)
# scale -> stem width (megvii ShuffleNet-Series).
SHUFFLENET_V1_STEM = {0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def shufflenet_v1_unit(x, out_channels: int, strides: int, groups: int, *, first_grouped: bool = True,
                       bottleneck: int, shuffle_method: str = "reshape", name: str):
    in_channels = x.shape[-1]
    branch_out = out_channels - in_channels if strides == 2 else out_channels
    if branch_out <= 0 or branch_out % groups:
        raise ConfigError("groups", groups, f"{name}: its main branch width {branch_out} must be positive and "
                          "divisible by groups")
    y = conv_bn_act(x, bottleneck, 1, groups=groups if first_grouped else 1, name=f"{name}_gconv1")
    if groups > 1:
        y = ChannelShuffle(groups, method=shuffle_method, name=f"{name}_shuffle")(y)
    y = depthwise_bn_act(y, 3, strides=strides, activation=None, name=f"{name}_dw")
    y = conv_bn_act(y, branch_out, 1, groups=groups, activation=None, name=f"{name}_gconv2")
    if strides == 1:
        if in_channels != out_channels:
            raise ValueError(f"{name}: a stride-1 unit needs equal input/output widths ({in_channels} != {out_channels})")
        y = layers.Add(name=f"{name}_add")([x, y])
    else:
        shortcut = layers.AveragePooling2D(3, strides=2, padding="same", name=f"{name}_avgpool")(x)
        y = layers.Concatenate(name=f"{name}_concat")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_relu")(y)


def shufflenet_v1(
    input_shape=(224, 224, 3),
    num_classes=1000,
    groups=3,
    scale=1.0,
    shuffle_method="reshape",
    include_top=True,
    name=None,
):
    """ShuffleNet V1 ``scale``x with ``groups`` in {1, 2, 3, 4, 8} (paper Table 1)."""
    if groups not in SHUFFLENET_V1_WIDTHS:
        raise ConfigError("groups", groups, f"allowed groups {', '.join(map(str, SHUFFLENET_V1_WIDTHS))}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0:
        raise ConfigError("scale", scale, "the scale factor must be a positive number")
    widths = [int(w * scale) for w in SHUFFLENET_V1_WIDTHS[groups]]
    stem = SHUFFLENET_V1_STEM.get(float(scale), max(8, int(24 * scale)))
    while (widths[0] - stem) % groups:
        stem += 1

    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, stem, 3, strides=2, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, (repeats, width) in enumerate(zip(SHUFFLENET_V1_REPEATS, widths), start=2):
        bottleneck = _round_up(width // 4, groups)
        for i in range(repeats):
            x = shufflenet_v1_unit(
                x, width, 2 if i == 0 else 1, groups, first_grouped=not (stage == 2 and i == 0),
                bottleneck=bottleneck, shuffle_method=shuffle_method, name=f"stage{stage}_unit{i + 1}")
    if include_top:
        x = classifier(x, num_classes, use_bias=False, name="head")
    return models.Model(inputs, x, name=name or f"shufflenet_v1_g{groups}_x{scale:g}")


# scale -> stage 2/3/4 widths and conv5 width (paper Table 5).
SHUFFLENET_V2_WIDTHS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024), 1.5: (176, 352, 704, 1024),
                        2.0: (244, 488, 976, 2048)}
SHUFFLENET_V2_REPEATS = (4, 8, 4)


# stride-2 unit layouts of ``shufflenet_v2(downsample=...)`` (module docstring).
SHUFFLENET_V2_DOWNSAMPLE = ("torchvision", "megvii")


def _check_downsample(downsample) -> None:
    if downsample not in SHUFFLENET_V2_DOWNSAMPLE:
        raise ConfigError("downsample", downsample, f"allowed layouts {', '.join(SHUFFLENET_V2_DOWNSAMPLE)}")


def shufflenet_v2_unit(x, out_channels: int, strides: int, *, shuffle_method: str = "reshape",
                       downsample: str = "torchvision", name: str):
    _check_downsample(downsample)
    branch = out_channels // 2
    if strides == 1:
        if x.shape[-1] != out_channels or out_channels % 2:
            raise ConfigError("widths", out_channels, f"{name}: a stride-1 unit needs an even width equal to its "
                              f"input ({x.shape[-1]})")
        left, right = ChannelSplit(2, name=f"{name}_split")(x)
        right_out = branch
    else:
        # megvii: the projection keeps the input width and the main branch fills up to out_channels.
        left_out, right_out = branch, branch
        if downsample == "megvii":
            left_out, right_out = x.shape[-1], out_channels - x.shape[-1]
            if right_out <= 0:
                raise ConfigError("widths", out_channels, f"{name}: the megvii stride-2 unit needs more output "
                                  f"channels than its input ({x.shape[-1]})")
        left = depthwise_bn_act(x, 3, strides=strides, activation=None, name=f"{name}_left_dw")
        left = conv_bn_act(left, left_out, 1, name=f"{name}_left_pw")
        right = x
    right = conv_bn_act(right, branch, 1, name=f"{name}_right_pw1")
    right = depthwise_bn_act(right, 3, strides=strides, activation=None, name=f"{name}_right_dw")
    right = conv_bn_act(right, right_out, 1, name=f"{name}_right_pw2")
    x = layers.Concatenate(name=f"{name}_concat")([left, right])
    return ChannelShuffle(2, method=shuffle_method, name=f"{name}_shuffle")(x)


def shufflenet_v2(
    input_shape=(224, 224, 3),
    num_classes=1000,
    scale=1.0,
    widths=None,
    shuffle_method="reshape",
    downsample="torchvision",
    include_top=True,
    name=None,
):
    """ShuffleNet V2 ``scale``x (0.5, 1, 1.5, 2; paper Table 5); ``widths`` overrides the 4 widths;
    ``downsample`` is the stride-2 unit layout, "torchvision" or "megvii" (module docstring)."""
    _check_downsample(downsample)
    if widths is None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or float(scale) not in SHUFFLENET_V2_WIDTHS:
            raise ConfigError("scale", scale, "allowed scales 0.5, 1.0, 1.5, 2.0 (or pass widths)")
        widths = SHUFFLENET_V2_WIDTHS[float(scale)]
    *stage_widths, last = widths
    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, 24, 3, strides=2, name="conv1")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for stage, (repeats, width) in enumerate(zip(SHUFFLENET_V2_REPEATS, stage_widths), start=2):
        for i in range(repeats):
            x = shufflenet_v2_unit(x, width, 2 if i == 0 else 1, shuffle_method=shuffle_method,
                                   downsample=downsample, name=f"stage{stage}_unit{i + 1}")
    x = conv_bn_act(x, last, 1, name="conv5")
    if include_top:
        megvii = downsample == "megvii"
        x = classifier(x, num_classes, dropout=0.2 if megvii and tuple(widths) == SHUFFLENET_V2_WIDTHS[2.0] else 0.0,
                       use_bias=not megvii, name="head")
    return models.Model(inputs, x, name=name or f"shufflenet_v2_x{scale:g}")


# ---- registrations ---------------------------------------------------------------------------
# groups, paper Table 1 complexity (MFLOPs = MACs), reference [calc] MACs / params (megvii layout)
_V1 = (
    (1, 143e6, 143.08e6, 1_530_936),
    (2, 140e6, 140.84e6, 1_732_848),
    (3, 137e6, 137.46e6, 1_864_728),
    (4, 133e6, 134.34e6, 1_967_344),
    (8, 137e6, 138.37e6, 2_433_768),
)
for _g, _paper_macs, _calc_macs, _calc_params in _V1:
    register_model(
        f"shufflenet_v1_g{_g}",
        builder=shufflenet_v1,
        preset=dict(groups=_g, scale=1.0),
        family="shufflenet",
        paper=PAPER_V1,
        min_input_size=(32, 32),
        reported=(
            # The paper's complexities leave out the FC layer (kbench reproduce shufflenet_v1_table1:
            # all five print as the features-part MACs); the whole model is checked within 3%.
            Reported(exactness="derived", primary=True, macs=_paper_macs, tolerance=0.03,
                     source="paper Table 1 complexity (MFLOPs = multiply-adds), 1x"),
            Reported(exactness="rounded", params=_calc_params, macs=_calc_macs,
                     source="[calc] computed from the layer list (megvii layout; MACs to 0.01 M)",
                     convention="calculated; the paper publishes no parameter counts"),
        ),
        notes=(
            "The paper gives no parameter counts; stem/bottleneck widths follow megvii's ShuffleNet-Series code.",
            "Channel shuffle follows the paper (reshape to [g, n], transpose, flatten); megvii's V1 code reshapes to "
            "[n, g] (the inverse permutation). Counts are unaffected.",
            "Stride-2 shortcut: 3x3/2 average pool with 'same' padding (pads excluded from the mean; PyTorch's "
            "count_include_pad=True differs only at the borders).",
            "Table 1's complexities are this layout's MACs without the classifier (143/140/137/133/137 M for "
            "g = 1/2/3/4/8 at their printed precision); with it, g=4 counts 134.3 M.",
        ),
        test_input_size=(64, 64),
    )

# scale, paper Table 5 MFLOPs / params, torchvision params / GMACs. The paper's FLOPs are the conv + FC
# MACs of the authors' layout (downsample="megvii") at their printed precision, except 0.5x (see notes).
_V2 = (
    ("x0_5", 0.5, 41e6, 1.4e6, 1_366_792, 0.04e9),
    ("x1_0", 1.0, 146e6, 2.3e6, 2_278_604, 0.145e9),
    ("x1_5", 1.5, 299e6, 3.5e6, 3_503_624, 0.296e9),
    ("x2_0", 2.0, 591e6, 7.4e6, 7_393_996, 0.583e9),
)
for _suffix, _scale, _paper_macs, _paper_params, _tv_params, _tv_macs in _V2:
    # 0.5x: 40.48 M in either layout, 1.3% below the printed 41 M: checked within 1.5%.
    _paper_macs_check = dict(exactness="derived", tolerance=0.015) if _scale == 0.5 else dict(exactness="rounded")
    register_model(
        f"shufflenet_v2_{_suffix}",
        builder=shufflenet_v2,
        preset=dict(scale=_scale),
        family="shufflenet",
        paper=PAPER_V2,
        min_input_size=(32, 32),
        reported=(
            Reported(exactness="rounded", primary=True, params=_tv_params, macs=_tv_macs, source="torchvision ShuffleNet_V2_Weights meta (num_params, _ops)"),
            Reported(exactness="rounded", params=_paper_params, source="paper Table 5 (# of weights)"),
            Reported(macs=_paper_macs, variant={"downsample": "megvii"}, **_paper_macs_check,
                     source="paper Table 5 (FLOPs = multiply-adds), on the authors' (megvii) layout"),
        ),
        notes=("This preset is torchvision's layout. The paper's FLOPs are the conv + FC MACs of the authors' "
               "layout (megvii ShuffleNet-Series, --set downsample=megvii: stage 2's first unit keeps its 24 input "
               "channels in the projection branch and outputs c2 - 24 from the main one; FC without bias), which "
               "this layout undercounts by 1-1.4% at 1x-2x. Parameters round to the paper's in both layouts.",)
              + (("At 0.5x both layouts count 40,476,448 MACs, 0.52 M short of the printed 41 M; a counter that also "
                  "counts the global average pool (50,176 ops) would print 41 M: consistent, not confirmed.",)
                 if _scale == 0.5 else ()),
        test_input_size=(64, 64),
    )

# ShuffleNet V1 g=3 at the other scales of ShuffleNet V2's Table 8 (1x is shufflenet_v1_g3):
# suffix, scale, Table 8 MFLOPs, megvii README MFLOPs / params, [calc] MACs / params (megvii layout).
_V1_G3_SCALES = (
    ("x0_5", 0.5, 38e6, 0.7e6, 37.59e6, 717_324),
    ("x1_5", 1.5, 292e6, 3.4e6, 292.44e6, 3_441_168),
)
for _suffix, _scale, _table_macs, _megvii_params, _calc_macs, _calc_params in _V1_G3_SCALES:
    register_model(
        f"shufflenet_v1_g3_{_suffix}",
        builder=shufflenet_v1,
        preset=dict(groups=3, scale=_scale),
        family="shufflenet",
        paper=PAPER_V1,
        min_input_size=(32, 32),
        reported=(
            Reported(exactness="rounded", primary=True, macs=_table_macs,
                     source=f"ShuffleNet V2 paper Table 8 (seed 001 comparison table), 'ShuffleNet v1 {_scale:g}x (g=3)' "
                            "MFLOPs (= multiply-adds)"),
            Reported(exactness="rounded", params=_megvii_params, macs=_table_macs,
                     source="megvii-model/ShuffleNet-Series README"),
            Reported(exactness="rounded", params=_calc_params, macs=_calc_macs,
                     source="[calc] computed from the layer list (megvii layout; MACs to 0.01 M)", convention="calculated"),
        ),
        notes=(f"Stage widths are Table 1's g=3 column times {_scale:g} (int), stem "
               f"{SHUFFLENET_V1_STEM[_scale]} (megvii ShuffleNet-Series); bottlenecks rounded up to a multiple of 3.",),
        test_input_size=(64, 64),
    )
