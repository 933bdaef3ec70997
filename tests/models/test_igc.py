"""IGCV3-D: the block (low-rank group convs and their permutations), the authors' width rule, hand
counts, and the activation-counting reading of the printed 318M. Published figures:
tests/models/test_reported.py.
"""

import keras
import numpy as np
import pytest

import kbench
from architectures.igc import IGCV3_D_SETTINGS, igcv3, igcv3_block
from architectures.layers import ChannelShuffle
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs


def _authors_widths(alpha):
    """homles11/IGCV3 symbols/igcv3.py genNet: widths, and the width each sequence's first expansion
    is computed from (``in_c``: round(c * alpha) of the already multiplied c, odd -> c + 1)."""
    def py2_round(v):
        return int(np.floor(v + 0.5))

    def even(v):
        v = py2_round(v)
        return v + 1 if v % 2 else v
    stem = even(32 * alpha)
    widths, expansion_from, in_c = [], [], stem
    for _, c, _, _ in IGCV3_D_SETTINGS:
        c = even(c * alpha)
        widths.append(c)
        expansion_from.append(in_c)
        in_c = py2_round(c * alpha)
        in_c = c + 1 if in_c % 2 else in_c
    return stem, widths, expansion_from


def _hand_count(alpha, size=224):
    """Trainable parameters and conv + FC MACs of IGCV3-D, layer by layer."""
    stem, widths, expansion_from = _authors_widths(alpha)
    side = size // 2
    params = 27 * stem + 2 * stem
    macs = side * side * stem * 27
    relu6 = side * side * stem
    cin = stem
    for (t, _, n, s), c, first_from in zip(IGCV3_D_SETTINGS, widths, expansion_from):
        for i in range(n):
            mid = int(np.floor((first_from if i == 0 else cin) * t + 0.5))
            out_side = side // s if i == 0 else side
            params += (cin // 2) * mid + 2 * mid + 9 * mid + 2 * mid + (mid // 2) * c + 2 * c
            macs += side * side * mid * (cin // 2) + out_side * out_side * (9 * mid + c * (mid // 2))
            relu6 += out_side * out_side * mid
            side, cin = out_side, c
    params += cin * 1280 + 2 * 1280 + 1280 * 1000 + 1000
    macs += side * side * 1280 * cin + 1280 * 1000
    relu6 += side * side * 1280
    return params, macs, relu6


def test_authors_widths_at_0_7():
    assert _authors_widths(0.7) == (22, [12, 18, 22, 46, 68, 112, 224], [22, 8, 19, 23, 32, 48, 78])
    assert _authors_widths(1.0)[1] == [16, 24, 32, 64, 96, 160, 320]


@pytest.mark.parametrize("name, alpha", [("igcv3_d", 1.0), ("igcv3_d_070", 0.7)])
def test_hand_count_at_224(name, alpha):
    model = kbench.build(name)
    params, macs, _ = _hand_count(alpha)
    assert count_params(model)["params_trainable"] == params
    assert count_macs(model)["macs"] == macs


def test_igcv3_d_matches_imgclsmob_and_the_318m_counts_activations():
    """3,491,688: osmr/imgclsmob's igcv3_w1 (independent port). 318M: the multiply-adds plus one op
    per ReLU6 output element print 318, the multiply-adds alone do not (the table's tolerance reason)."""
    params, macs, relu6 = _hand_count(1.0)
    assert params == 3_491_688
    model = kbench.build("igcv3_d")
    activations = sum(int(np.prod(l.output.shape[1:])) for l in model.layers
                      if isinstance(l, keras.layers.Activation))
    assert activations == relu6
    assert round((macs + relu6) / 1e6) == 318 and round(macs / 1e6) != 318


def test_block_is_grouped_expansion_shuffle_depthwise_grouped_projection_shuffle():
    inputs = keras.Input((8, 8, 24))
    model = keras.Model(inputs, igcv3_block(inputs, 24, 1, 6, residual=True, name="b"))
    kinds = [(type(l).__name__, getattr(l, "groups", None)) for l in model.layers[1:]]
    assert kinds == [("Conv2D", 2), ("BatchNormalization", None), ("ChannelShuffle", 2),
                     ("DepthwiseConv2D", None), ("BatchNormalization", None), ("Activation", None),
                     ("Conv2D", 2), ("BatchNormalization", None), ("ChannelShuffle", 12), ("Add", None)]
    assert model.get_layer("b_dw_relu6").get_config()["activation"] == "relu6"
    # The second permutation (c/2 groups) undoes a 2-group shuffle: the code's "permutation(x, c/2)".
    x = np.random.default_rng(0).normal(size=(1, 1, 1, 24)).astype("float32")
    twice = ChannelShuffle(12)(ChannelShuffle(2)(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(twice), x)


def test_first_block_of_a_sequence_has_no_identity_and_t1_keeps_its_expansion():
    model = igcv3(input_shape=(32, 32, 3))
    names = {l.name for l in model.layers}
    assert "block1_expand_conv" in names and "block1_add" not in names
    assert "block2_add" not in names and "block3_add" in names
    assert sum(name.endswith("_add") for name in names) == sum(n - 1 for _, _, n, _ in IGCV3_D_SETTINGS)


def test_reference_code_widths_only_change_the_first_expansions():
    ref = igcv3(input_shape=(32, 32, 3), alpha=0.7)
    real = igcv3(input_shape=(32, 32, 3), alpha=0.7, reference_code_widths=False)
    assert ref.get_layer("block2_expand_conv").filters == 8 * 6
    assert real.get_layer("block2_expand_conv").filters == 12 * 6
    assert ref.get_layer("block3_expand_conv").filters == real.get_layer("block3_expand_conv").filters == 18 * 6
    assert count_params(igcv3(input_shape=(32, 32, 3), reference_code_widths=False)) == count_params(
        igcv3(input_shape=(32, 32, 3)))
