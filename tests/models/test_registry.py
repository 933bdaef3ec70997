"""Shared checks run on every registered model (parameterised over the registry).

A new model is covered by registering it: it is built at its test input size, run forward
once, profiled, and its profiler MACs are cross-checked against the analytic counter.
"""

import keras
import numpy as np
import pytest

import kbench
from kbench.macs import count_macs
from kbench.profiling import profile_model

MODELS = kbench.list_models()


def _test_shape(spec):
    if spec.test_input_size is None:
        return tuple(spec.default_input_shape)
    return (*spec.test_input_size, spec.default_input_shape[2])


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("name", MODELS)
def test_metadata_is_complete(name):
    spec = kbench.get_spec(name)
    assert spec.family and spec.paper is not None and spec.paper.year > 1980
    assert len(spec.default_input_shape) == 3
    assert spec.min_input_size[0] <= spec.default_input_shape[0]
    assert spec.reported, "every model records its paper's (or a reference's) numbers"


@pytest.mark.parametrize("name", MODELS)
def test_forward_profile_and_mac_cross_check(name):
    spec = kbench.get_spec(name)
    shape = _test_shape(spec)
    model = kbench.build(name, input_shape=shape, num_classes=10)
    out = model(np.random.default_rng(0).normal(size=(2, *shape)).astype("float32"), training=False)
    out = out[0] if isinstance(out, (list, tuple)) else out
    assert out.shape[0] == 2
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))

    record = profile_model(model, shape, per_layer=True)
    analytic = count_macs(model)
    assert not analytic["unknown_layers"], analytic["unknown_layers"]
    # Two independent counts of the same convention must agree to the unit.
    assert record["macs"] == analytic["macs"]
    assert record["macs"] > 0
    # The profiler counts 2 per MAC plus bias/BN/pool/element-wise terms on top (and, for dilated
    # convolutions whose rate does not divide the map, the padding TF convolves: set apart).
    ratio = (record["flops_tf"] - record["flops_tf_dilation_padding"]) / (2 * record["macs"])
    assert 1.0 <= ratio <= 1.06, ratio
    rows = record["per_layer"]
    assert sum(r["flops_tf"] for r in rows) == record["flops_tf"]
    assert sum(r["macs"] for r in rows) == record["macs"]
    assert sum(r["params"] for r in rows) == record["params_total"]
    assert sum(r["mem_access"] for r in rows) == record["mem_access"] > 0
    # The per-layer MACs equal the analytic ones layer by layer.
    by_layer = {r["name"]: r["macs"] for r in rows}
    for layer_name, macs in analytic["per_layer"].items():
        assert by_layer.get(layer_name, 0) == macs, layer_name


@pytest.mark.parametrize("name", MODELS)
def test_input_below_minimum_is_rejected(name):
    spec = kbench.get_spec(name)
    h, w = spec.min_input_size
    with pytest.raises(kbench.InputSizeError, match="too small"):
        kbench.build(name, input_shape=(h - 1, w))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_full_size_profile_ratio_and_cross_check(name):
    """The same checks at the model's default (paper) input size."""
    spec = kbench.get_spec(name)
    model = kbench.build(name)
    record = profile_model(model, spec.default_input_shape)
    assert record["macs"] == count_macs(model)["macs"]
    assert 1.0 <= (record["flops_tf"] - record["flops_tf_dilation_padding"]) / (2 * record["macs"]) <= 1.06
