"""VGG: parameter counts to the unit, equality with keras.applications, MACs with and without the
classifier."""

import keras
import pytest

import kbench
from kbench.profiling import profile_model


def _trainable(model):
    return sum(int(keras.ops.size(w)) for w in model.trainable_weights)


@pytest.mark.parametrize("name, expected", [
    ("vgg16", 138_357_544),
    ("vgg19", 143_667_240),
    ("vgg11", 132_863_336),
    ("vgg13", 133_047_848),
    ("vgg16_bn", 138_365_992),
])
def test_trainable_parameters_match_references(name, expected):
    assert _trainable(kbench.build(name)) == expected


@pytest.mark.parametrize("name, app", [("vgg16", "VGG16"), ("vgg19", "VGG19")])
def test_vgg_equals_keras_applications(name, app):
    reference = getattr(keras.applications, app)(weights=None)
    assert kbench.build(name).count_params() == reference.count_params()


def test_vgg16_macs_conv_only_and_with_classifier():
    model = kbench.build("vgg16")
    record = profile_model(model, (224, 224, 3), per_layer=True)
    conv_only = sum(r["macs"] for r in record["per_layer"] if r["type"] == "Conv2D")
    assert conv_only == pytest.approx(15.3e9, rel=0.02)
    assert record["macs"] == pytest.approx(15.47e9, rel=0.02)
    assert record["macs"] == 15_470_264_320  # reference_numbers.md, exact
    assert record["params_trainable"] == 138_357_544
