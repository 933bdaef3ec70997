"""NASNet-A (Zoph, Vasudevan, Shlens, Le, CVPR 2018), the ImageNet networks of the architecture search.

The searched Normal and Reduction cells (paper Fig. 4, "NASNet-A") stacked as in paper Fig. 2:
a 3x3/2 stem conv (no ReLU, BN), two stem Reduction cells, then N Normal cells, a Reduction cell,
N Normal cells, a Reduction cell, N Normal cells; ReLU, global average pool, classifier. Every
cell reads the two previous cells' outputs (h_i and h_{i-1}); the filter count doubles at each
Reduction cell. "NASNet-A (N @ P)" has N Normal cells per stack and P filters in the penultimate
layer (P = 24 x the last stack's cell width: 6 branches x 4 concatenated): the mobile network of
paper Table 2 is 4 @ 1056 (5.3 M parameters, 564 M mult-adds at 224).

Layout details follow keras.applications.NASNetMobile (Keras' port of the authors' TF-slim
``nets/nasnet/nasnet.py`` / ``nasnet_utils.py``), layer for layer and in the same creation order:

* each separable branch is ReLU - sepconv - BN - ReLU - sepconv - BN (the paper's "sep k x k" is
  applied twice, ``_separable_conv_block``); a stride-2 branch zero-pads like TF's SAME
  (``correct_pad``) and convolves with VALID;
* each cell first projects h_i with ReLU - 1x1 conv - BN, and adapts h_{i-1} (``_adjust_block``):
  after a reduction, "factorized reduction" (two 1x1/2 average-pool paths, the second shifted by
  one pixel, each a 1x1 conv to half the filters, concatenated, BN); on a width change, ReLU -
  1x1 conv - BN;
* the mobile network does not skip the reduction input (``skip_reduction=False``): after each
  Reduction cell, the next cell's h_{i-1} is the Reduction cell's own input;
* BN epsilon 1e-3, momentum 0.9997 (TF-slim's arg scope); convs without bias; average pools with
  SAME padding exclude the padding from the mean (TF's avg_pool).

Classifier: global average pool and a Dense layer with bias that outputs logits (Keras adds a
softmax); no dropout (Keras' port has none; TF-slim's 0.5 dropout has no weights).
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import classifier, conv_bn_act, image_input, separable_bn

PAPER = Paper("Learning Transferable Architectures for Scalable Image Recognition", 2018,
              "https://arxiv.org/abs/1707.07012")

# TF-slim's batch norm for NASNet (nasnet.py nasnet_mobile_arg_scope).
_BN = dict(epsilon=1e-3, momentum=0.9997)


def _same_padding(x, kernel_size: int):
    """Zero padding that makes a VALID stride-2 conv equal TF's SAME one (keras' correct_pad)."""
    adjust = [1 - side % 2 for side in x.shape[1:3]]
    half = kernel_size // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


def _conv1x1_bn(x, filters, *, name):
    """1x1 conv (no bias) - BN: NASNet's projections (the ReLU before it is the caller's)."""
    x = conv_bn_act(x, filters, 1, norm=False, activation=None, name=name)
    return layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)


def separable_branch(x, filters: int, kernel_size: int, strides: int = 1, *, name: str):
    """ReLU - sep conv k x k (stride) - BN - ReLU - sep conv k x k - BN."""
    if strides == 2:
        x = layers.Activation("relu", name=f"{name}_1_pre_relu")(x)
        x = layers.ZeroPadding2D(_same_padding(x, kernel_size), name=f"{name}_1_pad")(x)
        x = separable_bn(x, filters, kernel_size, strides=2, padding="valid", pre_activation=False, **_BN,
                         name=f"{name}_1")
    else:
        x = separable_bn(x, filters, kernel_size, **_BN, name=f"{name}_1")
    return separable_bn(x, filters, kernel_size, **_BN, name=f"{name}_2")


def adjust(p, h, filters: int, *, name: str):
    """Bring the previous cell's output ``p`` to the shape of ``h`` with ``filters`` channels."""
    if p is None:
        return h
    if p.shape[2] != h.shape[2]:
        # Factorized reduction: two shifted 1x1/2 average-pool paths, half the filters each.
        p = layers.Activation("relu", name=f"{name}_adjust_relu")(p)
        p1 = layers.AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_adjust_pool1")(p)
        p1 = layers.Conv2D(filters // 2, 1, padding="same", use_bias=False, name=f"{name}_adjust_conv1")(p1)
        p2 = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_adjust_pad")(p)
        p2 = layers.Cropping2D(((1, 0), (1, 0)), name=f"{name}_adjust_crop")(p2)
        p2 = layers.AveragePooling2D(1, strides=2, padding="valid", name=f"{name}_adjust_pool2")(p2)
        p2 = layers.Conv2D(filters // 2, 1, padding="same", use_bias=False, name=f"{name}_adjust_conv2")(p2)
        p = layers.Concatenate(name=f"{name}_adjust_concat")([p1, p2])
        return layers.BatchNormalization(**_BN, name=f"{name}_adjust_bn")(p)
    if p.shape[-1] != filters:
        p = layers.Activation("relu", name=f"{name}_adjust_relu")(p)
        return _conv1x1_bn(p, filters, name=f"{name}_adjust")
    return p


def normal_cell(h, p, filters: int, *, name: str):
    """NASNet-A Normal cell (paper Fig. 4 left): 5 blocks, all outputs and h_{i-1} concatenated."""
    p = adjust(p, h, filters, name=name)
    h = layers.Activation("relu", name=f"{name}_relu")(h)
    h = _conv1x1_bn(h, filters, name=f"{name}_proj")
    x1 = layers.Add(name=f"{name}_add1")([separable_branch(h, filters, 5, name=f"{name}_left1"),
                                          separable_branch(p, filters, 3, name=f"{name}_right1")])
    x2 = layers.Add(name=f"{name}_add2")([separable_branch(p, filters, 5, name=f"{name}_left2"),
                                          separable_branch(p, filters, 3, name=f"{name}_right2")])
    x3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_left3")(h)
    x3 = layers.Add(name=f"{name}_add3")([x3, p])
    x4_1 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_left4")(p)
    x4_2 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_right4")(p)
    x4 = layers.Add(name=f"{name}_add4")([x4_1, x4_2])
    x5 = layers.Add(name=f"{name}_add5")([separable_branch(h, filters, 3, name=f"{name}_left5"), h])
    return layers.Concatenate(name=f"{name}_concat")([p, x1, x2, x3, x4, x5])


def reduction_cell(h, p, filters: int, *, name: str):
    """NASNet-A Reduction cell (paper Fig. 4 right): stride 2, 4 block outputs concatenated."""
    p = adjust(p, h, filters, name=name)
    h = layers.Activation("relu", name=f"{name}_relu")(h)
    h = _conv1x1_bn(h, filters, name=f"{name}_proj")
    h3 = layers.ZeroPadding2D(_same_padding(h, 3), name=f"{name}_pad")(h)
    x1 = layers.Add(name=f"{name}_add1")([separable_branch(h, filters, 5, 2, name=f"{name}_left1"),
                                          separable_branch(p, filters, 7, 2, name=f"{name}_right1")])
    x2_1 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_left2")(h3)
    x2 = layers.Add(name=f"{name}_add2")([x2_1, separable_branch(p, filters, 7, 2, name=f"{name}_right2")])
    x3_1 = layers.AveragePooling2D(3, strides=2, padding="valid", name=f"{name}_left3")(h3)
    x3 = layers.Add(name=f"{name}_add3")([x3_1, separable_branch(p, filters, 5, 2, name=f"{name}_right3")])
    x4 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_left4")(x1)
    x4 = layers.Add(name=f"{name}_add4")([x2, x4])
    x5_1 = separable_branch(x1, filters, 3, name=f"{name}_left5")
    x5_2 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_right5")(h3)
    x5 = layers.Add(name=f"{name}_add5")([x5_1, x5_2])
    return layers.Concatenate(name=f"{name}_concat")([x2, x3, x4, x5])


def nasnet(input_shape=(224, 224, 3), num_classes=1000, num_cells=4, penultimate_filters=1056, stem_filters=32,
           filter_multiplier=2, skip_reduction=False, include_top=True, name=None):
    """NASNet-A (``num_cells`` @ ``penultimate_filters``); the mobile network is 4 @ 1056 with a
    32-filter stem, the large one (keras NASNetLarge) 6 @ 4032, stem 96, ``skip_reduction=True``."""
    for option, value in (("num_cells", num_cells), ("penultimate_filters", penultimate_filters),
                          ("stem_filters", stem_filters), ("filter_multiplier", filter_multiplier)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(option, value, "a positive integer")
    if penultimate_filters % (24 * filter_multiplier ** 2):
        raise ConfigError("penultimate_filters", penultimate_filters,
                          f"a multiple of 24 x filter_multiplier^2 = {24 * filter_multiplier ** 2}")
    filters = penultimate_filters // 24
    m = filter_multiplier

    inputs = image_input(input_shape)
    x = layers.Conv2D(stem_filters, 3, strides=2, padding="valid", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(**_BN, name="stem_bn")(x)
    # Cells numbered in order: normal0..normal{N-1}, reduce{N}, normal{N+1}..., reduce{2N+1}, ...
    p = None
    x, p = reduction_cell(x, p, filters // m ** 2, name="stem1"), x
    x, p = reduction_cell(x, p, filters // m, name="stem2"), x
    cell = 0
    for stack, width in enumerate((filters, filters * m, filters * m ** 2)):
        if stack:
            x, reduction_input = reduction_cell(x, p, width, name=f"reduce{cell}"), x
            p = p if skip_reduction else reduction_input
            cell += 1
        for _ in range(num_cells):
            x, p = normal_cell(x, p, width, name=f"normal{cell}"), x
            cell += 1
    x = layers.Activation("relu", name="final_relu")(x)
    if include_top:
        x = classifier(x, num_classes, name="head")
    return models.Model(inputs, x, name=name or f"nasnet_a_{num_cells}at{penultimate_filters}")


# ---- registrations ---------------------------------------------------------------------------
register_model(
    "nasnet_a_mobile",
    builder=nasnet,
    preset=dict(num_cells=4, penultimate_filters=1056, stem_filters=32, skip_reduction=False),
    family="nasnet",
    paper=PAPER,
    min_input_size=(32, 32),
    reported=(
        Reported(exactness="exact", primary=True, params=5_289_978, macs=563_638_816,
                 source="keras.applications.NASNetMobile(weights=None, classifier_activation=None): its trainable "
                        "parameters and the multiply-adds of its layers at 224 (tests/models/test_nasnet.py builds it "
                        "and compares layer by layer)"),
        Reported(exactness="exact", params=5_326_716, params_total=True,
                 source="keras.applications.NASNetMobile total params (BN moving statistics included)"),
        Reported(exactness="rounded", params=5.3e6, macs=564e6,
                 source="paper Table 2, NASNet-A (4 @ 1056): 5.3 M parameters, 564 M mult-adds (also MobileNetV2 "
                        "paper Table 4 and ShuffleNet V2 paper Table 8)"),
    ),
    notes=(
        "Cells: paper Fig. 4 (NASNet-A Normal and Reduction cells) and Fig. 2 (ImageNet stacking: 3x3 stem conv, two "
        "stem Reduction cells, 3 x N Normal cells around 2 Reduction cells); mobile network 'NASNet-A (4 @ 1056)' of "
        "paper Table 2, stem 32 filters (TF-slim mobile_imagenet_config: num_conv_filters 44 = 1056 / 24, "
        "stem_multiplier 1, skip_reduction_layer_input 0).",
        "Every layer detail (separable branches applied twice, factorized reduction of h_{i-1}, SAME-equivalent "
        "padding of stride-2 branches, BN epsilon 1e-3) follows keras.applications.NASNetMobile, Keras' port of "
        "the authors' TF-slim code; with the same weights this build's outputs equal Keras' exactly.",
        "Logits, no softmax and no dropout; TF-slim's auxiliary head (training only) is not built.",
    ),
    test_input_size=(32, 32),
)
