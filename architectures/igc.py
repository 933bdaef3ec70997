"""Interleaved group convolutions: IGCV3 (Sun et al., BMVC 2018).

IGCV3-D (the "deeper" IGCV3 of the paper's ImageNet experiments; the authors' MXNet code,
``homles11/IGCV3`` ``symbols/igcv3.py``): MobileNet V2's layout with the bottleneck sequences
twice as deep (n = 1, 4, 6, 8, 6, 6, 1 instead of 1, 2, 3, 4, 3, 3, 1) and each inverted
residual block's dense 1x1 convs replaced by *low-rank group convolutions* with 2 groups:

    1x1 group conv (G1 = 2 groups, in -> t * in) + BN, no activation
    channel shuffle with 2 groups (the code's ``permutation(x, 2)``)
    3x3 depthwise (stride s) + BN + ReLU6
    1x1 group conv (G2 = 2 groups, t * in -> c) + BN, no activation
    channel shuffle with c / 2 groups (``permutation(x, c / 2)``: the inverse of a 2-group shuffle)
    + identity, for every block of a sequence but its first

The first block (t = 1) keeps its 1x1 expansion conv (``inverted_residual_unit`` always builds
one), unlike MobileNet V2. Stem 3x3/2 conv-BN-ReLU6, last 1x1 conv to 1280 with BN-ReLU6, global
average pool, fully connected classifier with bias; convs without bias, BN epsilon 1e-5.
``alpha`` multiplies every width as the authors' code does: ``round(c * alpha)`` made even, the
last conv kept at 1280 up to alpha = 1.

IGCV2 (Xie et al., CVPR 2018, arXiv 1804.06202) is not built: its ImageNet networks (IGCV2-1.0/0.5/0.25,
MobileNet V1 with IGCV2 blocks) are fixed only by the paper's architecture table, which has no public
code and no public transcription (reviews show it as an image); its widths are not guessed here.
"""

from __future__ import annotations

import math

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import ChannelShuffle, classifier, conv_bn_act, depthwise_bn_act, image_input

PAPER_IGCV3 = Paper("IGCV3: Interleaved Low-Rank Group Convolutions for Efficient Deep Neural Networks", 2018,
                    "https://arxiv.org/abs/1806.00178")

# (expansion t, output channels c, repeats n, first stride s): MNETV2_CONFIGS_MAP of the authors'
# symbols/igcv3.py, MobileNet V2's Table 2 with n doubled except in the first and last sequences.
IGCV3_D_SETTINGS = ((1, 16, 1, 1), (6, 24, 4, 2), (6, 32, 6, 2), (6, 64, 8, 2), (6, 96, 6, 1), (6, 160, 6, 2),
                    (6, 320, 1, 1))


def _round(value: float) -> int:
    """``int(round(v))`` of the authors' Python 2 code: halves round away from zero (Python 3's
    ``round`` rounds them to even)."""
    return int(math.floor(value + 0.5))


def _even_width(channels: float) -> int:
    """The authors' width rule: ``int(round(c))``, plus one when odd (group convs of 2 groups)."""
    width = _round(channels)
    return width + 1 if width % 2 else width


