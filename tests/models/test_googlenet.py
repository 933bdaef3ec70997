"""GoogLeNet: the paper's inference network, its auxiliary heads, and the torchvision layout."""

import math

import pytest

import kbench
from architectures.googlenet import INCEPTION_CONFIG
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs


def test_paper_figure_gap_is_explained():
    googlenet = kbench.get_spec("googlenet")
    # 2.95% above the paper's Table 1 column sum (6,797.7K): outside 1%, so the metadata must say why.
    assert abs(googlenet.primary_reported.params / 6_797_700 - 1) > 0.01
    assert any("6,797.7K" in note and "conv1" in note for note in googlenet.notes)


def test_googlenet_aux_heads_are_a_training_option():
    spec = kbench.get_spec("googlenet")
    assert "aux_logits" not in spec.preset  # off by default: inference profiles exclude them
    training = kbench.build("googlenet", aux_logits=True)
    assert len(training.outputs) == 3 and all(tuple(o.shape) == (None, 1000) for o in training.outputs)
    assert count_params(training)["params_trainable"] == 13_378_280  # 6,998,552 + 2 heads (3,188,840 and 3,190,888)
    torchvision = kbench.build("googlenet", aux_logits=True, torchvision_layout=True)
    assert count_params(torchvision)["params_trainable"] == 13_004_888  # torchvision's googlenet(aux_logits=True), with BN
    # The paper's 5x5/3 aux pool needs a 5x5 map after inception 4a (input >= 79 with ceil-mode pools).
    with pytest.raises(kbench.InputSizeError):
        kbench.build("googlenet", input_shape=(78, 78), aux_logits=True)


def test_torchvision_layout_total_params():
    """Keras' total (BN moving statistics included) of the torchvision layout; the trainable count
    is its Reported figure. Parameters do not depend on the input size here (global pooling)."""
    model = kbench.build("googlenet", input_shape=(64, 64), torchvision_layout=True)
    assert count_params(model)["params_keras_total"] == 6_639_464


@pytest.mark.parametrize("options", [{"aux_logits": True},
                                     pytest.param({"aux_logits": True, "torchvision_layout": True},
                                                  marks=pytest.mark.slow)])
def test_aux_head_variants_meet_the_model_contract(options, check_model_contract):
    """Three outputs, custom pooling: the registry-wide contract on the training variant."""
    check_model_contract(kbench.build("googlenet", input_shape=(79, 79), num_classes=10, **options), num_classes=10)


def _ceil_pool(n, kernel=3, stride=2):
    return math.ceil((n - kernel) / stride) + 1


def googlenet_hand_macs(size, torchvision_layout):
    """Conv+FC MACs of GoogLeNet from its layer table, with ceil-mode max pools (torchvision, Caffe)."""
    large = 9 if torchvision_layout else 25  # torchvision's "5x5" branch is a 3x3 conv
    side = (size + 2 * 3 - 7) // 2 + 1  # conv1 7x7/2, padding 3
    macs = side * side * 7 * 7 * 3 * 64
    side = _ceil_pool(side)
    macs += side * side * (64 * 64 + 9 * 64 * 192)
    side, channels = _ceil_pool(side), 192
    for module, (c1, c3r, c3, c5r, c5, proj) in INCEPTION_CONFIG.items():
        macs += side * side * (channels * (c1 + c3r + c5r + proj) + 9 * c3r * c3 + large * c5r * c5)
        channels = c1 + c3 + c5 + proj
        if module == "3b":
            side = _ceil_pool(side)
        elif module == "4e":
            side = _ceil_pool(side, 2) if torchvision_layout else _ceil_pool(side)
    return macs + channels * 1000


def test_hand_count_reproduces_the_published_224_figures():
    assert round(googlenet_hand_macs(224, torchvision_layout=True) / 1e9, 3) == 1.498  # torchvision _ops
    assert round(googlenet_hand_macs(224, torchvision_layout=False) / 1e6, 1) == 1582.7  # the paper's layer table, counted by hand


@pytest.mark.parametrize("size, torchvision_layout", [(227, True), (227, False), (100, True), (99, False)])
def test_max_pools_follow_ceil_mode_at_any_input_size(size, torchvision_layout):
    """Defect: 'same' pools gave 57 -> 29 at 227 (1.655 G MACs); torchvision and Caffe round 57 -> 28."""
    model = kbench.build("googlenet", input_shape=(size, size), torchvision_layout=torchvision_layout)
    assert count_macs(model)["macs"] == googlenet_hand_macs(size, torchvision_layout)


def test_torchvision_layout_at_227_map_sizes_and_macs():
    model = kbench.build("googlenet", input_shape=(227, 227), torchvision_layout=True)
    sides = [model.get_layer(name).output.shape[1] for name in ("conv1_conv", "pool1", "pool2", "pool3", "pool4")]
    assert sides == [114, 57, 28, 14, 7]
    assert count_macs(model)["macs"] == 1_515_588_352  # the issue: torchvision 1.516 G
