"""ShuffleNet V2's guideline G3 benchmark: blocks of 1x1 convolutions split into 1, 2 or 4
fragments, in series or in parallel (Ma et al., 2018, Table 3 and its appendix figure).

G3 says that network fragmentation reduces the degree of parallelism: at equal FLOPs, a block
made of several small convolutions runs slower than one big convolution. The paper stacks each
block 10 times and times the stacks at c = 128/256/512 (GPU) and 64/128/256 (CPU), where c is the
1-fragment block's width and the other blocks' widths are adjusted to the 1-fragment's FLOPs.
The seed (lecture slides) prints only the speed table; how the widths were adjusted and the
input size are not in it. The reading taken here (every block maps c channels to c channels, so
that ten of them stack on a c-channel input, and each conv is a bias-free 1x1 conv + ReLU):

* ``1``: one conv c -> c (h*w*c^2 MACs per block);
* ``2_series``: c -> c/2 -> c (exactly the 1-fragment's MACs);
* ``4_series``: c -> w -> w -> w -> c with the integer w closest to equal MACs (2cw + 2w^2 = c^2:
  w = 47 for c = 128, +0.4%);
* ``n_parallel``: n branches c -> c/n, concatenated (exactly the 1-fragment's MACs).

c is the input's channel count: ``kbench.build("g3_fragment_2_series", input_shape=(56, 56, 256))``
builds the c=256 column. ``include_top=True`` (the default, so that every kbench model ends in
class scores) adds global average pooling and a linear classifier after the stack; the paper's
blocks are ``include_top=False``.
"""

from __future__ import annotations

from keras import layers, models

from architectures._registry import Reported, register_model
from architectures.errors import ConfigError
from architectures.layers import classifier, conv_bn_act, image_input
from architectures.shufflenet import PAPER_V2

ARRANGEMENTS = ("series", "parallel")
FRAGMENTS = (1, 2, 4)


def series_width(channels: int, fragments: int) -> int:
    """Inner width w of a c -> w -> ... -> w -> c chain of ``fragments`` convs with the MACs of c -> c."""
    if fragments == 1:
        return channels

    def gap(width: int) -> int:  # MACs per position off the 1-fragment's c^2
        return abs(2 * channels * width + (fragments - 2) * width * width - channels * channels)

    return min(range(1, channels + 1), key=lambda width: (gap(width), width))


def fragment_block(x, fragments: int, arrangement: str, *, name: str):
    """One G3 block on a c-channel map: ``fragments`` 1x1 conv + ReLU units, in series or in parallel."""
    channels = x.shape[-1]
    unit = dict(use_bias=False, norm=False, activation="relu")
    if fragments == 1:
        return conv_bn_act(x, channels, 1, name=f"{name}_frag1", **unit)
    if arrangement == "series":
        width = series_width(channels, fragments)
        for i in range(1, fragments + 1):
            x = conv_bn_act(x, channels if i == fragments else width, 1, name=f"{name}_frag{i}", **unit)
        return x
    branches = [conv_bn_act(x, channels // fragments, 1, name=f"{name}_frag{i}", **unit)
                for i in range(1, fragments + 1)]
    return layers.Concatenate(name=f"{name}_concat")(branches)


def fragment_net(input_shape=(56, 56, 128), num_classes=1000, fragments=1, arrangement="series", blocks=10,
                 include_top=True, name=None):
    """``blocks`` G3 blocks of ``fragments`` 1x1 convs in ``arrangement`` on a c-channel input (c = input channels)."""
    if isinstance(fragments, bool) or fragments not in FRAGMENTS:
        raise ConfigError("fragments", fragments, f"allowed fragments {', '.join(map(str, FRAGMENTS))}")
    if arrangement not in ARRANGEMENTS:
        raise ConfigError("arrangement", arrangement, f"allowed arrangements {', '.join(ARRANGEMENTS)}")
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1:
        raise ConfigError("blocks", blocks, "the number of stacked blocks must be a positive integer")
    channels = input_shape[-1]
    if arrangement == "parallel" and channels % fragments:
        raise ConfigError("fragments", fragments, f"{fragments} parallel fragments need input channels divisible "
                          f"by {fragments}, got {channels}")
    inputs = image_input(input_shape, name="features")
    x = inputs
    for b in range(1, blocks + 1):
        x = fragment_block(x, fragments, arrangement, name=f"block{b}")
    if include_top:
        x = classifier(x, num_classes, name="head")
    label = "1" if fragments == 1 else f"{fragments}_{arrangement}"
    return models.Model(inputs, x, name=name or f"g3_fragment_{label}")


# ---- registrations ---------------------------------------------------------------------------
# (fragments, arrangement, the seed table's row label)
_G3_BLOCKS = ((1, "series", "1-fragment"), (2, "series", "2-fragment-series"), (4, "series", "4-fragment-series"),
              (2, "parallel", "2-fragment-parallel"), (4, "parallel", "4-fragment-parallel"))
_SIDE, _C, _BLOCKS = 56, 128, 10


def _block_weights(fragments: int, arrangement: str, c: int) -> int:
    """Weights (= MACs per position) of one block, by hand from the reading above."""
    if fragments == 1:
        return c * c
    if arrangement == "parallel":
        return fragments * c * (c // fragments)
    w = series_width(c, fragments)
    return 2 * c * w + (fragments - 2) * w * w


for _fragments, _arrangement, _row in _G3_BLOCKS:
    _weights = _BLOCKS * _block_weights(_fragments, _arrangement, _C)
    register_model(
        "g3_fragment_1" if _fragments == 1 else f"g3_fragment_{_fragments}_{_arrangement}",
        builder=fragment_net,
        preset=dict(fragments=_fragments, arrangement=_arrangement),
        family="fragments",
        paper=PAPER_V2,
        default_input_shape=(_SIDE, _SIDE, _C),
        # Any map works (1x1 convs); 1 is the smallest size there is.
        min_input_size=(1, 1),
        reported=(Reported(exactness="exact", primary=True, params=_weights, macs=_SIDE * _SIDE * _weights,
                           convention="calculated", input_size=(_SIDE, _SIDE), variant={"include_top": False},
                           source=f"hand count of the '{_row}' stack: {_BLOCKS} blocks x {_SIDE}x{_SIDE} x the "
                                  f"block's 1x1 weights at c={_C} (the paper: FLOPs held equal to the 1-fragment's)"),),
        notes=(f"Seed table row '{_row}' (ShuffleNet V2 Table 3: GPU batches/s at c=128/256/512, CPU images/s at "
               "c=64/128/256; c is this model's input channel count). The seed prints speeds only; the block "
               "widths (see architectures/fragments.py) and the 56x56 input are this build's reading, not the "
               "paper's printed numbers.",),
        test_input_size=(8, 8),
    )