def igcv3_block(x, out_channels: int, strides: int, expansion: int, *, expansion_input=None, groups=(2, 2),
                residual: bool, name: str):
    """One IGCV3 block (module docstring). ``expansion_input`` is the width the expansion is computed
    from (the input's own width unless the authors' width bookkeeping says otherwise, see igcv3)."""
    g1, g2 = groups
    in_channels = x.shape[-1]
    mid = _round((expansion_input or in_channels) * expansion)
    for value, what in ((in_channels, "input"), (mid, "expanded"), (out_channels, "output")):
        if value % g1 or value % g2:
            raise ConfigError("alpha", value, f"{name}: the {what} width {value} does not split into {g1} and {g2} groups")
    shortcut = x
    x = conv_bn_act(x, mid, 1, groups=g1, activation=None, name=f"{name}_expand")
    x = ChannelShuffle(g1, name=f"{name}_expand_shuffle")(x)
    x = depthwise_bn_act(x, 3, strides=strides, activation="relu6", name=f"{name}_dw")
    x = conv_bn_act(x, out_channels, 1, groups=g2, activation=None, name=f"{name}_project")
    x = ChannelShuffle(out_channels // g2, name=f"{name}_project_shuffle")(x)
    if residual:
        if strides != 1 or in_channels != out_channels:
            raise ValueError(f"{name}: an identity needs stride 1 and equal widths ({in_channels} -> {out_channels})")
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def igcv3(input_shape=(224, 224, 3), num_classes=1000, alpha=1.0, settings=IGCV3_D_SETTINGS, groups=(2, 2),
          reference_code_widths=True, include_top=True, name=None):
    """IGCV3-D with width multiplier ``alpha``.

    ``reference_code_widths`` (default) reproduces the authors' ``genNet`` bookkeeping: the
    expansion of each sequence's first block is computed from ``in_c = round(c * alpha)`` of the
    previous sequence's already multiplied width ``c`` (alpha applied twice), or ``c + 1`` when that
    is odd; the layer still convolves the real input. At alpha = 1 it changes nothing; ``False``
    expands the real input width, as the paper's description implies.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ConfigError("alpha", alpha, "the width multiplier must be a positive number")
    inputs = image_input(input_shape)
    stem = _even_width(32 * alpha)
    x = conv_bn_act(inputs, stem, 3, strides=2, activation="relu6", name="conv1")
    bookkept = stem
    block = 0
    for t, c, n, s in settings:
        width = _even_width(c * alpha)
        for i in range(n):
            block += 1
            x = igcv3_block(x, width, s if i == 0 else 1, t, groups=tuple(groups), residual=i > 0,
                            expansion_input=bookkept if (i == 0 and reference_code_widths) else None,
                            name=f"block{block}")
        bookkept = _round(width * alpha)
        if bookkept % 2:
            bookkept = width + 1  # the authors' code: ``in_c = c + 1`` when odd
    last = 1280 if alpha <= 1.0 else int(1280 * alpha) + 1  # the authors' code for alpha > 1
    x = conv_bn_act(x, last, 1, activation="relu6", name="conv_last")
    if include_top:
        x = classifier(x, num_classes, name="head")
    return models.Model(inputs, x, name=name or ("igcv3_d" if alpha == 1.0 else f"igcv3_d_{alpha:g}"))


# ---- registrations ---------------------------------------------------------------------------
_IGCV3_RELU_NOTE = ("ShuffleNet V2's Table 8 (and the IGCV3 paper) print IGCV3-D at 318 MFLOPs; this build's conv + FC "
                    "multiply-adds are 312,970,176, and adding 1 op per ReLU6 output element (4,901,568) gives "
                    "317,871,744, which prints 318: consistent with a counter that counts activations (as "
                    "CondenseNet's measure_model does), not confirmed by a published counter.")
register_model(
    "igcv3_d",
    builder=igcv3,
    preset=dict(alpha=1.0),
    family="igc",
    paper=PAPER_IGCV3,
    min_input_size=(32, 32),
    reported=(
        Reported(exactness="exact", primary=True, params=3_491_688,
                 source="osmr/imgclsmob igcv3_w1 (an independent port of IGCV3-D 1.0: trainable weight count "
                        "asserted in its tests); hand count in tests/models/test_igc.py"),
        Reported(exactness="rounded", params=3.5e6,
                 source="IGCV3 paper ImageNet table / homles11/IGCV3 README (IGCV3-D, 3.5 M parameters)"),
        Reported(exactness="derived", macs=318e6, tolerance=0.02,
                 source="ShuffleNet V2 paper Table 8 and the IGCV3 paper (IGCV3-D, 318 MFLOPs): conv + FC "
                        "multiply-adds plus 1 per ReLU6 output element (see notes)"),
    ),
    notes=(
        "Layout: homles11/IGCV3 symbols/igcv3.py (the authors' MXNet code): MNETV2_CONFIGS_MAP's sequences "
        "(n = 1, 4, 6, 8, 6, 6, 1: the paper's deeper 'IGCV3-D'), inverted_residual_unit = 1x1 group conv (2 groups, "
        "no ReLU) - permutation(2) - 3x3 depthwise - ReLU6 - 1x1 group conv (2 groups, linear) - permutation(c/2), "
        "identity on every block of a sequence but the first; the t=1 block keeps its 1x1 conv.",
        "The code's second permutation is computed but not used (``linear_out`` is returned, not the permuted "
        "tensor) in symbols/igcv3_wider.py only; symbols/igcv3.py (this build) uses the permuted output. Neither "
        "changes a count.",
        _IGCV3_RELU_NOTE,
    ),
    test_input_size=(32, 32),
)

register_model(
    "igcv3_d_070",
    builder=igcv3,
    preset=dict(alpha=0.7),
    family="igc",
    paper=PAPER_IGCV3,
    min_input_size=(32, 32),
    reported=(
        Reported(exactness="exact", primary=True, params=2_447_130, macs=167_728_100, convention="calculated",
                 source="calculated: the authors' symbols/igcv3.py at multiplier 0.7 (hand count of every layer in "
                        "tests/models/test_igc.py)"),
        Reported(exactness="derived", macs=210e6,
                 source="ShuffleNet V2 paper Table 8, 'IGCV3-D (0.7)' (210 MFLOPs); conflicts with the authors' "
                        "code (see notes)"),
    ),
    notes=(
        "Widths as the authors' genNet computes them at multiplier 0.7: every width round(c * 0.7) made even "
        "(stem 22; sequences 12, 18, 22, 46, 68, 112, 224), last conv kept at 1280; each sequence's first expansion "
        "is computed from the code's in_c = round(c * 0.7) of the previous, already multiplied width c, or c + 1 when "
        "that is odd (22, 8, 19, 23, 32, 48, 78 instead of the real 22, 12, 18, 22, 46, 68, 112; "
        "reference_code_widths=True; False expands the real input: 2,502,486 parameters, 174,574,184 MACs).",
        "Conflict: ShuffleNet V2's Table 8 prints 210 MFLOPs for IGCV3-D (0.7); the authors' code at multiplier 0.7 "
        "builds 167.7 M multiply-adds (171.1 M with the ReLU6 outputs counted as for IGCV3-D's 318 M). No width rule "
        "tried reproduces 210 M: MobileNet V2's make_divisible(c * 0.7, 8) 177.5 M, int() widths 166.8 M, the "
        "expansion t scaled by 0.7 instead of the widths 233.4 M, multiplier 0.8 216.1 M. The IGCV3 README's "
        "'Network s x' (CIFAR) means s times the 1.0 network's parameters: 2,447,130 is 0.70 x 3,491,688.",
    ),
    test_input_size=(32, 32),
)
