"""ResNet: parameter counts to the unit, the Keras layout against keras.applications, MACs against
the paper's table and torchvision's count."""

import keras
import pytest

import kbench
from kbench.counting.profiling import profile_model


def _trainable(model):
    return sum(int(keras.ops.size(w)) for w in model.trainable_weights)


@pytest.mark.parametrize("name, expected", [
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("resnet101", 44_549_160),
    ("resnet152", 60_192_808),
    ("resnet50_v1c", 25_576_264),
])
def test_trainable_parameters_match_references(name, expected, build_shapes_only):
    assert _trainable(build_shapes_only(name)) == expected


def test_resnet50_in_keras_layout_equals_keras_applications():
    ours = kbench.build("resnet50", stride_in_1x1=True, conv_bias=True)
    reference = keras.applications.ResNet50(weights=None)
    assert ours.count_params() == reference.count_params() == 25_636_712
    assert _trainable(ours) == _trainable(reference)


@pytest.mark.parametrize("depth, paper_gmacs", [(18, 1.8), (34, 3.6), (50, 3.8)])
def test_resnet_macs_match_paper_table_in_original_layout(depth, paper_gmacs):
    model = kbench.build(f"resnet{depth}", stride_in_1x1=True)
    record = profile_model(model, (224, 224, 3))
    assert record["macs"] == pytest.approx(paper_gmacs * 1e9, rel=0.02)


def test_resnet50_v15_macs_equal_torchvision_count():
    record = kbench.profile("resnet50")
    assert record["macs"] == 4_089_184_256
    assert 1.0 <= record["flops_tf"] / (2 * record["macs"]) <= 1.06
