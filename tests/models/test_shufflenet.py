"""ShuffleNet V1/V2: the channel shuffle and split layers, the networks, and the memory access
cost behind ShuffleNet V2's guidelines. Published figures: tests/models/test_reported.py.
"""

import math
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kbench
from architectures.layers import ChannelShuffle, ChannelSplit, channel_shuffle, shuffle_permutation
from architectures.errors import ConfigError
from architectures.shufflenet import SHUFFLENET_V2_WIDTHS, shufflenet_v1, shufflenet_v2, shufflenet_v2_unit
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs
from kbench.counting.memory_cost import g1_lower_bound, memory_access_cost

M = 1_000_000


# ---- channel shuffle and split layers ----------------------------------------------------------

METHODS = ("reshape", "gather")


def _np(x):
    return keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("method", METHODS)
def test_slides_example_nine_channels_three_groups(method):
    x = np.arange(9, dtype="float32").reshape(1, 1, 1, 9)
    out = _np(ChannelShuffle(3, method=method)(x)).ravel()
    np.testing.assert_array_equal(out, [0, 3, 6, 1, 4, 7, 2, 5, 8])


def test_permutation_is_reshape_transpose_flatten():
    # The paper's recipe written with numpy: [g, n] -> transpose -> flatten.
    for channels, groups in ((9, 3), (12, 4), (240, 3), (384, 8), (48, 2)):
        expected = np.arange(channels).reshape(groups, channels // groups).T.ravel()
        np.testing.assert_array_equal(shuffle_permutation(channels, groups), expected)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("channels,groups", [(9, 3), (12, 3), (12, 4), (24, 8), (10, 2), (7, 7), (6, 1)])
def test_shuffle_g_then_c_over_g_is_identity(method, channels, groups):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, channels)).astype("float32")
    y = ChannelShuffle(groups, method=method)(x)
    z = ChannelShuffle(channels // groups, method=method)(y)
    np.testing.assert_array_equal(_np(z), x)
    if 1 < groups < channels:
        assert not np.array_equal(_np(y), x)


@pytest.mark.parametrize("shape", [(2, 12), (2, 5, 12), (2, 3, 5, 12), (1, 2, 3, 4, 12)])
def test_methods_agree_on_any_rank(shape):
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    a = ChannelShuffle(4, method="reshape")(x)
    b = ChannelShuffle(4, method="gather")(x)
    np.testing.assert_array_equal(_np(a), _np(b))
    assert tuple(a.shape) == shape


@pytest.mark.parametrize("method", METHODS)
def test_channels_not_divisible_by_groups_is_a_clear_error(method):
    x = np.zeros((1, 4, 4, 10), "float32")
    with pytest.raises(ValueError, match=r"10 channels are not divisible by groups=4"):
        ChannelShuffle(4, method=method)(x)
    with pytest.raises(ValueError, match="not divisible"):
        keras.Model(*(lambda i: (i, channel_shuffle(i, 3)))(keras.Input((4, 4, 10))))


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown channel shuffle method"):
        ChannelShuffle(2, method="einsum")
    with pytest.raises(ValueError, match="groups >= 1"):
        ChannelShuffle(0)


def test_channel_split_halves():
    x = np.arange(8, dtype="float32").reshape(1, 1, 1, 8)
    a, b = ChannelSplit(2)(x)
    np.testing.assert_array_equal(_np(a).ravel(), [0, 1, 2, 3])
    np.testing.assert_array_equal(_np(b).ravel(), [4, 5, 6, 7])
    with pytest.raises(ValueError, match="not divisible"):
        ChannelSplit(2)(np.zeros((1, 7), "float32"))


def test_config_round_trip():
    layer = ChannelShuffle(3, method="gather", name="s")
    clone = ChannelShuffle.from_config(layer.get_config())
    assert (clone.groups, clone.method, clone.name) == (3, "gather", "s")
    split = ChannelSplit.from_config(ChannelSplit(4).get_config())
    assert split.num_splits == 4


@pytest.mark.parametrize("method", METHODS)
def test_saves_and_loads_in_a_keras_file(tmp_path, method):
    inputs = keras.Input((5, 5, 12))
    x = keras.layers.Conv2D(12, 1, groups=3, name="gconv")(inputs)
    x = ChannelShuffle(3, method=method, name="shuffle")(x)
    left, right = ChannelSplit(2, name="split")(x)
    model = keras.Model(inputs, keras.layers.Concatenate()([right, left]))
    data = np.random.default_rng(2).normal(size=(2, 5, 5, 12)).astype("float32")
    path = tmp_path / "shuffle.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("shuffle"), ChannelShuffle)
    assert loaded.get_layer("shuffle").method == method
    np.testing.assert_array_equal(_np(loaded(data)), _np(model(data)))


def test_no_macs_and_not_unknown():
    inputs = keras.Input((4, 4, 6))
    model = keras.Model(inputs, ChannelSplit(2)(ChannelShuffle(3)(inputs))[0])
    result = count_macs(model)
    assert result["macs"] == 0 and not result["unknown_layers"]


def test_backend_agnostic_numpy_backend():
    """The layer uses keras.ops only: it runs unchanged on another backend (numpy)."""
    code = textwrap.dedent("""
        import numpy as np, keras
        assert keras.backend.backend() == "numpy"
        from architectures.layers.shuffle import ChannelShuffle
        x = np.arange(9, dtype="float32").reshape(1, 1, 1, 9)
        for m in ("reshape", "gather"):
            out = keras.ops.convert_to_numpy(ChannelShuffle(3, method=m)(x)).ravel().astype(int).tolist()
            assert out == [0, 3, 6, 1, 4, 7, 2, 5, 8], out
        print("ok")
    """)
    env = {**os.environ, "KERAS_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


# ---- the networks ------------------------------------------------------------------------------

def test_profiler_resolves_grouped_convs_of_shufflenet_v1_at_224():
    record = kbench.profile("shufflenet_v1_g3", input_shape=(224, 224, 3))
    assert record["macs"] == 137_460_672  # conv+FC MACs of this build (the [calc] figure: 137.46 M)
    assert 1.0 <= record["flops_tf"] / (2 * record["macs"]) <= 1.06


@pytest.mark.parametrize("groups,scale,calc_params,calc_mmacs,paper_mmacs", [
    (3, 0.5, 717_324, 37.59, 38),     # Table 8 / megvii 0.5x g=3
    pytest.param(3, 1.5, 3_441_168, 292.44, 292, marks=pytest.mark.slow),
    pytest.param(3, 2.0, 5_449_776, 524.05, 524, marks=pytest.mark.slow),
    (8, 0.5, 1_010_448, 40.47, 40),   # megvii README 40 M
])
def test_shufflenet_v1_scale_factors(groups, scale, calc_params, calc_mmacs, paper_mmacs):
    model = shufflenet_v1(groups=groups, scale=scale)
    assert count_params(model)["params_trainable"] == calc_params
    macs = count_macs(model)["macs"]
    assert round(macs / M, 2) == calc_mmacs
    assert abs(macs / (paper_mmacs * M) - 1) <= 0.03


def test_shufflenet_v1_g3_scales_of_the_v2_comparison_table_are_presets():
    """ShuffleNet V2's Table 8 lists ShuffleNet v1 0.5x/1x/1.5x at g=3: one preset each, none twice."""
    presets = {}
    for name in kbench.list_models("shufflenet"):
        spec = kbench.get_spec(name)
        if spec.builder is shufflenet_v1:
            key = (spec.preset["groups"], spec.preset["scale"])
            assert key not in presets, (name, presets.get(key))
            presets[key] = name
    assert [presets[(3, scale)] for scale in (0.5, 1.0, 1.5)] == [
        "shufflenet_v1_g3_x0_5", "shufflenet_v1_g3", "shufflenet_v1_g3_x1_5"]


def test_shufflenet_v1_first_pointwise_of_stage2_is_not_grouped():
    model = shufflenet_v1(input_shape=(32, 32, 3), groups=8)
    assert model.get_layer("stage2_unit1_gconv1_conv").groups == 1
    assert model.get_layer("stage2_unit2_gconv1_conv").groups == 8
    assert model.get_layer("stage3_unit1_gconv1_conv").groups == 8
    assert model.get_layer("stage2_unit1_gconv2_conv").groups == 8


@pytest.mark.parametrize("builder", [pytest.param(shufflenet_v1, marks=pytest.mark.slow), shufflenet_v2])
def test_shuffle_methods_give_identical_networks(builder):
    a = builder(input_shape=(32, 32, 3), num_classes=7, shuffle_method="reshape")
    b = builder(input_shape=(32, 32, 3), num_classes=7, shuffle_method="gather")
    b.set_weights(a.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a(x)), keras.ops.convert_to_numpy(b(x)), rtol=0, atol=0)


# ---- ShuffleNet V2 stride-2 layouts: torchvision (default) and the authors' megvii code ---------

def _branch_widths(model, unit):
    return {conv: model.get_layer(f"{unit}_{conv}_conv").filters for conv in ("left_pw", "right_pw1", "right_pw2")}


def _unit_counts(model, unit):
    """MACs and trainable parameters (kernels, BN gamma/beta) of the layers of one unit."""
    macs = sum(v for k, v in count_macs(model)["per_layer"].items() if k.startswith(f"{unit}_"))
    params = sum(math.prod(w.shape) for layer in model.layers if layer.name.startswith(f"{unit}_")
                 for w in layer.trainable_weights)
    return macs, params


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_shufflenet_v2_megvii_layout_widens_the_first_unit_of_stage2(scale):
    size, classes, stem = 64, 1000, 24
    c2 = SHUFFLENET_V2_WIDTHS[scale][0]
    mid = c2 // 2
    tv = shufflenet_v2(input_shape=(size, size, 3), scale=scale)
    mg = shufflenet_v2(input_shape=(size, size, 3), scale=scale, downsample="megvii")
    # The authors' projection branch keeps the stem's 24 channels; the main branch fills up to c2.
    assert _branch_widths(mg, "stage2_unit1") == {"left_pw": stem, "right_pw1": mid, "right_pw2": c2 - stem}
    assert _branch_widths(tv, "stage2_unit1") == {"left_pw": mid, "right_pw1": mid, "right_pw2": mid}
    for unit in ("stage3_unit1", "stage4_unit1"):  # stages 3/4 take in = out / 2: the same widths
        assert _branch_widths(mg, unit) == _branch_widths(tv, unit)
    assert mg.get_layer("stage2_unit1_shuffle").output.shape[1:] == (size // 8, size // 8, c2)

    # The unit by hand: input size/4 (conv1 and pool), output size/8; 3x3 depthwise convs.
    hw_in, hw = (size // 4) ** 2, (size // 8) ** 2
    left = (hw * 9 * stem + hw * stem * stem, 9 * stem + 2 * stem + stem * stem + 2 * stem)
    right = (hw_in * stem * mid + hw * 9 * mid + hw * mid * (c2 - stem),
             stem * mid + 2 * mid + 9 * mid + 2 * mid + mid * (c2 - stem) + 2 * (c2 - stem))
    assert _unit_counts(mg, "stage2_unit1") == (left[0] + right[0], left[1] + right[1])

    # The whole networks differ by the two 1x1 convs of that unit (and their BN) and the FC bias.
    macs_delta = hw * (stem * stem + mid * (c2 - stem) - stem * mid - mid * mid)
    params_delta = (stem * stem + 2 * stem + mid * (c2 - stem) + 2 * (c2 - stem)
                    - (stem * mid + 2 * mid + mid * mid + 2 * mid) - classes)
    assert count_macs(mg)["macs"] - count_macs(tv)["macs"] == macs_delta
    assert count_params(mg)["params_trainable"] - count_params(tv)["params_trainable"] == params_delta
    assert not mg.get_layer("head_fc").use_bias and tv.get_layer("head_fc").use_bias
    # megvii's 2.0x model drops out 0.2 before its classifier.
    assert ("head_drop" in [layer.name for layer in mg.layers]) == (scale == 2.0)


def test_shufflenet_v2_default_layout_is_torchvision():
    default = shufflenet_v2(input_shape=(224, 224, 3))
    explicit = shufflenet_v2(input_shape=(224, 224, 3), downsample="torchvision")
    describe = lambda model: [(layer.name, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]
    assert describe(default) == describe(explicit)
    assert count_params(default)["params_trainable"] == 2_278_604  # torchvision's num_params
    assert _branch_widths(default, "stage2_unit1") == {"left_pw": 58, "right_pw1": 58, "right_pw2": 58}
    assert default.get_layer("head_fc").use_bias


def test_shufflenet_v2_unknown_downsample_layout_is_a_config_error():
    with pytest.raises(ConfigError, match=r"downsample='tf' is not allowed: allowed layouts torchvision, megvii"):
        shufflenet_v2(input_shape=(64, 64, 3), downsample="tf")
    with pytest.raises(ConfigError, match=r"downsample='Megvii'"):
        shufflenet_v2_unit(keras.Input((8, 8, 24)), 48, 2, downsample="Megvii", name="u")
    with pytest.raises(kbench.UsageError, match=r"downsample=tf is not allowed for shufflenet_v2_x1_0: allowed layouts"):
        kbench.build("shufflenet_v2_x1_0", input_shape=(64, 64), downsample="tf")


# ---- memory access cost (ShuffleNet V2 guidelines) ---------------------------------------------

def _single(layer, shape):
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs))


def test_mac_of_1x1_conv_is_hw_c1_plus_c2_plus_c1c2():
    h, w, c1, c2 = 14, 10, 24, 40
    for use_bias in (False, True):
        model = _single(keras.layers.Conv2D(c2, 1, use_bias=use_bias, name="pw"), (h, w, c1))
        cost = memory_access_cost(model)
        assert cost["per_layer"]["pw"] == h * w * (c1 + c2) + c1 * c2
        assert cost["total"] == cost["per_layer"]["pw"]


def test_mac_of_kxk_grouped_depthwise_and_dense():
    conv = _single(keras.layers.Conv2D(32, 3, strides=2, padding="same", groups=4, name="c"), (16, 16, 8))
    assert memory_access_cost(conv)["total"] == 16 * 16 * 8 + 8 * 8 * 32 + 3 * 3 * 8 * 32 // 4
    dw = _single(keras.layers.DepthwiseConv2D(5, depth_multiplier=2, padding="valid", name="d"), (9, 9, 6))
    assert memory_access_cost(dw)["total"] == 9 * 9 * 6 + 5 * 5 * 12 + 5 * 5 * 6 * 2
    dense = _single(keras.layers.Dense(10, name="fc"), (64,))
    assert memory_access_cost(dense)["total"] == 64 + 10 + 640


def test_mac_of_elementwise_concat_shuffle_and_identity_layers():
    from architectures.layers import ChannelShuffle

    inputs = keras.Input((4, 4, 6))
    bn = keras.layers.BatchNormalization(name="bn")(inputs)
    act = keras.layers.ReLU(name="relu")(bn)
    add = keras.layers.Add(name="add")([inputs, act])
    cat = keras.layers.Concatenate(name="cat")([add, act])
    shuf = ChannelShuffle(3, name="shuffle")(cat)
    drop = keras.layers.Dropout(0.5, name="drop")(shuf)
    cost = memory_access_cost(keras.Model(inputs, drop))
    n = 4 * 4 * 6
    assert cost["per_layer"] == {"bn": 2 * n, "relu": 2 * n, "add": 3 * n, "cat": 4 * n, "shuffle": 4 * n, "drop": 0}
    assert cost["total"] == 15 * n


def _pointwise_stack(c1, c2, hw_side=28, blocks=5):
    """The ShuffleNet V2 paper's G1 benchmark: blocks of two 1x1 convs c1 -> c2 -> c1."""
    inputs = keras.Input((hw_side, hw_side, c1))
    x = inputs
    for i in range(blocks):
        x = keras.layers.Conv2D(c2, 1, use_bias=False, name=f"b{i}_a")(x)
        x = keras.layers.Conv2D(c1, 1, use_bias=False, name=f"b{i}_b")(x)
    return keras.Model(inputs, x)


def test_guideline1_equal_widths_minimise_mac_at_fixed_flops():
    hw = 28 * 28
    ratios = {"1:1": (128, 128), "1:2": (90, 180), "1:4": (64, 256), "1:16": (32, 512), "16:1": (512, 32)}
    flops, mac = {}, {}
    for label, (c1, c2) in ratios.items():
        model = _pointwise_stack(c1, c2)
        flops[label] = count_macs(model)["macs"]
        mac[label] = memory_access_cost(model)["total"]
        # Per conv, the bound MAC >= 2 sqrt(hw B) + B / hw holds, with equality iff c1 == c2.
        bound = g1_lower_bound(hw, hw * c1 * c2)
        per_conv = memory_access_cost(model)["per_layer"]["b0_a"]
        assert per_conv >= bound - 1e-6
        assert (per_conv == pytest.approx(bound, rel=1e-12)) == (c1 == c2)
    # Same FLOPs (up to 90*180 = 16200 vs 128^2 = 16384: 1% below), yet the most MAC at 1:1 is the least.
    assert max(flops.values()) == flops["1:1"]
    assert min(mac, key=mac.get) == "1:1"
    assert mac["1:1"] < mac["1:2"] < mac["1:4"] < mac["1:16"]


def test_guideline2_more_groups_more_mac_at_fixed_flops():
    hw_side, c = 28, 64
    mac = []
    for g in (1, 2, 4, 8):
        width = c * int(math.isqrt(g))
        if width * width != c * c * g:
            continue  # only g = 1, 4 keep B fixed with integer widths
        # B = hw * c1 * c2 / g fixed: widen both sides by sqrt(g).
        model = _single(keras.layers.Conv2D(width, 1, groups=g, use_bias=False, name="g"), (hw_side, hw_side, width))
        assert count_macs(model)["macs"] == hw_side * hw_side * c * c
        mac.append(memory_access_cost(model)["total"])
    assert mac[0] < mac[1]


def test_shufflenet_v2_units_meet_the_guideline1_bound():
    """ShuffleNet V2 keeps c1 == c2 on every 1x1 conv of its stride-1 units: MAC equals the G1 minimum."""
    model = shufflenet_v2(input_shape=(224, 224, 3), scale=1.0)
    cost = memory_access_cost(model)
    assert cost["total"] == sum(cost["per_layer"].values())
    checked = 0
    for layer in model.layers:
        if not (isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1) and "unit" in layer.name):
            continue
        _, h, w, c1 = layer.input.shape
        c2 = layer.filters
        if "_unit1_" in layer.name:
            continue  # stride-2 units (no channel split) widen from the previous stage
        assert c1 == c2, layer.name
        bound = g1_lower_bound(h * w, h * w * c1 * c2)
        assert cost["per_layer"][layer.name] == pytest.approx(bound, rel=1e-12)
        checked += 1
    assert checked == 2 * (3 + 7 + 3)  # two 1x1 convs per stride-1 unit
    # ShuffleNet V1 (bottleneck units, grouped 1x1 convs) does not: its 1x1 convs change width by 4x.
    v1 = shufflenet_v1(input_shape=(224, 224, 3), groups=3)
    conv = v1.get_layer("stage3_unit2_gconv1_conv")
    assert conv.input.shape[-1] == 4 * conv.filters
