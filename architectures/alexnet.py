"""AlexNet (Krizhevsky et al., 2012), its one-tower torchvision form, and ZFNet (Zeiler & Fergus, 2013).

All three are five convolutions (ReLU, bias, no BN), three max pools and a 4096-4096-classes
head with dropout, so one builder walks a per-layer configuration and the models are presets:

* ``paper``  (``alexnet``): 96-256-384-384-256 filters; the two-GPU split is expressed as
  ``groups=2`` in conv2/4/5 (conv3 sees both towers, as in Fig. 2 of the paper); LRN (k=2,
  n=5, alpha=1e-4, beta=0.75) after conv1 and conv2, each followed by a 3x3/2 max pool;
  227x227 input (the paper's "224" does not give its 55x55 conv1 maps).
* ``owt``    (``alexnet_owt``): "one weird trick" single column, 64-192-384-256-256 filters,
  conv1 11x11/4 with padding 2, no LRN, adaptive average pool to 6x6 before the head (as
  torchvision's ``alexnet``; an identity at 224, where the map already is 6x6).
* ``zfnet``: 96@7x7/2 (padding 1) -> 110, pool -> 55, 256@5x5/2 -> 26, pool -> 13,
  384-384-256 3x3 -> pool -> 6 (Fig. 3 of the paper). The first two pools pad on the bottom/right
  ("same") so that 110 -> 55 and 26 -> 13 come out; LRN after layers 1 and 2 as in the paper's
  "contrast normalised across feature maps".
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError, InputShapeError
from architectures.layers import conv_bn_act, dense_stack, image_input
from architectures.layers.normalization import LocalResponseNormalization


def _conv(filters, kernel, stride=1, pad=None, groups=1, lrn=False, pool=None):
    """One conv layer of the configuration; ``pad`` defaults to kernel // 2; ``pool``: None, "valid", "same"."""
    return dict(filters=filters, kernel=kernel, stride=stride, pad=kernel // 2 if pad is None else pad,
                groups=groups, lrn=lrn, pool=pool)


ALEXNET_CONFIGS = {
    "paper": dict(
        convs=(
            _conv(96, 11, 4, pad=0, lrn=True, pool="valid"),
            _conv(256, 5, groups=2, lrn=True, pool="valid"),
            _conv(384, 3),
            _conv(384, 3, groups=2),
            _conv(256, 3, groups=2, pool="valid"),
        ),
        adaptive_pool=None,
        dropout_before_fc=False,
    ),
    "owt": dict(
        convs=(
            _conv(64, 11, 4, pad=2, pool="valid"),
            _conv(192, 5, pool="valid"),
            _conv(384, 3),
            _conv(256, 3),
            _conv(256, 3, pool="valid"),
        ),
        adaptive_pool=(6, 6),
        dropout_before_fc=True,
    ),
    "zfnet": dict(
        convs=(
            _conv(96, 7, 2, pad=1, lrn=True, pool="same"),
            _conv(256, 5, 2, pad=0, lrn=True, pool="same"),
            _conv(384, 3),
            _conv(384, 3),
            _conv(256, 3, pool="valid"),
        ),
        adaptive_pool=None,
        dropout_before_fc=False,
    ),
}


