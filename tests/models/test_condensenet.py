"""CondenseNet: the index layer (ChannelGather), the condensed and the training-time networks, and
the authors' FLOP counter behind the paper's 274M. Published figures: tests/models/test_reported.py.
"""

import keras
import numpy as np
import pytest

import kbench
from architectures.condensenet import CONDENSENET74_GROWTH, CONDENSENET74_STAGES, condensenet
from architectures.errors import ConfigError
from architectures.layers import ChannelGather
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ---- the index layer ---------------------------------------------------------------------------

def test_channel_gather_picks_the_listed_channels_with_repeats():
    x = np.arange(2 * 6, dtype="float32").reshape(2, 1, 1, 6)
    out = _np(ChannelGather([5, 0, 0, 3])(x))
    np.testing.assert_array_equal(out[0, 0, 0], [5, 0, 0, 3])
    np.testing.assert_array_equal(out[1, 0, 0], [11, 6, 6, 9])


def test_channel_gather_has_no_weights_no_macs_and_round_trips(tmp_path):
    inputs = keras.Input((3, 3, 8))
    model = keras.Model(inputs, ChannelGather([7, 1, 1, 2], name="index")(inputs))
    assert not model.weights
    counted = count_macs(model)
    assert counted["macs"] == 0 and not counted["unknown_layers"]
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 8)).astype("float32")
    model.save(tmp_path / "gather.keras")
    loaded = keras.saving.load_model(tmp_path / "gather.keras")
    assert loaded.get_layer("index").index == [7, 1, 1, 2]
    np.testing.assert_array_equal(_np(loaded(x)), _np(model(x)))


def test_channel_gather_rejects_an_index_out_of_range():
    with pytest.raises(ValueError, match="out of range for 4 channels"):
        ChannelGather([0, 4])(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match="non-empty"):
        ChannelGather([])


# ---- hand counts --------------------------------------------------------------------------------

def _hand_count(groups, condensed=True, size=224, bottleneck=4):
    """Trainable parameters, conv + FC MACs and the extra ops of the authors' utils.py
    measure_model (1 per ReLU output element, k*k per pooled output, the FC bias), layer by layer
    from the paper's description (C = G, so a condensed 1x1 conv keeps all w inputs, w/G per group)."""
    side = size // 2
    width = 2 * CONDENSENET74_GROWTH[0]
    params = 3 * 3 * 3 * width
    macs = side * side * width * 27
    relu = pool = 0
    for block, (layers, k) in enumerate(zip(CONDENSENET74_STAGES, CONDENSENET74_GROWTH)):
        for _ in range(layers):
            mid = bottleneck * k
            conv1_in = width // groups if condensed else width
            params += 2 * width + conv1_in * mid + 2 * mid + 9 * (mid // groups) * k
            macs += side * side * (mid * conv1_in + 9 * k * (mid // groups))
            relu += side * side * (width + mid)
            width += k
        if block < len(CONDENSENET74_STAGES) - 1:
            pool += side * side * width  # 2x2/2 average pool: 4 ops per output
            side //= 2
    features = width // 2 if condensed else width
    params += 2 * width + features * 1000 + 1000
    macs += features * 1000
    relu += side * side * width
    pool += side * side * width  # the final 7x7 average pool
    return params, macs, macs + relu + pool + 1000


def test_hand_count_of_the_condensed_network_at_224():
    model = kbench.build("condensenet74_c8_g8")
    params, macs, _ = _hand_count(8)
    assert count_params(model)["params_trainable"] == params == 2_935_416  # imgclsmob's count
    assert count_macs(model)["macs"] == macs


def test_the_papers_274m_is_the_authors_counter():
    """The table's tolerance reason: measure_model's count of this build prints 274 (and 529 at G=C=4),
    while the conv + FC multiply-adds alone do not."""
    for name, groups, printed in (("condensenet74_c8_g8", 8, 274), ("condensenet74_c4_g4", 4, 529)):
        model = kbench.build(name)
        macs = count_macs(model)["macs"]
        relu = sum(int(np.prod(l.output.shape[1:])) for l in model.layers if isinstance(l, keras.layers.Activation))
        pooled = sum(int(np.prod(l.input.shape[1:])) for l in model.layers
                     if isinstance(l, (keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D)))
        authors = macs + relu + pooled + 1000
        assert authors == _hand_count(groups)[2]
        assert round(authors / 1e6) == printed
        assert round(macs / 1e6) != printed


def test_training_network_has_dense_1x1_convs_and_a_full_classifier():
    model = condensenet(input_shape=(32, 32, 3), condensed=False)
    assert not [l for l in model.layers if isinstance(l, ChannelGather)]
    conv1 = model.get_layer("block2_layer1_1_conv")
    assert conv1.groups == 1 and conv1.kernel.shape == (1, 1, 48, 64)
    assert model.get_layer("block2_layer1_2_conv").groups == 8
    assert model.get_layer("head_fc").kernel.shape == (2064, 1000)
    assert count_params(model)["params_trainable"] == _hand_count(8, condensed=False)[0]


def test_condensed_layer_order_and_shapes():
    model = kbench.build("condensenet74_c8_g8", input_shape=(32, 32, 3))
    names = [l.name for l in model.layers if l.name.startswith("block3_layer2_")]
    assert names[:6] == ["block3_layer2_1_index", "block3_layer2_1_bn", "block3_layer2_1_relu",
                         "block3_layer2_1_conv", "block3_layer2_1_shuffle", "block3_layer2_2_bn"]
    assert model.get_layer("block3_layer2_1_conv").groups == 8
    assert model.get_layer("head_index").output.shape[-1] == 1032
    # Fully dense connectivity: no transition conv, only the 2x2 average pools.
    assert [l.name for l in model.layers if l.name.startswith("transition")] == [
        f"transition{i}_pool" for i in range(1, 5)]


def test_widths_that_do_not_split_into_groups_are_refused():
    with pytest.raises(ConfigError, match="groups=3"):
        condensenet(input_shape=(32, 32, 3), groups=3)
    with pytest.raises(ConfigError, match="condense_factor"):
        condensenet(input_shape=(32, 32, 3), condense_factor=0)
