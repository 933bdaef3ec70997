"""MobileNet V1 (width and resolution multipliers, Conv MobileNet) and MobileNet V2.

Published figures (paper tables, torchvision, keras.applications totals) are Reported figures,
checked by tests/models/test_reported.py. The counts below are not published anywhere: exact
trainable counts and conv+FC MACs of this build, and Keras totals without a Reported figure.
"""

import keras
import pytest

import kbench
from architectures.mobilenet import mobilenet_v1, mobilenet_v2
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs


def test_mobilenet_v1_exact_counts():
    """Trainable params and conv+FC MACs at 224 (the paper prints 4.2 M / 569 M)."""
    model = kbench.build("mobilenet_v1")
    assert count_params(model)["params_trainable"] == 4_231_976
    assert count_macs(model)["macs"] == 568_740_352


# Keras "Total params" (BN moving statistics included); the input size does not change them.
@pytest.mark.parametrize("name, total", [("mobilenet_v2", 3_538_984), ("mobilenet_v2_140", 6_156_712)])
def test_mobilenet_v2_total_params(name, total):
    assert count_params(kbench.build(name, input_shape=(32, 32)))["params_keras_total"] == total


def test_every_light_model_has_a_checked_figure():
    light = kbench.list_models("squeezenet") + kbench.list_models("mobilenet") + kbench.list_models("shufflenet")
    for name in light:
        assert any(r.exactness != "derived" or r.tolerance for r in kbench.get_spec(name).reported), name


def test_mobilenet_v2_140_paper_conflict_is_recorded():
    """The exact count misses the paper's 6.9 M by >10%: the notes must say why."""
    spec = kbench.get_spec("mobilenet_v2_140")
    paper = next(r for r in spec.reported if r.exactness == "derived")
    assert paper.params == 6.9e6
    assert abs(spec.primary_reported.params / paper.params - 1) > 0.1
    assert any("Conflict" in note for note in spec.notes)


def test_mobilenet_v1_resolution_multiplier_is_the_input_size():
    # A 192 px input to the 224 model is exactly the Table 7 "MobileNet-192" row.
    assert count_macs(kbench.build("mobilenet_v1", input_shape=(192, 192, 3)))["macs"] == 418_121_728
    assert kbench.get_spec("mobilenet_v1_192").default_input_shape == (192, 192, 3)


def test_mobilenet_v1_conv_is_the_same_builder_with_full_convolutions():
    model = mobilenet_v1(input_shape=(64, 64, 3), separable=False)
    assert not any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)
    assert model.get_layer("block13_conv_conv").kernel_size == (3, 3)


def test_mobilenet_v2_width_rounding():
    model = mobilenet_v2(input_shape=(32, 32, 3), alpha=0.35)
    assert model.get_layer("conv1_conv").filters == 16  # make_divisible(11.2, 8)
    assert model.get_layer("conv_last_conv").filters == 1280  # last conv only widens for alpha > 1
    assert model.get_layer("block2_project_conv").filters == 8  # make_divisible(24 * 0.35 = 8.4, 8)


def test_shallow_mobilenet_drops_the_five_repeated_14x14_blocks():
    """Table 5's Shallow MobileNet: 5 x (3x3x512 dw + 512x512 pw, each + BN) fewer than MobileNet."""
    full, shallow = kbench.build("mobilenet_v1"), kbench.build("mobilenet_v1_shallow")
    per_block_params = 3 * 3 * 512 + 2 * 512 + 512 * 512 + 2 * 512
    per_block_macs = 14 * 14 * (3 * 3 * 512 + 512 * 512)
    assert (count_params(full)["params_trainable"], count_macs(full)["macs"]) == (4_231_976, 568_740_352)
    assert count_params(shallow)["params_trainable"] == 4_231_976 - 5 * per_block_params == 2_887_976
    assert count_macs(shallow)["macs"] == 568_740_352 - 5 * per_block_macs == 307_323_392
    names = {layer.name for layer in shallow.layers}
    assert {"block6_pw_conv", "block12_dw_dwconv", "block13_pw_conv"} <= names
    assert not any(name.startswith(f"block{i}_") for name in names for i in range(7, 12))


def _make_divisible(value, divisor=8):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2_hand_count(alpha, size, num_classes=1000):
    """(trainable params, conv+FC MACs) of MobileNet V2 from the paper's Table 2, by arithmetic only."""
    side = -(-size // 2)
    width = _make_divisible(32 * alpha)
    params, macs = 27 * width + 2 * width, side * side * 27 * width
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)):
        out = _make_divisible(c * alpha)
        for i in range(n):
            hidden = width * t
            if t != 1:
                params += width * hidden + 2 * hidden
                macs += side * side * width * hidden
            side = -(-side // (s if i == 0 else 1))
            params += 9 * hidden + 2 * hidden + hidden * out + 2 * out
            macs += side * side * (9 * hidden + hidden * out)
            width = out
    last = _make_divisible(1280 * max(1.0, alpha))
    params += width * last + 2 * last + last * num_classes + num_classes
    macs += side * side * width * last + last * num_classes
    return params, macs


def test_mobilenet_v2_hand_count_reproduces_torchvision():
    assert mobilenet_v2_hand_count(1.0, 224) == (3_504_872, 300_774_272)


@pytest.mark.parametrize("name", ["mobilenet_v2_075", "mobilenet_v2_060", "mobilenet_v2_040", "mobilenet_v2_015"])
def test_mobilenet_v2_width_presets_equal_the_hand_count(name):
    spec = kbench.get_spec(name)
    calculated = next(r for r in spec.reported if r.exactness == "exact")
    assert mobilenet_v2_hand_count(spec.preset["alpha"], 224) == (calculated.params, calculated.macs)
    # At the test size too: the build follows the arithmetic, not a stored number.
    model = kbench.build(name, input_shape=(64, 64))
    assert (count_params(model)["params_trainable"], count_macs(model)["macs"]) == \
        mobilenet_v2_hand_count(spec.preset["alpha"], 64)