def alexnet(input_shape=(227, 227, 3), num_classes=1000, config="paper", dropout=0.5, name=None):
    """AlexNet-style network from a configuration of :data:`ALEXNET_CONFIGS`.

    The head's first layer follows the input size (flatten of the last pooled map), except for
    ``owt``, whose adaptive 6x6 average pool fixes it at 9216 inputs like torchvision.
    """
    if config not in ALEXNET_CONFIGS:
        raise ConfigError("config", config, f"allowed configurations {', '.join(ALEXNET_CONFIGS)}")
    cfg = ALEXNET_CONFIGS[config]
    inputs = image_input(input_shape)
    x = inputs
    pool_index = 0
    for i, c in enumerate(cfg["convs"], start=1):
        k, s, p = c["kernel"], c["stride"], c["pad"]
        if s == 1 and 2 * p == k - 1:
            padding = "same"
        else:
            padding = "valid"
            if p:
                x = layers.ZeroPadding2D(p, name=f"conv{i}_pad")(x)
        x = conv_bn_act(x, c["filters"], k, strides=s, padding=padding, groups=c["groups"], use_bias=True,
                        norm=False, name=f"conv{i}")
        if c["lrn"]:
            x = LocalResponseNormalization(name=f"conv{i}_lrn")(x)
        if c["pool"]:
            pool_index += 1
            if min(x.shape[1:3]) < 3:
                raise InputShapeError(f"input {tuple(input_shape)} leaves a {x.shape[1]}x{x.shape[2]} map before "
                                 f"pool{pool_index}, smaller than its 3x3 window")
            x = layers.MaxPooling2D(3, strides=2, padding=c["pool"], name=f"pool{pool_index}")(x)
    if cfg["adaptive_pool"]:
        h, w = x.shape[1:3]
        if h == 1 or w == 1:
            # Keras' TF adaptive pool cannot trace a length-1 axis (its 2-wide window underflows);
            # repeating that axis first gives exactly PyTorch's result (every window averages copies).
            x = layers.UpSampling2D((2 if h == 1 else 1, 2 if w == 1 else 1), name="avgpool_repeat")(x)
        x = layers.AdaptiveAveragePooling2D(cfg["adaptive_pool"], name="avgpool")(x)
    x = layers.Flatten(name="flatten")(x)
    if cfg["dropout_before_fc"]:
        # torchvision order: Dropout -> Linear -> ReLU, twice (same function at inference).
        for j in (1, 2):
            if dropout:
                x = layers.Dropout(dropout, name=f"head_drop{j}")(x)
            x = layers.Dense(4096, activation="relu", name=f"head_fc{j}")(x)
    else:
        # Paper: dropout on the outputs of the first two fully connected layers.
        x = dense_stack(x, (4096, 4096), dropout=dropout, name="head")
    outputs = layers.Dense(num_classes, name="predictions")(x)
    return models.Model(inputs, outputs, name=name or ("zfnet" if config == "zfnet" else f"alexnet_{config}"))


register_model(
    "alexnet",
    builder=alexnet,
    preset=dict(config="paper"),
    family="alexnet",
    paper=Paper("ImageNet Classification with Deep Convolutional Neural Networks", 2012,
                "https://papers.nips.cc/paper/4824-imagenet-classification-with-deep-convolutional-neural-networks"),
    default_input_shape=(227, 227, 3),
    min_input_size=(67, 67),
    reported=(
        Reported(exactness="exact", primary=True, params=60_965_224, macs=724_406_816, source="[calc] computed from the layer list (Caffe bvlc_alexnet layout)",
                 input_size=(227, 227)),
        Reported(exactness="rounded", params=60e6, macs=720e6, source="paper: '60 million parameters'; MobileNet paper Table 9: 720 M mult-adds",
                 convention="rounded"),
    ),
    notes=(
        "Input 227x227: with the paper's stated 224 the 11x11/4 conv1 cannot give 55x55 maps.",
        "The two-GPU split is groups=2 in conv2, conv4, conv5; conv3 and the FC layers connect both towers. "
        "60,965,224 params / 724.4 M MACs at 227 (the paper's '60 million'; 720 M mult-adds in MobileNet Table 9).",
        "LRN uses the paper's formula (alpha multiplies the plain window sum); Caffe's alpha is divided by n.",
    ),
    test_input_size=(67, 67),
)

register_model(
    "alexnet_owt",
    builder=alexnet,
    preset=dict(config="owt"),
    family="alexnet",
    paper=Paper("One weird trick for parallelizing convolutional neural networks", 2014, "https://arxiv.org/abs/1404.5997"),
    default_input_shape=(224, 224, 3),
    min_input_size=(63, 63),
    reported=(
        Reported(exactness="exact", primary=True, params=61_100_840, macs=714_188_480, source="torchvision AlexNet_Weights.IMAGENET1K_V1 (num_params, _ops 0.714)",
                 input_size=(224, 224)),
    ),
    notes=(
        "torchvision's alexnet: adaptive average pool to 6x6 (keras AdaptiveAveragePooling2D, same windows as "
        "PyTorch) so the head always has 9216 inputs; at 224 it is an identity.",
    ),
    test_input_size=(63, 63),
)

register_model(
    "zfnet",
    builder=alexnet,
    preset=dict(config="zfnet"),
    family="alexnet",
    paper=Paper("Visualizing and Understanding Convolutional Networks", 2013, "https://arxiv.org/abs/1311.2901"),
    default_input_shape=(224, 224, 3),
    min_input_size=(53, 53),
    reported=(
        Reported(exactness="rounded", primary=True, params=62_357_608, macs=1.168e9, source="[calc] computed from the layer list (paper Fig. 3 map sizes)",
                 input_size=(224, 224)),
    ),
    notes=(
        "The paper gives no parameter/MAC totals; the reference is a recomputation of Fig. 3. Padding chosen "
        "so the figure's map sizes 110/55/26/13/6 come out: conv1 pads 1, pools 1 and 2 pad bottom/right "
        "('same'), conv2 and pool 3 unpadded.",
    ),
    test_input_size=(53, 53),
)
