"""ResNet (He et al., 2015) and its configurable relatives, from one stack-wise builder.

Defaults are the "v1.5" layout that torchvision and mmpretrain ship: stride on the 3x3 conv
of a bottleneck, no conv bias, BN after every conv. Options turn it into

* the original paper / keras.applications layout: ``stride_in_1x1=True, conv_bias=True``;
* ResNet-V1c (mmseg): ``deep_stem=True`` (three 3x3 stem convs);
* ResNeXt: ``groups`` (cardinality) and ``width_per_group`` on the 3x3 conv;
* attention variants: ``plugins`` (see ``architectures.layers.plugins``), applied after
  conv1 / conv2 / conv3 of each block of the selected stages;
* dense-prediction backbones (mmseg/mmdet): ``stage_dilations`` with ``contract_dilation`` (the
  first block of a dilated stage uses half the rate) and ``resnet_features``, which returns the
  four stage outputs instead of a classifier.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import classifier, conv_bn_act, image_input
from architectures.layers.plugins import apply_plugins, normalize_plugins

PAPER = Paper("Deep Residual Learning for Image Recognition", 2015, "https://arxiv.org/abs/1512.03385")

# depth -> (block type, blocks per stage)
RESNET_DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
STAGE_PLANES = (64, 128, 256, 512)


def _shortcut(x, filters, strides, *, conv_bias, name):
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn_act(x, filters, 1, strides=strides, use_bias=conv_bias, activation=None, name=f"{name}_0")


def basic_block(x, planes, strides, *, conv_bias=False, dilation=1, name, **_):
    """Two 3x3 convs; expansion 1."""
    shortcut = _shortcut(x, planes, strides, conv_bias=conv_bias, name=name)
    x = conv_bn_act(x, planes, 3, strides=strides, dilation=dilation, use_bias=conv_bias, name=f"{name}_1")
    x = conv_bn_act(x, planes, 3, use_bias=conv_bias, activation=None, name=f"{name}_2")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def bottleneck_block(x, planes, strides, *, stage, groups=1, width_per_group=64, stride_in_1x1=False,
                     conv_bias=False, plugins=(), dilation=1, name):
    """1x1 -> 3x3 (grouped for ResNeXt) -> 1x1 (4x planes), with plugin positions between them."""
    width = int(planes * width_per_group / 64) * groups
    shortcut = _shortcut(x, planes * 4, strides, conv_bias=conv_bias, name=name)
    x = conv_bn_act(x, width, 1, strides=strides if stride_in_1x1 else 1, use_bias=conv_bias, name=f"{name}_1")
    x = apply_plugins(x, plugins, stage=stage, position="after_conv1", name=name)
    x = conv_bn_act(x, width, 3, strides=1 if stride_in_1x1 else strides, groups=groups, dilation=dilation,
                    use_bias=conv_bias, name=f"{name}_2")
    x = apply_plugins(x, plugins, stage=stage, position="after_conv2", name=name)
    x = conv_bn_act(x, planes * 4, 1, use_bias=conv_bias, activation=None, name=f"{name}_3")
    x = apply_plugins(x, plugins, stage=stage, position="after_conv3", name=name)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet_stem(x, *, deep_stem=False, conv_bias=False):
    """7x7/2 conv (or three 3x3 convs for V1c), BN, ReLU, 3x3/2 max pool."""
    if deep_stem:
        for i, (filters, strides) in enumerate(((32, 2), (32, 1), (64, 1)), start=1):
            x = conv_bn_act(x, filters, 3, strides=strides, use_bias=conv_bias, name=f"stem{i}")
    else:
        x = conv_bn_act(x, 64, 7, strides=2, use_bias=conv_bias, name="conv1")
    return layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)


def _stack_config(depth, blocks, block, groups, width_per_group, plugins, stage_dilations):
    """Validate the stack options; return (block function, blocks per stage, plugins)."""
    if depth not in RESNET_DEPTHS and blocks is None:
        raise ConfigError("depth", depth, f"allowed depths {', '.join(map(str, RESNET_DEPTHS))}")
    default_block, default_blocks = RESNET_DEPTHS.get(depth, ("bottleneck", None))
    block = block or default_block
    blocks = tuple(blocks or default_blocks)
    if block not in ("basic", "bottleneck"):
        raise ConfigError("block", block, "allowed blocks basic, bottleneck")
    if block == "basic" and (groups != 1 or width_per_group != 64 or plugins):
        raise ConfigError("block", block, "groups, width_per_group and plugins need block='bottleneck'")
    if len(stage_dilations) != len(blocks) or any(int(d) < 1 for d in stage_dilations):
        raise ConfigError("stage_dilations", stage_dilations, f"{len(blocks)} positive integers")
    plugins = normalize_plugins(plugins, len(blocks))
    return (basic_block if block == "basic" else bottleneck_block), blocks, plugins


def resnet_features(
    inputs,
    *,
    depth=50,
    blocks=None,
    block=None,
    groups=1,
    width_per_group=64,
    stride_in_1x1=False,
    conv_bias=False,
    deep_stem=False,
    stage_strides=(1, 2, 2, 2),
    stage_dilations=(1, 1, 1, 1),
    contract_dilation=False,
    plugins=None,
):
    """The ResNet trunk on ``inputs``; returns the output of every stage (C2..C5).

    ``contract_dilation`` (mmseg): the first block of a stage with dilation d > 1 uses d // 2.
    """
    block_fn, blocks, plugins = _stack_config(depth, blocks, block, groups, width_per_group, plugins,
                                              stage_dilations)
    x = resnet_stem(inputs, deep_stem=deep_stem, conv_bias=conv_bias)
    features = []
    for stage, (num_blocks, planes, stage_stride, dilation) in enumerate(
            zip(blocks, STAGE_PLANES, stage_strides, stage_dilations)):
        for b in range(num_blocks):
            first_dilation = dilation // 2 if contract_dilation and dilation > 1 else dilation
            x = block_fn(
                x, planes, stage_stride if b == 0 else 1,
                stage=stage, groups=groups, width_per_group=width_per_group, stride_in_1x1=stride_in_1x1,
                conv_bias=conv_bias, plugins=plugins, dilation=first_dilation if b == 0 else dilation,
                name=f"conv{stage + 2}_block{b + 1}",
            )
        features.append(x)
    return features


def resnet(
    input_shape=(224, 224, 3),
    num_classes=1000,
    depth=50,
    blocks=None,
    block=None,
    groups=1,
    width_per_group=64,
    stride_in_1x1=False,
    conv_bias=False,
    deep_stem=False,
    stage_strides=(1, 2, 2, 2),
    plugins=None,
    include_top=True,
    name=None,
):
    """Build a ResNet-family classifier.

    ``depth`` selects the paper's block type and stage lengths; ``blocks``/``block`` override
    them for custom stacks. ``plugins`` is a list of plugin configurations (type, stages,
    position and the plugin's own keyword arguments).
    """
    inputs = image_input(input_shape)
    x = resnet_features(
        inputs, depth=depth, blocks=blocks, block=block, groups=groups, width_per_group=width_per_group,
        stride_in_1x1=stride_in_1x1, conv_bias=conv_bias, deep_stem=deep_stem, stage_strides=stage_strides,
        stage_dilations=(1,) * len(blocks or RESNET_DEPTHS.get(depth, (None, (1,) * 4))[1]), plugins=plugins,
    )[-1]
    if include_top:
        x = classifier(x, num_classes, name="head")
    return models.Model(inputs, x, name=name or f"resnet{depth}")


# name, depth, torchvision params (v1.5), torchvision GMACs (v1.5), paper GMACs (original layout)
_RESNETS = (
    ("resnet18", 18, 11_689_512, 1.814e9, 1.8e9),
    ("resnet34", 34, 21_797_672, 3.664e9, 3.6e9),
    ("resnet50", 50, 25_557_032, 4.089e9, 3.8e9),
    ("resnet101", 101, 44_549_160, 7.801e9, 7.6e9),
    ("resnet152", 152, 60_192_808, 11.514e9, 11.3e9),
)
for _name, _depth, _params, _macs, _paper_macs in _RESNETS:
    register_model(
        _name,
        builder=resnet,
        preset=dict(depth=_depth),
        family="resnet",
        paper=PAPER,
        reported=(
            Reported(exactness="rounded", primary=True, params=_params, macs=_macs, source="torchvision weights meta (v1.5 layout)"),
            Reported(exactness="derived", macs=_paper_macs, source="paper Table 1 'FLOPs' (multiply-adds), original v1 layout",
                     convention="stride in the first 1x1 conv"),
        ),
        test_input_size=(64, 64),
        notes=("v1.5 layout (stride on the 3x3 conv, no conv bias): ~0.23 G more MACs than the paper's v1 "
               "layout for bottleneck depths; pass stride_in_1x1=True for the paper's layout.",),
    )

register_model(
    "resnet50_v1c",
    builder=resnet,
    preset=dict(depth=50, deep_stem=True),
    family="resnet",
    paper=Paper("Bag of Tricks for Image Classification with Convolutional Neural Networks", 2018,
                "https://arxiv.org/abs/1812.01187"),
    reported=(Reported(exactness="derived", primary=True, params=25_576_264, macs=4.351e9 + 2_048_000, source="mmpretrain ResNetV1c (deep_stem=True), computed from the layer list",
                       convention="spec's 4.351 G excludes the 2,048,000-MAC fc head; added here"),),
    test_input_size=(64, 64),
)
