"""VGG: parameter counts to the unit, equality with keras.applications, MACs with and without the
classifier, and the two heads (flatten, the default; adaptive, torchvision's)."""

import inspect

import keras
import numpy as np
import pytest

import kbench
from architectures.vgg import vgg
from kbench.counting.macs import count_macs
from kbench.counting.profiling import profile_model


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
    assert record["macs"] == 15_470_264_320  # conv + FC multiply-adds of configuration D at 224, exact
    assert record["params_trainable"] == 138_357_544


# vgg16 at 64x64: the last map is 2x2x512 (2,048 features) instead of 224's 7x7x512 (25,088).
FC1_AT_224, FC1_AT_64 = 25_088 * 4_096, 2_048 * 4_096


def test_vgg_head_default_is_flatten_and_sized_by_the_input():
    assert inspect.signature(vgg).parameters["head"].default == "flatten"
    model = kbench.build("vgg16", input_shape=(64, 64))
    assert "adaptive_pool" not in {layer.name for layer in model.layers}
    assert _trainable(model) == 138_357_544 - FC1_AT_224 + FC1_AT_64 == 43_985_704


@pytest.mark.parametrize("size", [64, 100, 32])
def test_vgg_adaptive_head_has_torchvision_parameters_at_any_size(size):
    adaptive = kbench.build("vgg16", input_shape=(size, size), head="adaptive")
    assert adaptive.get_layer("adaptive_pool").output.shape[1:] == (7, 7, 512)
    assert _trainable(adaptive) == 138_357_544  # torchvision VGG16_Weights num_params
    if size == 64:
        # Same convolutions; only the first FC layer differs (adaptive pooling counts no MACs).
        flatten = kbench.build("vgg16", input_shape=(size, size), head="flatten")
        assert count_macs(adaptive)["macs"] - count_macs(flatten)["macs"] == FC1_AT_224 - FC1_AT_64


def test_vgg_adaptive_head_replicates_a_small_map_like_torchvision():
    """A 2x2 map pooled to 7x7: bins [floor(i*2/7), ceil((i+1)*2/7)) as torch's adaptive_avg_pool2d."""
    inputs = keras.Input((2, 2, 1))
    pooled = keras.layers.AdaptiveAveragePooling2D(7)(inputs)
    out = keras.ops.convert_to_numpy(keras.Model(inputs, pooled)(np.arange(4.0, dtype="float32").reshape(1, 2, 2, 1)))
    assert out[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert out[0, 0, :, 0].tolist() == [0, 0, 0, 0.5, 1, 1, 1]


def test_vgg_head_value_is_checked():
    with pytest.raises(kbench.UsageError, match="head=max is not allowed for vgg16: allowed heads flatten, adaptive"):
        kbench.build("vgg16", input_shape=(32, 32), head="max")
