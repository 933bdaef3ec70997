"""SqueezeNet (Iandola et al., 2016): fire modules, versions 1.0 and 1.1, and the bypass variants.

A fire module is a 1x1 "squeeze" conv (s1 filters) feeding a 1x1 expand conv (e1 filters) and a
3x3 expand conv (e3 filters) whose outputs are concatenated; every conv has a bias and a ReLU,
no BN. The paper's metaparameters give the widths of the eight fire modules ``i = 0..7``::

    e_i = base_e + incr_e * floor(i / freq),  e3_i = pct_3x3 * e_i,  s1_i = squeeze_ratio * e_i

(base_e=128, incr_e=128, freq=2, pct_3x3=0.5, squeeze_ratio=0.125 give the published network).

Max pools are 3x3/2 in PyTorch's ceil mode, as in torchvision and the Caffe original, emulated by
``architectures.layers.ceil_max_pool`` (output size ceil((n - 3) / 2) + 1). 1.0 at 224: 109 -> 54 -> 27 -> 13;
1.1 at 224: 111 -> 55 -> 27 -> 13.

Bypass variants (paper Table 3): ``bypass="simple"`` adds identity shortcuts around fire3, 5, 7
and 9 (where input and output widths agree); ``bypass="complex"`` also adds 1x1-conv shortcuts
(with bias) around fire2, 4, 6 and 8.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Paper, Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import ceil_max_pool, conv_bn_act, image_input

PAPER = Paper("SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size", 2016,
              "https://arxiv.org/abs/1602.07360")

# version -> (stem filters, stem kernel, positions of the max pools: after stem and after fire i)
SQUEEZENET_VERSIONS = {
    "1_0": dict(stem_filters=96, stem_kernel=7, pool_after=(4, 8)),
    "1_1": dict(stem_filters=64, stem_kernel=3, pool_after=(3, 5)),
}
BYPASS_MODES = (None, "simple", "complex")


def fire_module(x, squeeze: int, expand1x1: int, expand3x3: int, *, name: str):
    """Squeeze 1x1 -> (expand 1x1 || expand 3x3), all with bias and ReLU, concatenated."""
    s = conv_bn_act(x, squeeze, 1, use_bias=True, norm=False, name=f"{name}_squeeze")
    e1 = conv_bn_act(s, expand1x1, 1, use_bias=True, norm=False, name=f"{name}_expand1x1")
    e3 = conv_bn_act(s, expand3x3, 3, use_bias=True, norm=False, name=f"{name}_expand3x3")
    return layers.Concatenate(name=f"{name}_concat")([e1, e3])


def fire_widths(base_e=128, incr_e=128, freq=2, pct_3x3=0.5, squeeze_ratio=0.125, num_fire=8):
    """``[(s1, e1, e3), ...]`` for fire2..fire9 from the paper's metaparameters."""
    widths = []
    for i in range(num_fire):
        e = base_e + incr_e * (i // freq)
        e3 = int(round(pct_3x3 * e))
        widths.append((int(round(squeeze_ratio * e)), e - e3, e3))
    return widths


def squeezenet(
    input_shape=(224, 224, 3),
    num_classes=1000,
    version="1_0",
    base_e=128,
    incr_e=128,
    freq=2,
    pct_3x3=0.5,
    squeeze_ratio=0.125,
    bypass=None,
    dropout=0.5,
    name=None,
):
    """Build SqueezeNet ``version`` ("1_0" or "1_1") with the paper's fire metaparameters.

    Head (torchvision): dropout, 1x1 conv to ``num_classes`` with bias and ReLU, global average pool.
    """
    if version not in SQUEEZENET_VERSIONS:
        raise ConfigError("version", version, f"allowed versions {', '.join(SQUEEZENET_VERSIONS)}")
    if bypass not in BYPASS_MODES:
        raise ConfigError("bypass", bypass, "allowed bypasses None, 'simple', 'complex'")
    cfg = SQUEEZENET_VERSIONS[version]
    inputs = image_input(input_shape)
    x = conv_bn_act(inputs, cfg["stem_filters"], cfg["stem_kernel"], strides=2, padding="valid", use_bias=True,
                    norm=False, name="conv1")
    x = ceil_max_pool(x, name="pool1")
    for i, (s1, e1, e3) in enumerate(fire_widths(base_e, incr_e, freq, pct_3x3, squeeze_ratio), start=2):
        fire_name = f"fire{i}"
        shortcut = x
        x = fire_module(x, s1, e1, e3, name=fire_name)
        if bypass is not None:
            if shortcut.shape[-1] == x.shape[-1] and i % 2 == 1:
                x = layers.Add(name=f"{fire_name}_bypass_add")([shortcut, x])
            elif bypass == "complex":
                shortcut = layers.Conv2D(x.shape[-1], 1, use_bias=True, name=f"{fire_name}_bypass_conv")(shortcut)
                x = layers.Add(name=f"{fire_name}_bypass_add")([shortcut, x])
        if i in cfg["pool_after"]:
            x = ceil_max_pool(x, name=f"pool{i}")
    if dropout:
        x = layers.Dropout(dropout, name="head_drop")(x)
    x = conv_bn_act(x, num_classes, 1, use_bias=True, norm=False, name="head")
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    suffix = {None: "", "simple": "_bypass", "complex": "_complex_bypass"}[bypass]
    return models.Model(inputs, x, name=name or f"squeezenet{version}{suffix}")


_COMMON = dict(builder=squeezenet, family="squeezenet", paper=PAPER, test_input_size=(64, 64))

register_model(
    "squeezenet1_0",
    preset=dict(version="1_0"),
    min_input_size=(29, 29),
    reported=(
        Reported(exactness="exact", primary=True, params=1_248_424, macs=818_924_576, source="torchvision SqueezeNet1_0_Weights meta (_ops 0.819); "
                 "MXOP table (818,924,576 multiplications)"),
        Reported(exactness="derived", macs=833e6, source="ShuffleNet paper Table 6 (833 MFLOPs); MobileNet Table 9 says 1700 M"),
    ),
    notes=("torchvision layout: 224 input, ceil-mode max pools emulated with per-size valid/same padding.",),
    **_COMMON,
)
register_model(
    "squeezenet1_1",
    preset=dict(version="1_1"),
    min_input_size=(25, 25),
    reported=(Reported(exactness="exact", primary=True, params=1_235_496, macs=349_151_936, source="torchvision SqueezeNet1_1_Weights meta "
                       "(_ops 0.349); MXOP table (349,151,936 multiplications)"),),
    notes=("SqueezeNet 1.1 (forresti/SqueezeNet v1.1): 64 3x3/2 stem, pools after fire3 and fire5.",),
    **_COMMON,
)
register_model(
    "squeezenet1_0_bypass",
    preset=dict(version="1_0", bypass="simple"),
    min_input_size=(29, 29),
    reported=(Reported(exactness="exact", primary=True, params=1_248_424, macs=818_924_576,
                       source="paper Table 3 'simple bypass' (4.8 MB, no new parameters); MACs of 1.0 "
                              "(identity adds are not MACs)"),),
    notes=("Simple bypass: identity adds around fire3, fire5, fire7, fire9.",),
    **_COMMON,
)
register_model(
    "squeezenet1_0_complex_bypass",
    preset=dict(version="1_0", bypass="complex"),
    min_input_size=(29, 29),
    reported=(
        Reported(exactness="exact", primary=True, params=1_589_672, source="computed from the layer list: 1x1 bypass convs (with bias) on "
                 "fire2/4/6/8", convention="calculated, not published"),
        Reported(exactness="derived", params=7.7e6 / 4, source="paper Table 3: 7.7 MB model size (float32 -> ~1.9 M params)",
                 convention="model size in MB / 4 bytes"),
    ),
    notes=(
        "Conflict: paper Table 3 gives 7.7 MB (about 1.9-2.0 M float32 params) for the complex bypass; identity "
        "bypasses on fire3/5/7/9 plus 1x1-conv bypasses (with bias) on fire2/4/6/8 give 1,589,672 params "
        "(6.36 MB). The paper does not state the bypass placement precisely; this layout follows its Figure 2 "
        "(complex bypass wherever the simple one is impossible). Unresolved.",
    ),
    **_COMMON,
)
