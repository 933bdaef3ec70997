"""NASNet-A Mobile against its independent reference, keras.applications.NASNetMobile: the same
parameters and multiply-adds, layer for layer, and the same outputs with the same weights.
Published figures (paper Table 2, Keras' counts): tests/models/test_reported.py.
"""

import keras
import numpy as np
import pytest

import kbench
from architectures.errors import ConfigError
from architectures.nasnet import nasnet
from kbench.counting.layer_walk import count_params
from kbench.counting.macs import count_macs


def _keras_reference(size):
    return keras.applications.NASNetMobile(weights=None, input_shape=(size, size, 3), classifier_activation=None)


def _layer_macs(model):
    """Multiply-adds per layer in model order (layer names differ between the two builds)."""
    per_layer = count_macs(model)["per_layer"]
    return [per_layer[l.name] for l in model.layers if per_layer.get(l.name)]


@pytest.mark.parametrize("size", [32, pytest.param(224, marks=pytest.mark.slow)])
def test_same_counts_as_keras_nasnet_mobile(size):
    ours, reference = kbench.build("nasnet_a_mobile", input_shape=(size, size, 3)), _keras_reference(size)
    assert count_params(ours) == count_params(reference)
    assert _layer_macs(ours) == _layer_macs(reference)
    assert count_macs(ours)["macs"] == count_macs(reference)["macs"]
    if size == 224:
        assert count_macs(ours)["macs"] == 563_638_816


def test_same_outputs_as_keras_with_the_same_weights():
    """Layer for layer the same network: Keras' weights load in order and the logits agree."""
    ours, reference = kbench.build("nasnet_a_mobile", input_shape=(32, 32, 3)), _keras_reference(32)
    rng = np.random.default_rng(0)
    weights = [rng.normal(scale=0.1, size=w.shape).astype("float32") if len(w.shape) > 1
               else (np.abs(rng.normal(size=w.shape)) + 0.5).astype("float32") for w in reference.weights]
    reference.set_weights(weights)
    ours.set_weights(weights)
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(reference(x)),
                               rtol=1e-5, atol=1e-4)


def test_cells_and_widths():
    model = kbench.build("nasnet_a_mobile", input_shape=(32, 32, 3))
    names = [l.name for l in model.layers if l.name.endswith("_concat") and "adjust" not in l.name]
    assert names == (["stem1_concat", "stem2_concat"] + [f"normal{i}_concat" for i in range(4)] + ["reduce4_concat"]
                     + [f"normal{i}_concat" for i in range(5, 9)] + ["reduce9_concat"]
                     + [f"normal{i}_concat" for i in range(10, 14)])
    # Normal cells concatenate 6 x filters, reduction cells 4 x filters; the last is the "1056".
    assert model.get_layer("normal13_concat").output.shape[-1] == 1056
    assert model.get_layer("reduce4_concat").output.shape[-1] == 4 * 88
    assert model.get_layer("stem1_concat").output.shape[-1] == 4 * 11


def test_penultimate_filters_must_split_into_the_cells():
    with pytest.raises(ConfigError, match="multiple of 24"):
        nasnet(input_shape=(32, 32, 3), penultimate_filters=1000)
