"""CondenseNet (Huang, Liu, van der Maaten, Weinberger, CVPR 2018), the ImageNet network.

A DenseNet with learned group convolutions, "fully dense" connectivity (no transition convs:
a transition is a 2x2/2 average pool only) and a growth rate that doubles from block to block
(paper Section 4, Fig. 5; authors' code ``ShichenLiu/CondenseNet``). Stem: one 3x3/2 conv with
``2 * growth[0]`` filters, no BN after it (every dense layer starts with BN-ReLU). Each dense
layer: BN-ReLU-1x1 conv (``bottleneck * k`` filters) then BN-ReLU-3x3 group conv (``k`` filters,
``groups``), concatenated to its input. After the last block BN-ReLU, global average pool and
the classifier.

Two builds of one network (``condensed``):

* ``True`` (default), the network used at test time (``models/condensenet_converted.py``,
  ``layers.py`` ``CondenseConv``/``CondenseLinear``): each learned 1x1 group conv becomes an
  index layer (``ChannelGather``: the ``in * groups // condense_factor`` input channels its groups
  kept, in group order), BN-ReLU over them, a standard 1x1 group conv and a channel shuffle with
  ``groups`` groups (``ShuffleLayer``); the classifier keeps half of the pooled features (index
  layer + Linear, ``CondenseLinear(..., 0.5)``).
* ``False``, the network that is trained (``models/condensenet.py``, ``LearnedGroupConv``): each
  1x1 conv is a dense conv over all input channels (its weights are masked group by group during
  training; the mask is training state, not architecture) and the classifier sees all features.

The index of a freshly built condensed network reads each group's share of the input in order (the
identity at G = C): which channels a trained network keeps is learned during condensation, and the
choice changes no count. The index is layer config, so a converted network's index travels with its
``.keras`` file.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError, InputShapeError
from architectures.layers import ChannelGather, ChannelShuffle, classifier, conv_bn_act, image_input, norm_act

PAPER = Paper("CondenseNet: An Efficient DenseNet using Learned Group Convolutions", 2018,
              "https://arxiv.org/abs/1711.09224")

# The ImageNet CondenseNet-74 (README and script.sh of ShichenLiu/CondenseNet: --stages 4-6-8-10-8
# --growth 8-16-32-64-128 --bottleneck 4).
CONDENSENET74_STAGES = (4, 6, 8, 10, 8)
CONDENSENET74_GROWTH = (8, 16, 32, 64, 128)


def _conv(x, filters, kernel, *, groups=1, strides=1, name):
    """A bias-free conv with PyTorch's symmetric padding (k // 2), like the authors' nn.Conv2d."""
    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    return conv_bn_act(x, filters, kernel, strides=strides, padding="valid", groups=groups, norm=False,
                       activation=None, name=name)


def _kept_channels(in_channels, groups, condense_factor):
    """Input channels of a condensed 1x1 group conv: each of ``groups`` groups keeps
    ``in / condense_factor`` of them (``CondensingConv``)."""
    return in_channels * groups // condense_factor


def dense_layer(x, growth_rate, *, bottleneck, groups, condense_factor, condensed, name):
    in_channels = x.shape[-1]
    y = x
    if condensed:
        kept = _kept_channels(in_channels, groups, condense_factor)
        per_group = kept // groups
        # Group g reads its own share; identity within the shares until a trained index is loaded.
        index = [c % in_channels for g in range(groups) for c in range(g * per_group, (g + 1) * per_group)]
        y = ChannelGather(index, name=f"{name}_1_index")(y)
    y = norm_act(y, name=f"{name}_1")
    y = _conv(y, bottleneck * growth_rate, 1, groups=groups if condensed else 1, name=f"{name}_1")
    if condensed and groups > 1:
        y = ChannelShuffle(groups, name=f"{name}_1_shuffle")(y)
    y = norm_act(y, name=f"{name}_2")
    y = _conv(y, growth_rate, 3, groups=groups, name=f"{name}_2")
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def condensenet(input_shape=(224, 224, 3), num_classes=1000, stages=CONDENSENET74_STAGES,
                growth=CONDENSENET74_GROWTH, bottleneck=4, groups=8, condense_factor=None, condensed=True,
                classifier_keep=0.5, include_top=True, name=None):
    """CondenseNet with ``groups`` = G (1x1 and 3x3 group convs) and ``condense_factor`` = C
    (default G); ``condensed=False`` builds the training-time network."""
    stages, growth = tuple(stages), tuple(growth)
    if not stages or len(stages) != len(growth) or min(stages) < 1 or min(growth) < 1:
        raise ConfigError("stages", list(stages), "stages and growth need one positive entry per dense block")
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ConfigError("groups", groups, "the group count must be a positive integer")
    condense_factor = groups if condense_factor is None else condense_factor
    if not isinstance(condense_factor, int) or isinstance(condense_factor, bool) or condense_factor < 1:
        raise ConfigError("condense_factor", condense_factor, "the condensation factor must be a positive integer")
    if not 0 < classifier_keep <= 1:
        raise ConfigError("classifier_keep", classifier_keep, "the share of features the classifier keeps is in (0, 1]")
    # Every 1x1 input width (2 * growth[0] + a multiple of each growth) must split into the groups
    # and the condensed shares; the bottleneck and growth widths must split into the groups.
    width = 2 * growth[0]
    for block, (layers_in_block, k) in enumerate(zip(stages, growth), start=1):
        for i in range(layers_in_block):
            if width % condense_factor or width % groups or (bottleneck * k) % groups or k % groups \
                    or _kept_channels(width, groups, condense_factor) % groups:
                raise ConfigError("groups", groups, f"block {block} layer {i + 1}: widths {width} -> "
                                  f"{bottleneck * k} -> {k} do not split into {groups} groups and "
                                  f"condense factor {condense_factor}")
            width += k

    inputs = image_input(input_shape)
    x = _conv(inputs, 2 * growth[0], 3, strides=2, name="init")
    for b, (layers_in_block, k) in enumerate(zip(stages, growth), start=1):
        for i in range(1, layers_in_block + 1):
            x = dense_layer(x, k, bottleneck=bottleneck, groups=groups, condense_factor=condense_factor,
                            condensed=condensed, name=f"block{b}_layer{i}")
        if b < len(stages):
            if min(x.shape[1:3]) < 2:
                raise InputShapeError(f"input {tuple(input_shape)} leaves a {x.shape[1]}x{x.shape[2]} map before "
                                      f"transition {b} (needs at least 2x2)")
            x = layers.AveragePooling2D(2, strides=2, name=f"transition{b}_pool")(x)
    x = norm_act(x, name="final")
    if include_top:
        # The authors' nn.AvgPool2d(7) is the global average at 224 (a 7x7 map).
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
        if condensed and classifier_keep < 1:
            kept = int(x.shape[-1] * classifier_keep)
            x = ChannelGather(list(range(kept)), name="head_index")(x)
        x = classifier(x, num_classes, pool=False, name="head")
    default = f"condensenet74_c{condense_factor}_g{groups}" + ("" if condensed else "_train")
    return models.Model(inputs, x, name=name or default)


# ---- registrations ---------------------------------------------------------------------------
# G = C, the authors' FLOPs (README / paper Table 5, counted by their utils.py measure_model) and
# parameters; imgclsmob's independent port (condensenet74_c*_g*) counts the same parameters.
_AUTHORS_COUNTER = ("the authors' FLOPs come from ShichenLiu/CondenseNet utils.py measure_model, which adds to the "
                    "conv and Linear multiply-adds 1 op per ReLU output element, k*k per average-pooled output "
                    "and the Linear bias (kbench's `macs` counts the multiply-adds only)")
_CONDENSENETS = (
    # groups, paper MFLOPs, paper params, trainable params (imgclsmob), conv+FC MACs, authors' counter total
    (8, 274e6, 2.9e6, 2_935_416, 261_545_792, 274_233_480),
    (4, 529e6, 4.8e6, 4_773_944, 516_640_576, 529_328_264),
)
for _g, _paper_flops, _paper_params, _params, _macs, _authors_count in _CONDENSENETS:
    register_model(
        f"condensenet74_c{_g}_g{_g}",
        builder=condensenet,
        preset=dict(groups=_g, condense_factor=_g),
        family="condensenet",
        paper=PAPER,
        min_input_size=(32, 32),
        reported=(
            Reported(exactness="exact", primary=True, params=_params,
                     source=f"osmr/imgclsmob condensenet74_c{_g}_g{_g} (an independent port of the converted network: "
                            "trainable weight count asserted in its tests)"),
            Reported(exactness="rounded", params=_paper_params,
                     source=f"paper Table 5 / ShichenLiu/CondenseNet README, CondenseNet-74 (C=G={_g}) params"),
            # 274M / 529M are the authors' counter (see notes): 4.5% / 2.4% above the multiply-adds.
            Reported(exactness="derived", macs=_paper_flops, tolerance=0.05,
                     source=f"paper Table 5 / ShichenLiu/CondenseNet README, CondenseNet-74 (C=G={_g}) FLOPs; "
                            f"{_AUTHORS_COUNTER}: {_authors_count:,} here"),
        ),
        notes=(
            "Layout: ShichenLiu/CondenseNet models/condensenet_converted.py and layers.py (CondenseConv = index_select, "
            "BN-ReLU, 1x1 group conv, ShuffleLayer; Conv = BN-ReLU-3x3 group conv; CondenseLinear keeps half of "
            "the pooled features); stages 4-6-8-10-8, growth 8-16-32-64-128, bottleneck 4 from the README's ImageNet "
            "command; transitions are a 2x2/2 average pool only (paper Sec. 4, 'fully dense connectivity').",
            f"The paper's {_paper_flops / 1e6:g}M 'FLOPs' are {_AUTHORS_COUNTER}; this build gives {_macs:,} "
            f"multiply-adds and {_authors_count:,} by that counter, which prints {_paper_flops / 1e6:g}M. The figure "
            "is the converted network's: the training network's full classifier would add 1.03 M.",
            "The stem is a bare 3x3/2 conv (no BN/ReLU after it: each dense layer starts with BN-ReLU), as in the "
            "authors' code; the final 7x7 average pool is a global average pool (the same at 224).",
            "Index layers (ChannelGather) are data: a fresh build gathers each group's share in order (identity); "
            "a trained network's indices, learned during condensation, change no count.",
            "condensed=False builds the training-time network (LearnedGroupConv: a dense 1x1 conv whose weights the "
            "training masks group by group; full classifier): "
            + ("11,103,608 trainable parameters, 1,137,847,936 MACs at 224." if _g == 8 else
               "same layout with dense 1x1 convs."),
        ),
        test_input_size=(32, 32),
    )
